"""What the inference engine returns: a `Prediction` per file, a `Segment` per window, a `Failure` per bad file.

These are plain records shared by the engine, the segment timeline, the writers of the command line and the web app;
they hold probabilities in label-id order and know how to become the CSV/JSONL rows `gemo-clap predict` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def ranked(probabilities, labels: Sequence[str], top_k: int | None) -> list[dict]:
    """`[{"label", "score"}, ...]` of a probability tensor, best first (the pipeline's form), cut to `top_k`, scores
    rounded for display."""
    order = probabilities.argsort(descending=True)[: top_k or len(labels)]
    return [{"label": labels[int(i)], "score": round(float(probabilities[i]), 4)} for i in order]


def score_row(probabilities: dict[str, float], gender_probabilities: dict[str, float] | None) -> dict:
    """`emotion`, `score`, one probability per emotion label, then `gender` and `gender_score` when there are
    gender probabilities (ML models): the scoring columns of every output row."""
    best = max(probabilities, key=probabilities.get)
    row = {"emotion": best, "score": probabilities[best], **probabilities}
    if gender_probabilities is not None:
        gender = max(gender_probabilities, key=gender_probabilities.get)
        row.update(gender=gender, gender_score=gender_probabilities[gender])
    return row


@dataclass
class Prediction:
    """One file's result: emotions (and, for ML-GEmo-CLAP models, genders) with softmax scores, best first.

    `emotions`/`genders` are ranked and rounded for display (cut to `top_k`); `probabilities` and
    `gender_probabilities` hold every label's unrounded probability in label-id order; `duration` is in seconds.
    """

    file: str
    emotions: list[dict] = field(default_factory=list)
    genders: list[dict] | None = None
    probabilities: dict[str, float] = field(default_factory=dict, repr=False)
    gender_probabilities: dict[str, float] | None = field(default=None, repr=False)
    duration: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict:
        """The `--json` form: file, ranked emotions, and for ML models the best gender and the ranked genders."""
        result = {"file": self.file, "emotions": self.emotions}
        if self.genders is not None:
            result["gender"] = self.genders[0]["label"]
            result["genders"] = self.genders
        return result

    def to_row(self) -> dict:
        """The CSV/JSONL row: `file`, then `score_row`'s columns."""
        return {"file": self.file, **score_row(self.probabilities, self.gender_probabilities)}


@dataclass
class Failure:
    """A file that could not be classified, and why (the message names the file and the fix)."""

    file: str
    reason: str


class Predictions(list):
    """The `Prediction`s of `predict_files`, in input order; `failures` lists the files that were skipped."""

    def __init__(self, predictions=(), failures=()):
        super().__init__(predictions)
        self.failures: list[Failure] = list(failures)


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
    speaker: str | None = None  # the diarization's speaker (`turns=`); None without turns

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_row(self) -> dict:
        """file, start, end, segment, segments (speaker with turns), then `score_row`'s emotion, score, probabilities,
        gender."""
        # Times unrounded: the CSV's 6 decimals are sample-exact at 16 kHz.
        place = {"start": self.start, "end": self.end, "segment": self.index + 1, "segments": self.count}
        if self.speaker is not None:
            place["speaker"] = self.speaker
        return {"file": self.file, **place, **score_row(self.probabilities, self.gender_probabilities)}


@dataclass
class SegmentedFile:
    """A file's segments in time order, its duration (s), and its speech regions (s) when a VAD was used."""

    file: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    speech: list[tuple[float, float]] | None = None
    turns: list | None = None  # the speaker turns (`turns.Turn`) the windows were planned in, when given


class SegmentedFiles(list):
    """The `SegmentedFile`s of `predict_segments`, in input order; `failures` lists the files that were skipped."""

    def __init__(self, files=(), failures=()):
        super().__init__(files)
        self.failures: list[Failure] = list(failures)


__all__ = [
    "Failure",
    "Prediction",
    "Predictions",
    "Segment",
    "SegmentedFile",
    "SegmentedFiles",
    "ranked",
    "score_row",
]
