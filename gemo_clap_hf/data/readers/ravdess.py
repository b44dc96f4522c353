"""RAVDESS (speech) reader: every fact is in the file name `MM-VV-EE-II-SS-RR-AA.wav`.

The default label set (`CORPORA["ravdess"]`) is the 4 classes with "calm" merged into "neutral", which gives
neutral 288 clips against 192 for each other class on the full release; `calm="drop"` (or a `label_map` that maps
"calm" to None) drops calm instead, leaving 96 neutral clips.
RAVDESS has no sessions, so `fold` is "" (use `assign_speaker_folds` for speaker-grouped folds).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path

from ..labels import Utterance, format_counts
from .base import ReadResult, layout_error, require_dir, wav_files

logger = logging.getLogger(__name__)

LAYOUT = """<data_dir>/                      (e.g. Audio_Speech_Actors_01-24/, or its parent)
  Actor_01/ ... Actor_24/
    MM-VV-EE-II-SS-RR-AA.wav        e.g. 03-01-05-01-02-01-12.wav (EE emotion, AA actor: odd male, even female)"""

CODES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_SPEECH = "01"  # vocal channel: 01 speech, 02 song


def _actor_dirs(data_dir: Path) -> list[Path]:
    for pattern in ("Actor_*", "*/Actor_*"):
        found = sorted(p for p in data_dir.glob(pattern) if p.is_dir())
        if found:
            return found
    raise layout_error(data_dir, "ravdess", LAYOUT, "found no Actor_NN folders")


def parse_file_name(path: Path) -> tuple[Utterance | None, str]:
    """The utterance named by `path`, or None and why it was skipped (also used for EmoBox's RAVDESS lines)."""
    match = _NAME.match(path.stem)
    if not match:
        return None, "unrecognised file name"
    _, channel, emotion, _, _, _, actor = match.groups()
    if channel != _SPEECH:
        return None, "song (vocal channel 02)"
    gender = "male" if int(actor) % 2 == 1 else "female"
    return Utterance(
        id=path.stem,
        path=path,
        label=CODES.get(emotion, emotion),
        code=emotion,
        gender=gender,
        speaker=f"Actor_{actor}",
    ), ""


def read_ravdess(data_dir: str | os.PathLike, calm: str = "neutral") -> ReadResult:
    """Speech utterances of every actor folder; `calm` is "neutral" (merged, the default) or "drop"."""
    if calm not in ("neutral", "drop"):
        raise ValueError(f"ravdess: calm={calm!r} is not supported; use calm='neutral' (merge) or calm='drop'.")
    root = require_dir(data_dir, "ravdess", LAYOUT)
    utterances, skipped = [], Counter()
    for actor_dir in _actor_dirs(root):
        for path in wav_files(actor_dir):
            utterance, why = parse_file_name(path)
            if utterance is None:
                skipped[why] += 1
            else:
                utterances.append(utterance)
    if skipped:
        logger.warning(f"ravdess: skipped {sum(skipped.values())} files ({format_counts(skipped)}).")
    return ReadResult(utterances, source=str(root), label_map_changes={"calm": None} if calm == "drop" else {})
