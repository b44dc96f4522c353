"""Classify many audio files with a trained GEmo-CLAP model: the batched engine behind `gemo-clap predict`, the
web app and the bench. A library: no argument parsing, no printing.

`iter_predictions` reads every file's length from its header, sorts the files by length and cuts them into batches
of similar lengths (little padding), decodes each batch in background threads while the model runs on the one
before, and yields one `Prediction` per file, or a `Failure` for a file that cannot be classified (unreadable, empty,
NaN, too short): a bad file is reported, never fatal. Long files are cut into windows by the feature extractor and
scored on all of them (`clip_index`). `iter_segmented_files` scores each file window by window instead (see
`segments`): windows are cut from a streamed decode and scored a pool at a time, grouped by length, so memory is one
decode block plus one pool of windows whatever the file's length.

Every batch is scored by a `backends.Scorer`, the torch classifier's forward or its ONNX export: emotion and gender
scores from one audio-tower pass. A clip's scores do not depend on the clips it is batched with (the model is
padding-invariant for every supported speech tower): batching changes the speed, not the answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..data.audio import audio_info, cut_windows, load_audio, stream_waveform
from ..errors import GEmoClapAudioError, PredictionError
from .backends import Scorer, prepare_scorer
from .limits import min_clip_samples, too_short
from .predictions import Failure, Prediction, Predictions, Segment, SegmentedFile, SegmentedFiles, ranked
from .segments import SegmentOptions, merge_segments, number_segments, plan_windows

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8
DEFAULT_NUM_WORKERS = 2
POOL_BATCHES = 4  # segment windows are bucketed by length a pool of this many batches at a time
# Segment batches are padded to a multiple of a quarter window: at most 4 batch lengths per run (see WindowScorer).
WINDOW_LENGTH_STEPS = 4


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise PredictionError(f"--batch-size must be at least 1, got {batch_size}.")


def check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise PredictionError(f"--top-k must be at least 1, got {top_k}.")


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into `lengths` grouped into batches of at most `batch_size` clips of similar length (sorted)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _probabilities(labels: Sequence[str], row: torch.Tensor) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, row)}


@dataclass
class _Clip:
    file: str
    num_samples: int = 0


def _read_length(clip: _Clip, rate: int) -> _Clip | Failure:
    """The clip with its length in samples at `rate`, read from the file header (no decoding), or a Failure (also
    for a clip shorter than `limits.MIN_CLIP_S`, too short for a label)."""
    try:
        clip.num_samples = audio_info(clip.file).num_samples(rate)
    except (GEmoClapAudioError, OSError) as error:
        return Failure(clip.file, str(error))
    short = too_short(clip.num_samples, rate) if clip.num_samples else None  # 0 samples: the decoder says "empty"
    return clip if short is None else Failure(clip.file, short)


def _featurise(feature_extractor, arrays: list[np.ndarray], names: list[str], pad_to_multiple_of: int | None = None):
    rate = feature_extractor.sampling_rate
    return feature_extractor(
        arrays,
        sampling_rate=rate,
        names=names,
        padding=True,
        pad_to_multiple_of=pad_to_multiple_of,
        return_tensors="pt",
    )


def _decode_batch(feature_extractor, clips: list[_Clip]) -> tuple[dict | None, list[_Clip], list[Failure]]:
    """Decode and featurise one batch; a clip that fails is split off as a Failure and the rest still batch."""
    rate = feature_extractor.sampling_rate
    waveforms, good, failures = [], [], []
    for clip in clips:
        try:
            waveforms.append(load_audio(clip.file, sampling_rate=rate))
            good.append(clip)
        except (GEmoClapAudioError, OSError) as error:
            failures.append(Failure(clip.file, str(error)))
    try:
        return (_featurise(feature_extractor, waveforms, [c.file for c in good]) if good else None), good, failures
    except GEmoClapAudioError:  # one clip the feature extractor refuses (too short): find it, batch the others
        kept, kept_waveforms = [], []
        for clip, waveform in zip(good, waveforms):
            try:
                _featurise(feature_extractor, [waveform], [clip.file])
            except GEmoClapAudioError as error:
                failures.append(Failure(clip.file, str(error)))
            else:
                kept.append(clip)
                kept_waveforms.append(waveform)
        inputs = _featurise(feature_extractor, kept_waveforms, [c.file for c in kept]) if kept else None
        return inputs, kept, failures


def iter_predictions(
    classifier,
    feature_extractor,
    paths: Sequence[str | os.PathLike],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    top_k: int | None = None,
    num_workers: int = DEFAULT_NUM_WORKERS,
) -> Iterator[Prediction | Failure]:
    """A `Prediction` or a `Failure` per file, as batches finish (shortest files first, not in input order).

    Files are batched `batch_size` at a time by similar length and decoded by `num_workers` background threads,
    at most `num_workers + 1` batches ahead. `classifier` is a `Scorer` (`backends.load_backend`), or a
    `GEmoClapForAudioClassification` (put in evaluation mode and moved to `device`, default where it is).
    Missing, unreadable, empty, NaN or too-short files come back as `Failure`s; the other files are still scored.
    """
    check_batch_size(batch_size)
    check_top_k(top_k)
    scorer, feature_extractor = prepare_scorer(classifier, feature_extractor, device=device)
    emotion_labels, gender_labels = list(scorer.config.emotion_labels), list(scorer.config.gender_labels)
    rate = feature_extractor.sampling_rate
    clips = [_Clip(str(path)) for path in paths]
    with ThreadPoolExecutor(max_workers=max(1, num_workers), thread_name_prefix="gemo-clap-decode") as pool:
        readable = []
        for result in pool.map(lambda clip: _read_length(clip, rate), clips):
            if isinstance(result, Failure):
                yield result
            else:
                readable.append(result)
        batches = [
            [readable[i] for i in bucket] for bucket in length_buckets([c.num_samples for c in readable], batch_size)
        ]
        pending = [pool.submit(_decode_batch, feature_extractor, batch) for batch in batches[: num_workers + 1]]
        for next_batch in range(len(pending), len(batches) + len(pending)):
            inputs, good, failures = pending.pop(0).result()
            if next_batch < len(batches):  # keep the workers busy while the model runs
                pending.append(pool.submit(_decode_batch, feature_extractor, batches[next_batch]))
            yield from failures
            if not good:
                continue
            emotion, gender = scorer(inputs)
            for row, clip in enumerate(good):
                prediction = Prediction(
                    clip.file,
                    ranked(emotion[row], emotion_labels, top_k),
                    probabilities=_probabilities(emotion_labels, emotion[row]),
                    duration=clip.num_samples / rate,
                )
                if gender is not None:
                    prediction.genders = ranked(gender[row], gender_labels, None)
                    prediction.gender_probabilities = _probabilities(gender_labels, gender[row])
                yield prediction


def _log_failures(failures: Sequence[Failure]) -> None:
    for failure in failures:
        logger.warning("skipped %s: %s", failure.file, failure.reason)


def predict_files(
    classifier,
    feature_extractor=None,
    paths: Sequence[str | os.PathLike] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    top_k: int | None = None,
    num_workers: int = DEFAULT_NUM_WORKERS,
    backend: str | None = None,
    threads: int | None = None,
) -> Predictions:
    """Emotion scores for each file, batched by length (see `iter_predictions`); genders too for `loss_type="ml"`.

    `classifier` is a loaded classifier or `Scorer`, or a model folder / Hub id (with `backend="onnx"`: an
    `export-onnx` folder or `.onnx` file, run by onnxruntime with `threads` intra-op threads) that is loaded here,
    with its own feature extractor when `feature_extractor` is None. For emotion over time use `predict_segments`.

    Returns the predictions in input order; files that could not be classified are left out, logged as warnings
    and listed in the result's `failures`. A file longer than the feature extractor's `max_length_s` is scored on
    all its windows (`clip_index`). Each file's scores equal its one-at-a-time scores (`batch_size=1`) to 1e-4.
    """
    scorer, feature_extractor = prepare_scorer(classifier, feature_extractor, backend, device, threads)
    position = {}
    for index, path in enumerate(paths):
        position.setdefault(str(path), index)
    results = list(iter_predictions(scorer, feature_extractor, list(position), batch_size, None, top_k, num_workers))
    failures = [r for r in results if isinstance(r, Failure)]
    _log_failures(failures)
    predictions = sorted((r for r in results if isinstance(r, Prediction)), key=lambda p: position[p.file])
    return Predictions(predictions, failures)


def length_step(window_s: float, rate: int) -> int:
    """The padding step of segment batches: a quarter of the window, in samples (at least one)."""
    return max(1, -(-int(round(window_s * rate)) // WINDOW_LENGTH_STEPS))


class WindowScorer:
    """Scores pools of windows of one file with a `Scorer` (torch or onnx): one pass per length bucket.

    With `window_s`, each batch is padded (masked) up to a multiple of a quarter window, so that every batch of a
    run has one of 4 lengths. Windows inside voice-activity regions come in any length; batches of as many
    lengths would leave the allocator holding freed blocks of each size, and memory would grow with the file. The
    model is padding-invariant, so a window's scores stay those of the cut-out clip.
    """

    def __init__(self, scorer: Scorer, feature_extractor, batch_size: int, window_s: float | None = None):
        self.scorer, self.feature_extractor, self.batch_size = scorer, feature_extractor, batch_size
        self.emotions, self.genders = list(scorer.config.emotion_labels), list(scorer.config.gender_labels)
        self.step = None if window_s is None else length_step(window_s, feature_extractor.sampling_rate)

    def score(self, file: str, windows: list[tuple[int, int]], clips: list[np.ndarray]) -> list[Segment]:
        rate = self.feature_extractor.sampling_rate
        segments: list[Segment | None] = [None] * len(clips)
        for bucket in length_buckets([len(c) for c in clips], self.batch_size):
            inputs = _featurise(self.feature_extractor, [clips[i] for i in bucket], [file] * len(bucket), self.step)
            emotion, gender = self.scorer(inputs)
            for row, i in enumerate(bucket):
                start, end = windows[i]
                genders = None if gender is None else _probabilities(self.genders, gender[row])
                segments[i] = Segment(
                    file, start / rate, end / rate, _probabilities(self.emotions, emotion[row]), genders
                )
        return segments


def segment_file(scorer: WindowScorer, path: str, options: SegmentOptions, detector=None, turns=None) -> SegmentedFile:
    """One file's segments (see `segments`), inside its speaker `turns` when given (`turns.Turn`s: each segment gets
    its turn's speaker); raises `GEmoClapAudioError`/`OSError` for a bad file."""
    rate = scorer.feature_extractor.sampling_rate
    num_samples = audio_info(path).num_samples(rate)
    if too_short(num_samples, rate):
        raise GEmoClapAudioError(too_short(num_samples, rate))
    result = SegmentedFile(path, num_samples / rate)
    regions = [(0, num_samples)]
    if detector is not None:
        regions = detector.speech_regions(stream_waveform(path, rate), num_samples)
        result.speech = [(start / rate, end / rate) for start, end in regions]
    window, hop = int(round(options.window * rate)), int(round(options.hop * rate))
    speakers = None
    if turns is not None:
        from .turns import fit_turns, turn_windows

        result.turns = fit_turns(turns, result.duration, path)
        windows, speakers = turn_windows(result.turns, regions, rate, window, hop, min_clip_samples(rate))
    else:
        windows = plan_windows(regions, window, hop, min_clip_samples(rate))
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
    for segment, speaker in zip(result.segments, speakers or ()):  # turns do not overlap: windows are in time order
        segment.speaker = speaker
    number_segments(result.segments)
    return result


