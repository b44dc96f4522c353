"""`predict --backend onnx`: onnxruntime gives the torch backend's probabilities within 1e-4 on padded,
length-bucketed batches of group-norm (ML: genders too) and layer-norm towers, long files included (same windows,
same averages); the CLI's folders, CSV resume and skipped bad files work the same; `export-onnx --quantize int8`
prints its accuracy cost and refuses a graph below the threshold unless forced.

The exports are shared with tests/inference/test_onnx_export.py (tests/helpers/onnx_fixtures.py): one per tower per
session.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from tests.helpers.tiny_models import random_clip

onnx = pytest.importorskip("onnx", reason="the [onnx] extra (onnx, onnxruntime, onnxscript) is not installed")
pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
pytest.importorskip("onnxscript", reason="the [onnx] extra is not installed")

from gemo_clap_hf import GEmoClapFeatureExtractor  # noqa: E402
from gemo_clap_hf.cli.main import main  # noqa: E402
from gemo_clap_hf.errors import OnnxExportError, PredictionError  # noqa: E402
from gemo_clap_hf.inference.backends import OnnxScorer, load_classifier  # noqa: E402
from gemo_clap_hf.inference.engine import predict_files, predict_segments  # noqa: E402
from gemo_clap_hf.inference.onnx_quantize import INT8_FILE, MIN_AGREEMENT, check_clips, quantize_int8  # noqa: E402
from gemo_clap_hf.inference.segments import SegmentOptions  # noqa: E402

RATE = 16000
WINDOW_S = 1.0  # the tests' max_length_s: the 2.6 s and 1.7 s files are cut into windows
SECONDS = {"a.wav": 0.4, "b.wav": 2.6, "c.wav": 0.9, "d.wav": 0.26, "e.wav": 1.7, "f.wav": 0.7, "g.wav": 1.2}


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx_backend_audio")
    for index, (name, seconds) in enumerate(SECONDS.items()):
        sf.write(folder / name, random_clip(seconds, seed=40 + index), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    return folder


def _files(folder) -> list[str]:
    return [str(folder / name) for name in SECONDS]


def test_onnx_backend_equals_torch_on_padded_batches_and_long_files(exported, audio_folder):
    checkpoint, out_dir = exported
    classifier, extractor = load_classifier(str(checkpoint))
    extractor.max_length_s = WINDOW_S
    windowed = extractor([random_clip(SECONDS["b.wav"])], sampling_rate=RATE, padding=True, return_tensors="np")
    assert windowed["clip_index"].tolist() == [0, 0, 0]  # the long file really goes through the windows
    files = _files(audio_folder)
    expected = predict_files(classifier, extractor, files, batch_size=3)
    got = predict_files(str(out_dir), extractor, files, batch_size=3, backend="onnx", threads=1)
    assert [p.file for p in got] == files and not got.failures
    for want, have in zip(expected, got):
        np.testing.assert_allclose(list(have.probabilities.values()), list(want.probabilities.values()), atol=1e-4)
        # Tiny random towers score near 1/4 everywhere: log-probabilities (logit differences) are the sharper test,
        # e.g. scoring a long file by its first window instead of the window average moves them by ~1e-3.
        np.testing.assert_allclose(
            np.log(list(have.probabilities.values())), np.log(list(want.probabilities.values())), atol=1e-4
        )
        assert (have.gender_probabilities is None) == (classifier.config.loss_type != "ml")
        if have.gender_probabilities is not None:
            np.testing.assert_allclose(
                list(have.gender_probabilities.values()), list(want.gender_probabilities.values()), atol=1e-4
            )
    # ... and each file alone through onnxruntime gives the batched scores (padding-invariant, windows included).
    scorer = OnnxScorer(out_dir)
    for prediction in got[:3]:
        [alone] = predict_files(scorer, extractor, [prediction.file], batch_size=1)
        alone_scores, batched_scores = list(alone.probabilities.values()), list(prediction.probabilities.values())
        np.testing.assert_allclose(alone_scores, batched_scores, atol=1e-4)


def _rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_predict_onnx_csv_resumes_and_skips_bad_files(capsys, group_export, audio_folder, tmp_path):
    checkpoint, out_dir, _ = group_export
    torch_csv, onnx_csv = tmp_path / "torch.csv", tmp_path / "onnx.csv"
    assert main(["predict", "--model", str(checkpoint), str(audio_folder), "-o", str(torch_csv), "-q"]) == 0
    command = ["predict", "--backend", "onnx", "--threads", "1", "--model", str(out_dir), str(audio_folder)]
    assert main([*command, "-o", str(onnx_csv), "-q", "--batch-size", "3"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.wav" in err and f"classified {len(SECONDS)} of {len(SECONDS) + 1}" in err
    expected = {row["file"]: row for row in _rows(torch_csv)}
    rows = _rows(onnx_csv)
    assert list(rows[0]) == ["file", "emotion", "score", "neutral", "happy", "sad", "angry", "gender", "gender_score"]
    assert sorted(row["file"] for row in rows) == sorted(expected)
    for row in rows:
        want = expected[row["file"]]
        assert row["emotion"] == want["emotion"] and row["gender"] == want["gender"]
        for column in ("score", "neutral", "happy", "sad", "angry", "gender_score"):
            assert abs(float(row[column]) - float(want[column])) < 1e-4
    # Resume: drop the last row; the rerun classifies only that file.
    lines = onnx_csv.read_text().splitlines(keepends=True)
    onnx_csv.write_text("".join(lines[:-1]))
    assert main([*command, "-o", str(onnx_csv), "-q"]) == 0
    assert f"classified 1 of {len(SECONDS) + 1}" in capsys.readouterr().err
    assert sorted(row["file"] for row in _rows(onnx_csv)) == sorted(expected)


def test_cli_predict_runs_the_int8_graph_and_bench_times_the_onnx_backend(capsys, group_export, audio_folder):
    _, out_dir, printed = group_export
    assert "argmax agreement" in printed and "max probability difference" in printed  # export-onnx --quantize
    assert (out_dir / INT8_FILE).is_file()
    files = _files(audio_folder)[:3]
    assert main(["predict", "--backend", "onnx", "--model", str(out_dir / INT8_FILE), *files, "--json", "-q"]) == 0
    int8 = json.loads(capsys.readouterr().out)
    assert [p["file"] for p in int8] == files and all("gender" in p for p in int8)
    code = main(["bench", "--backend", "onnx", "--model", str(out_dir), *files, "--batch-size", "2", "--repeats", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "onnx backend" in out and "clips/s" in out


def test_onnx_backend_usage_errors(capsys, group_export, audio_folder, tmp_path):
    checkpoint, out_dir, _ = group_export
    file = _files(audio_folder)[0]
    assert main(["predict", "--backend", "onnx", "--model", str(tmp_path), file]) == 2
    assert "export-onnx" in capsys.readouterr().err  # a folder without a graph: says how to make one
    assert main(["predict", "--backend", "onnx", "--model", str(checkpoint), file]) == 2  # a torch model folder
    assert "export-onnx" in capsys.readouterr().err
    assert main(["predict", "--backend", "onnx", "--model", str(out_dir), file, "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
    classifier, extractor = load_classifier(str(checkpoint))
    with pytest.raises(PredictionError, match="backend"):
        predict_files(classifier, extractor, [file], backend="onnx")


def test_onnx_backend_refuses_a_cuda_device_on_a_machine_with_a_gpu(capsys, monkeypatch, group_export, audio_folder):
    """`--backend onnx --device cuda` is a usage error (exit 2) naming both flags, not a CPU run that ignores
    --device. On a machine with a GPU the device itself resolves, so the backend's own check must refuse it: this
    machine is given one CUDA device (torch.cuda's count) so that check is reached here too."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    _, out_dir, _ = group_export
    file = _files(audio_folder)[0]
    assert main(["predict", "--backend", "onnx", "--model", str(out_dir), file, "--device", "cuda", "--json"]) == 2
    captured = capsys.readouterr()
    assert "--device cuda: the onnx backend runs on the CPU; drop --device." in captured.err and not captured.out
    assert main(["predict", "--backend", "onnx", "--model", str(out_dir), file, "--device", "cpu", "--json"]) == 0
    assert [p["file"] for p in json.loads(capsys.readouterr().out)] == [file]


def test_int8_quantisation_reports_its_cost_and_refuses_below_the_threshold(group_export):
    _, out_dir, _ = group_export
    with pytest.raises(OnnxExportError, match=r"argmax agreement .* --force"):
        quantize_int8(out_dir, min_agreement=1.01, target_name="refused.onnx")  # no graph can reach 101 %
    assert not list(out_dir.glob("*refused*"))  # nothing written, no partial file left
    report = quantize_int8(out_dir, min_agreement=1.01, force=True, target_name="forced.onnx")
    assert report.forced and report.path == out_dir / "forced.onnx" and report.path.is_file()
    assert report.clips == len(check_clips(RATE))
    # The gate's boundary: an agreement exactly at the threshold passes (>=), and `forced` says only that --force
    # overrode a refusal (the check is deterministic: the same graph, the same clips, the same agreement).
    at_threshold = quantize_int8(out_dir, min_agreement=report.agreement, target_name="at_threshold.onnx")
    assert at_threshold.agreement == report.agreement and at_threshold.path.is_file() and not at_threshold.forced
    needless = quantize_int8(out_dir, min_agreement=report.agreement, force=True, target_name="needless.onnx")
    assert needless.path.is_file() and not needless.forced and "despite" not in needless.describe()
    ops = {node.op_type for node in onnx.load(str(report.path)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops  # int8 MatMul weights, activations quantised at run time
    assert "Conv" in ops and "ConvInteger" not in ops  # the CNN feature encoder and positional conv stay float32
    # Quantisation perturbs the scores a little, never wholesale (the graph still computes the same model).
    assert 0.0 < report.max_probability_difference < 0.05
    extractor = GEmoClapFeatureExtractor.from_pretrained(out_dir)
    clips = [random_clip(s, seed=9) for s in (0.8, 1.5)]
    fp32 = OnnxScorer(out_dir).runner(clips, sampling_rate=RATE)
    int8 = OnnxScorer(report.path).runner(clips, sampling_rate=RATE)
    assert extractor.sampling_rate == RATE and not np.array_equal(fp32, int8)
    np.testing.assert_allclose(int8, fp32, atol=0.5)


@pytest.mark.slow
def test_the_int8_graph_of_a_trained_model_passes_the_gate_without_force(learned_export):
    """What the gate promises: a model that has learned something (above-chance held-out UAR) keeps its decisions
    in int8, so `export-onnx --quantize int8` writes the graph without --force."""
    out_dir, printed = learned_export["onnx"], learned_export["printed"]
    assert learned_export["uar"] > 0.25  # chance, with 4 balanced emotions
    assert learned_export["code"] == 0 and (out_dir / INT8_FILE).is_file()
    assert f"wrote {out_dir / INT8_FILE} (" in printed and "--force" not in printed
    report = quantize_int8(out_dir, target_name="again.onnx")  # the default threshold, as the CLI ran it
    assert report.path == out_dir / "again.onnx" and report.path.is_file() and not report.forced
    assert report.clips == len(check_clips(RATE)) and MIN_AGREEMENT <= report.agreement <= 1.0
    assert f"argmax agreement {report.agreement:.1%}" in printed  # the CLI printed the same deterministic check


def test_segments_on_the_onnx_backend_equal_the_torch_segments(capsys, group_export, tmp_path):
    """`predict --segments` scores its windows through the same Scorer seam: onnx rows equal torch rows."""
    checkpoint, out_dir, _ = group_export
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([random_clip(2.5, seed=7), random_clip(3.5, seed=8)]), RATE)
    options = {"options": SegmentOptions(window=1.5, hop=1.0), "batch_size": 4}
    classifier, extractor = load_classifier(str(checkpoint))
    [torch_file] = predict_segments(classifier, extractor, [str(path)], **options)
    [onnx_file] = predict_segments(str(out_dir), None, [str(path)], backend="onnx", **options)
    assert len(onnx_file.segments) == len(torch_file.segments) >= 5
    for ours, theirs in zip(onnx_file.segments, torch_file.segments):
        assert (ours.start, ours.end) == (theirs.start, theirs.end)
        np.testing.assert_allclose(list(ours.probabilities.values()), list(theirs.probabilities.values()), atol=1e-4)
        np.testing.assert_allclose(
            list(ours.gender_probabilities.values()), list(theirs.gender_probabilities.values()), atol=1e-4
        )
    output = tmp_path / "segments.csv"
    argv = ["predict", "--backend", "onnx", "--model", str(out_dir), str(path), "--segments", "-o", str(output)]
    assert main([*argv, "--window", "1.5", "--hop", "1.0", "-q"]) == 0
    capsys.readouterr()
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["start"]) for row in rows] == [segment.start for segment in torch_file.segments]
    for row, theirs in zip(rows, torch_file.segments):
        np.testing.assert_allclose(
            [float(row[k]) for k in theirs.probabilities], list(theirs.probabilities.values()), atol=1e-4
        )
