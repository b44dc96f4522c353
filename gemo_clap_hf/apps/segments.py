"""Emotion over time: score a long recording window by window (`gemo-clap predict --segments`).

A file is cut into windows of `window` seconds every `hop` seconds (inside the speech regions when a
`SpeechDetector` is given); each window is scored as a clip of its own, so its scores equal `predict` on that
cut-out clip. Windows are cut from a streamed decode (`audio_stream`) and scored a pool at a time, grouped into
batches of similar length by `prediction.length_buckets`: memory is one decode block plus one pool of windows,
whatever the file's length. A region shorter than a window is one segment; the last window of a region ends on
the region's end (it starts earlier instead of being cut short).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio_stream import cut_windows, stream_waveform
from .prediction import DEFAULT_BATCH_SIZE, Failure, Prediction, PredictionError, as_scorer, length_buckets
from .segment_cli import DEFAULT_HOP_S, DEFAULT_WINDOW_S

POOL_BATCHES = 4  # windows are bucketed by length a pool of this many batches at a time


@dataclass
class Segment:
    """One scored window (or, after `merge_segments`, a run of windows): [start, end) in seconds."""

    file: str
    start: float
    end: float
    probabilities: dict[str, float]
    gender_probabilities: dict[str, float] | None = None
    index: int = 0  # position in the file's segment list, and how many it has: a file is complete at `count`
    count: int = 0

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_row(self) -> dict:
        """file, start, end, segment, segments, then `Prediction.to_row`'s emotion, score, probabilities, gender."""
        row = Prediction(self.file, probabilities=self.probabilities, gender_probabilities=self.gender_probabilities)
        # Times unrounded: the CSV's 6 decimals are sample-exact at 16 kHz.
        place = {"start": self.start, "end": self.end, "segment": self.index + 1, "segments": self.count}
        return {"file": self.file, **place, **row.to_row()}


@dataclass
class SegmentedFile:
    """A file's segments in time order, its duration (s), and its speech regions (s) when a VAD was used."""

    file: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    speech: list[tuple[float, float]] | None = None


def check_window(window: float, hop: float) -> None:
    """A `PredictionError` unless 0 < hop <= window (a hop past the window would skip audio)."""
    if not (window > 0 and hop > 0):
        raise PredictionError(f"--window and --hop must be positive seconds, got {window} and {hop}.")
    if hop > window:
        raise PredictionError(f"--hop {hop} is longer than --window {window}: audio between windows would be skipped.")


def plan_windows(regions: Sequence[tuple[int, int]], window: int, hop: int) -> list[tuple[int, int]]:
    """(start, end) sample ranges every `hop` samples inside each region; the last one ends on the region's end."""
    planned = []
    for begin, end in regions:
        if end - begin <= window:
            planned.append((begin, end))
            continue
        starts = list(range(begin, end - window + 1, hop))
        if starts[-1] + window < end:
            starts.append(end - window)
        planned += [(start, start + window) for start in starts]
    return planned


def merge_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Runs of touching or overlapping segments with the same label as one segment each; a run's probabilities are
    the mean of its windows' (so its score is no longer that of one cut-out clip)."""
    runs: list[list[Segment]] = []
    for segment in segments:
        last = runs[-1][-1] if runs else None
        if last is not None and segment.emotion == last.emotion and segment.start <= last.end + 1e-6:
            runs[-1].append(segment)
        else:
            runs.append([segment])
    merged = []
    for run in runs:
        mean = {k: float(np.mean([s.probabilities[k] for s in run])) for k in run[0].probabilities}
        genders = None
        if run[0].gender_probabilities is not None:
            genders = {k: float(np.mean([s.gender_probabilities[k] for s in run])) for k in run[0].gender_probabilities}
        merged.append(Segment(run[0].file, run[0].start, max(s.end for s in run), mean, genders))
    return _numbered(merged)


def _numbered(segments: list[Segment]) -> list[Segment]:
    for index, segment in enumerate(segments):
        segment.index, segment.count = index, len(segments)
    return segments


