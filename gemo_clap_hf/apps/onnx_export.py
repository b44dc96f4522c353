"""Export a trained GEmo-CLAP classifier to ONNX, with the label prompts folded in: `gemo-clap export-onnx`.

The graph is the audio path only: speech tower -> masked mean over valid frames -> projection -> L2 norm, then a
matrix product with the emotion label-prompt table, which is computed once at export time and stored as a constant
(already scaled by the audio temperature). No text tower, tokenizer or prompt runs at inference.

- Inputs: `input_values` float32 (batch, samples) and `audio_attention_mask` int32 (batch, samples), exactly what
  `GEmoClapFeatureExtractor(..., return_tensors="np")` returns; both axes are dynamic (samples >= 400, the
  receptive field, which the feature extractor guarantees by padding short clips).
- Outputs: `logits` (batch, num_labels) in `config.id2label` order, and `audio_embeds` (batch, projection_dim).
- Beside `model.onnx`: `config.json` (labels, prompts, towers), `preprocessor_config.json` (the feature
  extractor: rate, normalisation, window length) and `gemo_clap_onnx.json` (label tables and temperature, so that
  windowed long clips and ML-GEmo-CLAP gender scores can be computed from `audio_embeds` outside the graph).

Why not optimum: its ONNX exporter (`optimum-onnx`) needs an `OnnxConfig` per model type, has none for a custom
dual encoder, and requires transformers < 4.58 while this package needs transformers 5. So this module calls
`torch.onnx.export` itself, with the torch.export-based ("dynamo") exporter by default: it is torch's default since
2.9, and the TorchScript exporter (`dynamo=False`, kept as a fallback) is deprecated. Both give the same graph
behaviour here (dynamic batch and time, parity with PyTorch within 1e-5 on padded batches, for layer-norm and
group-norm towers); the dynamo exporter is slower to export (tens of seconds for a small tower on a CPU).

Long clips: windowing (`max_length_s`) and the averaging of window embeddings happen outside the graph;
`OnnxClassifier` does both with numpy, as `GEmoClapForAudioClassification` does with `clip_index`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

DEFAULT_OPSET = 18
ONNX_FILE = "model.onnx"
LABELS_FILE = "gemo_clap_onnx.json"
INPUT_NAMES = ("input_values", "audio_attention_mask")
OUTPUT_NAMES = ("logits", "audio_embeds")
_INPUT_DTYPES = (np.float32, np.int32)
PARITY_TOLERANCE = 1e-4


class OnnxExportError(RuntimeError):
    """The export could not be done or checked; the message says why and what to do."""


def _require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise OnnxExportError(f"ONNX export needs {', '.join(missing)}: pip install 'gemo-clap-hf[onnx]'.")


class ExportableClassifier(nn.Module):
    """The classifier's audio path with the scaled emotion label table as a constant: what goes into the graph."""

    def __init__(self, classifier):
        super().__init__()
        self.gemo_clap = classifier.gemo_clap
        with torch.no_grad():
            scale_audio, _ = self.gemo_clap.logit_scales
            table = scale_audio * classifier.label_embeddings("emotion")
        self.register_buffer("label_table", table.detach().clone(), persistent=False)

    def forward(self, input_values: torch.Tensor, audio_attention_mask: torch.Tensor):
        embeds = self.gemo_clap.get_audio_features(input_values, audio_attention_mask, return_dict=True).pooler_output
        return embeds @ self.label_table.t(), embeds


def _example_inputs(feature_extractor, lengths_s: tuple[float, ...], seed: int) -> dict[str, np.ndarray]:
    """A padded batch of noisy tones of the given lengths, through the feature extractor (numpy arrays)."""
    rng = np.random.default_rng(seed)
    rate = feature_extractor.sampling_rate
    clips = []
    for seconds in lengths_s:
        t = np.arange(int(seconds * rate)) / rate
        clips.append((np.sin(2 * np.pi * rng.uniform(100, 250) * t) + 0.1 * rng.standard_normal(t.shape)) * 0.3)
    inputs = feature_extractor(
        [c.astype(np.float32) for c in clips], sampling_rate=rate, padding=True, return_tensors="np"
    )
    return {name: inputs[name] for name in INPUT_NAMES}


