"""`load_corpus("emobox", ...)`: EmoBox's own fold files give the rows, labels, folds, genders and speakers."""

import json
from collections import Counter
from pathlib import Path

import pytest

from gemo_clap_hf.data import load_corpus
from tests.helpers.emobox_fixtures import (
    LABEL_MAPS,
    cremad_folds,
    iemocap_folds,
    ravdess_folds,
    write_crema_d_demographics,
    write_emobox,
)


def _expected(folds: dict, fold: int, dataset: str) -> dict[str, tuple[str, str]]:
    """key -> (split, label) as the fixture's fold files define them, label through the published label map."""
    return {
        key: (split, LABEL_MAPS[dataset][emo].lower())
        for split, entries in folds[fold].items()
        for key, _, emo in entries
    }


def _rows(corpus) -> dict[str, tuple[str, str]]:
    return {row["id"]: (row["fold"], row["emotion"]) for row in corpus}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("emobox")
    write_emobox(root, "iemocap", iemocap_folds())
    write_emobox(root, "ravdess", ravdess_folds(), sampling_rate=48000)
    write_emobox(root, "cremad", cremad_folds())
    return root


@pytest.mark.parametrize("fold", [1, 2])
def test_iemocap_folds_rows_and_labels_are_emobox_s(root, fold):
    corpus = load_corpus("emobox", root, dataset="iemocap", fold=fold)
    assert _rows(corpus) == _expected(iemocap_folds(), fold, "iemocap")
    assert set(corpus["emotion"]) == {"neutral", "happy", "sad", "angry"}  # exc merged into happy by label_map.json
    test = corpus.filter(lambda row: row["fold"] == "test")
    assert {row["speaker"] for row in test} == {f"Ses{fold:02d}_F", f"Ses{fold:02d}_M"}
    for row in corpus:
        letter = row["id"].rsplit("_", 1)[1][0]  # `_F000` female, `_M000` male; `Ses01F` is not the speaker
        assert row["gender"] == {"F": "female", "M": "male"}[letter]
    assert Path(corpus[0]["audio"]).is_file() and corpus[0]["length"] == int(0.3 * 16000)


def test_ravdess_keeps_emobox_s_eight_classes_and_actor_parity_gender(root):
    corpus = load_corpus("emobox", root, dataset="ravdess", fold=2)
    assert _rows(corpus) == _expected(ravdess_folds(), 2, "ravdess")
    assert {"calm", "surprise", "fear"} <= set(corpus["emotion"])  # EmoBox's names, calm its own class
    for row in corpus:
        actor = int(row["id"][-2:])
        assert row["speaker"] == f"Actor_{actor:02d}"
        assert row["gender"] == ("male" if actor % 2 else "female")


def test_crema_d_gender_only_with_demographics_and_leakage_is_kept(root, tmp_path):
    corpus = load_corpus("emobox", root, dataset="cremad", fold=1)
    assert _rows(corpus) == _expected(cremad_folds(), 1, "cremad")
    assert set(corpus["gender"]) == {""}  # no VideoDemographics.csv: no gender, never a guess
    assert set(corpus["speaker"]) == {"1001", "1002"}
    train, test = (set(corpus.filter(lambda r, s=s: r["fold"] == s)["speaker"]) for s in ("train", "test"))
    assert train == test  # EmoBox's CREMA-D split shares speakers; the reader keeps it as published

    demographics = write_crema_d_demographics(tmp_path, {"1001": "Male", "1002": "Female"})
    with_sex = load_corpus("emobox", root, dataset="cremad", fold=1, demographics=demographics)
    assert {row["speaker"]: row["gender"] for row in with_sex} == {"1001": "male", "1002": "female"}


def test_corpus_without_a_rule_has_no_gender_or_speaker(tmp_path):
    folds = {
        1: {"train": [("tess-a", "downloads/tess/a.wav", "ANG")], "test": [("tess-b", "downloads/tess/b.wav", "NEU")]}
    }
    write_emobox(tmp_path, "tess", folds, label_map=LABEL_MAPS["cremad"])
    corpus = load_corpus("emobox", tmp_path, dataset="tess", fold=1)
    assert corpus["gender"] == ["", ""] and corpus["speaker"] == ["", ""]


