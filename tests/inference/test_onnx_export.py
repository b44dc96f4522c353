"""ONNX export: onnxruntime on padded batches of other sizes and lengths than the export's equals the PyTorch
classifier within 1e-4, for a group-norm tower (wavlm-base-plus shape, exported through the CLI) and a layer-norm
tower (wavlm-large shape, through the Python API); no text tower in the graph; long clips windowed outside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gemo_clap_hf import GEmoClapConfig, GEmoClapFeatureExtractor, GEmoClapForAudioClassification  # noqa: E402
from gemo_clap_hf.cli.main import main  # noqa: E402
from tests.helpers.tiny_models import auto_map_references, random_clip, save_tiny_checkpoint, tiny_config

onnx = pytest.importorskip("onnx", reason="the [onnx] extra (onnx, onnxruntime, onnxscript) is not installed")
numpy_helper = pytest.importorskip("onnx.numpy_helper", reason="the [onnx] extra is not installed")
onnxruntime = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
pytest.importorskip("onnxscript", reason="the [onnx] extra is not installed")

from gemo_clap_hf.errors import OnnxExportError  # noqa: E402
from gemo_clap_hf.inference.onnx_export import export_onnx  # noqa: E402
from gemo_clap_hf.inference.onnx_runtime import OnnxClassifier  # noqa: E402

RATE = 16000
# Batches of other sizes and lengths than the export's example (2 clips of 1.0 s and 0.6 s).
BATCHES = [(2.7, 0.4, 1.3, 0.9, 0.02), (0.5,), (3.1, 3.0)]


def _batch(lengths, seed=0) -> dict:
    clips = [random_clip(seconds, seed=seed + i) for i, seconds in enumerate(lengths)]
    return GEmoClapFeatureExtractor(max_length_s=None)(clips, sampling_rate=RATE, padding=True, return_tensors="np")


def test_graph_inputs_outputs_and_dynamic_axes(exported):
    _, out_dir = exported
    model = onnx.load(str(out_dir / "model.onnx"))
    onnx.checker.check_model(model)
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == ["input_values", "audio_attention_mask"]
    assert inputs["input_values"].elem_type == onnx.TensorProto.FLOAT
    assert inputs["audio_attention_mask"].elem_type == onnx.TensorProto.INT32
    for tensor in inputs.values():
        assert all(dim.dim_param and not dim.dim_value for dim in tensor.shape.dim)  # both axes symbolic
    outputs = {o.name: o.type.tensor_type.shape.dim for o in model.graph.output}
    assert list(outputs) == ["logits", "audio_embeds"]
    assert outputs["logits"][0].dim_param and outputs["logits"][1].dim_value == 4
    assert max(opset.version for opset in model.opset_import if opset.domain in ("", "ai.onnx")) == 18


def test_onnxruntime_equals_pytorch_on_padded_batches(exported):
    checkpoint, out_dir = exported
    classifier = GEmoClapForAudioClassification.from_pretrained(checkpoint).eval()
    session = onnxruntime.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    for index, lengths in enumerate(BATCHES):
        inputs = _batch(lengths, seed=10 * index)
        logits, _ = session.run(None, dict(inputs))
        with torch.no_grad():
            expected = classifier(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        assert logits.shape == (len(lengths), 4)
        np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4, rtol=0)
        # ... and each row equals its clip run alone (the graph is padding-invariant too).
        for row, seconds in enumerate(lengths):
            alone = session.run(["logits"], dict(_batch((seconds,), seed=10 * index + row)))[0]
            np.testing.assert_allclose(logits[row], alone[0], atol=1e-4, rtol=0)


def test_the_label_table_is_folded_in_and_the_json_files_travel(exported):
    checkpoint, out_dir = exported
    model = onnx.load(str(out_dir / "model.onnx"))
    config = GEmoClapConfig.from_pretrained(out_dir)
    shapes = {tuple(t.dims) for t in model.graph.initializer}
    text = config.text_config
    assert (text.vocab_size, text.hidden_size) not in shapes  # no word embeddings: no text tower in the graph
    classifier = GEmoClapForAudioClassification.from_pretrained(checkpoint).eval()
    with torch.no_grad():  # the emotion label table is a constant of the graph (scaled by s_a, or with s_a beside it)
        unscaled = classifier.label_embeddings("emotion").numpy()
        scaled = classifier.gemo_clap.logit_scales[0].numpy() * unscaled
    constants = [numpy_helper.to_array(t) for t in model.graph.initializer if len(t.dims) == 2]
    tables = (unscaled, unscaled.T, scaled, scaled.T)
    assert any(c.shape == m.shape and np.allclose(c, m, atol=1e-6) for c in constants for m in tables)
    assert config.id2label == {0: "neutral", 1: "happy", 2: "sad", 3: "angry"}
    settings = [GEmoClapFeatureExtractor.from_pretrained(folder).to_dict() for folder in (out_dir, checkpoint)]
    for saved in settings:  # the processor's AutoProcessor entry does not travel: no processor file in out_dir
        saved.pop("auto_map")
    assert settings[0] == settings[1]
    for name, reference in auto_map_references(out_dir):  # no modeling file beside model.onnx: no model entries
        assert (out_dir / f"{reference.split('.')[0]}.py").is_file(), f"{name} names {reference}"
    tables = json.loads((out_dir / "gemo_clap_onnx.json").read_text())
    assert tables["emotion_labels"] == ["neutral", "happy", "sad", "angry"]
    assert np.asarray(tables["emotion_label_embeddings"]).shape == (4, config.projection_dim)


def test_long_clips_are_windowed_outside_the_graph(exported):
    checkpoint, out_dir = exported
    classifier = GEmoClapForAudioClassification.from_pretrained(checkpoint).eval()
    runner = OnnxClassifier(out_dir)
    runner.feature_extractor.max_length_s = 1.0
    clips = [random_clip(2.6, seed=3), random_clip(0.7, seed=4)]
    inputs = runner.feature_extractor(clips, sampling_rate=RATE, padding=True, return_tensors="pt")
    assert "clip_index" in inputs
    with torch.no_grad():
        expected = classifier(**inputs).logits.numpy()
        embeds = classifier.gemo_clap.get_audio_features(**inputs, return_dict=True).pooler_output
        gender = classifier.label_logits(embeds, "gender").numpy()
    np.testing.assert_allclose(runner(clips, sampling_rate=RATE), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(runner.gender_logits(clips, sampling_rate=RATE), gender, atol=1e-4, rtol=0)


def test_the_torchscript_exporter_also_gives_parity(tmp_path):
    checkpoint = save_tiny_checkpoint(tmp_path / "model", audio_type="wavlm-base-plus")
    report = export_onnx(str(checkpoint), tmp_path / "onnx", dynamo=False)
    assert report.exporter == "torchscript" and report.max_abs_difference < 1e-4
    classifier = GEmoClapForAudioClassification.from_pretrained(checkpoint).eval()
    session = onnxruntime.InferenceSession(str(report.onnx_path), providers=["CPUExecutionProvider"])
    inputs = _batch(BATCHES[0], seed=7)
    with torch.no_grad():
        expected = classifier(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_allclose(session.run(["logits"], dict(inputs))[0], expected, atol=1e-4, rtol=0)


def test_a_classifier_without_prompts_is_refused(tmp_path):
    classifier = GEmoClapForAudioClassification(tiny_config())
    assert not classifier.has_prompts
    with pytest.raises(OnnxExportError, match="set_prompts"):
        export_onnx(classifier, tmp_path / "onnx")
    assert not (tmp_path / "onnx" / "model.onnx").exists()


def test_cli_names_a_missing_model_folder(capsys, tmp_path):
    code = main(["export-onnx", "--model", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not Path(tmp_path / "out").exists()
