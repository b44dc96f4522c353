"""Speaker turns from a diarization, for "who felt what, when": `predict --segments --turns FILE` and
`predict_segments(..., turns=...)`.

A diarization is read from an RTTM file (the format pyannote and other diarizers write: `SPEAKER <file> <channel>
<onset> <duration> <NA> <NA> <speaker> <NA> <NA>`; other line types are skipped), a CSV or JSONL file with
`start, end, speaker` (seconds), a `pyannote.core.Annotation` (anything with `itertracks(yield_label=True)`; pyannote
is not a dependency) or a list of `(start, end, speaker)`. Turns must not overlap (pyannote 3.3+ writes an
exclusive diarization, `exclusive_speaker_diarization`, for exactly this use) and must lie inside the audio; a bad
turn is a `PredictionError` that names the file, the line and the field.

Windows are planned inside each turn (`turn_windows`: a turn is a region, as a VAD region is), so no window mixes
two speakers; every segment gets its turn's `speaker`. `speaker_summary` gives each speaker's share of each emotion
over their speech (the timeline's tiles: each instant counts for the window nearest it), their dominant emotion and,
for ML-GEmo-CLAP models, their gender.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PredictionError
from .predictions import Segment
from .segments import plan_windows

# A turn may end this far past the audio (diarizers round times, or pad the last frame): it is cut at the end.
END_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class Turn:
    """One speaker turn: [start, end) in seconds; `where` names its source line for error messages."""

    start: float
    end: float
    speaker: str
    where: str = field(default="", compare=False)


def _number(text, where: str, field_name: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise PredictionError(f"{where}, field {field_name}: {text!r} is not a number of seconds.") from None
    if not math.isfinite(value):
        raise PredictionError(f"{where}, field {field_name}: {text!r} is not a finite number of seconds.")
    return value


def _turn(start, end, speaker, where: str, end_field: str = "end") -> Turn:
    start = _number(start, where, "start")
    end = _number(end, where, end_field)
    if start < 0:
        raise PredictionError(f"{where}, field start: negative time {start}; times are seconds from the audio's start.")
    if end <= start:
        raise PredictionError(f"{where}, field {end_field}: the turn ends ({end}) at or before it starts ({start}).")
    if speaker is None or str(speaker).strip() == "":
        raise PredictionError(f"{where}, field speaker: empty; every turn needs a speaker label.")
    return Turn(start, end, str(speaker).strip(), where)


def _read_rttm(path: Path, recording: str | None) -> list[Turn]:
    by_file: dict[str, list[Turn]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] != "SPEAKER":
            continue
        where = f"{path}, line {number}"
        if len(fields) < 8:
            raise PredictionError(
                f"{where}: an RTTM SPEAKER line has 10 fields (SPEAKER file channel onset duration <NA> <NA> speaker "
                f"<NA> <NA>), this one has {len(fields)}: {line.strip()!r}."
            )
        start = _number(fields[3], where, "4 (onset)")
        duration = _number(fields[4], where, "5 (duration)")
        if duration <= 0:
            raise PredictionError(f"{where}, field 5 (duration): {fields[4]!r} is not a positive duration.")
        turn = _turn(start, start + duration, fields[7], where, "5 (duration)")
        by_file.setdefault(fields[1], []).append(turn)
    if len(by_file) > 1:
        if recording in by_file:
            return by_file[recording]
        raise PredictionError(
            f"{path} holds the turns of {len(by_file)} recordings ({', '.join(sorted(by_file))}) and none is named "
            f"{recording!r} (the audio file's name without extension); give one recording's turns."
        )
    return next(iter(by_file.values()), [])


def _read_table(path: Path) -> list[Turn]:
    turns = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"start", "end", "speaker"} - set(reader.fieldnames or [])
            if missing:
                raise PredictionError(
                    f"{path}, line 1: the header lacks {', '.join(sorted(missing))}; a turns CSV has the columns "
                    "start, end, speaker (seconds)."
                )
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                turns.append(_turn(row["start"], row["end"], row["speaker"], where))
        return turns
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise PredictionError(f"{where}: not a JSON object ({error.msg}).") from None
        if not isinstance(row, dict):
            raise PredictionError(f"{where}: not a JSON object with start, end, speaker.")
        missing = [name for name in ("start", "end", "speaker") if name not in row]
        if missing:
            raise PredictionError(f"{where}, field {missing[0]}: missing; each line needs start, end, speaker.")
        turns.append(_turn(row["start"], row["end"], row["speaker"], where))
    return turns


def read_turns(source, recording: str | None = None) -> list[Turn]:
    """The turns of `source` (a file path, an Annotation-like object or a list of turns), sorted and checked for
    overlaps; `recording` picks one recording's turns from an RTTM that holds several."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise PredictionError(f"--turns {str(path)!r} does not exist; pass an RTTM, CSV or JSONL file of turns.")
        suffix = path.suffix.lower()
        if suffix == ".rttm":
            turns = _read_rttm(path, recording)
        elif suffix in (".csv", ".jsonl", ".json"):
            turns = _read_table(path)
        else:
            raise PredictionError(
                f"--turns {str(path)!r}: name an .rttm file, or a .csv / .jsonl file with start, end, speaker."
            )
        name = str(path)
    elif hasattr(source, "itertracks"):  # pyannote.core.Annotation, duck-typed
        turns = [
            _turn(segment.start, segment.end, label, f"annotation track {number} ({label})")
            for number, (segment, _, label) in enumerate(source.itertracks(yield_label=True), 1)
        ]
        name = "the annotation"
    else:
        turns = []
        for number, item in enumerate(source, 1):
            if isinstance(item, Turn):  # already read (and named after its line)
                turns.append(item)
                continue
            if isinstance(item, Mapping):
                item = (item.get("start"), item.get("end"), item.get("speaker"))
            turns.append(_turn(*item, where=f"turn {number}"))
        name = "the turns"
    if not turns:
        raise PredictionError(f"{name} holds no speaker turns; check the file (RTTM lines start with SPEAKER).")
    turns.sort(key=lambda turn: (turn.start, turn.end))
    for before, after in zip(turns, turns[1:]):
        if after.start < before.end - 1e-9:
            raise PredictionError(
                f"{after.where}, field start: the turn of {after.speaker} at {after.start} s overlaps the turn of "
                f"{before.speaker} ending at {before.end} s ({before.where}); turns must not overlap (pyannote: use "
                "the exclusive diarization)."
            )
    return turns


