"""Corpus readers on tiny trees in the exact public layouts: rows, labels, genders, folds, counts, errors."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from gemo_clap_hf.data import (
    CORPORA,
    assign_speaker_folds,
    check_speaker_leakage,
    load_corpus,
    split_by_fold,
)
from gemo_clap_hf.feature_extraction_gemo_clap import GEmoClapAudioError
from tests.helpers.corpus_fixtures import (
    iemocap_utterance_ids,
    make_crema_d_tree,
    make_full_ravdess_actors,
    make_iemocap_tree,
    make_manifest,
    make_msp_podcast_tree,
    make_ravdess_tree,
    write_wav,
)

COLUMNS = ["id", "audio", "emotion", "gender", "speaker", "fold", "duration", "length"]


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory) -> Path:
    return make_iemocap_tree(tmp_path_factory.mktemp("iemocap"), sessions=(1, 2), utterances_per_speaker=4)


def _rows(dataset) -> dict[str, dict]:
    return {row["id"]: row for row in dataset}


def _log(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------- IEMOCAP


def test_iemocap_rows_labels_genders_folds(iemocap, caplog):
    caplog.set_level(logging.INFO)
    dataset = load_corpus("iemocap", iemocap)
    assert dataset.column_names == COLUMNS
    assert {name: feature.dtype for name, feature in dataset.features.items()} == {
        "id": "string",
        "audio": "string",
        "emotion": "string",
        "gender": "string",
        "speaker": "string",
        "fold": "string",
        "duration": "float64",
        "length": "int64",
    }
    rows = _rows(dataset)
    expected_ids = [uid for session in (1, 2) for uid, _ in iemocap_utterance_ids(session, 4)]
    assert dataset["id"] == expected_ids  # 2 sessions x 2 speakers x 4; fru, xxx and `._` debris left out
    assert rows["Ses01F_impro01_F000"]["emotion"] == "neutral"
    assert rows["Ses01F_impro01_M001"]["emotion"] == "happy"  # exc merged into happy
    assert rows["Ses02F_impro01_F002"]["emotion"] == "sad"
    assert rows["Ses02F_impro01_M003"]["emotion"] == "angry"
    # Gender comes from the last part of the id, not from the `Ses01F` prefix.
    male = rows["Ses01F_impro01_M000"]
    assert (male["gender"], male["speaker"], male["fold"]) == ("male", "Ses01_M", "1")
    female = rows["Ses02F_impro01_F003"]
    assert (female["gender"], female["speaker"], female["fold"]) == ("female", "Ses02_F", "2")
    assert set(dataset["duration"]) == {0.5} and set(dataset["length"]) == {8000}
    expected_path = iemocap / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_M000.wav"
    assert male["audio"] == str(expected_path.resolve()) and Path(male["audio"]).is_absolute()
    log = _log(caplog)
    assert "kept 16 utterances (angry 4, happy 4, neutral 4, sad 4)" in log
    assert "dropped 4 outside the label set (frustrated [fru] 2, no_agreement [xxx] 2)" in log
    assert "resampled" not in log


def test_iemocap_accepts_the_parent_folder_and_the_synthetic_alias(iemocap):
    direct = load_corpus("iemocap", iemocap)
    assert load_corpus("iemocap", iemocap.parent).to_dict() == direct.to_dict()
    assert load_corpus("synthetic", iemocap).to_dict() == direct.to_dict()


def test_iemocap_label_map_by_name_or_code_and_labels_filter(iemocap, caplog):
    caplog.set_level(logging.INFO)
    dataset = load_corpus(
        "iemocap", iemocap, label_map={"neutral": "neutral", "fru": "frustrated", "ang": "angry", "excited": None}
    )
    assert sorted(set(dataset["emotion"])) == ["angry", "frustrated", "neutral"]
    assert dataset["emotion"].count("frustrated") == 2 and len(dataset) == 10
    assert "excited [exc] 4" in _log(caplog)
    restricted = load_corpus("iemocap", iemocap, labels=["sad", "angry"])
    assert sorted(set(restricted["emotion"])) == ["angry", "sad"] and len(restricted) == 8


def test_iemocap_sessions_option(iemocap):
    dataset = load_corpus("iemocap", iemocap, sessions=[2])
    assert set(dataset["fold"]) == {"2"} and len(dataset) == 8
    with pytest.raises(FileNotFoundError, match=r"sessions \[3\].*present: \[1, 2\]"):
        load_corpus("iemocap", iemocap, sessions=[3])


# ---------------------------------------------------------------- RAVDESS, CREMA-D, MSP-Podcast


def test_ravdess_calm_merges_into_neutral_and_48k_is_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    speech = make_ravdess_tree(tmp_path, actors=(1, 2), seconds=0.3)
    write_wav(speech / "Actor_01" / "03-02-03-01-01-01-01.wav", 0.3, 48000)  # song: not speech
    (speech / "Actor_01" / "._03-01-01-01-01-01-01.wav").write_bytes(b"\x00\x05\x16\x07")
    for data_dir in (tmp_path, speech):
        dataset = load_corpus("ravdess", data_dir)
        rows = _rows(dataset)
        assert len(dataset) == 10
        assert rows["03-01-02-01-01-01-01"]["emotion"] == "neutral"  # calm
        assert rows["03-01-05-01-01-01-02"]["emotion"] == "angry"
        assert (rows["03-01-01-01-01-01-01"]["gender"], rows["03-01-01-01-01-01-01"]["speaker"]) == ("male", "Actor_01")
        assert (rows["03-01-01-01-01-01-02"]["gender"], rows["03-01-01-01-01-01-02"]["speaker"]) == (
            "female",
            "Actor_02",
        )
        assert set(dataset["fold"]) == {""}
        assert set(dataset["length"]) == {4800} and dataset["duration"][0] == pytest.approx(0.3)
    log = _log(caplog)
    assert log.count("10 files (10 at 48000 Hz) will be resampled to 16000 Hz") == 2  # once per load
    assert "skipped 1 files (song (vocal channel 02) 1)" in log
    assert "dropped 2 outside the label set (fear [06] 2)" in log


def test_ravdess_calm_drop(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    dataset = load_corpus("ravdess", make_ravdess_tree(tmp_path, actors=(3,)), calm="drop")
    assert sorted(dataset["emotion"]) == ["angry", "happy", "neutral", "sad"]
    assert "calm [02] 1" in _log(caplog)
    with pytest.raises(ValueError, match="calm='neutral'.*calm='drop'"):
        load_corpus("ravdess", tmp_path, calm="keep")


def test_ravdess_calm_is_dropped_by_a_label_map_as_by_calm_drop(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    speech = make_ravdess_tree(tmp_path, actors=(1, 2))
    by_option = load_corpus("ravdess", speech, calm="drop").to_dict()
    four_classes = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"}
    for label_map in ({**four_classes, "calm": None}, four_classes, {**four_classes, "02": None}):
        caplog.clear()
        assert load_corpus("ravdess", speech, label_map=label_map).to_dict() == by_option
        assert "dropped 4 outside the label set (calm [02] 2, fear [06] 2)" in _log(caplog)
    assert sorted(by_option["emotion"]) == sorted(["neutral", "happy", "sad", "angry"] * 2)


def test_ravdess_default_merges_calm_so_neutral_has_288_of_1440_clips_at_full_size(tmp_path):
    # Two complete actors (60 speech files each, neutral at normal intensity only): per actor 4 neutral + 8 calm
    # against 8 of each other class, i.e. 288 vs 192 on the 24 actors of the release.
    speech = make_full_ravdess_actors(tmp_path, actors=(1, 2))
    merged = Counter(load_corpus("ravdess", speech)["emotion"])
    dropped = Counter(load_corpus("ravdess", speech, calm="drop")["emotion"])
    assert merged == {"neutral": 2 * 12, "happy": 2 * 8, "sad": 2 * 8, "angry": 2 * 8}
    assert dropped == {"neutral": 2 * 4, "happy": 2 * 8, "sad": 2 * 8, "angry": 2 * 8}
    assert {label: 12 * count for label, count in merged.items()} == CORPORA["ravdess"].class_counts


def test_crema_d_gender_from_demographics(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    dataset = load_corpus("crema_d", make_crema_d_tree(tmp_path))
    rows = _rows(dataset)
    assert sorted(rows) == sorted(f"{a}_IEO_{e}_HI" for a in ("1001", "1002") for e in ("ANG", "HAP", "NEU", "SAD"))
    assert (rows["1001_IEO_ANG_HI"]["gender"], rows["1001_IEO_ANG_HI"]["emotion"]) == ("male", "angry")
    assert (rows["1002_IEO_NEU_HI"]["gender"], rows["1002_IEO_NEU_HI"]["speaker"]) == ("female", "1002")
    assert "disgust [DIS] 2, fear [FEA] 2" in _log(caplog)


def test_crema_d_actor_missing_from_demographics(tmp_path):
    root = make_crema_d_tree(tmp_path)
    write_wav(root / "AudioWAV" / "1091_IEO_SAD_HI.wav")
    with pytest.raises(ValueError, match=r"actor 1091 of 1091_IEO_SAD_HI\.wav is not in .*VideoDemographics\.csv"):
        load_corpus("crema_d", root)


def test_msp_podcast_consensus_labels_splits_and_unknown_gender(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rows = [
        {
            "FileName": "MSP-PODCAST_0001_0001.wav",
            "EmoClass": "A",
            "SpkrID": "12",
            "Gender": "Female",
            "Split_Set": "Train",
        },
        {
            "FileName": "MSP-PODCAST_0001_0002.wav",
            "EmoClass": "N",
            "SpkrID": "12",
            "Gender": "Female",
            "Split_Set": "Train",
        },
        {
            "FileName": "MSP-PODCAST_0002_0001.wav",
            "EmoClass": "H",
            "SpkrID": "40",
            "Gender": "Male",
            "Split_Set": "Development",
        },
        {
            "FileName": "MSP-PODCAST_0003_0001.wav",
            "EmoClass": "S",
            "SpkrID": "77",
            "Gender": "Male",
            "Split_Set": "Test1",
        },
        {
            "FileName": "MSP-PODCAST_0003_0002.wav",
            "EmoClass": "X",
            "SpkrID": "77",
            "Gender": "Male",
            "Split_Set": "Test1",
        },
        {
            "FileName": "MSP-PODCAST_0003_0003.wav",
            "EmoClass": "O",
            "SpkrID": "77",
            "Gender": "Male",
            "Split_Set": "Test1",
        },
        {
            "FileName": "MSP-PODCAST_0004_0001.wav",
            "EmoClass": "A",
            "SpkrID": "Unknown",
            "Gender": "Unknown",
            "Split_Set": "Train",
        },
    ]
    dataset = load_corpus("msp_podcast", make_msp_podcast_tree(tmp_path, rows))
    assert dataset.to_dict()["emotion"] == ["angry", "neutral", "happy", "sad"]
    assert dataset["gender"] == ["female", "female", "male", "male"]
    assert dataset["speaker"] == ["12", "12", "40", "77"]
    assert dataset["fold"] == ["Train", "Train", "Development", "Test1"]
    assert dataset["id"][0] == "MSP-PODCAST_0001_0001"
    log = _log(caplog)
    assert "dropped 1 utterances whose speaker gender is unknown" in log
    assert "no_agreement [X] 1, other [O] 1" in log


def test_msp_podcast_unknown_speaker_is_no_speaker_not_one_shared_speaker(tmp_path, caplog):
    rows = [
        {"FileName": "a.wav", "EmoClass": "A", "SpkrID": "12", "Gender": "Female", "Split_Set": "Train"},
        {"FileName": "b.wav", "EmoClass": "N", "SpkrID": "Unknown", "Gender": "Male", "Split_Set": "Train"},
        {"FileName": "c.wav", "EmoClass": "H", "SpkrID": "40", "Gender": "Male", "Split_Set": "Test1"},
        {"FileName": "d.wav", "EmoClass": "S", "SpkrID": "unknown", "Gender": "Female", "Split_Set": "Test1"},
    ]
    dataset = load_corpus("msp_podcast", make_msp_podcast_tree(tmp_path, rows))
    assert dataset["speaker"] == ["12", "", "40", ""]
    train, test = split_by_fold(dataset, "Test1")
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        check_speaker_leakage(train, test)  # two unknown speakers are not one leaking speaker
    assert "2 utterances have no speaker, so speaker leakage" in caplog.text
    with pytest.raises(ValueError, match=r"speaker leakage: 1 speakers .*: 12;"):
        check_speaker_leakage(train, dataset)  # a known speaker on both sides still counts; '' never does


# ---------------------------------------------------------------- manifests


MANIFEST_ROWS = [
    {"path": "clips/a.wav", "emotion": "Joy", "gender": "F", "speaker": "s1", "split": "train"},
    {"path": "clips/b.wav", "emotion": "anger", "gender": "male", "speaker": "s2", "split": "test"},
    {"path": "clips/c.wav", "emotion": "neutral", "gender": "Female", "speaker": "s1", "split": "train"},
]


@pytest.mark.parametrize("name", ["manifest.csv", "manifest.jsonl"])
def test_manifest_csv_and_jsonl(tmp_path, name):
    manifest = make_manifest(tmp_path / "data" / name, MANIFEST_ROWS)
    absolute = tmp_path / "elsewhere" / "d.wav"
    write_wav(absolute, 0.25)
    rows = MANIFEST_ROWS + [{"path": str(absolute), "emotion": "SAD", "gender": "m", "speaker": "s3", "split": "test"}]
    make_manifest(manifest, rows, write_audio=False)
    for data_dir in (manifest, manifest.parent):
        dataset = load_corpus("manifest", data_dir)
        assert dataset["id"] == ["clips/a.wav", "clips/b.wav", "clips/c.wav", str(absolute)]
        assert dataset["emotion"] == ["joy", "anger", "neutral", "sad"]
        assert dataset["gender"] == ["female", "male", "female", "male"]
        assert dataset["fold"] == ["train", "test", "train", "test"]
        assert dataset["audio"][0] == str((tmp_path / "data" / "clips" / "a.wav").resolve())
        assert dataset["duration"][3] == pytest.approx(0.25) and dataset["length"][3] == 4000
    mapped = load_corpus("manifest", manifest, label_map={"joy": "happy", "anger": "angry", "sad": "sad"})
    assert mapped["emotion"] == ["happy", "angry", "sad"]
    assert load_corpus("manifest", manifest, labels=["neutral", "sad"])["emotion"] == ["neutral", "sad"]


@pytest.mark.parametrize("name", ["manifest.csv", "manifest.jsonl"])
def test_manifest_fold_column_is_the_fold_and_split_fills_its_blanks(tmp_path, name):
    rows = [
        {"path": "a.wav", "emotion": "sad", "gender": "f", "speaker": "s1", "fold": 1, "split": "train"},
        {"path": "b.wav", "emotion": "sad", "gender": "m", "speaker": "s2", "fold": 2, "split": "train"},
        {"path": "c.wav", "emotion": "sad", "gender": "m", "speaker": "s3", "fold": "", "split": "test"},
    ]
    dataset = load_corpus("manifest", make_manifest(tmp_path / name, rows))
    assert dataset["fold"] == ["1", "2", "test"]
    train, test = split_by_fold(dataset, 2)
    assert test["id"] == ["b.wav"] and train["id"] == ["a.wav", "c.wav"]


def test_manifest_unknown_speakers_are_empty(tmp_path):
    rows = [
        {"path": "a.wav", "emotion": "sad", "gender": "f", "speaker": "Unknown"},
        {"path": "b.wav", "emotion": "sad", "gender": "m", "speaker": ""},
        {"path": "c.wav", "emotion": "sad", "gender": "m", "speaker": " s7 "},
    ]
    assert load_corpus("manifest", make_manifest(tmp_path / "m.jsonl", rows))["speaker"] == ["", "", "s7"]


def test_manifest_missing_columns_are_listed(tmp_path):
    manifest = make_manifest(tmp_path / "m.csv", [{"path": "a.wav", "label": "sad"}])
    with pytest.raises(ValueError, match=r"lacks the required columns \['emotion', 'gender'\].*\['path', 'emotion'"):
        load_corpus("manifest", manifest)


def test_manifest_missing_files_error_or_skip(tmp_path, caplog):
    manifest = make_manifest(tmp_path / "m.csv", MANIFEST_ROWS)
    (tmp_path / "clips" / "b.wav").unlink()
    (tmp_path / "clips" / "c.wav").unlink()
    with pytest.raises(GEmoClapAudioError, match=r"2 audio files are missing, e\.g\. .*b\.wav, .*c\.wav.*skip_bad"):
        load_corpus("manifest", manifest)
    caplog.set_level(logging.INFO)
    assert load_corpus("manifest", manifest, skip_bad_files=True)["id"] == ["clips/a.wav"]
    assert "skipped 2 bad files" in _log(caplog)


def test_manifest_unknown_gender_and_duplicate_ids(tmp_path):
    manifest = make_manifest(tmp_path / "m.jsonl", [{"path": "a.wav", "emotion": "sad", "gender": "x"}])
    with pytest.raises(ValueError, match=r"unknown gender \(row 1: 'x'\).*'female' or 'male'"):
        load_corpus("manifest", manifest)
    rows = [
        {"id": "u1", "path": "a.wav", "emotion": "sad", "gender": "f"},
        {"id": "u1", "path": "b.wav", "emotion": "sad", "gender": "f"},
    ]
    with pytest.raises(ValueError, match=r"1 utterance ids occur more than once, e\.g\. 'u1' \(.*a\.wav, .*b\.wav\)"):
        load_corpus("manifest", make_manifest(tmp_path / "d.csv", rows))


# ---------------------------------------------------------------- bad data


def test_missing_data_dir_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)nope.*does not exist.*Session1/ \.\.\. Session5/"):
        load_corpus("iemocap", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"(?s)found no Session<N> folders.*EmoEvaluation"):
        load_corpus("iemocap", tmp_path)
    with pytest.raises(FileNotFoundError, match="found no Actor_NN folders"):
        load_corpus("ravdess", tmp_path)
    with pytest.raises(FileNotFoundError, match="found no AudioWAV folder"):
        load_corpus("crema_d", tmp_path)
    with pytest.raises(FileNotFoundError, match="found no Labels/labels_consensus.csv"):
        load_corpus("msp_podcast", tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest.csv / manifest.jsonl"):
        load_corpus("manifest", tmp_path)


def test_zero_utterances_and_nothing_left_after_labels(tmp_path):
    release = make_iemocap_tree(tmp_path / "a", sessions=(1,), utterances_per_speaker=0, extras=False)
    with pytest.raises(ValueError, match="found 0 utterances in .*sessions \\[1\\]"):
        load_corpus("iemocap", release)
    release = make_iemocap_tree(tmp_path / "b", sessions=(1,), utterances_per_speaker=1)
    with pytest.raises(ValueError, match=r"no utterance is left after the label step.*label_map"):
        load_corpus("iemocap", release, labels=["calm"])


def test_corrupt_wav_error_or_skip(tmp_path, caplog):
    release = make_iemocap_tree(tmp_path, sessions=(1,), utterances_per_speaker=2, extras=False)
    bad = release / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_M001.wav"
    bad.write_bytes(b"RIFF garbage, not a wav header")
    with pytest.raises(GEmoClapAudioError, match=r"1 audio files cannot be read, e\.g\. .*Ses01F_impro01_M001\.wav"):
        load_corpus("iemocap", release)
    caplog.set_level(logging.INFO)
    dataset = load_corpus("iemocap", release, skip_bad_files=True)
    assert dataset["id"] == ["Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_F001"]
    assert "skipped 1 bad files" in _log(caplog)


def test_unknown_corpus_and_unknown_option(iemocap):
    with pytest.raises(ValueError, match="unknown corpus 'timit'.*'iemocap'.*manifest"):
        load_corpus("timit", iemocap)
    with pytest.raises(TypeError, match=r"unknown options \['calm'\].*\['sessions'\]"):
        load_corpus("iemocap", iemocap, calm="drop")


# ---------------------------------------------------------------- splits


def test_split_by_session_has_no_speaker_leakage(iemocap):
    dataset = load_corpus("iemocap", iemocap)
    train, test = split_by_fold(dataset, 1)
    assert set(test["fold"]) == {"1"} and set(train["fold"]) == {"2"} and len(test) == len(train) == 8
    check_speaker_leakage(train, test)
    with pytest.raises(ValueError, match=r"fold '5' has no utterances; available folds: \['1', '2'\]"):
        split_by_fold(dataset, 5)
    leaky = dataset.train_test_split(test_size=0.5, seed=0)
    with pytest.raises(ValueError, match=r"speaker leakage: 4 speakers .*Ses01_F, Ses01_M, Ses02_F, Ses02_M"):
        check_speaker_leakage(leaky["train"], leaky["test"])


def test_assign_speaker_folds_groups_speakers_and_balances(tmp_path):
    dataset = load_corpus("ravdess", make_ravdess_tree(tmp_path, actors=range(1, 7), seconds=0.1))
    with pytest.raises(ValueError, match="corpus has no folds: use assign_speaker_folds"):
        split_by_fold(dataset, 1)
    folded = assign_speaker_folds(dataset, k=3, seed=0)
    assert folded.column_names == dataset.column_names
    assert folded.to_dict() == assign_speaker_folds(dataset, k=3, seed=0).to_dict()
    fold_of = {}
    for speaker, fold in zip(folded["speaker"], folded["fold"]):
        assert fold_of.setdefault(speaker, fold) == fold
    assert sorted(folded["fold"].count(str(f)) for f in (1, 2, 3)) == [10, 10, 10]
    train, test = split_by_fold(folded, "2")
    check_speaker_leakage(train, test)
    with pytest.raises(ValueError, match="need at least 7 speakers"):
        assign_speaker_folds(dataset, k=7)
