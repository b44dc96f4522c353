"""The EmoBox rules in one place: what its files hold, checked once, and where a line's audio may be.

- `read_label_map`: label_map.json is a JSON object of EmoBox code -> label name (a non-empty string each).
- `fold_lines`: a fold file's lines as UTF-8 text, numbered as an editor numbers them (split on "\\n" only, so a
  U+2028 inside a JSON string stays in its line); an empty file is refused.
- `parse_line`: one line against `LINE_SCHEMA`, the fields the reader uses or checks and their JSON types. Fields
  outside the schema are ignored; a schema field that is present must have its type (a `null` optional field counts
  as absent), so `"key": {"id": 1}` is refused rather than read as the id "{'id': 1}".
- `audio_path`: the line's `wav`, joined to the audio root and normalised, must stay under that root. The root is
  resolved first and the comparison is on the normalised path, not the resolved one: a `downloads/` that is a
  symlink to another disk is normal and keeps working, while `../elsewhere/x.wav` or `/etc/passwd` is refused.

Every refusal is an `EmoBoxError` (a `ValueError`; `EmoBoxFileNotFoundError` is also a `FileNotFoundError`) whose
message names the file, the line and the field, and says how to fix it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import GEmoClapError


class EmoBoxError(GEmoClapError, ValueError):
    """An EmoBox file the package cannot read as EmoBox defines it; the message names file, line, field and fix."""


class EmoBoxFileNotFoundError(FileNotFoundError, EmoBoxError):
    """A file the EmoBox layout needs (fold file, label_map.json, audio) is not there."""


_NUMBER = (int, float)


@dataclass(frozen=True)
class Field:
    """One field of a fold-file line: its JSON types, whether every line needs it, and what it holds."""

    types: tuple[type, ...]
    required: bool
    holds: str


LINE_SCHEMA: dict[str, Field] = {
    "key": Field((str,), True, "the utterance id"),
    "wav": Field((str,), True, "the audio path, relative to the EmoBox root"),
    "emo": Field((str,), True, "a code of label_map.json"),
    "dataset": Field((str,), False, "the EmoBox corpus name"),
    "type": Field((str,), False, "the audio type"),
    "task": Field((str,), False, "the task"),
    "sample_rate": Field((int,), False, "the sampling rate in Hz"),
    "num_frame": Field(_NUMBER, False, "the number of samples"),
    "length": Field(_NUMBER, False, "the duration in seconds"),
    "channel": Field((int,), False, "the channel count"),
    "start_time": Field(_NUMBER, False, "a segment start (segments are not supported)"),
    "end_time": Field(_NUMBER, False, "a segment end (segments are not supported)"),
    "gender": Field((str,), False, "the speaker gender"),
    "Gender": Field((str,), False, "the speaker gender"),
}
_JSON_TYPE = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "an array"}
_RESTORE = "restore the file from EmoBox's repository (data/<corpus>/)"


@dataclass(frozen=True)
class EmoBoxLine:
    """A fold-file line that passed the schema: where it is and what it says."""

    file: Path
    number: int
    key: str
    wav: str
    code: str
    gender: str | None  # as written on the line (rarely present); None when absent

    @property
    def where(self) -> str:
        return f"{self.file}, line {self.number}"


def line_error(file: Path, number: int, field: str, problem: str, fix: str) -> EmoBoxError:
    return EmoBoxError(f"emobox: {file}, line {number}, field {field!r}: {problem}; {fix}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return _JSON_TYPE.get(type(value), type(value).__name__)


def _has_type(value: object, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _decode(data: bytes, path: Path, number: int) -> str:
    try:
        return data.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise EmoBoxError(
            f"emobox: {path}, line {number}: byte {error.start + 1} (0x{data[error.start]:02x}) is not UTF-8 "
            f"text ({error.reason}); EmoBox's files are UTF-8: {_RESTORE}, or re-save the line as UTF-8."
        ) from None


def read_label_map(path: Path) -> dict[str, str]:
    """label_map.json as EmoBox code -> package label name (lower-cased), or an error naming the file."""
    if not path.is_file():
        raise EmoBoxFileNotFoundError(
            f"emobox: {path} does not exist; every EmoBox corpus folder has a label_map.json."
        )
    try:
        mapping = json.loads("\n".join(_decoded_lines(path)))
    except ValueError as error:  # JSONDecodeError, or an integer too long to convert
        where = f", line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise EmoBoxError(
            f"emobox: {path}{where}: not valid JSON ({getattr(error, 'msg', error)}); label_map.json "
            f'is one JSON object of EmoBox code -> label name, e.g. {{"neu": "Neutral"}}: {_RESTORE}.'
        ) from None
    if not isinstance(mapping, dict) or not mapping:
        raise EmoBoxError(
            f"emobox: {path} holds {_json_type(mapping) if mapping else 'nothing'}, not an object of EmoBox code -> "
            f'label name such as {{"neu": "Neutral", "ang": "Angry"}}; {_RESTORE}.'
        )
    for code, name in mapping.items():
        if not isinstance(name, str) or not name.strip():
            raise EmoBoxError(
                f"emobox: {path}, code {code!r}: its label name is {_json_type(name)}"
                + ("" if name is None else f" {json.dumps(name)}")
                + ", not a "
                'non-empty string; give every code its emotion name, e.g. "Neutral" (to leave a class out, name '
                "it and map that name to null with label_map= / --label_map)."
            )
    return {code: name.strip().lower() for code, name in mapping.items()}


def _decoded_lines(path: Path) -> list[str]:
    """Every line of `path` as text (blank ones included, so numbers are the editor's), split on "\\n" only."""
    try:
        raw = path.read_bytes().split(b"\n")
    except OSError as error:  # a folder in its place, no permission, an I/O error
        raise EmoBoxError(f"emobox: {path} cannot be read ({error.strerror or error}); {_RESTORE}.") from None
    return [_decode(data.removesuffix(b"\r"), path, number) for number, data in enumerate(raw, start=1)]


def fold_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a fold file with their line numbers; an empty fold file is refused, named."""
    lines = [(number, text) for number, text in enumerate(_decoded_lines(path), start=1) if text.strip()]
    if not lines:
        raise EmoBoxError(
            f"emobox: fold file {path} is empty (no lines); a fold file holds one JSON line per utterance: {_RESTORE}."
        )
    return lines


def _check_fields(row: dict, path: Path, number: int) -> None:
    for name, field in LINE_SCHEMA.items():
        value = row.get(name)
        if value is None:
            if field.required:
                raise line_error(path, number, name, "missing", f"every EmoBox line needs {list(_required())}.")
            continue
        if not _has_type(value, field.types):
            expected = "a number" if float in field.types else _JSON_TYPE[field.types[0]]
            raise line_error(
                path,
                number,
                name,
                f"{json.dumps(value)[:80]} is {_json_type(value)}, not {expected} ({field.holds})",
                f"write {name!r} as {expected}, as EmoBox's files do ({_RESTORE}).",
            )
        if field.required and not value.strip():
            raise line_error(path, number, name, "empty", f"give {field.holds}.")


def _required() -> tuple[str, ...]:
    return tuple(name for name, field in LINE_SCHEMA.items() if field.required)


def parse_line(
    path: Path, number: int, text: str, dataset: str, label_map: dict[str, str], map_path: Path
) -> EmoBoxLine:
    """One fold-file line, validated against `LINE_SCHEMA`, the requested corpus and the label map."""
    try:
        row = json.loads(text)
    except ValueError as error:  # JSONDecodeError, or an integer too long to convert
        raise EmoBoxError(
            f"emobox: {path}, line {number} is not valid JSON ({error}); each line of a fold file is one JSON "
            f"object: {_RESTORE}."
        ) from None
    if not isinstance(row, dict):
        raise EmoBoxError(
            f"emobox: {path}, line {number} is {_json_type(row)}, not a JSON object; each line of a fold file is "
            f"one object with {list(_required())}: {_RESTORE}."
        )
    _check_fields(row, path, number)
    if row.get("dataset") is not None and row["dataset"] != dataset:
        raise line_error(
            path,
            number,
            "dataset",
            f"{row['dataset']!r}, but the corpus read is {dataset!r}",
            f"the line belongs to another EmoBox corpus: fix the line, or read that corpus (dataset=/--emobox_dataset "
            f"{row['dataset']!r}).",
        )
    if row["emo"] not in label_map:
        raise line_error(
            path, number, "emo", f"{row['emo']!r} is not in {map_path}", f"its codes are {sorted(label_map)}."
        )
    if row.get("start_time") is not None or row.get("end_time") is not None:
        raise line_error(
            path,
            number,
            "start_time",
            "the line is a segment of a longer recording",
            "segments are not supported: cut them into files and write a manifest.",
        )
    written = row.get("gender", row.get("Gender"))
    return EmoBoxLine(path, number, row["key"], row["wav"], row["emo"], written)


def audio_path(line: EmoBoxLine, audio_root: Path) -> Path:
    """`audio_root / wav`, normalised; refused when it leaves `audio_root` (which must be resolved already)."""
    joined = Path(os.path.normpath(audio_root / line.wav))
    if audio_root not in joined.parents:
        raise line_error(
            line.file,
            line.number,
            "wav",
            f"{line.wav!r} leads to {joined}, outside the audio root {audio_root}",
            "EmoBox's paths are relative to the EmoBox root (downloads/<corpus>/...): fix the line, or put the audio "
            "under the root (a downloads/ symlink to another disk is fine) or pass audio_root= (--emobox_audio_root).",
        )
    return joined


__all__ = [
    "LINE_SCHEMA",
    "EmoBoxError",
    "EmoBoxFileNotFoundError",
    "EmoBoxLine",
    "audio_path",
    "fold_lines",
    "line_error",
    "parse_line",
    "read_label_map",
]
