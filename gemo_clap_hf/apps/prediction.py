"""Classify many audio files with a trained GEmo-CLAP model: the batched engine behind `gemo-clap predict`.

`iter_predictions` reads every file's length from its header, sorts the files by length and cuts them into batches
of similar lengths (little padding), decodes each batch in background threads while the model runs on the one
before, and yields one `Prediction` per file, or a `Failure` for a file that cannot be classified (unreadable, empty,
NaN, too short): a bad file is reported, never fatal. Long files are cut into windows by the feature extractor and
scored on all of them (`clip_index`). Emotion and gender scores come from one audio-tower pass.

A clip's scores do not depend on the clips it is batched with (the model is padding-invariant for every supported
speech tower): batching changes the speed, not the answer.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

# A Hub id is "name" or "org/name" of word characters, dots and dashes; anything else must be a local folder.
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
DEFAULT_BATCH_SIZE = 8
DEFAULT_NUM_WORKERS = 2


class PredictionError(ValueError):
    """A problem with the model or the files given to `predict`; the message names the path and the fix."""


@dataclass
class Prediction:
    """One file's result: emotions (and, for ML-GEmo-CLAP models, genders) with softmax scores, best first.

    `emotions`/`genders` are ranked and rounded for display (cut to `top_k`); `probabilities` and
    `gender_probabilities` hold every label's unrounded probability in label-id order; `duration` is in seconds.
    """

    file: str
    emotions: list[dict] = field(default_factory=list)
    genders: list[dict] | None = None
    probabilities: dict[str, float] = field(default_factory=dict, repr=False)
    gender_probabilities: dict[str, float] | None = field(default=None, repr=False)
    duration: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict:
        """The `--json` form: file, ranked emotions, and for ML models the best gender and the ranked genders."""
        result = {"file": self.file, "emotions": self.emotions}
        if self.genders is not None:
            result["gender"] = self.genders[0]["label"]
            result["genders"] = self.genders
        return result

    def to_row(self) -> dict:
        """The CSV/JSONL row: `file`, `emotion`, `score`, one probability per emotion label, then `gender` and
        `gender_score` for ML models."""
        best = max(self.probabilities, key=self.probabilities.get)
        row = {"file": self.file, "emotion": best, "score": self.probabilities[best], **self.probabilities}
        if self.gender_probabilities is not None:
            gender = max(self.gender_probabilities, key=self.gender_probabilities.get)
            row.update(gender=gender, gender_score=self.gender_probabilities[gender])
        return row


@dataclass
class Failure:
    """A file that could not be classified, and why (the message names the file and the fix)."""

    file: str
    reason: str


class Predictions(list):
    """The `Prediction`s of `predict_files`, in input order; `failures` lists the files that were skipped."""

    def __init__(self, predictions=(), failures=()):
        super().__init__(predictions)
        self.failures: list[Failure] = list(failures)


def check_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The paths as `Path`s, or a `PredictionError` naming every one that is missing or not a file."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise PredictionError(f"audio file(s) not found: {', '.join(missing)}; check the path(s).")
    return paths


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


def _ranked(probabilities: torch.Tensor, labels: Sequence[str], top_k: int | None) -> list[dict]:
    order = probabilities.argsort(descending=True)[: top_k or len(labels)]
    return [{"label": labels[int(i)], "score": round(float(probabilities[i]), 4)} for i in order]


@dataclass
class _Clip:
    file: str
    num_samples: int = 0


def _read_length(clip: _Clip, rate: int) -> _Clip | Failure:
    """The clip with its length in samples at `rate`, read from the file header (no decoding), or a Failure."""
    from ..data import audio_info
    from ..feature_extraction_gemo_clap import GEmoClapAudioError

    try:
        clip.num_samples = audio_info(clip.file).num_samples(rate)
    except (GEmoClapAudioError, OSError) as error:
        return Failure(clip.file, str(error))
    return clip


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into `lengths` grouped into batches of at most `batch_size` clips of similar length (sorted)."""
    if batch_size < 1:
        raise PredictionError(f"batch_size must be at least 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _decode_batch(feature_extractor, clips: list[_Clip]) -> tuple[dict | None, list[_Clip], list[Failure]]:
    """Decode and featurise one batch; a clip that fails is split off as a Failure and the rest still batch."""
    from ..data import load_audio
    from ..feature_extraction_gemo_clap import GEmoClapAudioError

    rate = feature_extractor.sampling_rate
    waveforms, good, failures = [], [], []
    for clip in clips:
        try:
            waveforms.append(load_audio(clip.file, sampling_rate=rate))
            good.append(clip)
        except (GEmoClapAudioError, OSError) as error:
            failures.append(Failure(clip.file, str(error)))

    def featurise(items, arrays):
        return feature_extractor(
            arrays, sampling_rate=rate, padding=True, names=[c.file for c in items], return_tensors="pt"
        )

    try:
        return (featurise(good, waveforms) if good else None), good, failures
    except GEmoClapAudioError:  # one clip the feature extractor refuses (too short): find it, batch the others
        kept, kept_waveforms = [], []
        for clip, waveform in zip(good, waveforms):
            try:
                featurise([clip], [waveform])
            except GEmoClapAudioError as error:
                failures.append(Failure(clip.file, str(error)))
            else:
                kept.append(clip)
                kept_waveforms.append(waveform)
        return (featurise(kept, kept_waveforms) if kept else None), kept, failures


@torch.no_grad()
def _score(classifier, inputs: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Emotion (and, for ML models, gender) probabilities of a batch, from one audio-tower pass."""
    tensors = {k: inputs[k].to(device) for k in ("input_values", "audio_attention_mask", "clip_index") if k in inputs}
    embeds = classifier.gemo_clap.get_audio_features(**tensors, return_dict=True).pooler_output
    emotion = classifier.label_logits(embeds, "emotion").float().softmax(-1).cpu()
    gender = None
    if classifier.config.loss_type == "ml":
        gender = classifier.label_logits(embeds, "gender").float().softmax(-1).cpu()
    return emotion, gender


class Scorer:
    """What `iter_predictions` scores batches with: `scorer(inputs)` -> (emotion, gender or None) probabilities of
    a featurised batch (long clips averaged over their windows), and the model's `config` (labels, loss type).

    `TorchScorer` runs a `GEmoClapForAudioClassification`; `onnx_backend.OnnxScorer` an exported ONNX graph.
    """

    backend = "torch"
    config = None
    device = "cpu"
    threads = 1

    def __call__(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


class TorchScorer(Scorer):
    """The torch backend: the classifier (moved to `device`, in evaluation mode) and one audio-tower pass."""

    def __init__(self, classifier, device: str | torch.device | None = None):
        target = resolve_device(device)
        if target is not None:
            classifier.to(target)
        self.classifier, self.config = classifier.eval(), classifier.config
        self.device = next(classifier.parameters()).device

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    def __call__(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        return _score(self.classifier, inputs, self.device)


def as_scorer(classifier, device: str | torch.device | None = None) -> Scorer:
    """`classifier` as a `Scorer`: a torch classifier wrapped in `TorchScorer`, a scorer as it is (the onnx backend
    runs on the CPU only, so another `device` is an error)."""
    if not isinstance(classifier, Scorer):
        return TorchScorer(classifier, device)
    target = resolve_device(device)
    if target is not None and target.type != "cpu":
        raise PredictionError(f"--device {device}: the {classifier.backend} backend runs on the CPU; drop --device.")
    return classifier


def iter_predictions(
    classifier,
    feature_extractor,
    paths: Sequence[str | os.PathLike],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    top_k: int | None = None,
    num_workers: int = DEFAULT_NUM_WORKERS,
) -> Iterator[Prediction | Failure]:
    """A `Prediction` or a `Failure` per file, as batches finish (shortest files first, not in input order).

    Files are batched `batch_size` at a time by similar length and decoded by `num_workers` background threads,
    at most `num_workers + 1` batches ahead. `classifier` is a `GEmoClapForAudioClassification` (put in evaluation
    mode and moved to `device`, default where it is) or a `Scorer` such as `onnx_backend.OnnxScorer`.
    Missing, unreadable, empty, NaN or too-short files come back as `Failure`s; the other files are still scored.
    """
    if top_k is not None and top_k < 1:
        raise PredictionError(f"top_k must be at least 1, got {top_k}.")
    scorer = as_scorer(classifier, device)
    emotion_labels, gender_labels = list(scorer.config.emotion_labels), list(scorer.config.gender_labels)
    rate = feature_extractor.sampling_rate
    clips = [_Clip(str(path)) for path in paths]
    with ThreadPoolExecutor(max_workers=max(1, num_workers), thread_name_prefix="gemo-clap-decode") as pool:
        readable = []
        for result in pool.map(lambda clip: _read_length(clip, rate), clips):
            if isinstance(result, Failure):
                yield result
            else:
                readable.append(result)
        batches = [
            [readable[i] for i in bucket] for bucket in length_buckets([c.num_samples for c in readable], batch_size)
        ]
        pending = [pool.submit(_decode_batch, feature_extractor, batch) for batch in batches[: num_workers + 1]]
        for next_batch in range(len(pending), len(batches) + len(pending)):
            inputs, good, failures = pending.pop(0).result()
            if next_batch < len(batches):  # keep the workers busy while the model runs
                pending.append(pool.submit(_decode_batch, feature_extractor, batches[next_batch]))
            yield from failures
            if not good:
                continue
            emotion, gender = scorer(inputs)
            for row, clip in enumerate(good):
                prediction = Prediction(
                    clip.file,
                    _ranked(emotion[row], emotion_labels, top_k),
                    probabilities={label: float(p) for label, p in zip(emotion_labels, emotion[row])},
                    duration=clip.num_samples / rate,
                )
                if gender is not None:
                    prediction.genders = _ranked(gender[row], gender_labels, None)
                    prediction.gender_probabilities = {label: float(p) for label, p in zip(gender_labels, gender[row])}
                yield prediction


def predict_files(
    classifier,
    feature_extractor,
    paths: Sequence[str | os.PathLike],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    top_k: int | None = None,
    num_workers: int = DEFAULT_NUM_WORKERS,
    backend: str | None = None,
    threads: int | None = None,
    segments: bool = False,
    **segment_options,
) -> Predictions:
    """Emotion scores for each file, batched by length (see `iter_predictions`); genders too for `loss_type="ml"`.

    `classifier` is a loaded classifier or `Scorer`, or a model folder / Hub id (with `backend="onnx"`: an
    `export-onnx` folder or `.onnx` file, run by onnxruntime with `threads` intra-op threads) that is loaded here,
    with its own feature extractor when `feature_extractor` is None. `segments=True` scores each file window by
    window instead (`segments.predict_segments`, options `window`, `hop`, `vad`, `merge`) and returns one
    `SegmentedFile` per file.

    Returns the predictions in input order; files that could not be classified are left out, logged as warnings
    and listed in the result's `failures`. A file longer than the feature extractor's `max_length_s` is scored on
    all its windows (`clip_index`). Each file's scores equal its one-at-a-time scores (`batch_size=1`) to 1e-4.
    """
    from .onnx_backend import prepare_backend

    classifier, feature_extractor = prepare_backend(classifier, feature_extractor, backend, device, threads)
    if segments:
        from .segments import predict_segments

        found = predict_segments(classifier, feature_extractor, paths, batch_size, device, **segment_options)
        for failure in found.failures:
            logger.warning("skipped %s: %s", failure.file, failure.reason)
        return found
    position = {}
    for index, path in enumerate(paths):
        position.setdefault(str(path), index)
    results = list(
        iter_predictions(classifier, feature_extractor, list(position), batch_size, device, top_k, num_workers)
    )
    failures = [r for r in results if isinstance(r, Failure)]
    for failure in failures:
        logger.warning("skipped %s: %s", failure.file, failure.reason)
    predictions = sorted((r for r in results if isinstance(r, Prediction)), key=lambda p: position[p.file])
    return Predictions(predictions, failures)


def format_predictions(predictions: Sequence[Prediction]) -> str:
    """Human-readable lines: the file, then its top emotions with scores (and the gender for ML models)."""
    lines = []
    for prediction in predictions:
        emotions = ", ".join(f"{e['label']} {e['score']:.2f}" for e in prediction.emotions)
        lines.append(f"{prediction.file}: {emotions}")
        if prediction.genders is not None:
            best = prediction.genders[0]
            lines.append(f"  gender: {best['label']} {best['score']:.2f}")
    return "\n".join(lines)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Failure",
    "Prediction",
    "PredictionError",
    "Predictions",
    "Scorer",
    "TorchScorer",
    "as_scorer",
    "check_files",
    "check_model_source",
    "format_predictions",
    "iter_predictions",
    "length_buckets",
    "load_classifier",
    "predict_files",
    "resolve_device",
]