def test_no_agreement_and_other_are_dropped_with_a_count(tmp_path, caplog):
    """MSP-Podcast's X and O are in EmoBox's label map but are not emotions."""
    label_map = {"A": "Angry", "N": "Neutral", "X": "No-agreement", "O": "Other"}
    entries = [(f"msppodcast-{c}", f"downloads/msppodcast/Audio/{c}.wav", c) for c in "ANXO"]
    write_emobox(tmp_path, "msppodcast", {1: {"train": entries[:1], "test": entries[1:]}}, label_map=label_map)
    with caplog.at_level("INFO", logger="gemo_clap_hf"):  # a training run in this process may have set it higher
        corpus = load_corpus("emobox", tmp_path, dataset="msppodcast", fold=1)
    assert Counter(corpus["emotion"]) == {"angry": 1, "neutral": 1}
    assert "dropped 2 outside the label set" in caplog.text and "no-agreement [X] 1" in caplog.text


# ---- bad input: the error names the file, the line and the field ----


def _broken(tmp_path, line: dict | str, number: int = 2) -> Path:
    write_emobox(tmp_path, "iemocap", iemocap_folds(per_speaker=1))
    path = tmp_path / "data" / "iemocap" / "fold_1" / "iemocap_test_fold_1.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(number - 1, line if isinstance(line, str) else json.dumps(line))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_fold_file_is_named(root):
    with pytest.raises(FileNotFoundError, match=r"iemocap_train_fold_7\.jsonl does not exist.*folds \[1, 2\]"):
        load_corpus("emobox", root, dataset="iemocap", fold=7)


def test_line_without_label_names_file_line_and_field(tmp_path):
    path = _broken(tmp_path, {"key": "iemocap-x", "wav": "downloads/x.wav"})
    with pytest.raises(ValueError, match=rf"{path}, line 2, field 'emo': missing"):
        load_corpus("emobox", tmp_path, dataset="iemocap", fold=1)


def test_label_outside_the_map_names_file_line_and_field(tmp_path):
    path = _broken(tmp_path, {"key": "iemocap-x", "wav": "downloads/x.wav", "emo": "fru"}, number=1)
    with pytest.raises(ValueError, match=rf"{path}, line 1, field 'emo': 'fru' is not in .*label_map.json"):
        load_corpus("emobox", tmp_path, dataset="iemocap", fold=1)


def test_nonexistent_audio_names_file_line_and_field(tmp_path):
    _broken(tmp_path, {"key": "iemocap-x", "wav": "downloads/nowhere.wav", "emo": "neu"}, number=3)
    with pytest.raises(FileNotFoundError, match=r"iemocap_test_fold_1\.jsonl, line 3, field 'wav': .*nowhere\.wav"):
        load_corpus("emobox", tmp_path, dataset="iemocap", fold=1)
    corpus = load_corpus("emobox", tmp_path, dataset="iemocap", fold=1, skip_bad_files=True)
    assert "iemocap-x" not in corpus["id"]


def test_crema_d_demographics_found_in_emobox_s_downloads_layout(tmp_path, caplog):
    """EmoBox's cremad lines point at downloads/cremad/AudioWAV/; CREMA-D's VideoDemographics.csv sits beside that
    folder (downloads/cremad/VideoDemographics.csv, as EmoBox's own fairness code reads it). Found without a path."""
    write_emobox(tmp_path, "cremad", cremad_folds())
    sexes = {"1001": "Male", "1002": "Female"}
    demographics = write_crema_d_demographics(tmp_path, sexes)
    assert demographics == tmp_path / "downloads" / "cremad" / "VideoDemographics.csv"
    assert (demographics.parent / "AudioWAV").is_dir()
    with caplog.at_level("WARNING", logger="gemo_clap_hf"):
        corpus = load_corpus("emobox", tmp_path, dataset="cremad", fold=1)
    expected = {"Male": "male", "Female": "female"}
    assert {row["id"]: row["gender"] for row in corpus} == {
        row["id"]: expected[sexes[row["speaker"]]] for row in corpus
    }
    assert sorted(set(corpus["gender"])) == ["female", "male"]
    assert "no gender labels" not in caplog.text

    demographics.unlink()  # absent: no gender, and the warning names where it was looked for
    with caplog.at_level("WARNING", logger="gemo_clap_hf"):
        corpus = load_corpus("emobox", tmp_path, dataset="cremad", fold=1)
    assert set(corpus["gender"]) == {""} and str(demographics) in caplog.text


def test_corpus_log_says_gender_unknown_instead_of_an_empty_name(root, caplog):
    with caplog.at_level("INFO", logger="gemo_clap_hf"):
        corpus = load_corpus("emobox", root, dataset="cremad", fold=1)
    assert f"{len(corpus)} utterances, 2 speakers (gender unknown for all {len(corpus)} utterances)" in caplog.text
    assert "( " not in caplog.text
