"""Emotion over time: which windows of a recording are scored, and how neighbouring results merge.

A file is cut into windows of `window` seconds every `hop` seconds (inside the speech regions when a voice-activity
detector is used); each window is scored as a clip of its own by the engine (`engine.predict_segments`), so its
scores equal `predict` on that cut-out clip. A region shorter than a window is one segment; the last window of a
region ends on the region's end (it starts earlier instead of being cut short). A region (or file) shorter than
`limits.MIN_CLIP_S` gets no segment: too short for a label to mean anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import PredictionError
from .limits import MAX_WINDOW_S, MIN_CLIP_S, MIN_HOP_S, check_seconds
from .predictions import Segment

# Segment length and hop (s): the library's defaults, which the command line and the web app show.
DEFAULT_WINDOW_S, DEFAULT_HOP_S = 3.0, 1.0


def check_window(window: float, hop: float) -> None:
    """A `PredictionError` naming the flag unless both are finite, `MIN_CLIP_S` <= window <= `MAX_WINDOW_S` and
    `MIN_HOP_S` <= hop <= window (a hop past the window would skip audio)."""
    window, hop = check_seconds("--window", window), check_seconds("--hop", hop)
    if window < MIN_CLIP_S:
        raise PredictionError(
            f"--window {window:g} is shorter than {MIN_CLIP_S:g} s, the shortest clip an emotion label means; use "
            f"--window {MIN_CLIP_S:g} or more (default {DEFAULT_WINDOW_S:g})."
        )
    if window > MAX_WINDOW_S:
        raise PredictionError(
            f"--window {window:g} is over {MAX_WINDOW_S:g} s (an hour): that is no timeline. Use a window of a few "
            "seconds, or predict without --segments for one label per file."
        )
    if hop < MIN_HOP_S:
        raise PredictionError(
            f"--hop {hop:g} is under {MIN_HOP_S:g} s: the encoder's frames are 20 ms apart, so such hops only repeat "
            f"windows (and multiply the work); use --hop {MIN_HOP_S:g} or more (default {DEFAULT_HOP_S:g})."
        )
    if hop > window:
        raise PredictionError(f"--hop {hop} is longer than --window {window}: audio between windows would be skipped.")


@dataclass(frozen=True)
class SegmentOptions:
    """How files are segmented: window and hop (s), voice-activity detection, merging of same-label neighbours.
    Checked once, when made."""

    window: float = DEFAULT_WINDOW_S
    hop: float = DEFAULT_HOP_S
    vad: bool = False
    merge: bool = False

    def __post_init__(self):
        check_window(self.window, self.hop)


def plan_windows(
    regions: Sequence[tuple[int, int]], window: int, hop: int, min_length: int = 0
) -> list[tuple[int, int]]:
    """(start, end) sample ranges every `hop` samples inside each region; the last one ends on the region's end.
    Regions shorter than `min_length` samples get no window (too short for a label)."""
    planned = []
    for begin, end in regions:
        if end - begin < min_length:
            continue
        if end - begin <= window:
            planned.append((begin, end))
            continue
        starts = list(range(begin, end - window + 1, hop))
        if starts[-1] + window < end:
            starts.append(end - window)
        planned += [(start, start + window) for start in starts]
    return planned


def number_segments(segments: list[Segment]) -> list[Segment]:
    """Set each segment's `index` and `count` (its place in the file's list, and the list's length)."""
    for index, segment in enumerate(segments):
        segment.index, segment.count = index, len(segments)
    return segments


def continues(last: Segment, segment: Segment) -> bool:
    """Whether `segment` extends `last`'s run when merging: same label and speaker, touching or overlapping."""
    return segment.emotion == last.emotion and segment.speaker == last.speaker and segment.start <= last.end + 1e-6


def merge_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Runs of touching or overlapping segments with the same label (and speaker) as one segment each; a run's
    probabilities are the mean of its windows' (so its score is no longer that of one cut-out clip)."""
    runs: list[list[Segment]] = []
    for segment in segments:
        last = runs[-1][-1] if runs else None
        if last is not None and continues(last, segment):
            runs[-1].append(segment)
        else:
            runs.append([segment])
    merged = []
    for run in runs:
        mean = {k: float(np.mean([s.probabilities[k] for s in run])) for k in run[0].probabilities}
        genders = None
        if run[0].gender_probabilities is not None:
            genders = {k: float(np.mean([s.gender_probabilities[k] for s in run])) for k in run[0].gender_probabilities}
        merged.append(
            Segment(run[0].file, run[0].start, max(s.end for s in run), mean, genders, speaker=run[0].speaker)
        )
    return number_segments(merged)


__all__ = [
    "DEFAULT_HOP_S",
    "DEFAULT_WINDOW_S",
    "SegmentOptions",
    "check_window",
    "continues",
    "merge_segments",
    "number_segments",
    "plan_windows",
]
