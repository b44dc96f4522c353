"""EmoBox files as users' copies really arrive: every bad case is refused by an `EmoBoxError` naming the file (and
the line and field where there is one), never a traceback from deep inside and never a silently wrong row."""

import json
import os
import shutil
from pathlib import Path

import pytest

from gemo_clap_hf.data import load_corpus
from gemo_clap_hf.data.readers.emobox_schema import EmoBoxError, EmoBoxFileNotFoundError
from tests.helpers.emobox_fixtures import LABEL_MAPS, cremad_folds, iemocap_folds, write_emobox

FOLDS = iemocap_folds(per_speaker=1)  # fold 1: train = session 2's 2 lines, test = session 1's 2 lines


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_emobox(tmp_path_factory.mktemp("pristine") / "EmoBox", "iemocap", FOLDS)


@pytest.fixture
def root(pristine, tmp_path):
    return Path(shutil.copytree(pristine, tmp_path / "EmoBox", symlinks=True))


def _fold_file(root: Path, split: str = "test") -> Path:
    return root / "data" / "iemocap" / "fold_1" / f"iemocap_{split}_fold_1.jsonl"


def _set_line(path: Path, number: int, line: dict | str) -> None:
    """Replace line `number` (1-based) of a fold file."""
    lines = path.read_text().splitlines()
    lines[number - 1] = line if isinstance(line, str) else json.dumps(line)
    path.write_text("\n".join(lines) + "\n")


def _line(path: Path, number: int) -> dict:
    return json.loads(path.read_text().splitlines()[number - 1])


def _refused(root: Path, match: str, error=EmoBoxError, **options) -> EmoBoxError:
    with pytest.raises(error, match=match) as caught:
        load_corpus("emobox", root, dataset="iemocap", fold=1, **options)
    assert isinstance(caught.value, ValueError)  # the existing callers catch ValueError / FileNotFoundError
    return caught.value


# ---- 1. paths stay under the root; a symlinked downloads/ keeps working ----


def test_wav_leaving_the_root_is_refused_even_when_the_file_exists(root):
    outside = root.parent / "elsewhere" / "Ses09F_impro01_F000.wav"
    outside.parent.mkdir()
    shutil.copy(next(root.rglob("*.wav")), outside)
    path = _fold_file(root)
    _set_line(path, 2, {**_line(path, 2), "wav": "../elsewhere/Ses09F_impro01_F000.wav"})
    _refused(root, rf"{path}, line 2, field 'wav': '\.\./elsewhere/Ses09F_impro01_F000\.wav' leads to .*outside")


@pytest.mark.parametrize("wav", ["../../etc/passwd", "/etc/passwd", "downloads/../../x.wav", "downloads/.."])
def test_escaping_or_absolute_paths_are_refused_with_file_and_line(root, wav):
    path = _fold_file(root, "train")
    _set_line(path, 1, {**_line(path, 1), "wav": wav})
    _refused(root, rf"{path}, line 1, field 'wav': .*outside the audio root {root}")


def test_audio_root_is_the_containing_folder_when_given(root, tmp_path):
    audio_root = tmp_path / "audio"
    shutil.move(root / "downloads", audio_root / "downloads")
    assert len(load_corpus("emobox", root, dataset="iemocap", fold=1, audio_root=audio_root)) == 4
    path = _fold_file(root)
    _set_line(path, 1, {**_line(path, 1), "wav": "../EmoBox/data/iemocap/label_map.json"})
    _refused(root, rf"{path}, line 1, field 'wav': .*outside the audio root {audio_root}", audio_root=audio_root)


def test_symlinked_downloads_on_another_disk_loads(root, tmp_path):
    """A root whose downloads/ is a symlink (audio on another disk) is the normal set-up: it must keep working."""
    expected = load_corpus("emobox", root, dataset="iemocap", fold=1)
    other_disk = tmp_path / "other_disk" / "emobox_audio"
    other_disk.parent.mkdir()
    shutil.move(root / "downloads", other_disk)
    os.symlink(other_disk, root / "downloads", target_is_directory=True)
    assert (root / "downloads").is_symlink()
    linked_root = tmp_path / "EmoBox-link"  # and the root itself reached through a symlink
    os.symlink(root, linked_root, target_is_directory=True)
    for given in (root, linked_root):
        corpus = load_corpus("emobox", given, dataset="iemocap", fold=1)
        assert corpus["id"] == expected["id"] and corpus["emotion"] == expected["emotion"]
        assert all(Path(audio).is_relative_to(other_disk) for audio in corpus["audio"])


# ---- 3. empty fold file ----


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_fold_file_is_refused_and_named(root, content):
    path = _fold_file(root)
    path.write_text(content)
    _refused(root, rf"fold file {path} is empty")


# ---- 4. label_map.json ----


