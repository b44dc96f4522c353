"""The onnxruntime backend of `gemo-clap predict --backend onnx`: an exported folder scored like the torch model.

`OnnxScorer` is a `prediction.Scorer`: `iter_predictions` hands it the same featurised, length-bucketed batches as
the torch backend, so folders, manifests, background decoding, CSV/JSONL resume and skipped bad files work the
same. It runs the graph that `gemo-clap export-onnx` wrote (`model.onnx`, or `model.int8.onnx` when the model is
given as that file) through `OnnxClassifier`: long files' windows are averaged by `clip_index` outside the graph,
and ML-GEmo-CLAP genders come from `audio_embeds` and the gender table in `gemo_clap_onnx.json`, exactly as the torch
classifier computes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .onnx_export import LABELS_FILE, ONNX_FILE, OnnxClassifier
from .prediction import PredictionError, Scorer, load_classifier

BACKENDS = ("torch", "onnx")


def resolve_onnx_model(model: str | os.PathLike) -> tuple[Path, str]:
    """(folder, graph file name) of an export folder (its `model.onnx`) or of one `.onnx` file inside such a folder."""
    path = Path(model).expanduser()
    folder, graph = (path.parent, path.name) if path.suffix == ".onnx" else (path, ONNX_FILE)
    export_hint = "write one with `gemo-clap export-onnx --model MODEL_DIR OUT_DIR` and pass OUT_DIR"
    if not (folder / graph).is_file():
        raise PredictionError(f"--backend onnx: {str(folder / graph)!r} does not exist; {export_hint}.")
    if not (folder / LABELS_FILE).is_file() or not (folder / "config.json").is_file():
        raise PredictionError(
            f"--backend onnx: {str(folder)!r} lacks {LABELS_FILE} or config.json beside the graph (not a folder "
            f"written by export-onnx); {export_hint}."
        )
    return folder, graph


def _softmax(logits: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(logits, dtype=np.float32)).softmax(-1)


class OnnxScorer(Scorer):
    """An exported ONNX classifier as a `Scorer`; `threads` sets onnxruntime's intra-op threads (None: all cores)."""

    backend = "onnx"

    def __init__(self, model: str | os.PathLike, threads: int | None = None):
        from ..configuration_gemo_clap import GEmoClapConfig

        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            raise PredictionError("--backend onnx needs onnxruntime: pip install 'gemo-clap-hf[onnx]'.") from error
        if threads is not None and threads < 1:
            raise PredictionError(f"--threads must be at least 1, got {threads}.")
        folder, self.graph = resolve_onnx_model(model)
        self.runner = OnnxClassifier(folder, threads=threads, graph=self.graph)
        self.feature_extractor = self.runner.feature_extractor
        self.config = GEmoClapConfig.from_pretrained(folder)
        self.threads = threads or os.cpu_count() or 1
        self.device = f"cpu (onnxruntime, {self.graph})"

    def __call__(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, embeds = self.runner.run_features(inputs)
        emotion = _softmax(self.runner.clip_logits(inputs, logits, embeds, "emotion"))
        gender = None
        if self.config.loss_type == "ml":
            gender = _softmax(self.runner.clip_logits(inputs, logits, embeds, "gender"))
        return emotion, gender


def load_backend(model: str, backend: str = "torch", device=None, threads: int | None = None):
    """(scorer or classifier, feature extractor) for `predict`: the torch classifier of a model folder or Hub id
    (`threads` sets torch's intra-op threads), or an `OnnxScorer` of an export folder or `.onnx` file."""
    if backend not in BACKENDS:
        raise PredictionError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if threads is not None and threads < 1:
        raise PredictionError(f"--threads must be at least 1, got {threads}.")
    if backend == "torch":
        if threads is not None:
            torch.set_num_threads(threads)
        return load_classifier(model, device)
    scorer = OnnxScorer(model, threads)
    if device is not None and torch.device(device).type != "cpu":
        raise PredictionError(f"--device {device}: the onnx backend runs on the CPU; drop --device.")
    return scorer, scorer.feature_extractor


def prepare_backend(classifier, feature_extractor, backend: str | None, device=None, threads: int | None = None):
    """`predict_files`' model argument made ready: a folder, Hub id or `.onnx` file is loaded with `load_backend`
    (its feature extractor unless one is given); a loaded classifier or scorer must match `backend` when given."""
    if isinstance(classifier, (str, os.PathLike)):
        classifier, loaded = load_backend(str(classifier), backend or "torch", device, threads)
        return classifier, feature_extractor or loaded
    if backend is not None and backend != getattr(classifier, "backend", "torch"):
        raise PredictionError(
            f"backend={backend!r} but the classifier given runs on {getattr(classifier, 'backend', 'torch')}; pass "
            "the model's folder (an export folder for onnx) instead of a loaded classifier."
        )
    return classifier, feature_extractor or getattr(classifier, "feature_extractor", None)


__all__ = ["BACKENDS", "OnnxScorer", "load_backend", "prepare_backend", "resolve_onnx_model"]
