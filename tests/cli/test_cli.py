"""The `gemo-clap` console script: predict (text and JSON, gender for ML models, clear errors) and synth-corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import soundfile as sf

from gemo_clap_hf.cli.main import main
from tests.helpers.tiny_models import random_clip


@pytest.fixture(scope="module")
def wav_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("wavs")
    paths = [folder / "a.wav", folder / "b_44k.wav"]
    sf.write(paths[0], random_clip(0.8, seed=1), 16000)
    sf.write(paths[1], random_clip(0.6, sampling_rate=44100, seed=2), 44100)  # resampled on reading
    return paths


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("gemo-clap") == "gemo_clap_hf.cli.main:main"


def test_predict_prints_a_label_from_id2label_per_file(capsys, tiny_checkpoint, wav_files):
    code, out, _ = run_cli(capsys, "predict", "--model", tiny_checkpoint, *wav_files, "--top-k", "2")
    assert code == 0
    labels = {"neutral", "happy", "sad", "angry"}
    lines = out.strip().splitlines()
    assert len(lines) == 2 and "gender" not in out  # an SL model reports no gender
    for line, path in zip(lines, wav_files):
        file, scores = line.rsplit(": ", 1)
        assert file == str(path)
        shown = [part.rsplit(" ", 1) for part in scores.split(", ")]
        assert len(shown) == 2 and {label for label, _ in shown} <= labels
        assert all(0.0 <= float(score) <= 1.0 for _, score in shown)


def test_predict_json_parses_with_the_expected_keys(capsys, tiny_checkpoint, wav_files):
    code, out, _ = run_cli(capsys, "predict", "--model", tiny_checkpoint, "--json", wav_files[0])
    assert code == 0
    [result] = json.loads(out)
    assert set(result) == {"file", "emotions"}
    assert result["file"] == str(wav_files[0])
    assert [e["label"] for e in result["emotions"]] and {e["label"] for e in result["emotions"]} == {
        "neutral",
        "happy",
        "sad",
        "angry",
    }
    scores = [e["score"] for e in result["emotions"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-3)


def test_predict_reports_gender_for_ml_models(capsys, ml_checkpoint, wav_files):
    code, out, _ = run_cli(capsys, "predict", "--model", ml_checkpoint, wav_files[0])
    assert code == 0
    gender_line = out.strip().splitlines()[1]
    assert gender_line.split()[:2] in (["gender:", "female"], ["gender:", "male"])
    code, out, _ = run_cli(capsys, "predict", "--model", ml_checkpoint, "--json", wav_files[0])
    [result] = json.loads(out)
    assert result["gender"] in ("female", "male")
    assert {g["label"] for g in result["genders"]} == {"female", "male"}


def test_predict_names_a_missing_audio_file(capsys, tiny_checkpoint, wav_files, tmp_path):
    missing = tmp_path / "nope.wav"
    code, out, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, wav_files[0], missing)
    assert code != 0 and out == ""
    assert str(missing) in err and "not found" in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["missing", "not_a_model"])
def test_predict_names_a_missing_or_wrong_model_folder(capsys, wav_files, tmp_path, case):
    folder = tmp_path / "no_model_here"
    if case == "not_a_model":
        folder.mkdir()
    code, _, err = run_cli(capsys, "predict", "--model", folder, wav_files[0])
    assert code != 0 and str(folder) in err
    assert ("does not exist" if case == "missing" else "no config.json") in err


def test_synth_corpus_writes_the_iemocap_layout(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "synth-corpus", tmp_path, "--utterances-per-speaker", "4", "--seed", "3", "--quiet")
    assert code == 0 and "40 utterances" in out
    release = tmp_path / "IEMOCAP_full_release"
    for session in range(1, 6):
        assert list((release / f"Session{session}" / "sentences" / "wav").glob("*/*.wav"))
        assert list((release / f"Session{session}" / "dialog" / "EmoEvaluation").glob("*.txt"))
    from gemo_clap_hf.data import load_corpus

    corpus = load_corpus("synthetic", tmp_path)
    assert len(corpus) == 40 and set(corpus["fold"]) == {"1", "2", "3", "4", "5"}
    # A different corpus in the same folder is refused with the fix in the message.
    code, _, err = run_cli(capsys, "synth-corpus", tmp_path, "--utterances-per-speaker", "5", "--quiet")
    assert code != 0 and "overwrite" in err


def test_help_lists_every_sub_command():
    result = subprocess.run(
        [sys.executable, "-m", "gemo_clap_hf.cli.main", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("synth-corpus", "predict", "export-onnx", "demo", "bench"):
        assert command in result.stdout


def test_bench_times_predict_on_the_users_files(capsys, tiny_checkpoint, wav_files):
    code, out, _ = run_cli(
        capsys, "bench", "--model", tiny_checkpoint, *wav_files, "--batch-size", "1", "2", "--repeats", "2", "--json"
    )
    assert code == 0
    figures = json.loads(out)
    assert figures["files"] == figures["classified"] == len(wav_files) and figures["repeats"] == 2
    seconds = sum(sf.info(str(path)).duration for path in wav_files)
    assert figures["audio_hours"] * 3600 == pytest.approx(seconds, rel=1e-3)
    for size in ("1", "2"):
        figure = figures["batch_sizes"][size]
        low, high = figure["clips_per_s_range"]
        assert low <= figure["clips_per_s"] <= high
        assert figure["clips_per_s"] == pytest.approx(len(wav_files) / figure["seconds"])
        assert figure["real_time_factor"] == pytest.approx(figure["seconds"] / seconds)
    assert figures["batch_sizes"]["2"]["max_probability_difference"] < 1e-4  # batching never changes the answer
    code, out, _ = run_cli(capsys, "bench", "--model", tiny_checkpoint, wav_files[0], "--repeats", "1")
    assert code == 0 and "batch   8:" in out and "real-time factor" in out


def test_bench_names_a_missing_file(capsys, tiny_checkpoint, tmp_path):
    code, _, err = run_cli(capsys, "bench", "--model", tiny_checkpoint, tmp_path / "nope.wav")
    assert code == 2 and "gemo-clap bench: error:" in err and "nope.wav" in err