class _WindowScorer:
    """Scores pools of windows of one file with a `Scorer` (torch or onnx): one pass per length bucket."""

    def __init__(self, scorer, feature_extractor, batch_size: int):
        self.scorer, self.feature_extractor, self.batch_size = scorer, feature_extractor, batch_size
        config = scorer.config
        self.emotions, self.genders = list(config.emotion_labels), list(config.gender_labels)

    def score(self, file: str, windows: list[tuple[int, int]], clips: list[np.ndarray]) -> list[Segment]:
        rate = self.feature_extractor.sampling_rate
        segments: list[Segment | None] = [None] * len(clips)
        for bucket in length_buckets([len(c) for c in clips], self.batch_size):
            inputs = self.feature_extractor(
                [clips[i] for i in bucket],
                sampling_rate=rate,
                padding=True,
                names=[file] * len(bucket),
                return_tensors="pt",
            )
            emotion, gender = self.scorer(inputs)
            for row, i in enumerate(bucket):
                start, end = windows[i]
                genders = None if gender is None else dict(zip(self.genders, map(float, gender[row])))
                segments[i] = Segment(
                    file, start / rate, end / rate, dict(zip(self.emotions, map(float, emotion[row]))), genders
                )
        return segments


def segment_file(
    scorer: _WindowScorer, path: str, detector=None, hop_s: float = DEFAULT_HOP_S, window_s: float = DEFAULT_WINDOW_S
) -> SegmentedFile:
    """One file's segments (see the module docstring); raises `GEmoClapAudioError`/`OSError` for a bad file."""
    from ..data import audio_info

    rate = scorer.feature_extractor.sampling_rate
    num_samples = audio_info(path).num_samples(rate)
    result = SegmentedFile(path, num_samples / rate)
    regions = [(0, num_samples)]
    if detector is not None:
        regions = detector.speech_regions(stream_waveform(path, rate), num_samples)
        result.speech = [(start / rate, end / rate) for start, end in regions]
    windows = plan_windows(regions, int(round(window_s * rate)), int(round(hop_s * rate)))
    pool = scorer.batch_size * POOL_BATCHES
    picked, clips = [], []
    for index, clip in cut_windows(stream_waveform(path, rate), windows):
        picked.append(windows[index])
        clips.append(clip)
        if len(clips) == pool:
            result.segments += scorer.score(path, picked, clips)
            picked, clips = [], []
    if clips:
        result.segments += scorer.score(path, picked, clips)
    _numbered(result.segments)
    return result


def iter_segmented_files(
    classifier,
    feature_extractor,
    paths: Sequence[str | os.PathLike],
    window: float = DEFAULT_WINDOW_S,
    hop: float = DEFAULT_HOP_S,
    vad: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
) -> Iterator[SegmentedFile | Failure]:
    """A `SegmentedFile` per file in the order given, or a `Failure` (unreadable, or no speech found with `vad`)."""
    from ..feature_extraction_gemo_clap import GEmoClapAudioError

    check_window(window, hop)
    if batch_size < 1:
        raise PredictionError(f"batch_size must be at least 1, got {batch_size}.")
    scorer = _WindowScorer(as_scorer(classifier, device), feature_extractor, batch_size)
    detector = None
    if vad:
        from .vad import SpeechDetector

        detector = SpeechDetector()
    for path in map(str, paths):
        try:
            result = segment_file(scorer, path, detector, hop, window)
        except (GEmoClapAudioError, OSError) as error:
            yield Failure(path, str(error))
            continue
        if not result.segments:
            yield Failure(
                path,
                "the voice-activity detector found no speech in it (nothing to score); drop --vad to score it anyway",
            )
            continue
        yield result


class SegmentedFiles(list):
    """The `SegmentedFile`s of `predict_segments`, in input order; `failures` lists the files that were skipped."""

    def __init__(self, files=(), failures=()):
        super().__init__(files)
        self.failures: list[Failure] = list(failures)


def predict_segments(
    classifier,
    feature_extractor,
    paths: Sequence[str | os.PathLike],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    window: float = DEFAULT_WINDOW_S,
    hop: float = DEFAULT_HOP_S,
    vad: bool = False,
    merge: bool = False,
) -> SegmentedFiles:
    """Each file's segments (`predict_files(..., segments=True)`); `merge` joins same-label neighbours."""
    files, failures = [], []
    for result in iter_segmented_files(classifier, feature_extractor, paths, window, hop, vad, batch_size, device):
        if isinstance(result, Failure):
            failures.append(result)
            continue
        if merge:
            result.segments = merge_segments(result.segments)
        files.append(result)
    return SegmentedFiles(files, failures)


__all__ = [
    "DEFAULT_HOP_S",
    "DEFAULT_WINDOW_S",
    "Segment",
    "SegmentedFile",
    "SegmentedFiles",
    "check_window",
    "iter_segmented_files",
    "merge_segments",
    "plan_windows",
    "predict_segments",
]
