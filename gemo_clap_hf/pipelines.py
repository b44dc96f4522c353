"""Audio pipelines that decode files with soundfile and resample with librosa.

transformers' audio pipelines read paths and bytes through an `ffmpeg` binary and resample `{"array",
"sampling_rate"}` inputs with torchaudio; neither is a dependency of this package (nor installed on many
machines). These subclasses turn every accepted input (torchcodec `AudioDecoder` objects from `datasets` Audio
columns included) into a mono 16 kHz array first, with the package's own decoding and checks, then featurise it as
the stock preprocess does, asking the feature extractor for a padded batch (it pads only when asked, and a long
clip's windows differ in length); forward and postprocess are transformers' own.

Every array goes through the package's checks (`prepare_waveform`), so bad audio raises `GEmoClapAudioError`
with the fix, not an error from deep inside torch. Long clips are windowed by the feature extractor (see
`GEmoClapFeatureExtractor.max_length_s`) and averaged back by the model: one result per clip.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import BatchEncoding
from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline, ZeroShotAudioClassificationPipeline
from transformers.utils import logging

from .feature_extraction_gemo_clap import is_audio_decoder, prepare_waveform

logger = logging.get_logger(__name__)

# transformers' default `hypothesis_template`, kept when a tokenizer scores any text.
STOCK_HYPOTHESIS_TEMPLATE = "This is a sound of {}."


def decode_pipeline_input(inputs: Any, sampling_rate: int) -> Any:
    """Paths, bytes, arrays, tensors, `{"array"|"raw", "sampling_rate"}` dicts and torchcodec `AudioDecoder`
    objects (a decoded `datasets` Audio column) become mono float32 arrays at `sampling_rate`, checked by
    `prepare_waveform`; anything else is left for the stock pipeline to reject."""
    if is_audio_decoder(inputs):
        return prepare_waveform(inputs, None, sampling_rate)
    if isinstance(inputs, (str, bytes)) and not (
        isinstance(inputs, str) and inputs.startswith(("http://", "https://"))
    ):
        from .data.audio import load_audio

        return load_audio(inputs, sampling_rate=sampling_rate)
    if isinstance(inputs, dict) and "sampling_rate" in inputs and ("array" in inputs or "raw" in inputs):
        array = inputs["raw"] if "raw" in inputs else inputs["array"]
        return prepare_waveform(_to_numpy(array), inputs["sampling_rate"], sampling_rate, name=inputs.get("path"))
    if isinstance(inputs, np.ndarray) or hasattr(inputs, "detach"):
        array = _to_numpy(inputs)
        return prepare_waveform(array, sampling_rate, sampling_rate, name=_describe(inputs))
    return inputs


def _describe(array: Any) -> str:
    """A bare array has no name: errors describe it instead, so the caller can tell which input failed."""
    return f"<{str(array.dtype).replace('torch.', '')} array of shape {tuple(array.shape)}>"


def _to_numpy(array: Any) -> Any:
    if hasattr(array, "detach"):  # a torch tensor (bfloat16 has no numpy dtype)
        tensor = array.detach().cpu()
        return tensor.float().numpy() if tensor.dtype.is_floating_point else tensor.numpy()
    return array


def _features(pipe, audio: Any):
    """The feature extractor's padded batch for one decoded clip (several rows when it is split into windows),
    in the pipeline's dtype. The stock preprocess calls the feature extractor without `padding`, which pads only
    when asked."""
    extractor = pipe.feature_extractor
    features = extractor(audio, sampling_rate=extractor.sampling_rate, padding=True, return_tensors="pt")
    return features if pipe.dtype is None else features.to(dtype=pipe.dtype)


def _is_gemo_clap(model: Any) -> bool:
    """Whether `model` (an instance, or a name/path that `pipeline()` has not loaded yet) is a GEmo-CLAP model."""
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) == "gemo_clap"


class _StockPipelineForOtherModels:
    """Build the stock transformers pipeline for any model that is not GEmo-CLAP.

    The task registry points at the GEmo-CLAP subclasses, so that `pipeline("audio-classification",
    model="org/sl-gemo-clap")` decodes audio without ffmpeg; every other model gets exactly the class transformers
    would have given it (`pipeline()` passes the loaded model as `model=`).
    """

    stock_class: type

    def __new__(cls, *args, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        if not _is_gemo_clap(model):
            return cls.stock_class(*args, **kwargs)
        return super().__new__(cls)


class _OneClipPerBatchWhenWindowing:
    """Run clips one at a time when the feature extractor windows long clips.

    A windowed clip becomes several rows plus a `clip_index`, which the stock batching (`pad_collate_fn`) would
    mix across clips; each clip's windows are still batched inside the model.
    """

    def get_iterator(self, inputs, num_workers, batch_size, *args, **kwargs):
        windows = _is_gemo_clap(self.model) and self.feature_extractor.max_length_s
        if batch_size > 1 and windows:
            logger.warning_once(
                "GEmo-CLAP pipelines run clips one at a time while the feature extractor windows long clips "
                "(max_length_s is set); set `pipe.feature_extractor.max_length_s = None` to batch clips (long clips "
                "then run whole)."
            )
            batch_size = 1
        return super().get_iterator(inputs, num_workers, batch_size, *args, **kwargs)


class GEmoClapAudioClassificationPipeline(
    _StockPipelineForOtherModels, _OneClipPerBatchWhenWindowing, AudioClassificationPipeline
):
    """`pipeline("audio-classification")` without ffmpeg or torchaudio (see the module docstring)."""

    stock_class = AudioClassificationPipeline

    def preprocess(self, inputs):
        audio = decode_pipeline_input(inputs, self.feature_extractor.sampling_rate)
        if not isinstance(audio, np.ndarray):
            return super().preprocess(audio)  # the stock pipeline's error for what neither can read
        return _features(self, audio)


class GEmoClapZeroShotAudioClassificationPipeline(
    _StockPipelineForOtherModels, _OneClipPerBatchWhenWindowing, ZeroShotAudioClassificationPipeline
):
    """`pipeline("zero-shot-audio-classification")` that also accepts paths, bytes, dicts, tensors and stereo arrays.

    A GEmo-CLAP folder saved without a tokenizer (`model.save_pretrained` alone) still scores the prompts whose
    token ids were saved with the model: its emotion or its gender labels. `hypothesis_template` then defaults to
    the model's `prompt_template`; any other text needs `tokenizer=` (the text encoder's).
    """

    stock_class = ZeroShotAudioClassificationPipeline
    _load_tokenizer = None  # loaded when the folder has one; a GEmo-CLAP model can do without (see above)

    def __new__(cls, *args, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        if not _is_gemo_clap(model) and kwargs.get("tokenizer") is None:
            # transformers would have refused this at pipeline() (the tokenizer is optional only for GEmo-CLAP).
            name = getattr(model, "name_or_path", model)
            logger.warning(
                f"no tokenizer was loaded for {name!r}: zero-shot-audio-classification needs one for this model; "
                "pass `tokenizer=` to pipeline()."
            )
        return super().__new__(cls, *args, **kwargs)

    def preprocess(self, audio, candidate_labels=None, hypothesis_template=None):
        audio = decode_pipeline_input(audio, self.feature_extractor.sampling_rate)
        template = hypothesis_template
        if not isinstance(audio, np.ndarray):  # left for the stock pipeline to reject
            template = STOCK_HYPOTHESIS_TEMPLATE if template is None else template
            return super().preprocess(audio, candidate_labels=candidate_labels, hypothesis_template=template)
        if self.tokenizer is None:
            return self._preprocess_with_saved_prompts(audio, candidate_labels, template)
        template = STOCK_HYPOTHESIS_TEMPLATE if template is None else template
        inputs = _features(self, [audio])
        inputs["candidate_labels"] = candidate_labels
        texts = [template.format(label) for label in candidate_labels]
        inputs["text_inputs"] = [self.tokenizer(texts, return_tensors="pt", padding=True)]
        return inputs

    def _preprocess_with_saved_prompts(self, audio, candidate_labels, hypothesis_template):
        config = self.model.config
        template = config.prompt_template if hypothesis_template is None else hypothesis_template
        texts = [template.format(label) for label in candidate_labels]
        text_inputs = self.model.prompt_table.saved_inputs(texts)
        if text_inputs is None:
            raise ValueError(
                f"this GEmo-CLAP model has no tokenizer, so the zero-shot pipeline scores only the prompts saved with "
                f"it, and {texts} are not among them: pass `candidate_labels` from {config.emotion_labels} or from "
                f"{config.gender_labels} with hypothesis_template={config.prompt_template!r} (the default here), or "
                "pass `tokenizer=` (the text encoder's) to pipeline() to score any text."
            )
        inputs = _features(self, [audio])
        inputs["candidate_labels"] = candidate_labels
        inputs["text_inputs"] = [BatchEncoding(text_inputs)]
        return inputs


def register_pipelines() -> None:
    """Point the two audio tasks at the subclasses above, keeping the tasks' models and defaults as they are.

    Only GEmo-CLAP models get the subclasses: for any other model they construct the stock class (see
    `_StockPipelineForOtherModels`). Swapping the implementation, rather than `register_pipeline`, avoids an
    overwrite warning at every import.
    """
    tasks = PIPELINE_REGISTRY.supported_tasks
    tasks["audio-classification"]["impl"] = GEmoClapAudioClassificationPipeline
    tasks["zero-shot-audio-classification"]["impl"] = GEmoClapZeroShotAudioClassificationPipeline


__all__ = [
    "GEmoClapAudioClassificationPipeline",
    "GEmoClapZeroShotAudioClassificationPipeline",
    "decode_pipeline_input",
    "register_pipelines",
]
