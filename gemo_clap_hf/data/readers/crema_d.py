"""CREMA-D reader: labels from `AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav`, gender from VideoDemographics.csv.

The default label set (`CORPORA["crema_d"]`) is the 4 classes: DIS and FEA are dropped. CREMA-D has no sessions,
so `fold` is "".
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from pathlib import Path

from ..labels import Utterance, format_counts, normalise_gender
from .base import ReadResult, layout_error, require_dir, wav_files

logger = logging.getLogger(__name__)

LAYOUT = """<data_dir>/
  AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav    e.g. 1001_DFA_ANG_XX.wav (EMO in ANG DIS FEA HAP NEU SAD)
  VideoDemographics.csv                             columns ActorID, Age, Sex, Race, Ethnicity"""

CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def read_demographics(path: Path) -> dict[str, str]:
    """ActorID -> "female"/"male" from VideoDemographics.csv."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"ActorID", "Sex"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"crema_d: {path} lacks the columns {sorted(missing)} (it has {reader.fieldnames}); "
                "use the VideoDemographics.csv shipped with CREMA-D."
            )
        genders = {}
        for row in reader:
            gender = normalise_gender(row["Sex"])
            if gender is None:
                raise ValueError(
                    f"crema_d: actor {row['ActorID']} in {path} has Sex={row['Sex']!r}; expected 'Male' or 'Female'."
                )
            genders[row["ActorID"].strip()] = gender
    return genders


def read_crema_d(data_dir: str | os.PathLike) -> ReadResult:
    """Every `AudioWAV` clip whose actor is in the demographics file."""
    root = require_dir(data_dir, "crema_d", LAYOUT)
    audio_dir, demographics = root / "AudioWAV", root / "VideoDemographics.csv"
    if not audio_dir.is_dir():
        raise layout_error(root, "crema_d", LAYOUT, "found no AudioWAV folder")
    if not demographics.is_file():
        raise layout_error(root, "crema_d", LAYOUT, "found no VideoDemographics.csv (needed for speaker gender)")
    genders = read_demographics(demographics)
    utterances, skipped = [], Counter()
    for path in wav_files(audio_dir):
        parts = path.stem.split("_")
        if len(parts) != 4:
            skipped["unrecognised file name"] += 1
            continue
        actor, _, emotion, _ = parts
        if actor not in genders:
            raise ValueError(
                f"crema_d: actor {actor} of {path.name} is not in {demographics}; "
                "use the complete VideoDemographics.csv."
            )
        utterances.append(
            Utterance(
                id=path.stem,
                path=path,
                label=CODES.get(emotion, emotion.lower()),
                code=emotion,
                gender=genders[actor],
                speaker=actor,
            )
        )
    if skipped:
        logger.warning(f"crema_d: skipped {sum(skipped.values())} files ({format_counts(skipped)}).")
    return ReadResult(utterances, source=str(audio_dir))
