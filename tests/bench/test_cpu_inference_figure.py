"""The `cpu_inference` benchmark figure's parts on the session's shared tiny export (tests/helpers/onnx_fixtures.py):
side-by-side timings with onnxruntime's float32 parity to PyTorch and operator profiles, bulk `predict` per backend
(no timing assertions: tiny towers), and the held-out agreement of int8 with float32 (float32 with torch: exact) on
the session's trained model (tests/helpers/onnx_fixtures.py `learned_export`: an untrained model's classes are
near ties)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime, onnxscript) is not installed")

from benchmarks.cpu_inference import TARGETS, held_out_agreement, measure_bulk, measure_forward, verdicts  # noqa: E402
from benchmarks.settings import OPTIONAL_FIGURES, parse_args  # noqa: E402
from gemo_clap_hf import GEmoClapForAudioClassification  # noqa: E402
from gemo_clap_hf.inference.onnx_quantize import INT8_FILE, MIN_AGREEMENT  # noqa: E402

SIDES = ("pytorch_tower", "pytorch_classifier", "onnx_fp32", "onnx_int8")


@pytest.fixture(scope="module")
def figure_parts(group_export) -> dict:
    checkpoint, out_dir, _ = group_export
    settings = parse_args(["--quick", "--figures", "cpu_inference"])
    assert "cpu_inference" in OPTIONAL_FIGURES and settings.figures == ("cpu_inference",)
    classifier = GEmoClapForAudioClassification.from_pretrained(checkpoint).eval()
    graphs = {"onnx_fp32": out_dir / "model.onnx", "onnx_int8": out_dir / INT8_FILE}
    parts = {
        "forward": measure_forward(settings, classifier, graphs),
        "bulk_predict": measure_bulk(settings, classifier, graphs),
    }
    parts["met"] = verdicts(parts)
    return parts


@pytest.fixture(scope="module")
def learned_agreement(learned_export) -> dict:
    """`held_out_agreement` of the trained model: its corpus' held-out session through torch, float32 and int8."""
    return held_out_agreement(learned_export["model"], learned_export["onnx"], learned_export["corpus"], 8)


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


def test_bulk_predict_per_backend(figure_parts):
    bulk = figure_parts["bulk_predict"]
    assert set(bulk["clips_per_s"]) == {"torch", "onnx_fp32", "onnx_int8"} and bulk["speedup_over_torch"]["torch"] == 1
    assert all(rtf > 0 for rtf in bulk["real_time_factor"].values())
    assert figure_parts["met"]["int8_agreement_ge_99"] is None  # not measured in this figure part
    assert set(figure_parts["met"]) == {
        "onnx_fp32_le_1.0x_tower",
        "onnx_int8_le_0.6x_tower",
        "bulk_onnx_ge_1.5x_torch",
        "int8_agreement_ge_99",
    }
    assert all(isinstance(v, bool) for k, v in figure_parts["met"].items() if k != "int8_agreement_ge_99")


@pytest.mark.slow
def test_held_out_int8_agreement_of_a_trained_model(learned_agreement):
    """The trained model's int8 graph keeps its held-out decisions (at least the export gate's 95 %), float32
    onnxruntime equals torch clip for clip, and the figure's verdict follows its own numbers."""
    agreement = learned_agreement
    assert agreement["held_out_clips"] > 0
    assert agreement["uar_percent"]["torch"] > 25  # the model learned something: above chance (4 emotions)
    assert agreement["onnx_fp32_vs_torch_agreement"] == 1.0  # float32 onnxruntime = torch, clip for clip
    assert agreement["uar_percent"]["onnx_fp32"] == agreement["uar_percent"]["torch"]
    assert agreement["int8_vs_fp32_agreement"] >= MIN_AGREEMENT
    points_below = agreement["uar_percent"]["onnx_fp32"] - agreement["uar_percent"]["onnx_int8"]
    assert agreement["int8_uar_points_below_fp32"] == pytest.approx(points_below, abs=0.011)
    met = verdicts({"int8_agreement": agreement})["int8_agreement_ge_99"]
    expected = agreement["int8_vs_fp32_agreement"] >= TARGETS["int8_agreement_min"]
    assert met == (expected and agreement["int8_uar_points_below_fp32"] <= TARGETS["int8_uar_points_max"])
