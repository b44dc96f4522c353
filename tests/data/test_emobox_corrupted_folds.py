"""Property: a randomly corrupted EmoBox fold file is either read with the right rows or refused by name.

Corruptions as files really get damaged or hand-edited: byte flips, truncations, two fields' values swapped, a
field's value replaced by one of another JSON type, Windows line endings or a blank line; one to three of them on
the train or the test file. For each, the expected outcome is worked out here from EmoBox's format (each line one
JSON object whose fields have the types EmoBox writes, an `emo` code of label_map.json, a `wav` naming an existing
file under the root, keys and files once), independently of the reader: a valid file must give exactly its rows,
anything else must be refused with an `EmoBoxError` that names the corrupted file. Any other exception
(UnicodeDecodeError, TypeError, ...) fails the test.
"""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemo_clap_hf.data.readers.emobox import read_emobox
from gemo_clap_hf.data.readers.emobox_schema import EmoBoxError
from tests.helpers.emobox_fixtures import LABEL_MAPS, iemocap_folds, write_emobox

DATASET = "iemocap"
SPLITS = ("train", "test")
# EmoBox's line format: field -> the JSON types its files use (numbers may be written as integers or decimals).
STRING, INTEGER, NUMBER = (str,), (int,), (int, float)
EMOBOX_FIELDS = {
    "key": STRING,
    "dataset": STRING,
    "wav": STRING,
    "type": STRING,
    "sample_rate": INTEGER,
    "num_frame": NUMBER,
    "task": STRING,
    "length": NUMBER,
    "emo": STRING,
    "channel": INTEGER,
}
NEEDED = ("key", "wav", "emo")
OTHER_TYPES = [None, 0, -3, 2.5, 1e300, True, False, "", "x", "neu", [], ["neu"], {}, {"id": 1}]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = write_emobox(tmp_path_factory.mktemp("corrupted") / "EmoBox", DATASET, iemocap_folds(per_speaker=2))
    files = {split: root / "data" / DATASET / "fold_1" / f"{DATASET}_{split}_fold_1.jsonl" for split in SPLITS}
    return root, files


def _is(value, types) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _expected_line(text: str, root: Path):
    """(key, wav path, label) of a line EmoBox's format allows, else None."""
    try:
        row = json.loads(text)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    for field, types in EMOBOX_FIELDS.items():
        value = row.get(field)
        if value is None:
            if field in NEEDED:
                return None
        elif not _is(value, types) or (field in NEEDED and not value.strip()):
            return None
    if row.get("dataset") not in (None, DATASET) or row["emo"] not in LABEL_MAPS[DATASET]:
        return None
    audio = Path(os.path.normpath(root / row["wav"]))
    if root not in audio.parents or not audio.is_file():
        return None
    return row["key"], audio, LABEL_MAPS[DATASET][row["emo"]].lower()


def expected_rows(contents: dict[str, bytes], root: Path) -> list | None:
    """The rows (key, audio, label, split) the fold's files define, or None when EmoBox's format refuses them."""
    rows = []
    for split in SPLITS:
        try:
            text = contents[split].decode("utf-8")
        except UnicodeDecodeError:
            return None
        lines = [line.removesuffix("\r") for line in text.split("\n") if line.strip()]
        if not lines:
            return None
        for line in lines:
            parsed = _expected_line(line, root)
            if parsed is None:
                return None
            rows.append((*parsed, split))
    keys, audio = [row[0] for row in rows], [row[1] for row in rows]
    if len(set(keys)) != len(keys) or len(set(audio)) != len(audio):
        return None
    return rows


# ---- the corruptions: each a function of the file's bytes ----


def _lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _dump(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(row) for row in rows) + "\n").encode()


@st.composite
def byte_flip(draw, data: bytes) -> bytes:
    position = draw(st.integers(0, len(data) - 1))
    return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]


@st.composite
def truncation(draw, data: bytes) -> bytes:
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def field_swap(draw, data: bytes) -> bytes:
    rows = _lines(data)
    row = rows[draw(st.integers(0, len(rows) - 1))]
    first, second = draw(st.lists(st.sampled_from(sorted(row)), min_size=2, max_size=2, unique=True))
    row[first], row[second] = row[second], row[first]
    return _dump(rows)


@st.composite
def type_change(draw, data: bytes) -> bytes:
    rows = _lines(data)
    row = rows[draw(st.integers(0, len(rows) - 1))]
    row[draw(st.sampled_from(sorted(row)))] = draw(st.sampled_from(OTHER_TYPES))
    return _dump(rows)


@st.composite
def line_endings(draw, data: bytes) -> bytes:
    """Windows line endings, or a blank line added: harmless edits the reader must read through."""
    if draw(st.booleans()):
        return data.replace(b"\n", b"\r\n")
    ends = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    position = draw(st.sampled_from([0, *ends]))
    return data[:position] + b"\n" + data[position:]


CORRUPTIONS = (byte_flip, truncation, field_swap, type_change, line_endings)


@st.composite
def corrupted(draw, originals: dict[str, bytes]) -> tuple[str, dict[str, bytes], list[str]]:
    split = draw(st.sampled_from(SPLITS))
    data, applied = originals[split], []
    for corruption in draw(st.lists(st.sampled_from(CORRUPTIONS), min_size=1, max_size=3)):
        try:
            _lines(data)
        except ValueError:  # no longer JSON lines: only byte-level damage applies
            corruption = draw(st.sampled_from((byte_flip, truncation, line_endings)))
        if len(data) == 0:
            break
        data = draw(corruption(data))
        applied.append(corruption.__name__)
    return split, {**originals, split: data}, applied


def test_corrupted_fold_files_are_read_exactly_or_refused_by_name(tree):
    root, files = tree
    originals = {split: path.read_bytes() for split, path in files.items()}
    assert expected_rows(originals, root) is not None  # the pristine fold is valid: the oracle accepts it
    outcomes = {"read": 0, "refused": 0}

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(data):
        split, contents, applied = data.draw(corrupted(originals))
        for name, path in files.items():
            path.write_bytes(contents[name])
        try:
            expected = expected_rows(contents, root)
            try:
                result = read_emobox(root, dataset=DATASET, fold=1)
            except EmoBoxError as error:
                assert expected is None, f"{applied}: refused a valid fold ({error})"
                assert files[split].name in str(error), f"{applied}: the message does not name the file: {error}"
                outcomes["refused"] += 1
                return
            rows = [(u.id, u.path, u.label, u.fold) for u in result.utterances]
            assert expected is not None, f"{applied}: read a fold EmoBox's format refuses, as {rows}"
            assert rows == expected, applied
            outcomes["read"] += 1
        finally:
            for name, path in files.items():
                path.write_bytes(originals[name])

    check()
    # Both outcomes occur many times: the property is not passed by refusing (or accepting) everything.
    assert outcomes["read"] >= 20 and outcomes["refused"] >= 100, outcomes
