"""Bulk prediction: length-bucketed batches that do not change any clip's scores, folders and manifests in,
resumable CSV/JSONL out, bad files reported and skipped, the exit code, and the `Dataset.map` recipe of the README.

The reference for every score is the classifier itself, one clip at a time through the feature extractor.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from gemo_clap_hf import GEmoClapFeatureExtractor, GEmoClapForAudioClassification
from gemo_clap_hf.cli.bench import measure_bulk_throughput
from gemo_clap_hf.cli.main import main
from gemo_clap_hf.inference.engine import length_buckets, predict_files
from gemo_clap_hf.inference.inputs import collect_inputs
from gemo_clap_hf.inference.predictions import Failure
from tests.helpers.tiny_models import random_clip

RATE = 16000
REPO = Path(__file__).resolve().parents[2]
# name: (seconds, sampling rate, channels); lengths spread so that batches need padding.
CLIPS = {
    "a.wav": (0.8, RATE, 1),
    "b.flac": (2.4, RATE, 1),
    "c.wav": (0.3, RATE, 1),
    "d_44k_stereo.wav": (1.6, 44100, 2),
    "e.wav": (3.5, RATE, 1),
    "g.ogg": (1.1, RATE, 1),
}
TINY_S = 0.015  # f_tiny.wav: under the receptive field, and under the 0.25 s minimum: a failure, not a label


@pytest.fixture(scope="module")
def ml_group_checkpoint(ml_checkpoint) -> Path:
    """ML-GEmo-CLAP (gender scores too) on a wavlm-base-plus-shaped tower: a group-norm feature encoder."""
    return ml_checkpoint


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bulk")
    for index, (name, (seconds, rate, channels)) in enumerate(CLIPS.items()):
        clip = random_clip(seconds, sampling_rate=rate, seed=index)
        sf.write(folder / name, np.stack([clip, 0.5 * clip], -1) if channels == 2 else clip, rate)
    sf.write(folder / "f_tiny.wav", random_clip(TINY_S, seed=99), RATE)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio")
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), RATE)  # a valid header, 0 frames
    (folder / "notes.txt").write_text("not audio, not picked up")
    (folder / "sub").mkdir()
    sf.write(folder / "sub" / "h.wav", random_clip(0.9, seed=42), RATE)
    return folder


def good_files(folder: Path) -> list[str]:
    return [str(folder / name) for name in CLIPS]


def reference_probabilities(classifier, feature_extractor, path: str, kind: str = "emotion") -> np.ndarray:
    """The classifier on one clip alone (no batch, no bucketing), independently of the prediction code."""
    from gemo_clap_hf.data import load_audio

    inputs = feature_extractor(load_audio(path), sampling_rate=RATE, padding=True, return_tensors="pt")
    with torch.no_grad():
        embeds = classifier.gemo_clap.get_audio_features(**inputs, return_dict=True).pooler_output
        return classifier.label_logits(embeds, kind)[0].softmax(-1).numpy()


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_length_buckets_group_similar_lengths():
    lengths = [50, 10, 40, 20, 30, 60, 5]
    buckets = length_buckets(lengths, 3)
    assert buckets == [[6, 1, 3], [4, 2, 0], [5]]
    assert sorted(i for bucket in buckets for i in bucket) == list(range(len(lengths)))


def test_batched_scores_equal_one_at_a_time_for_a_group_norm_tower(ml_group_checkpoint, audio_folder):
    classifier = GEmoClapForAudioClassification.from_pretrained(ml_group_checkpoint).eval()
    feature_extractor = GEmoClapFeatureExtractor(max_length_s=1.5)  # b and e are windowed, batched with whole clips
    files = good_files(audio_folder)
    widths = []
    hook = classifier.gemo_clap.audio_model.register_forward_hook(lambda m, args, out: widths.append(args[0].shape))
    try:
        batched = predict_files(classifier, feature_extractor, files, batch_size=3)
    finally:
        hook.remove()
    single = predict_files(classifier, feature_extractor, files, batch_size=1)
    assert [p.file for p in batched] == files == [p.file for p in single] and not batched.failures
    assert any(shape[0] > 1 for shape in widths)  # clips really were batched (with padding)
    for ours, alone in zip(batched, single):
        np.testing.assert_allclose(list(ours.probabilities.values()), list(alone.probabilities.values()), atol=1e-4)
        np.testing.assert_allclose(
            list(ours.gender_probabilities.values()), list(alone.gender_probabilities.values()), atol=1e-4
        )
        expected = reference_probabilities(classifier, feature_extractor, ours.file)
        np.testing.assert_allclose(list(ours.probabilities.values()), expected, atol=1e-4)
        gender = reference_probabilities(classifier, feature_extractor, ours.file, "gender")
        np.testing.assert_allclose(list(ours.gender_probabilities.values()), gender, atol=1e-4)


def test_batches_hold_clips_of_similar_length(tiny_checkpoint, audio_folder):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    widths = []
    hook = classifier.gemo_clap.audio_model.register_forward_hook(lambda m, args, out: widths.append(args[0].shape))
    try:
        predict_files(classifier, GEmoClapFeatureExtractor(), good_files(audio_folder), batch_size=2)
    finally:
        hook.remove()
    assert [shape[0] for shape in widths] == [2, 2, 2]
    assert [shape[1] for shape in widths] == sorted(shape[1] for shape in widths)  # shortest batches first


def test_bad_files_are_reported_and_the_rest_classified(tiny_checkpoint, audio_folder):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    paths = [
        str(audio_folder / "corrupt.wav"),
        *good_files(audio_folder)[:2],
        str(audio_folder / "empty.wav"),
        str(audio_folder / "missing.wav"),
    ]
    predictions = predict_files(classifier, GEmoClapFeatureExtractor(), paths, batch_size=4)
    assert [p.file for p in predictions] == paths[1:3]
    failed = {failure.file: failure.reason for failure in predictions.failures}
    assert set(failed) == {paths[0], paths[3], paths[4]}
    assert all(isinstance(f, Failure) for f in predictions.failures)
    assert "cannot be read" in failed[paths[0]] and "no samples" in failed[paths[3]]
    assert "does not exist" in failed[paths[4]]


def test_too_short_files_are_skipped_when_the_extractor_refuses_them(tiny_checkpoint, audio_folder):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    strict = GEmoClapFeatureExtractor(pad_short_clips=False, min_length=8000)  # a 0.5 s receptive field
    paths = [str(audio_folder / "c.wav"), str(audio_folder / "a.wav")]  # 0.3 s and 0.8 s
    predictions = predict_files(classifier, strict, paths, batch_size=2)
    assert [p.file for p in predictions] == paths[1:]
    [failure] = predictions.failures
    assert failure.file == paths[0] and "receptive field" in failure.reason


def test_clips_under_the_minimum_get_a_failure_not_a_label(tiny_checkpoint, audio_folder):
    paths = [str(audio_folder / "f_tiny.wav"), str(audio_folder / "c.wav")]
    predictions = predict_files(str(tiny_checkpoint), None, paths, batch_size=2)
    assert [p.file for p in predictions] == paths[1:]  # 0.3 s: above the 0.25 s minimum
    [failure] = predictions.failures
    assert failure.file == paths[0] and f"{TINY_S:.3f} s long, shorter than the 0.25 s minimum" in failure.reason


def test_inputs_from_folders_recursive_and_manifests(audio_folder, tmp_path):
    flat = collect_inputs([audio_folder])
    bad = [str(audio_folder / name) for name in ("corrupt.wav", "empty.wav", "f_tiny.wav")]
    assert sorted(flat) == sorted([*good_files(audio_folder), *bad])
    assert str(audio_folder / "sub" / "h.wav") in collect_inputs([audio_folder], recursive=True)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,emotion,gender\n"
        + "".join(f"{os.path.relpath(p, tmp_path)},happy,female\n" for p in good_files(audio_folder)[:2])
        + "gone.wav,sad,male\n"
    )
    listed = collect_inputs([manifest, audio_folder / "a.wav"])  # a.wav is in both: once
    assert [Path(p).resolve() for p in listed] == [Path(p).resolve() for p in good_files(audio_folder)[:2]] + [
        tmp_path / "gone.wav"
    ]


def test_cli_folder_to_csv_matches_the_classifier_and_resumes(capsys, ml_group_checkpoint, audio_folder, tmp_path):
    output = tmp_path / "out" / "predictions.csv"
    code, out, err = run_cli(
        capsys,
        "predict",
        "--model",
        ml_group_checkpoint,
        audio_folder,
        "--output",
        output,
        "--batch-size",
        "3",
        "--quiet",
    )
    assert code == 0 and out == ""
    assert "skipped" in err and "corrupt.wav" in err and "empty.wav" in err and "f_tiny.wav: it is 0.015 s" in err
    assert "classified 6 of 9 file(s)" in err and "3 failed" in err
    rows = read_csv(output)
    labels = ["neutral", "happy", "sad", "angry"]
    assert list(rows[0]) == ["file", "emotion", "score", *labels, "gender", "gender_score"]
    assert sorted(row["file"] for row in rows) == sorted(good_files(audio_folder))
    classifier = GEmoClapForAudioClassification.from_pretrained(ml_group_checkpoint).eval()
    feature_extractor = GEmoClapFeatureExtractor.from_pretrained(ml_group_checkpoint)
    for row in rows:
        expected = reference_probabilities(classifier, feature_extractor, row["file"])
        np.testing.assert_allclose([float(row[label]) for label in labels], expected, atol=1e-4)
        assert row["emotion"] == labels[int(expected.argmax())]
        assert float(row["score"]) == pytest.approx(expected.max(), abs=1e-4)
        gender = reference_probabilities(classifier, feature_extractor, row["file"], "gender")
        assert row["gender"] == ["female", "male"][int(gender.argmax())]

    # A full rerun has nothing left to do.
    before = output.read_bytes()
    code, _, err = run_cli(capsys, "predict", "--model", ml_group_checkpoint, audio_folder, "-o", output, "-q")
    assert code == 0 and "classified 0 of 9 file(s) (6 already in" in err and output.read_bytes() == before

    # Killed mid-write: the last row lost its end. The rerun cuts it off and classifies that file again, once.
    lines = before.decode().splitlines(keepends=True)
    output.write_text("".join(lines[:-1]) + lines[-1][:17])
    code, _, err = run_cli(capsys, "predict", "--model", ml_group_checkpoint, audio_folder, "-o", output, "-q")
    assert code == 0 and "half-written" in err and "classified 1 of 9 file(s) (5 already in" in err
    repaired = read_csv(output)
    assert sorted(r["file"] for r in repaired) == sorted(r["file"] for r in rows)
    assert {r["file"]: r["emotion"] for r in repaired} == {r["file"]: r["emotion"] for r in rows}


def test_cli_jsonl_resume_repairs_and_refuses_another_models_output(
    capsys, tiny_checkpoint, ml_group_checkpoint, audio_folder, tmp_path
):
    output = tmp_path / "predictions.jsonl"
    files = good_files(audio_folder)[:4]
    code, _, _ = run_cli(capsys, "predict", "--model", tiny_checkpoint, *files[:2], "-o", output, "-q")
    assert code == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [set(row) for row in rows] == [{"file", "emotion", "score", "neutral", "happy", "sad", "angry"}] * 2
    output.write_text(output.read_text() + '{"file": "' + files[2][:5])  # a torn last line
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, *files, "-o", output, "-q")
    assert code == 0 and "half-written" in err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(row["file"] for row in rows) == sorted(files)
    # The SL model's file cannot be continued by the ML model (other columns): an error, the file untouched.
    before = output.read_bytes()
    code, _, err = run_cli(capsys, "predict", "--model", ml_group_checkpoint, *files, "-o", output, "-q")
    assert code == 2 and "cannot be resumed" in err and output.read_bytes() == before


def test_cli_manifest_with_a_missing_file_and_exit_codes(capsys, tiny_checkpoint, audio_folder, tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"path": str(audio_folder / "a.wav")}) + "\n" + json.dumps({"path": "gone.wav"}))
    code, out, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, manifest, "--json", "--top-k", "1")
    assert code == 0 and "gone.wav" in err and "does not exist" in err
    [result] = json.loads(out)
    assert result["file"] == str(audio_folder / "a.wav") and len(result["emotions"]) == 1
    # Nothing classifiable: reported, and exit code 1 (not a usage error).
    code, out, err = run_cli(
        capsys, "predict", "--model", tiny_checkpoint, audio_folder / "corrupt.wav", audio_folder / "empty.wav"
    )
    assert code == 1 and out == "" and "classified 0 of 2" in err and "corrupt.wav" in err


def test_cli_recursive_and_usage_errors(capsys, tiny_checkpoint, audio_folder, tmp_path):
    code, out, _ = run_cli(capsys, "predict", "--model", tiny_checkpoint, audio_folder, "--recursive", "-q")
    assert code == 0 and str(audio_folder / "sub" / "h.wav") in out
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    sf.write(tmp_path / "nested" / "deeper" / "x.wav", random_clip(0.5), RATE)
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, tmp_path / "nested")
    assert code == 2 and "--recursive" in err
    for flags, message in (
        (["--top-k", "0"], "--top-k"),
        (["--batch-size", "0"], "--batch-size"),
        (["-o", tmp_path / "out.txt"], ".csv or .jsonl"),
        (["--device", "cuda:7"], "cuda"),
        (["--json", "-o", tmp_path / "o.csv"], "--json"),
    ):
        if flags[:2] == ["--device", "cuda:7"] and torch.cuda.device_count() > 7:
            continue
        code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, audio_folder / "a.wav", *flags)
        assert code == 2 and message in err, (flags, err)


def test_measure_bulk_throughput_reports_both_modes(tiny_checkpoint):
    figures = measure_bulk_throughput(str(tiny_checkpoint), batch_size=4, num_clips=8, max_s=3.0, repeats=1)
    assert figures["clips"] == 8 and figures["batch_size"] == 4 and figures["audio_hours"] > 0
    for mode in ("one_at_a_time", "batched"):
        assert figures[mode]["clips_per_s"] > 0 and figures[mode]["audio_hours_per_s"] > 0
    assert figures["speedup"] == pytest.approx(figures["one_at_a_time"]["seconds"] / figures["batched"]["seconds"])
    assert figures["max_probability_difference"] < 1e-4


def test_readme_dataset_map_recipe_runs_and_agrees_with_predict_files(tiny_checkpoint, audio_folder, tmp_path):
    readme = (REPO / "README.md").read_text()
    [snippet] = [block for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "batched=True" in block]
    manifest = tmp_path / "manifest.csv"
    files = good_files(audio_folder)[:5]
    manifest.write_text("path,emotion,gender\n" + "".join(f"{p},happy,female\n" for p in files))
    code = snippet.replace('"org/sl-gemo-clap"', repr(str(tiny_checkpoint))).replace(
        '"my_corpus/manifest.csv"', repr(str(manifest))
    )
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own snippet is what is tested
    dataset = namespace["dataset"]
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    expected = {Path(p.file).resolve(): p for p in predict_files(classifier, GEmoClapFeatureExtractor(), files)}
    assert len(dataset) == len(files)
    for row in dataset:
        prediction = expected[Path(row["audio"]).resolve()]
        assert row["predicted"] == prediction.emotions[0]["label"]
        assert row["score"] == pytest.approx(prediction.emotions[0]["score"], abs=1e-4)


@pytest.mark.slow  # trains `gemo-clap demo --fast`
def test_predict_on_the_demo_held_out_session_matches_the_demo_report(capsys, tmp_path):
    """The issue's acceptance check at small scale: train with `gemo-clap demo --fast`, then `gemo-clap predict` the
    held-out session's folder into a CSV; its predictions are the report's (pipeline, one clip at a time)."""
    from gemo_clap_hf.demo.run import TEST_SESSION, run_demo

    result = run_demo(tmp_path / "demo", fast=True, report=False)
    capsys.readouterr()
    session = tmp_path / "demo" / "corpus" / "IEMOCAP_full_release" / f"Session{TEST_SESSION}" / "sentences" / "wav"
    output = tmp_path / "session5.csv"
    code, _, err = run_cli(capsys, "predict", "--model", result.model_dir, session, "--recursive", "-o", output)
    assert code == 0 and "0 failed" in err
    rows = {Path(row["file"]).name: row for row in read_csv(output)}
    from gemo_clap_hf.data import load_corpus

    held_out = load_corpus("synthetic", tmp_path / "demo" / "corpus", sessions=(int(TEST_SESSION),))
    assert len(held_out) == result.test_size and {Path(a).name for a in held_out["audio"]} <= set(rows)
    for clip in result.clips:
        row = rows[clip["file"]]
        assert float(row["score"]) == pytest.approx(clip["score"], abs=1e-4)
        # The same label, unless the two best scores tie within the tolerance (a 3-step model is near-uniform).
        assert row["emotion"] == clip["predicted"] or abs(float(row[clip["predicted"]]) - float(row["score"])) < 1e-4


def test_csv_output_keeps_file_names_that_are_not_utf8(capsys, tiny_checkpoint, audio_folder, tmp_path):
    """Linux file names are bytes: a name that is not UTF-8 is written back byte for byte, and the rerun resumes."""
    import shutil

    folder = tmp_path / "latin1"
    folder.mkdir()
    odd_name = os.fsdecode(b"caf\xe9.wav")  # Latin-1 "café": surrogate escapes in Python
    shutil.copy(good_files(audio_folder)[0], folder / odd_name)
    shutil.copy(good_files(audio_folder)[1], folder / "plain.wav")
    output = tmp_path / "predictions.csv"
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, folder, "--output", output, "--quiet")
    assert code == 0 and "classified 2 of 2 file(s)" in err
    assert os.fsencode(str(folder / odd_name)) in output.read_bytes()
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, folder, "--output", output, "--quiet")
    assert code == 0 and "classified 0 of 2 file(s) (2 already in" in err
