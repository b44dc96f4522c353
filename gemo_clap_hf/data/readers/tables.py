"""Read a CSV or JSONL table into row dicts and check its columns: shared by the MSP-Podcast and manifest readers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return [name.strip() for name in reader.fieldnames or []], [
            {(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()} for row in rows
        ]


def _read_jsonl(path: Path, corpus: str) -> tuple[list[str], list[dict]]:
    rows, columns = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{corpus}: line {number} of {path} is not valid JSON ({error}); "
                "a JSONL manifest holds one JSON object per line."
            ) from error
        if not isinstance(row, dict):
            raise ValueError(f"{corpus}: line {number} of {path} is a {type(row).__name__}, not a JSON object.")
        rows.append({key: (value.strip() if isinstance(value, str) else value) for key, value in row.items()})
        columns.update(dict.fromkeys(row))
    return list(columns), rows


def read_table(path: Path, corpus: str, required: Iterable[str]) -> list[dict]:
    """Rows of a `.csv` or `.jsonl`/`.json` file; a clear error lists any missing required columns."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        columns, rows = _read_csv(path)
    elif suffix in (".jsonl", ".json"):
        columns, rows = _read_jsonl(path, corpus)
    else:
        raise ValueError(f"{corpus}: {path} is neither .csv nor .jsonl; write the table in one of those formats.")
    required = list(required)
    missing = [name for name in required if name not in columns]
    if missing:
        raise ValueError(
            f"{corpus}: {path} lacks the required columns {missing}; required columns: {required} (found: {columns})."
        )
    return rows
