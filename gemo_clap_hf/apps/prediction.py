"""Classify audio files with a trained GEmo-CLAP model: the engine behind `gemo-clap predict`.

Files are decoded with soundfile (`gemo_clap_hf.data.load_audio`), so no ffmpeg is needed. Missing files and model
folders are reported before anything heavy is loaded, with the path and the fix in the message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

# A Hub id is "name" or "org/name" of word characters, dots and dashes; anything else must be a local folder.
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


class PredictionError(ValueError):
    """A problem with the model or the files given to `predict`; the message names the path and the fix."""


@dataclass
class Prediction:
    """One file's result: emotions (and, for ML-GEmo-CLAP models, genders) with softmax scores, best first."""

    file: str
    emotions: list[dict] = field(default_factory=list)
    genders: list[dict] | None = None

    def to_dict(self) -> dict:
        result = {"file": self.file, "emotions": self.emotions}
        if self.genders is not None:
            result["gender"] = self.genders[0]["label"]
            result["genders"] = self.genders
        return result


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


def load_classifier(model: str):
    """(GEmoClapForAudioClassification in eval mode, its feature extractor) from a folder or Hub id."""
    from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor
    from ..modeling_gemo_clap import GEmoClapForAudioClassification

    check_model_source(model)
    try:
        classifier = GEmoClapForAudioClassification.from_pretrained(model)
        feature_extractor = GEmoClapFeatureExtractor.from_pretrained(model)
    except OSError as error:
        where = "the folder" if Path(model).expanduser().is_dir() else "the Hub (offline? HF_HUB_OFFLINE=1)"
        raise PredictionError(
            f"cannot load a GEmo-CLAP model from {model!r} ({where}): {error}. Pass a local folder written by "
            "training or a reachable Hub id."
        ) from error
    return classifier.eval(), feature_extractor


def _ranked(logits: torch.Tensor, labels: Sequence[str], top_k: int | None) -> list[dict]:
    scores = logits.float().softmax(-1)
    order = scores.argsort(descending=True)[: top_k or len(labels)]
    return [{"label": labels[int(i)], "score": round(float(scores[i]), 4)} for i in order]


@torch.no_grad()
def predict_files(
    classifier, feature_extractor, paths: Sequence[str | os.PathLike], top_k: int | None = None
) -> list[Prediction]:
    """Emotion scores for each file (one at a time: no padding, any length); genders too for `loss_type="ml"`.

    A file longer than the feature extractor's `max_length_s` is scored on all its windows (`clip_index`), and
    emotion and gender scores share one audio-tower pass.
    """
    from ..data import load_audio

    config = classifier.config
    with_gender = config.loss_type == "ml"
    results = []
    for path in check_files(paths):
        waveform = load_audio(str(path), sampling_rate=feature_extractor.sampling_rate)
        inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
        audio_embeds = classifier.gemo_clap.get_audio_features(
            inputs["input_values"], inputs.get("audio_attention_mask"), inputs.get("clip_index")
        )
        emotion_logits = classifier.label_logits(audio_embeds, "emotion")[0]
        prediction = Prediction(str(path), _ranked(emotion_logits, config.emotion_labels, top_k))
        if with_gender:
            gender_logits = classifier.label_logits(audio_embeds, "gender")[0]
            prediction.genders = _ranked(gender_logits, config.gender_labels, None)
        results.append(prediction)
    return results


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


__all__ = ["Prediction", "PredictionError", "check_files", "check_model_source", "format_predictions",
           "load_classifier", "predict_files"]
