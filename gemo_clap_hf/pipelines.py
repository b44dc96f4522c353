"""Audio pipelines that decode files with soundfile and resample with librosa.

transformers' audio pipelines read paths and bytes through an `ffmpeg` binary and resample `{"array",
"sampling_rate"}` inputs with torchaudio; neither is a dependency of this package (nor installed on many
machines). These subclasses turn every accepted input into a mono 16 kHz array first, with the package's own
decoding and checks, and then hand it to the stock pipeline unchanged: for an array at the model's rate they
behave exactly like transformers' classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline, ZeroShotAudioClassificationPipeline

from .feature_extraction_gemo_clap import prepare_waveform


def decode_pipeline_input(inputs: Any, sampling_rate: int) -> Any:
    """Paths, bytes and `{"array"|"raw", "sampling_rate"}` dicts become mono float32 arrays at `sampling_rate`."""
    if isinstance(inputs, (str, bytes)) and not (isinstance(inputs, str) and inputs.startswith(("http://", "https://"))):
        from .data.audio import load_audio

        return load_audio(inputs, sampling_rate=sampling_rate)
    if isinstance(inputs, dict) and "sampling_rate" in inputs and ("array" in inputs or "raw" in inputs):
        array = inputs["raw"] if "raw" in inputs else inputs["array"]
        if hasattr(array, "detach"):
            array = array.detach().cpu().numpy()
        return prepare_waveform(array, inputs["sampling_rate"], sampling_rate, name=inputs.get("path"))
    if isinstance(inputs, np.ndarray) and inputs.ndim == 2:
        return prepare_waveform(inputs, sampling_rate, sampling_rate)
    return inputs


class GEmoClapAudioClassificationPipeline(AudioClassificationPipeline):
    """`pipeline("audio-classification")` without ffmpeg or torchaudio (see the module docstring)."""

    def preprocess(self, inputs):
        return super().preprocess(decode_pipeline_input(inputs, self.feature_extractor.sampling_rate))


class GEmoClapZeroShotAudioClassificationPipeline(ZeroShotAudioClassificationPipeline):
    """`pipeline("zero-shot-audio-classification")` that also accepts paths, bytes, dicts and stereo arrays."""

    def preprocess(self, audio, candidate_labels=None, hypothesis_template="This is a sound of {}."):
        audio = decode_pipeline_input(audio, self.feature_extractor.sampling_rate)
        return super().preprocess(audio, candidate_labels=candidate_labels, hypothesis_template=hypothesis_template)


def register_pipelines() -> None:
    """Point the two audio tasks at the subclasses above, keeping the tasks' models and defaults as they are.

    The subclasses only widen what the stock pipelines accept, so swapping the implementation (instead of
    `register_pipeline`, which would also log an overwrite warning at every import) is safe for other models too.
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
