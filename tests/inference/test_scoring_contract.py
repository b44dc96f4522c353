"""One scoring contract: every way the package scores a clip goes through `GEmoClapForAudioClassification.forward`.

The forward is wrapped to count its calls, then each path is run as a user runs it: the audio-classification
pipeline, `predict_files` (the engine's `TorchScorer`), `gemo-clap predict` (files and segments), the web app's
analyser, `gemo-clap bench`'s timing, and the ONNX export (whose graph is that forward traced). A path that scored
through the model's internals instead (a second implementation) would leave the count at zero. A static check adds
that no inference, command-line or web module calls the internals (`get_audio_features`, `label_logits`) itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import soundfile as sf

from gemo_clap_hf import GEmoClapForAudioClassification
from tests.helpers.tiny_models import random_clip

RATE = 16000
PACKAGE = Path(__file__).resolve().parents[2] / "gemo_clap_hf"
INTERNALS = {"get_audio_features", "label_logits", "label_embeddings"}


@pytest.fixture
def forward_calls(monkeypatch):
    calls = []
    original = GEmoClapForAudioClassification.forward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GEmoClapForAudioClassification, "forward", counted)
    return calls


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("contract")
    for index, seconds in enumerate((1.2, 4.5)):
        sf.write(folder / f"clip{index}.wav", random_clip(seconds, seed=index), RATE)
    return sorted(str(p) for p in folder.glob("*.wav"))


def test_the_pipeline_scores_through_forward(forward_calls, ml_checkpoint, clips):
    from transformers import pipeline

    pipeline("audio-classification", model=str(ml_checkpoint))(clips[0])
    assert forward_calls


def test_predict_files_and_segments_score_through_forward(forward_calls, ml_checkpoint, clips):
    from gemo_clap_hf.inference import SegmentOptions, predict_files, predict_segments

    [prediction, _] = predict_files(str(ml_checkpoint), None, clips)
    assert forward_calls and prediction.gender_probabilities is not None
    forward_calls.clear()
    predict_segments(str(ml_checkpoint), None, clips[1:], SegmentOptions(window=2.0, hop=1.0))
    assert forward_calls


@pytest.mark.parametrize("extra", [[], ["--segments", "--window", "2", "--hop", "1"]])
def test_the_predict_command_scores_through_forward(forward_calls, ml_checkpoint, clips, tmp_path, capsys, extra):
    from gemo_clap_hf.cli.main import main

    assert main(["predict", "--model", str(ml_checkpoint), *clips, "-o", str(tmp_path / "out.csv"), "-q", *extra]) == 0
    assert forward_calls


def test_the_web_app_and_the_bench_score_through_forward(forward_calls, ml_checkpoint, clips):
    from gemo_clap_hf.cli.bench import measure_predict_throughput
    from gemo_clap_hf.inference import load_backend
    from gemo_clap_hf.web.app import EmotionAnalyser

    analysis = EmotionAnalyser(str(ml_checkpoint), vad=False).analyse(clips[1])
    assert forward_calls and analysis.genders is not None
    forward_calls.clear()
    scorer = load_backend(str(ml_checkpoint))
    measure_predict_throughput(scorer, scorer.feature_extractor, clips, batch_sizes=(1,), repeats=1)
    assert forward_calls


def test_the_onnx_graph_is_the_traced_forward(forward_calls, ml_checkpoint, tmp_path):
    pytest.importorskip("onnxscript", reason="the [onnx] extra is not installed")
    from gemo_clap_hf.inference.onnx_export import export_onnx

    export_onnx(str(ml_checkpoint), tmp_path / "onnx", verify=False)
    assert forward_calls


def _calls_to_internals(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in INTERNALS and isinstance(node.ctx, ast.Load):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    return found


def test_no_inference_cli_or_web_module_scores_through_the_model_internals():
    """Only the ONNX export names the label table (to hold it fixed while tracing forward); nothing else may."""
    allowed = {PACKAGE / "inference" / "onnx_export.py"}
    offenders = [
        call
        for folder in ("inference", "cli", "web")
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        if path not in allowed
        for call in _calls_to_internals(path)
    ]
    assert offenders == []