def _export(module: nn.Module, example: dict[str, np.ndarray], path: Path, opset: int, dynamo: bool) -> None:
    args = tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES)
    log = io.StringIO()
    # The exporters print progress and optimiser notes; failures raise, and parity is checked after the export.
    with torch.no_grad(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        common = dict(input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES), opset_version=opset)
        if dynamo:
            batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=400)
            axes = {0: batch, 1: samples}
            dynamic = dict(external_data=False, dynamic_shapes={name: axes for name in INPUT_NAMES})
        else:
            axes = {0: "batch", 1: "samples"}
            outputs = {"logits": {0: "batch"}, "audio_embeds": {0: "batch"}}
            dynamic = dict(dynamic_axes={**{name: axes for name in INPUT_NAMES}, **outputs})
        torch.onnx.export(module, args, str(path), dynamo=dynamo, **common, **dynamic)


@dataclass
class ExportReport:
    """Where the export went and how closely onnxruntime matched PyTorch (None when not verified)."""

    onnx_path: Path
    opset: int
    exporter: str
    max_abs_difference: float | None

    def describe(self) -> str:
        check = (
            "not checked (--no-verify)"
            if self.max_abs_difference is None
            else f"onnxruntime matches PyTorch on a padded batch: max |logits difference| {self.max_abs_difference:.1e}"
        )
        return (
            f"wrote {self.onnx_path} (opset {self.opset}, {self.exporter} exporter; inputs input_values, "
            f"audio_attention_mask; outputs logits, audio_embeds) and its config.json, preprocessor_config.json "
            f"and {LABELS_FILE}; {check}"
        )


def _label_tables(classifier) -> dict:
    config = classifier.config
    with torch.no_grad():
        scale_audio, _ = classifier.gemo_clap.logit_scales
        return {
            "emotion_labels": list(config.emotion_labels),
            "gender_labels": list(config.gender_labels),
            "loss_type": config.loss_type,
            "logit_scale": float(scale_audio),
            "emotion_label_embeddings": classifier.label_embeddings("emotion").float().tolist(),
            "gender_label_embeddings": classifier.label_embeddings("gender").float().tolist(),
            "inputs": list(INPUT_NAMES),
            "outputs": list(OUTPUT_NAMES),
        }


def export_onnx(
    model,
    out_dir: str | os.PathLike,
    feature_extractor=None,
    opset: int = DEFAULT_OPSET,
    dynamo: bool = True,
    verify: bool = True,
) -> ExportReport:
    """Write `out_dir/model.onnx` and the JSON files it needs; `model` is a folder, a Hub id or a classifier.

    With `verify` (default) the exported graph runs in onnxruntime on a padded batch of lengths it was not
    exported with, and an `OnnxExportError` is raised if its logits differ from PyTorch's by more than 1e-4.
    """
    from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor
    from .prediction import load_classifier

    _require_onnx()
    if isinstance(model, (str, os.PathLike)):
        classifier, loaded = load_classifier(str(model), "cpu")
        feature_extractor = feature_extractor or loaded
    else:
        classifier = model
    feature_extractor = feature_extractor or GEmoClapFeatureExtractor()
    if not classifier.has_prompts:
        raise OnnxExportError(
            "the classifier's label prompts are not tokenised, so there is no label table to fold "
            "in: export a folder that holds the tokenizer, or call `set_prompts(tokenizer)` first."
        )
    classifier = classifier.to("cpu", torch.float32).eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    module = ExportableClassifier(classifier).eval()
    try:
        _export(module, _example_inputs(feature_extractor, (1.0, 0.6), seed=0), path, opset, dynamo)
    except Exception as error:  # any exporter failure gets the same advice
        other = "dynamo=False (the TorchScript exporter)" if dynamo else "dynamo=True"
        raise OnnxExportError(
            f"torch.onnx.export failed ({type(error).__name__}: {error}); try {other}, or report "
            "the model's audio_config.model_type with this message."
        ) from error
    classifier.config.save_pretrained(out_dir)
    feature_extractor.save_pretrained(out_dir)
    (out_dir / LABELS_FILE).write_text(json.dumps(_label_tables(classifier), indent=1) + "\n", encoding="utf-8")
    difference = _verify(classifier, feature_extractor, path) if verify else None
    return ExportReport(path, opset, "dynamo" if dynamo else "torchscript", difference)


