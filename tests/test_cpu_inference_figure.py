"""The `cpu_inference` benchmark figure's parts on the session's shared tiny export (tests/onnx_fixtures.py):
side-by-side timings with onnxruntime's float32 parity to PyTorch and operator profiles, bulk `predict` per backend,
and the held-out agreement of int8 with float32 (float32 with torch: exact). No timing assertions: tiny towers."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime, onnxscript) is not installed")

from benchmarks.cpu_inference import held_out_agreement, measure_bulk, measure_forward, verdicts  # noqa: E402
from benchmarks.settings import OPTIONAL_FIGURES, parse_args  # noqa: E402
from gemo_clap_hf import GEmoClapForAudioClassification  # noqa: E402
from gemo_clap_hf.data.synthetic import generate_corpus  # noqa: E402
from gemo_clap_hf.inference.onnx_quantize import INT8_FILE  # noqa: E402

SIDES = ("pytorch_tower", "pytorch_classifier", "onnx_fp32", "onnx_int8")


@pytest.fixture(scope="module")
def figure_parts(group_export, tmp_path_factory) -> dict:
    checkpoint, out_dir, _ = group_export
    settings = parse_args(["--quick", "--figures", "cpu_inference"])
    assert "cpu_inference" in OPTIONAL_FIGURES and settings.figures == ("cpu_inference",)
    classifier = GEmoClapForAudioClassification.from_pretrained(checkpoint).eval()
    graphs = {"onnx_fp32": out_dir / "model.onnx", "onnx_int8": out_dir / INT8_FILE}
    corpus = tmp_path_factory.mktemp("cpu_figure_corpus")
    generate_corpus(corpus, seed=0, utterances_per_speaker=2, progress=False)
    parts = {
        "forward": measure_forward(settings, classifier, graphs),
        "bulk_predict": measure_bulk(settings, classifier, graphs),
        "int8_agreement": held_out_agreement(checkpoint, out_dir, corpus, settings.batch_size),
    }
    parts["met"] = verdicts(parts)
    return parts


def test_forward_sides_parity_and_profiles(figure_parts):
    forward = figure_parts["forward"]
    assert set(forward["seconds"]) == set(SIDES) and forward["ratio_to_pytorch_tower"]["pytorch_tower"] == 1.0
    for side in SIDES:
        low, median, high = (forward["seconds"][side][key] for key in ("min", "median", "max"))
        assert 0 < low <= median <= high
    assert forward["onnx_fp32_max_abs_logit_difference"] < 1e-4  # the same batch, the same logits
    for side in ("pytorch_tower", "onnx_fp32", "onnx_int8"):
        shares = [row["share"] for row in forward["profile"][side]]
        assert shares and 0 < sum(shares) <= 1.0001


def test_bulk_predict_per_backend_and_held_out_agreement(figure_parts):
    bulk = figure_parts["bulk_predict"]
    assert set(bulk["clips_per_s"]) == {"torch", "onnx_fp32", "onnx_int8"} and bulk["speedup_over_torch"]["torch"] == 1
    assert all(rtf > 0 for rtf in bulk["real_time_factor"].values())
    agreement = figure_parts["int8_agreement"]
    assert agreement["held_out_clips"] > 0 and 0 <= agreement["int8_vs_fp32_agreement"] <= 1
    assert agreement["onnx_fp32_vs_torch_agreement"] == 1.0  # float32 onnxruntime = torch, clip for clip
    assert agreement["uar_percent"]["onnx_fp32"] == agreement["uar_percent"]["torch"]
    assert set(figure_parts["met"]) == {
        "onnx_fp32_le_1.0x_tower",
        "onnx_int8_le_0.6x_tower",
        "bulk_onnx_ge_1.5x_torch",
        "int8_agreement_ge_99",
    }
    assert all(isinstance(verdict, bool) for verdict in figure_parts["met"].values())
