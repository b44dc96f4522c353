"""The training data setup (`prepare_data`, what the scripts run first) on flawed corpora.

Speaker leakage, repeated rows and unreadable files stop a run with a `TrainingInputError` naming the problem and the
flag that fixes it; labels that look mislabeled and speakers that cannot be checked are warned about; files at
another rate are resampled with one log line per corpus, not one per file.
"""

import logging
import warnings

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data import load_audio
from gemo_clap_hf.data.labels import Utterance, apply_label_map
from gemo_clap_hf.training import TrainingInputError, prepare_data
from gemo_clap_hf.training.arguments import DataArguments
from tests.helpers.corpus_fixtures import make_manifest, write_wav


def _row(number: int, speaker: str, fold: str, emotion: str = "", **extra) -> dict:
    emotions = ("neutral", "happy", "sad", "angry")
    return {
        "path": f"clips/{number}.wav",
        "emotion": emotion or emotions[number % 4],
        "gender": "female" if speaker.endswith("f") else "male",
        "speaker": speaker,
        "fold": fold,
        **extra,
    }


def _corpus(speakers_by_fold: dict[str, list[str]], per_speaker: int = 4) -> list[dict]:
    """`per_speaker` rows for each (fold, speaker), every emotion present in every fold."""
    rows = []
    for fold, speakers in speakers_by_fold.items():
        for speaker in speakers:
            for _ in range(per_speaker):
                rows.append(_row(len(rows), speaker, fold))
    return rows


def _prepare(manifest, **flags):
    return prepare_data(DataArguments(dataset="manifest", data_dir=str(manifest), **flags), seed=0)


def test_a_speaker_in_two_folds_stops_the_run(tmp_path):
    rows = _corpus({"1": ["s1f", "s2m"], "2": ["s3f", "s1f"], "3": ["s4m"]})
    manifest = make_manifest(tmp_path / "manifest.csv", rows)
    message = r"speaker leakage: 1 speakers are in both the training and the test set: s1f; split by .*--num_folds"
    with pytest.raises(TrainingInputError, match=message):
        _prepare(manifest, test_fold="2")
    # Between the training and the validation fold too.
    with pytest.raises(TrainingInputError, match=r"speaker leakage: .*: s1f"):
        _prepare(manifest, test_fold="3", eval_fold="2")
    # The fix the message names: speaker-grouped folds put each speaker in one fold.
    data = _prepare(manifest, test_fold="1", num_folds=2)
    assert not set(data.train["speaker"]) & set(data.eval["speaker"])
    assert len(data.train) + len(data.eval) == len(rows)


def test_rows_without_a_speaker_are_warned_about(tmp_path, caplog):
    rows = [
        {key: value for key, value in row.items() if key != "speaker"}
        for row in _corpus({"1": ["s1f", "s2m"], "2": ["s3f"]})
    ]
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        data = _prepare(make_manifest(tmp_path / "manifest.csv", rows), test_fold="2")
    assert len(data.train) == 8 and len(data.eval) == 4
    assert "12 utterances have no speaker, so speaker leakage" in caplog.text
    assert "add a `speaker` column" in caplog.text


@pytest.mark.parametrize(
    "repeat, message",
    [
        ("id", r"1 utterance ids occur more than once, e\.g\. 'u0' \(.*clips/0\.wav, .*clips/1\.wav\).*distinct ids"),
        (
            "file",
            r"1 audio files are listed more than once, e\.g\. '.*clips/0\.wav' \('clips/0\.wav', '\./clips/0\.wav'\)",
        ),
    ],
)
def test_repeated_rows_stop_the_run(tmp_path, repeat, message):
    rows = _corpus({"1": ["s1f"], "2": ["s2m"]})
    make_manifest(tmp_path / "manifest.csv", rows)  # writes the clips
    if repeat == "id":
        rows[0]["id"] = rows[1]["id"] = "u0"
    else:  # the same file under another spelling, in the test fold: it would be trained and tested on
        rows[5]["path"] = "./clips/0.wav"
    manifest = make_manifest(tmp_path / "manifest.csv", rows, write_audio=False)
    with pytest.raises(TrainingInputError, match=message):
        _prepare(manifest, test_fold="2")


def test_empty_audio_file_stops_the_run_or_is_skipped(tmp_path, caplog):
    rows = _corpus({"1": ["s1f"], "2": ["s2m"]})
    manifest = make_manifest(tmp_path / "manifest.csv", rows)
    sf.write(tmp_path / "clips" / "2.wav", np.zeros(0, dtype=np.int16), 16000)  # a header and no samples
    empty = r"1 audio files cannot be read, e\.g\. .*clips/2\.wav.*holds no samples.*--skip_bad_files"
    with pytest.raises(TrainingInputError, match=empty):
        _prepare(manifest, test_fold="2")
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        data = _prepare(manifest, test_fold="2", skip_bad_files=True)
    assert len(data.train) == 3 and "skipped 1 bad files" in caplog.text


def test_a_label_only_in_the_held_out_fold_is_warned_about(tmp_path, caplog):
    rows = _corpus({"1": ["s1f", "s2m"], "2": ["s3f"]})
    rows[-1]["emotion"] = "angy"  # a typo in a test-fold row
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        data = _prepare(make_manifest(tmp_path / "manifest.csv", rows), test_fold="2")
    assert "angy" in data.labels
    assert "labels ['angy'] have no training utterance" in caplog.text and "--label_map" in caplog.text


def test_a_label_under_one_percent_of_the_corpus_is_warned_about(tmp_path, caplog):
    utterances = [
        Utterance(
            id=str(n), path=tmp_path / f"{n}.wav", label="sad" if n % 2 else "angry", gender="female", speaker="s"
        )
        for n in range(199)
    ]
    utterances.append(Utterance(id="typo", path=tmp_path / "typo.wav", label="angy", gender="male", speaker="s"))
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        kept = apply_label_map(utterances, "manifest", None, None)
    assert len(kept) == 200
    assert "labels with under 1% of the utterances: angy 1" in caplog.text and "label_map" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        apply_label_map(utterances[:199], "manifest", None, None)
    assert "under 1%" not in caplog.text


def test_48k_corpus_is_resampled_with_one_log_line_not_one_per_file(tmp_path, caplog):
    rows = _corpus({"1": ["s1f", "s2m"], "2": ["s3f"]})
    manifest = make_manifest(tmp_path / "manifest.csv", rows, write_audio=False)
    for row in rows:
        write_wav(tmp_path / row["path"], 0.2, 48000)
    with caplog.at_level(logging.INFO):
        data = _prepare(manifest, test_fold="2")
    assert caplog.text.count("will be resampled to 16000 Hz") == 1
    assert "12 files (12 at 48000 Hz) will be resampled" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        waveforms = [load_audio(path) for path in data.train["audio"]]  # what the data collator does per batch
    assert [len(waveform) for waveform in waveforms] == [3200] * 8
    assert not caplog.records and not caught
