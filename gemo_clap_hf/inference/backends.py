"""What scores a batch: the torch classifier or an exported ONNX graph, behind one `Scorer` seam.

A `Scorer` takes a featurised batch (`input_values`, `audio_attention_mask`, and `clip_index` for long clips split
into windows) and returns the emotion probabilities, and the gender probabilities for ML-GEmo-CLAP models. The
torch scorer calls `GEmoClapForAudioClassification.forward` (the package's one scoring contract: emotion logits,
gender logits and audio embeddings from one audio-tower pass); the ONNX scorer runs the graph that
`gemo-clap export-onnx` wrote, whose `logits` and `audio_embeds` are that same forward traced.

The model source, the backend, the device and the thread count are checked here, once, when a scorer is made.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import PredictionError

BACKENDS = ("torch", "onnx")
# A Hub id is "name" or "org/name" of word characters, dots and dashes; anything else must be a local folder.
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def check_model_source(model: str) -> None:
    """Fail early for a local folder that is missing or holds no saved model; Hub ids are left to `from_pretrained`."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PredictionError(
                f"model folder {model!r} holds no config.json: it is not a saved GEmo-CLAP model. Pass the "
                "output_dir of a training run (or of `gemo-clap demo`), or a Hub id."
            )
        return
    if path.exists() or not _HUB_ID.match(model) or model.startswith("."):
        raise PredictionError(
            f"model folder {model!r} does not exist; pass the output_dir of a training run (or of `gemo-clap demo`), "
            "or a Hub id such as 'org/sl-gemo-clap'."
        )


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """`device` as a `torch.device`, or a `PredictionError` when it is not usable here ("cuda" without a GPU)."""
    if device is None:
        return None
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise PredictionError(f"--device {device!r} is not a device name; use cpu, cuda or cuda:N.") from error
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise PredictionError(f"--device {device}: this machine has {count} CUDA device(s); use --device cpu.")
    return resolved


def check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise PredictionError(f"--threads must be at least 1, got {threads}.")


def load_classifier(model: str, device: str | torch.device | None = None):
    """(GEmoClapForAudioClassification in eval mode on `device`, its feature extractor) from a folder or Hub id."""
    from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor
    from ..modeling_gemo_clap import GEmoClapForAudioClassification

    check_model_source(model)
    target = resolve_device(device)
    try:
        classifier = GEmoClapForAudioClassification.from_pretrained(model)
        feature_extractor = GEmoClapFeatureExtractor.from_pretrained(model)
    except OSError as error:
        where = "the folder" if Path(model).expanduser().is_dir() else "the Hub (offline? HF_HUB_OFFLINE=1)"
        raise PredictionError(
            f"cannot load a GEmo-CLAP model from {model!r} ({where}): {error}. Pass a local folder written by "
            "training or a reachable Hub id."
        ) from error
    if target is not None:
        classifier.to(target)
    return classifier.eval(), feature_extractor


