"""MSP-Podcast reader: `Labels/labels_consensus.csv` (consensus categorical labels) with `Audios/<FileName>`.

The default label set (`CORPORA["msp_podcast"]`) is the 4 classes. The fold is the release's `Split_Set` (e.g.
"Train", "Development", "Test1"). Rows whose speaker gender is "Unknown" are dropped with a count; a `SpkrID` of
"Unknown" becomes speaker "" (unknown), not one speaker shared by every such row, so the speaker-leakage check skips
those rows (with a warning) instead of reporting false leakage.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..labels import Utterance, normalise_gender, normalise_speaker
from .base import ReadResult, layout_error, require_dir
from .tables import read_table

logger = logging.getLogger(__name__)

LAYOUT = """<data_dir>/
  Audios/<FileName>                  e.g. MSP-PODCAST_0001_0008.wav
  Labels/labels_consensus.csv        columns FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set"""

CODES = {
    "A": "angry",
    "S": "sad",
    "H": "happy",
    "U": "surprise",
    "F": "fear",
    "D": "disgust",
    "C": "contempt",
    "N": "neutral",
    "O": "other",
    "X": "no_agreement",
}
REQUIRED_COLUMNS = ("FileName", "EmoClass", "SpkrID", "Gender", "Split_Set")


def read_msp_podcast(data_dir: str | os.PathLike) -> ReadResult:
    """Every row of the consensus table; files are looked up in `Audios/`."""
    root = require_dir(data_dir, "msp_podcast", LAYOUT)
    table = root / "Labels" / "labels_consensus.csv"
    if not table.is_file():
        raise layout_error(root, "msp_podcast", LAYOUT, "found no Labels/labels_consensus.csv")
    audio_dir = root / "Audios"
    utterances = []
    for row in read_table(table, "msp_podcast", REQUIRED_COLUMNS):
        code = row["EmoClass"].upper()
        utterances.append(
            Utterance(
                id=Path(row["FileName"]).stem,
                path=audio_dir / row["FileName"],
                label=CODES.get(code, code.lower()),
                code=code,
                gender=normalise_gender(row["Gender"]),
                speaker=normalise_speaker(row["SpkrID"]),
                fold=row["Split_Set"],
            )
        )
    return ReadResult(utterances, source=str(table))