@pytest.mark.parametrize(
    "content, match",
    [
        ('["neu", "ang"]', r"holds an array, not an object of EmoBox code -> label name"),
        ('{"neu": "Neutral", "ang": "Angry",}', r", line 1, column \d+: not valid JSON"),
        ('{"neu": "Neutral",\n "ang": }', r", line 2, column \d+: not valid JSON"),
        ('{"neu": "Neutral", "ang": null}', r", code 'ang': its label name is null"),
        ('{"neu": "Neutral", "ang": 3}', r", code 'ang': its label name is an integer"),
        ('{"neu": "Neutral", "ang": " "}', r", code 'ang': its label name is a string"),
        ("{}", r"holds nothing"),
        ("", r"not valid JSON"),
    ],
)
def test_bad_label_map_is_refused_naming_the_file(root, content, match):
    path = root / "data" / "iemocap" / "label_map.json"
    path.write_text(content)
    _refused(root, rf"{path}{match}" if match.startswith(",") else rf"{path}.*{match}")


def test_missing_label_map_is_named(root):
    (root / "data" / "iemocap" / "label_map.json").unlink()
    _refused(root, r"label_map\.json does not exist", error=EmoBoxFileNotFoundError)


# ---- 5. bytes that are not UTF-8 ----


@pytest.mark.parametrize("name", ["iemocap_test_fold_1.jsonl", "label_map.json"])
def test_non_utf8_byte_names_file_and_line(root, name):
    path = next((root / "data" / "iemocap").rglob(name))
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:5] + b"\xff" + lines[1][6:]
    path.write_bytes(b"\n".join(lines))
    _refused(root, rf"{path}, line 2: byte 6 \(0xff\) is not UTF-8")


# ---- 6. duplicate keys and audio ----


def test_duplicate_key_across_train_and_test_names_both_files_and_lines(root):
    train, test = _fold_file(root, "train"), _fold_file(root, "test")
    _set_line(test, 2, {**_line(test, 2), "key": _line(train, 1)["key"]})
    _refused(root, rf"{test}, line 2, field 'key': '{_line(train, 1)['key']}' is also on {train}, line 1")


def test_the_same_audio_on_two_lines_names_both(root):
    test = _fold_file(root)
    _set_line(test, 2, {**_line(test, 2), "wav": _line(test, 1)["wav"]})
    _refused(root, rf"{test}, line 2, field 'wav': .* is also on {test}, line 1")


# ---- 7. field types, the dataset field, corpus rules ----


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("key", {"id": 1}, r'\{"id": 1\} is an object, not a string \(the utterance id\)'),
        ("key", 7, r"7 is an integer, not a string"),
        ("wav", ["a.wav"], r'\["a.wav"\] is an array, not a string'),
        ("emo", True, r"true is a boolean, not a string"),
        ("emo", " ", r"empty"),
        ("sample_rate", "16000", r'"16000" is a string, not an integer'),
        ("length", "2.3", r'"2.3" is a string, not a number \(the duration in seconds\)'),
        ("channel", 1.5, r"1.5 is a number, not an integer"),
        ("dataset", 3, r"3 is an integer, not a string"),
    ],
)
def test_field_of_the_wrong_type_is_refused_naming_the_field(root, field, value, match):
    path = _fold_file(root, "train")
    _set_line(path, 2, {**_line(path, 2), field: value})
    _refused(root, rf"{path}, line 2, field '{field}': {match}")


def test_line_of_another_corpus_is_refused(root):
    path = _fold_file(root)
    _set_line(path, 1, {**_line(path, 1), "dataset": "ravdess"})
    _refused(root, rf"{path}, line 1, field 'dataset': 'ravdess', but the corpus read is 'iemocap'")


def test_corpus_rule_failure_names_the_line(root):
    path = _fold_file(root)
    stray = root / "downloads" / "iemocap" / "stray.wav"
    shutil.copy(next(root.rglob("*.wav")), stray)
    _set_line(path, 2, {**_line(path, 2), "wav": "downloads/iemocap/stray.wav"})
    _refused(root, rf"{path}, line 2, field 'wav': iemocap: stray\.wav is not an IEMOCAP utterance file")


def test_line_that_is_not_an_object_names_the_line(root):
    path = _fold_file(root)
    _set_line(path, 2, '["iemocap-x", "downloads/x.wav"]')
    _refused(root, rf"{path}, line 2 is an array, not a JSON object")


def test_schema_fields_are_checked_once_from_one_table():
    """The schema is data: the reader checks the fields of one table, with their JSON types."""
    from gemo_clap_hf.data.readers.emobox_schema import LINE_SCHEMA

    required = [name for name, field in LINE_SCHEMA.items() if field.required]
    assert required == ["key", "wav", "emo"]
    assert LINE_SCHEMA["dataset"].types == (str,) and LINE_SCHEMA["sample_rate"].types == (int,)


# ---- CREMA-D demographics that cannot be read name the file ----


def test_malformed_demographics_names_the_file(tmp_path):
    write_emobox(tmp_path, "cremad", cremad_folds(), label_map=LABEL_MAPS["cremad"])
    demographics = tmp_path / "downloads" / "cremad" / "VideoDemographics.csv"
    demographics.write_bytes(b"ActorID,Sex\n1001,Male\n1002,\xffemale\n")
    with pytest.raises(EmoBoxError, match=rf"cremad demographics {demographics}: .*VideoDemographics\.csv shipped"):
        load_corpus("emobox", tmp_path, dataset="cremad", fold=1)