def _verify(classifier, feature_extractor, path: Path) -> float:
    import onnx

    onnx.checker.check_model(str(path))
    example = _example_inputs(feature_extractor, (2.3, 0.7, 1.4), seed=1)  # other batch size and lengths
    session = make_session(path)
    logits = session.run(["logits"], example)[0]
    with torch.no_grad():
        expected = classifier(**{name: torch.from_numpy(value) for name, value in example.items()}).logits.numpy()
    difference = float(np.abs(logits - expected).max())
    if not difference <= PARITY_TOLERANCE:
        raise OnnxExportError(
            f"the exported graph's logits differ from PyTorch's by {difference:.2e} (tolerance "
            f"{PARITY_TOLERANCE}) on a padded batch; {path} is not usable as it is."
        )
    return difference


def windowed_logits(
    audio_embeds: np.ndarray, lengths: np.ndarray, clip_index: np.ndarray, label_table: np.ndarray, logit_scale: float
) -> np.ndarray:
    """(clips, num_labels) logits from window embeddings: the length-weighted mean of each clip's windows,
    L2-normalised, against the label table; the numpy twin of `average_windows` + `label_logits`."""
    clip_index = np.asarray(clip_index, dtype=np.int64)
    sums = np.zeros((int(clip_index.max()) + 1, audio_embeds.shape[1]), dtype=np.float64)
    np.add.at(sums, clip_index, audio_embeds.astype(np.float64) * np.asarray(lengths, dtype=np.float64)[:, None])
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return (logit_scale * sums @ np.asarray(label_table, dtype=np.float64).T).astype(np.float32)


def make_session(path: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None):
    """An onnxruntime session with every graph optimisation on; `threads` intra-op threads (None: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


class OnnxClassifier:
    """Run an exported folder with onnxruntime only (no text tower, no transformers model), long clips included.

    `OnnxClassifier(out_dir)(clips, sampling_rate=16000)` returns (clips, num_labels) emotion logits; clips longer
    than the feature extractor's `max_length_s` are windowed and their window embeddings averaged here, outside
    the graph. `gender_logits` does the same with the gender table (meaningful for ML-GEmo-CLAP models).
    `graph` picks another graph of the folder (`model.int8.onnx`); `threads` sets onnxruntime's intra-op threads.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        providers: list[str] | None = None,
        threads: int | None = None,
        graph: str = ONNX_FILE,
    ):
        from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor

        folder = Path(folder)
        self.session = make_session(folder / graph, threads, providers)
        self.feature_extractor = GEmoClapFeatureExtractor.from_pretrained(folder)
        self.tables = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
        self.labels = self.tables["emotion_labels"]

    def run_features(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """(logits, audio_embeds) of featurised inputs (numpy or torch tensors, as the feature extractor returns)."""
        feed = {name: np.asarray(inputs[name], dtype=dtype) for name, dtype in zip(INPUT_NAMES, _INPUT_DTYPES)}
        logits, embeds = self.session.run(list(OUTPUT_NAMES), feed)
        return logits, embeds

    def _run(self, clips, sampling_rate):
        inputs = self.feature_extractor(clips, sampling_rate=sampling_rate, padding=True, return_tensors="np")
        return (inputs, *self.run_features(inputs))

    def _windowed(self, inputs, embeds, kind: str) -> np.ndarray:
        clip_index = inputs.get("clip_index")
        if clip_index is None:
            clip_index = np.arange(len(embeds))
        return windowed_logits(
            embeds,
            np.asarray(inputs["audio_attention_mask"]).sum(-1),
            np.asarray(clip_index),
            self.tables[f"{kind}_label_embeddings"],
            self.tables["logit_scale"],
        )

    def clip_logits(self, inputs, logits: np.ndarray, embeds: np.ndarray, kind: str = "emotion") -> np.ndarray:
        """One row of `kind` ("emotion" or "gender") logits per clip, from a run's outputs: the graph's emotion
        logits as they are, window averages for windowed clips (`clip_index`) and for the gender table."""
        if kind == "emotion" and "clip_index" not in inputs:
            return logits
        return self._windowed(inputs, embeds, kind)

    def __call__(self, clips, sampling_rate: int | None = None) -> np.ndarray:
        return self.clip_logits(*self._run(clips, sampling_rate))

    def gender_logits(self, clips, sampling_rate: int | None = None) -> np.ndarray:
        return self.clip_logits(*self._run(clips, sampling_rate), kind="gender")


__all__ = [
    "DEFAULT_OPSET",
    "ExportReport",
    "ExportableClassifier",
    "OnnxClassifier",
    "OnnxExportError",
    "export_onnx",
    "make_session",
    "windowed_logits",
]
