"""Manifest reader: the way in for any other corpus, one CSV or JSONL row per utterance.

Labels are kept as written (lower-cased) unless a `label_map` or `labels=` says otherwise. The fold is the row's
`fold` (or `split`) value, "" when the manifest has neither.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..labels import Utterance, normalise_gender, normalise_speaker
from .base import ReadResult
from .tables import read_table

logger = logging.getLogger(__name__)

LAYOUT = """a .csv or .jsonl file (or a folder holding one manifest.csv / manifest.jsonl) with columns
  path      audio file, relative to the manifest's folder or absolute
  emotion   label string
  gender    female / male (or f / m)
  speaker   optional ("" or "unknown" when not known); fold or split   optional; id   optional (defaults to path)"""

REQUIRED_COLUMNS = ("path", "emotion", "gender")
_SHOWN = 5


def _find_manifest(data_dir: str | os.PathLike) -> Path:
    path = Path(data_dir).expanduser().resolve()
    if path.is_dir():
        found = [path / name for name in ("manifest.csv", "manifest.jsonl") if (path / name).is_file()]
        if len(found) != 1:
            raise FileNotFoundError(
                f"manifest: {str(path)!r} is a folder holding {len(found)} of manifest.csv / "
                f"manifest.jsonl; pass the manifest file itself. Expected:\n{LAYOUT}"
            )
        return found[0]
    if not path.is_file():
        raise FileNotFoundError(f"manifest: {str(path)!r} does not exist; expected:\n{LAYOUT}")
    return path


def _check_genders(rows: list[dict], manifest: Path) -> None:
    bad = [
        (number, row["gender"]) for number, row in enumerate(rows, start=1) if normalise_gender(row["gender"]) is None
    ]
    if bad:
        shown = ", ".join(f"row {number}: {value!r}" for number, value in bad[:_SHOWN])
        raise ValueError(
            f"manifest: {len(bad)} rows of {manifest} have an unknown gender ({shown}); "
            "use 'female' or 'male' (or 'f' / 'm')."
        )


def _check_emotions(rows: list[dict], manifest: Path) -> None:
    empty = [number for number, row in enumerate(rows, start=1) if not str(row["emotion"] or "").strip()]
    if empty:
        raise ValueError(
            f"manifest: {len(empty)} rows of {manifest} have an empty emotion (rows "
            f"{empty[:_SHOWN]}); fill in the label or remove the rows."
        )


def _fold(row: dict) -> str:
    value = row.get("fold")
    if value is None or value == "":
        value = row.get("split")
    return "" if value is None else str(value)


def read_manifest(data_dir: str | os.PathLike) -> ReadResult:
    """Every row of the manifest; relative paths are resolved against the manifest's folder."""
    manifest = _find_manifest(data_dir)
    rows = read_table(manifest, "manifest", REQUIRED_COLUMNS)
    _check_genders(rows, manifest)
    _check_emotions(rows, manifest)
    utterances = []
    for row in rows:
        written = str(row["path"])
        path = Path(written).expanduser()
        path = path if path.is_absolute() else manifest.parent / path
        emotion = str(row["emotion"]).strip().lower()
        utterances.append(
            Utterance(
                id=str(row.get("id") or written),
                path=path,
                label=emotion,
                code=emotion,
                gender=normalise_gender(row["gender"]),
                speaker=normalise_speaker(row.get("speaker")),
                fold=_fold(row),
            )
        )
    return ReadResult(utterances, source=str(manifest))
