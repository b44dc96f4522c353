"""Audio front end of GEmo-CLAP: turns raw waveforms into padded, normalised `input_values`.

This file travels with saved models (`trust_remote_code`), so it imports only numpy, torch and transformers;
librosa is imported lazily, only when a clip has to be resampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType


class GEmoClapAudioError(ValueError):
    """A clip that cannot be classified as given (empty, NaN, too short, ...). The message names the clip and the fix."""


def _clip_name(name: str | None) -> str:
    return f"clip {name!r}" if name is not None else "the clip"


def to_mono_float32(waveform: Any, name: str | None = None) -> np.ndarray:
    """Return a 1-D float32 waveform in [-1, 1] from int PCM or float, mono, (time, channels) or (channels, time).

    Integer PCM is scaled by its type's full range; multi-channel audio is averaged to mono. The channel axis is
    taken to be the shorter one, which holds for any clip longer than a few samples.
    """
    array = np.asarray(waveform)
    what = _clip_name(name)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise GEmoClapAudioError(f"{what} is not a numeric array (dtype {array.dtype}); pass a numpy array of samples.")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise GEmoClapAudioError(f"{what} is complex-valued; pass real-valued samples.")
    if np.issubdtype(array.dtype, np.signedinteger):
        array = array.astype(np.float64) / float(-np.iinfo(array.dtype).min)
    elif np.issubdtype(array.dtype, np.unsignedinteger):
        info = np.iinfo(array.dtype)
        half = (float(info.max) + 1.0) / 2.0
        array = (array.astype(np.float64) - half) / half
    if array.ndim == 2:
        channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
        array = array.mean(axis=channel_axis, dtype=np.float64)
    elif array.ndim != 1:
        raise GEmoClapAudioError(
            f"{what} has shape {array.shape}; pass a 1-D mono waveform or a 2-D (channels, time) / (time, channels) array."
        )
    if array.size == 0:
        raise GEmoClapAudioError(f"{what} is empty (0 samples); remove it from the input or check the file it came from.")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise GEmoClapAudioError(
            f"{what} contains {bad} NaN or infinite samples; repair or drop the clip (e.g. np.nan_to_num) before classifying."
        )
    return array.astype(np.float32, copy=False)


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int, name: str | None = None) -> np.ndarray:
    """Resample with librosa (soxr), imported lazily so that this file needs librosa only when rates differ."""
    if orig_rate == target_rate:
        return waveform
    if orig_rate is None or orig_rate <= 0:
        raise GEmoClapAudioError(f"{_clip_name(name)} has an invalid sampling rate {orig_rate!r}; pass the rate in Hz.")
    try:
        import librosa
    except ImportError as error:  # pragma: no cover - librosa is a dependency of the package
        raise GEmoClapAudioError(
            f"{_clip_name(name)} is at {orig_rate} Hz and must be resampled to {target_rate} Hz, which needs librosa: "
            "`pip install librosa`, or pass audio at the feature extractor's sampling rate."
        ) from error
    return librosa.resample(waveform, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq").astype(np.float32)


def prepare_waveform(
    waveform: Any, sampling_rate: int | None, target_rate: int, name: str | None = None
) -> np.ndarray:
    """Everything a raw clip needs before padding: numeric checks, mono float32, resampling."""
    mono = to_mono_float32(waveform, name)
    return resample(mono, sampling_rate if sampling_rate is not None else target_rate, target_rate, name)


class GEmoClapFeatureExtractor(SequenceFeatureExtractor):
    r"""Wav2Vec2-style feature extractor: per-clip zero-mean / unit-variance, zero padding, `audio_attention_mask`.

    Returns `audio_attention_mask` (not `attention_mask`) because the zero-shot pipeline passes audio and text
    inputs to the model in one call and the text tokenizer owns `attention_mask`.

    Args:
        sampling_rate: rate the audio tower was trained at; other rates are resampled.
        min_length: clips shorter than this many samples (the encoder's receptive field) are zero-padded to it,
            or rejected when `pad_short_clips=False`.
        max_length_s: clips longer than this are cut into windows of this length by `GEmoClapForAudioClassification`
            (see `split_into_windows`); `None` keeps whole clips.
    """

    model_input_names = ["input_values", "audio_attention_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        return_attention_mask: bool = True,
        min_length: int = 400,
        pad_short_clips: bool = True,
        max_length_s: float | None = None,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.do_normalize = do_normalize
        self.return_attention_mask = return_attention_mask
        self.min_length = int(min_length)
        self.pad_short_clips = pad_short_clips
        self.max_length_s = max_length_s

    def _check_length(self, waveform: np.ndarray, name: str | None) -> np.ndarray:
        if len(waveform) >= self.min_length:
            return waveform
        if not self.pad_short_clips:
            raise GEmoClapAudioError(
                f"{_clip_name(name)} has {len(waveform)} samples, fewer than the audio encoder's receptive field "
                f"({self.min_length} samples = {1000 * self.min_length / self.sampling_rate:.0f} ms at "
                f"{self.sampling_rate} Hz); pass a longer clip or set `pad_short_clips=True`."
            )
        return np.pad(waveform, (0, self.min_length - len(waveform)))

    @staticmethod
    def _normalize(waveform: np.ndarray) -> np.ndarray:
        # Wav2Vec2's zero-mean unit-variance normalisation, per clip and over its real samples only.
        return (waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)

    def __call__(
        self,
        raw_speech: np.ndarray | Sequence[Any],
        sampling_rate: int | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
        names: Sequence[str] | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Prepare one clip or a batch (a list of clips). `names` (e.g. file paths) label clips in error messages.

        A 2-D array whose shorter axis has at most 2 entries is read as one stereo clip; pass batches as lists.
        """
        is_batched = isinstance(raw_speech, (list, tuple)) or (
            isinstance(raw_speech, np.ndarray) and raw_speech.ndim == 2 and min(raw_speech.shape) > 2
        )
        # A 2-D array with one short axis of <= 2 is a stereo clip; a wider 2-D array is a batch of mono clips.
        clips = list(raw_speech) if is_batched else [raw_speech]
        if len(clips) == 0:
            raise GEmoClapAudioError("no audio was given (an empty batch); pass at least one clip.")
        if names is not None and len(names) != len(clips):
            raise ValueError(f"`names` has {len(names)} entries for {len(clips)} clips; give one name per clip.")
        target_rate = self.sampling_rate
        prepared = []
        for index, clip in enumerate(clips):
            name = names[index] if names is not None else (f"#{index}" if is_batched else None)
            waveform = self._check_length(prepare_waveform(clip, sampling_rate, target_rate, name), name)
            prepared.append(self._normalize(waveform) if self.do_normalize else waveform)

        encoded = BatchFeature({"input_values": prepared})
        padded = self.pad(
            encoded,
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=True,
        )
        result = {"input_values": [np.asarray(v, dtype=np.float32) for v in padded["input_values"]]}
        want_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        if want_mask:
            result["audio_attention_mask"] = [np.asarray(m, dtype=np.int32) for m in padded["attention_mask"]]
        return BatchFeature(result, tensor_type=return_tensors)

    def split_into_windows(self, waveform: np.ndarray) -> list[np.ndarray]:
        """Cut a long clip into `max_length_s` windows (the last one keeps at least `min_length` samples)."""
        if not self.max_length_s:
            return [waveform]
        window = int(round(self.max_length_s * self.sampling_rate))
        if len(waveform) <= window:
            return [waveform]
        starts = list(range(0, len(waveform), window))
        windows = [waveform[start : start + window] for start in starts]
        if len(windows) > 1 and len(windows[-1]) < self.min_length:
            tail = windows.pop()
            windows[-1] = np.concatenate([windows[-1], tail])
        return windows


__all__ = ["GEmoClapFeatureExtractor", "GEmoClapAudioError", "prepare_waveform", "to_mono_float32", "resample"]