def fit_turns(turns: Sequence[Turn], duration: float, name: str) -> list[Turn]:
    """`turns` checked against an audio file of `duration` s: a turn past the end is an error (beyond a small
    tolerance, where it is cut at the end)."""
    fitted = []
    for turn in turns:
        if turn.start >= duration or turn.end > duration + END_TOLERANCE_S:
            raise PredictionError(
                f"{turn.where}, field end: the turn of {turn.speaker} ({turn.start}-{turn.end} s) runs past the end "
                f"of {name} ({duration:.3f} s); are these the turns of this recording?"
            )
        fitted.append(Turn(turn.start, min(turn.end, duration), turn.speaker, turn.where))
    return fitted


def turn_windows(
    turns: Sequence[Turn], regions: Sequence[tuple[int, int]], rate: int, window: int, hop: int, min_length: int = 0
) -> tuple[list[tuple[int, int]], list[str]]:
    """Windows planned inside each turn (intersected with the speech `regions`, in samples) and their speakers;
    pieces shorter than `min_length` samples get none (as in `plan_windows`)."""
    windows, speakers = [], []
    for turn in turns:
        first, last = int(round(turn.start * rate)), int(round(turn.end * rate))
        pieces = [(max(first, a), min(last, b)) for a, b in regions if min(last, b) > max(first, a)]
        planned = plan_windows(pieces, window, hop, min_length)
        windows += planned
        speakers += [turn.speaker] * len(planned)
    return windows, speakers


@dataclass
class SpeakerSummary:
    """One speaker's emotions over their speech: `shares` of time per label (summing to 1), the dominant `emotion`,
    and for ML models the time-weighted `gender_probabilities` and `gender`."""

    speaker: str
    speech_s: float
    shares: dict[str, float]
    emotion: str
    gender: str | None = None
    gender_probabilities: dict[str, float] | None = None

    def to_row(self) -> dict:
        row = {"speaker": self.speaker, "speech_s": round(self.speech_s, 3), "emotion": self.emotion}
        row.update({label: round(share, 4) for label, share in self.shares.items()})
        if self.gender is not None:
            row["gender"] = self.gender
        return row


def speaker_summary(segments: Iterable[Segment]) -> list[SpeakerSummary]:
    """Per speaker (in order of first appearance), the share of each emotion over their speech time: each instant
    counts for the speaker's window nearest it (the timeline's tiles)."""
    from .timeline_plot import segment_tiles

    lanes: dict[str, list[Segment]] = {}
    for segment in segments:
        lanes.setdefault(segment.speaker or "", []).append(segment)
    summaries = []
    for speaker, lane in lanes.items():
        lane.sort(key=lambda s: s.start)
        spans = [end - start for start, end in segment_tiles(lane)]
        total = sum(spans) or 1.0
        shares = dict.fromkeys(lane[0].probabilities, 0.0)
        for span, segment in zip(spans, lane):
            shares[segment.emotion] += span / total
        summary = SpeakerSummary(speaker, sum(spans), shares, max(shares, key=shares.get))
        if lane[0].gender_probabilities is not None:
            genders = {
                label: sum(span * s.gender_probabilities[label] for span, s in zip(spans, lane)) / total
                for label in lane[0].gender_probabilities
            }
            summary.gender_probabilities, summary.gender = genders, max(genders, key=genders.get)
        summaries.append(summary)
    return summaries


def format_speaker_summary(file: str, summaries: Sequence[SpeakerSummary]) -> str:
    """Readable lines: per speaker, speech time, dominant emotion, the shares, and the gender for ML models."""
    lines = [f"speakers of {file}:"]
    for summary in summaries:
        shares = ", ".join(f"{label} {100 * share:.0f} %" for label, share in summary.shares.items())
        gender = f"  gender {summary.gender}" if summary.gender is not None else ""
        lines.append(f"  {summary.speaker}: {summary.speech_s:.1f} s, mostly {summary.emotion} ({shares}){gender}")
    return "\n".join(lines)


def turns_for(turns, paths: Sequence[str]) -> dict[str, list[Turn]] | None:
    """`turns=` of the engine as {path: checked turns}: one diarization for one file, or a mapping path -> source."""
    if turns is None:
        return None
    if isinstance(turns, Mapping):
        return {str(path): read_turns(source, Path(str(path)).stem) for path, source in turns.items()}
    if len(paths) != 1:
        raise PredictionError(
            f"turns= (--turns) describes one recording; {len(paths)} files were given: pass one file, or a mapping "
            "{path: turns} in Python."
        )
    return {str(paths[0]): read_turns(turns, Path(str(paths[0])).stem)}


__all__ = [
    "END_TOLERANCE_S",
    "SpeakerSummary",
    "Turn",
    "fit_turns",
    "format_speaker_summary",
    "read_turns",
    "speaker_summary",
    "turn_windows",
    "turns_for",
]