def speech_detector(vad: bool):
    """silero's `SpeechDetector` when `vad`, else None (a `VadUnavailableError` when silero-vad is missing)."""
    if not vad:
        return None
    from .vad import SpeechDetector

    return SpeechDetector()


def iter_segmented_files(
    classifier,
    feature_extractor,
    paths: Sequence[str | os.PathLike],
    options: SegmentOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    turns=None,
) -> Iterator[SegmentedFile | Failure]:
    """A `SegmentedFile` per file in the order given (unmerged: the caller merges), or a `Failure` (unreadable, or
    no speech found with `options.vad`); `turns` as for `predict_segments`."""
    options = options or SegmentOptions()
    check_batch_size(batch_size)
    scorer, feature_extractor = prepare_scorer(classifier, feature_extractor, device=device)
    windows = WindowScorer(scorer, feature_extractor, batch_size, options.window)
    detector = speech_detector(options.vad)
    from .turns import turns_for

    paths = list(map(str, paths))
    turns = turns_for(turns, paths)  # read and checked before any file is scored
    for path in paths:
        try:
            result = segment_file(windows, path, options, detector, None if turns is None else turns.get(path))
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


def predict_segments(
    classifier,
    feature_extractor=None,
    paths: Sequence[str | os.PathLike] = (),
    options: SegmentOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    backend: str | None = None,
    threads: int | None = None,
    turns=None,
) -> SegmentedFiles:
    """Each file's segments, window by window (`SegmentOptions`: window, hop, vad, merge); `classifier` as for
    `predict_files`. Files that could not be segmented are logged and listed in the result's `failures`.

    `turns`: a diarization of the one file (an RTTM, CSV or JSONL path, a `pyannote.core.Annotation` or a list of
    (start, end, speaker)), or a mapping {path: diarization}: windows stay inside each turn and every segment gets
    its `speaker` (see `turns.speaker_summary`)."""
    options = options or SegmentOptions()
    scorer, feature_extractor = prepare_scorer(classifier, feature_extractor, backend, device, threads)
    files, failures = [], []
    for result in iter_segmented_files(scorer, feature_extractor, paths, options, batch_size, turns=turns):
        if isinstance(result, Failure):
            failures.append(result)
            continue
        if options.merge:
            result.segments = merge_segments(result.segments)
        files.append(result)
    _log_failures(failures)
    return SegmentedFiles(files, failures)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NUM_WORKERS",
    "WindowScorer",
    "check_batch_size",
    "check_top_k",
    "iter_predictions",
    "iter_segmented_files",
    "length_buckets",
    "length_step",
    "predict_files",
    "predict_segments",
    "segment_file",
    "speech_detector",
]