class Scorer:
    """What the engine scores batches with: `scorer(inputs)` -> (emotion, gender or None) probabilities of a
    featurised batch, one row per clip (long clips' windows averaged), plus the model's `config` (labels, loss
    type) and, where it was loaded with one, its `feature_extractor`."""

    backend = "torch"
    config = None
    feature_extractor = None
    device = "cpu"
    threads = 1

    def __call__(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


class TorchScorer(Scorer):
    """The torch backend: `GEmoClapForAudioClassification.forward` on `device`, in evaluation mode."""

    def __init__(self, classifier, device: torch.device | None = None, feature_extractor=None):
        if device is not None:
            classifier.to(device)
        self.classifier, self.config = classifier.eval(), classifier.config
        self.device = next(classifier.parameters()).device
        self.feature_extractor = feature_extractor

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    @torch.no_grad()
    def __call__(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        names = ("input_values", "audio_attention_mask", "clip_index")
        tensors = {k: torch.as_tensor(inputs[k]).to(self.device) for k in names if k in inputs}
        output = self.classifier(**tensors)
        gender = output.gender_logits
        return output.logits.float().softmax(-1).cpu(), None if gender is None else gender.float().softmax(-1).cpu()


class OnnxScorer(Scorer):
    """An exported ONNX classifier as a `Scorer`; `threads` sets onnxruntime's intra-op threads (None: all cores)."""

    backend = "onnx"

    def __init__(self, model: str | os.PathLike, threads: int | None = None):
        from ..configuration_gemo_clap import GEmoClapConfig
        from .onnx_runtime import OnnxClassifier, resolve_onnx_model

        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            raise PredictionError("--backend onnx needs onnxruntime: pip install 'gemo-clap-hf[onnx]'.") from error
        folder, self.graph = resolve_onnx_model(model)
        self.runner = OnnxClassifier(folder, threads=threads, graph=self.graph)
        self.feature_extractor = self.runner.feature_extractor
        self.config = GEmoClapConfig.from_pretrained(folder)
        self.threads = threads or os.cpu_count() or 1
        self.device = f"cpu (onnxruntime, {self.graph})"

    def __call__(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        emotion, gender = self.runner.clip_logits(inputs, with_gender=self.config.loss_type == "ml")
        return emotion.softmax(-1), None if gender is None else gender.softmax(-1)


def as_scorer(classifier, device: str | torch.device | None = None) -> Scorer:
    """`classifier` as a `Scorer` on `device`: a torch classifier is wrapped in `TorchScorer`, a `TorchScorer` is
    moved, any other scorer is taken as it is (the onnx backend runs on the CPU only, so another device is an error)."""
    target = resolve_device(device)
    if not isinstance(classifier, Scorer):
        return TorchScorer(classifier, target)
    if isinstance(classifier, TorchScorer):
        return (
            classifier if target is None else TorchScorer(classifier.classifier, target, classifier.feature_extractor)
        )
    _check_runs_on_cpu(classifier.backend, device, target)
    return classifier


def _check_runs_on_cpu(backend: str, device, target: torch.device | None) -> None:
    if target is not None and target.type != "cpu":
        raise PredictionError(f"--device {device}: the {backend} backend runs on the CPU; drop --device.")


def load_backend(model: str | os.PathLike, backend: str = "torch", device=None, threads: int | None = None) -> Scorer:
    """The `Scorer` of a model: the torch classifier of a folder or Hub id (`threads` sets torch's intra-op threads),
    or an `OnnxScorer` of an `export-onnx` folder or `.onnx` file. Its `feature_extractor` is the model's."""
    if backend not in BACKENDS:
        raise PredictionError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    check_threads(threads)
    target = resolve_device(device)
    if backend == "onnx":
        _check_runs_on_cpu(backend, device, target)
        return OnnxScorer(model, threads)
    if threads is not None:
        torch.set_num_threads(threads)
    classifier, feature_extractor = load_classifier(str(model))
    return TorchScorer(classifier, target, feature_extractor)


def prepare_scorer(model, feature_extractor=None, backend: str | None = None, device=None, threads: int | None = None):
    """(scorer, feature extractor) for the engine's entry points: a folder, Hub id or `.onnx` file is loaded with
    `load_backend`; a loaded classifier or scorer is taken as it is and must match `backend` when given."""
    if isinstance(model, (str, os.PathLike)):
        scorer = load_backend(model, backend or "torch", device, threads)
    else:
        if backend is not None and backend != getattr(model, "backend", "torch"):
            raise PredictionError(
                f"backend={backend!r} but the classifier given runs on {getattr(model, 'backend', 'torch')}; pass "
                "the model's folder (an export folder for onnx) instead of a loaded classifier."
            )
        check_threads(threads)
        scorer = as_scorer(model, device)
    feature_extractor = feature_extractor or scorer.feature_extractor
    if feature_extractor is None:
        from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor

        feature_extractor = GEmoClapFeatureExtractor()
    return scorer, feature_extractor


__all__ = [
    "BACKENDS",
    "OnnxScorer",
    "Scorer",
    "TorchScorer",
    "as_scorer",
    "check_model_source",
    "load_backend",
    "load_classifier",
    "prepare_scorer",
    "resolve_device",
]
