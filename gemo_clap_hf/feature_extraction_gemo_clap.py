"""Audio front end of GEmo-CLAP: turns raw waveforms into padded, normalised `input_values`.

This file travels with saved models (`trust_remote_code`), so it imports only numpy, torch, transformers and its
sibling auto_map file; librosa is imported lazily, only when a clip has to be resampled.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType

from .auto_map_gemo_clap import auto_map_of_folder
from .errors import GEmoClapAudioError

# Float audio is expected in [-1, 1]; int PCM cast to float (up to 2**15 or 2**31) still normalises fine. A larger peak
# is not audio as given (bytes read with the wrong dtype, uninitialised memory) and would overflow float32 maths.
MAX_ABS_AMPLITUDE = float(2**31)
# Long clips are cut into windows of this many seconds: every IEMOCAP utterance but a handful fits in one, and a
# window's self-attention (1,500 frames) stays small; a 10-minute file costs 20 windows, not a 30,000² attention map.
DEFAULT_MAX_LENGTH_S = 30.0


def _clip_name(name: str | None) -> str:
    return f"clip {name!r}" if name is not None else "the clip"


def _check_samples(array: np.ndarray, what: str) -> None:
    """Reject samples that no amount of normalisation makes usable: NaN/inf, or peaks that are not audio."""
    if array.size == 0:
        raise GEmoClapAudioError(
            f"{what} is empty (0 samples); remove it from the input or check the file it came from."
        )
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise GEmoClapAudioError(
            f"{what} contains {bad} NaN or infinite samples; repair or drop the clip (e.g. np.nan_to_num) "
            "before classifying."
        )
    peak = float(np.max(np.abs(array)))
    if peak > MAX_ABS_AMPLITUDE:
        raise GEmoClapAudioError(
            f"{what} has a peak amplitude of {peak:.3g}, beyond any PCM scale (float audio belongs in [-1, 1]; "
            f"the limit is 2**31); check how it was decoded (bytes read with the wrong dtype?) and scale it to [-1, 1]."
        )


def to_mono_float32(waveform: Any, name: str | None = None) -> np.ndarray:
    """Return a 1-D float32 waveform in [-1, 1] from int PCM or float, mono, (time, channels) or (channels, time).

    Integer PCM is scaled by its type's full range; multi-channel audio is averaged to mono. The channel axis is
    taken to be the shorter one, which holds for any clip longer than a few samples. Empty clips, NaN/inf and
    peaks above `MAX_ABS_AMPLITUDE` are rejected (checked before any float32 cast, which would overflow).
    """
    array = np.asarray(waveform)
    what = _clip_name(name)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise GEmoClapAudioError(f"{what} is not a numeric array (dtype {array.dtype}); pass a numpy array of samples.")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise GEmoClapAudioError(f"{what} is complex-valued; pass real-valued samples.")
    if array.ndim not in (1, 2):
        raise GEmoClapAudioError(
            f"{what} has shape {array.shape}; pass a 1-D mono waveform or a 2-D (channels, time) / "
            "(time, channels) array."
        )
    if np.issubdtype(array.dtype, np.signedinteger):
        array = array.astype(np.float64) / float(-np.iinfo(array.dtype).min)
    elif np.issubdtype(array.dtype, np.unsignedinteger):
        info = np.iinfo(array.dtype)
        half = (float(info.max) + 1.0) / 2.0
        array = (array.astype(np.float64) - half) / half
    _check_samples(array, what)
    if array.ndim == 2:
        channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
        array = array.mean(axis=channel_axis, dtype=np.float64)
    return array.astype(np.float32, copy=False)


def _is_positive_number(value: Any) -> bool:
    """A finite real number above 0 (bools, NaN, inf and strings are not)."""
    return not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value) and value > 0


def _check_rate(rate: Any, name: str | None) -> None:
    if not _is_positive_number(rate):
        raise GEmoClapAudioError(
            f"{_clip_name(name)} has an invalid sampling rate {rate!r}; pass the clip's rate in Hz as a positive "
            "number "
            "(e.g. sampling_rate=16000)."
        )


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int, name: str | None = None) -> np.ndarray:
    """Resample with librosa (soxr), imported lazily so that this file needs librosa only when rates differ."""
    _check_rate(orig_rate, name)
    if orig_rate == target_rate:
        return waveform
    try:
        import librosa
    except ImportError as error:  # pragma: no cover - librosa is a dependency of the package
        raise GEmoClapAudioError(
            f"{_clip_name(name)} is at {orig_rate} Hz and must be resampled to {target_rate} Hz, which needs librosa: "
            "`pip install librosa`, or pass audio at the feature extractor's sampling rate."
        ) from error
    return librosa.resample(waveform, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq").astype(np.float32)


def is_audio_decoder(value: Any) -> bool:
    """Whether `value` is a torchcodec `AudioDecoder` (what a `datasets` Audio column holds when torchcodec is
    installed). A decoder exists only once torchcodec is imported, so torchcodec is never imported here."""
    torchcodec = sys.modules.get("torchcodec")
    decoders = getattr(torchcodec, "decoders", None)
    return decoders is not None and isinstance(value, decoders.AudioDecoder)


def unpack_clip(clip: Any, name: str | None = None) -> tuple[Any, int | None]:
    """The samples of a clip and the rate it carries: an array or tensor as given (no rate of its own), a
    `{"array", "sampling_rate"}` dict (`datasets`' decoded audio; "raw" is read as "array", as transformers'
    pipelines do), or a torchcodec `AudioDecoder`, decoded whole ((channels, time) samples at its output rate)."""
    if isinstance(clip, dict):
        if "sampling_rate" in clip and ("array" in clip or "raw" in clip):
            return (clip["raw"] if "raw" in clip else clip["array"]), clip["sampling_rate"]
        raise GEmoClapAudioError(
            f"{_clip_name(name)} is a dict with keys {sorted(clip)}; pass decoded audio as "
            '{"array": samples, "sampling_rate": rate} (a `datasets` Audio column decodes to that). Files '
            '(paths, {"path", "bytes"} dicts) are decoded by `gemo_clap_hf.data.load_audio` and the pipelines.'
        )
    if is_audio_decoder(clip):
        samples = clip.get_all_samples()
        return samples.data.cpu().numpy(), int(samples.sample_rate)
    return clip, None


def _clip_rate(own_rate: int | None, given_rate: int | None, name: str | None) -> int | None:
    """The rate a clip is at: the one it carries (a dict, a decoder), which a given `sampling_rate` must match."""
    if own_rate is None or given_rate is None or own_rate == given_rate:
        return own_rate if own_rate is not None else given_rate
    raise GEmoClapAudioError(
        f"{_clip_name(name)} carries its own sampling rate ({own_rate} Hz) but sampling_rate={given_rate} was "
        "passed; drop the `sampling_rate` argument (the clip's own rate is used) or pass the clip's rate."
    )


def prepare_waveform(clip: Any, sampling_rate: int | None, target_rate: int, name: str | None = None) -> np.ndarray:
    """Everything a raw clip needs before padding: numeric checks, mono float32, resampling to `target_rate`.

    `clip` is an array or tensor at `sampling_rate` (`None`: already at `target_rate`), or a clip that carries its
    own rate (a `{"array", "sampling_rate"}` dict, a torchcodec `AudioDecoder`; see `unpack_clip`).
    """
    samples, own_rate = unpack_clip(clip, name)
    rate = _clip_rate(own_rate, sampling_rate, name)
    mono = to_mono_float32(samples, name)
    return resample(mono, rate if rate is not None else target_rate, target_rate, name)


class GEmoClapFeatureExtractor(SequenceFeatureExtractor):
    r"""Wav2Vec2-style feature extractor: per-clip zero-mean / unit-variance, zero padding, `audio_attention_mask`.

    Returns `audio_attention_mask` (not `attention_mask`) because the zero-shot pipeline passes audio and text
    inputs to the model in one call and the text tokenizer owns `attention_mask`; `pad()` (what
    `DataCollatorWithPadding` calls) takes and returns the mask under the same name.

    Padding: like `Wav2Vec2FeatureExtractor`, clips are padded only when asked (`padding=False` by default), so rows
    reach a collator at their own lengths and the collator's `pad()` builds the mask (transformers'
    audio-classification example and task guide: `feature_extractor(wavs, sampling_rate=...)`, then
    `Trainer(processing_class=feature_extractor)`). Pass `padding=True` for a ready batch.

    Inputs: arrays or tensors at `sampling_rate`, `{"array", "sampling_rate"}` dicts or torchcodec `AudioDecoder`
    objects (what a `datasets` Audio column holds), one clip or a sequence of clips (a list, a `datasets` column).

    Long clips: a clip longer than `max_length_s` is cut into windows of that length (the last window takes the
    remainder), each window normalised as a clip of its own and returned as its own row; `clip_index[row]` then says
    which input clip a row belongs to. The GEmo-CLAP models take `clip_index` and average the window embeddings
    back into one embedding per clip, so the processor, the models and the pipelines handle long audio without
    running out of memory. `clip_index` is returned only when some clip was split (rows == clips otherwise).

    Args:
        sampling_rate: rate the audio tower was trained at; other rates are resampled.
        min_length: clips shorter than this many samples (the encoder's receptive field) are zero-padded to it,
            or rejected when `pad_short_clips=False`.
        max_length_s: window length in seconds for long clips (default 30); `None` keeps whole clips, whatever
            their length (memory then grows with the clip, quadratically in the attention layers).
    """

    model_input_names = ["input_values", "audio_attention_mask", "clip_index"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        return_attention_mask: bool = True,
        min_length: int = 400,
        pad_short_clips: bool = True,
        max_length_s: float | None = DEFAULT_MAX_LENGTH_S,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.do_normalize = do_normalize
        self.return_attention_mask = return_attention_mask
        self.min_length = int(min_length)
        self.pad_short_clips = pad_short_clips
        self.max_length_s = max_length_s
        self._check_max_length()

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """`FeatureExtractionMixin.save_pretrained`, with an `auto_map` that names only files the folder holds.

        Saved alone (as transformers' audio-classification example saves it), a feature extractor taken from a
        processor's folder leaves out the processor's `AutoProcessor` entry: only the processor copies
        processing_gemo_clap.py, and `AutoProcessor` then falls back to this feature extractor, as it does for a
        wav2vec 2.0 folder without a tokenizer.
        """
        with auto_map_of_folder(self, save_directory, "AutoFeatureExtractor"):
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    def _check_max_length(self) -> None:
        value = self.max_length_s
        if value is None:
            return
        if not _is_positive_number(value):
            raise ValueError(
                f"`max_length_s` must be a positive number of seconds or None (whole clips), got {value!r}."
            )
        if self.window_samples < self.min_length:
            raise ValueError(
                f"`max_length_s`={value} gives windows of {self.window_samples} samples, fewer than `min_length` "
                f"({self.min_length}, the encoder's receptive field); use a longer window."
            )

    @property
    def window_samples(self) -> int | None:
        """Window length in samples at `sampling_rate`, or None when clips are kept whole."""
        if self.max_length_s is None:
            return None
        return int(round(self.max_length_s * self.sampling_rate))

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
        # Wav2Vec2's zero-mean unit-variance normalisation, per clip and over its real samples only; silence stays 0.
        return ((waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)).astype(np.float32, copy=False)

    def split_into_windows(self, waveform: np.ndarray) -> list[np.ndarray]:
        """Cut a long clip into `max_length_s` windows; a tail shorter than `min_length` joins the previous window."""
        window = self.window_samples
        if window is None or len(waveform) <= window:
            return [waveform]
        windows = [waveform[start : start + window] for start in range(0, len(waveform), window)]
        if len(windows[-1]) < self.min_length:
            tail = windows.pop()
            windows[-1] = np.concatenate([windows[-1], tail])
        return windows

    def _rows(
        self, clips: list[Any], sampling_rate: int | None, names: list[str | None], keep: int | None
    ) -> tuple[list, list[int]]:
        """Every clip checked, converted, cut to `keep` samples (truncation), padded to the receptive field and
        windowed; the rows and their clip ids."""
        rows, clip_index = [], []
        for index, (clip, name) in enumerate(zip(clips, names)):
            waveform = prepare_waveform(clip, sampling_rate, self.sampling_rate, name)[:keep]
            windows = self.split_into_windows(self._check_length(waveform, name))
            rows.extend(self._normalize(window) if self.do_normalize else window for window in windows)
            clip_index.extend([index] * len(windows))
        return rows, clip_index

    def _truncation_length(self, truncation: bool, max_length: int | None) -> int | None:
        if not truncation:
            return None
        if max_length is None:
            raise ValueError("`truncation=True` needs `max_length` (in samples), e.g. max_length=16000 for 1 s.")
        if max_length < self.min_length:
            raise ValueError(
                f"`max_length`={max_length} is shorter than the audio encoder's receptive field ({self.min_length} "
                "samples); truncate to a longer length."
            )
        return max_length

    def pad(self, processed_features, *args, **kwargs) -> BatchFeature:
        """`SequenceFeatureExtractor.pad` with the mask named `audio_attention_mask` (a name every GEmo-CLAP model
        takes as the audio mask) in and out, so `DataCollatorWithPadding(feature_extractor)` pads rows and masks
        from `__call__` and returns what the models read."""
        padded = super().pad(_renamed(processed_features, "audio_attention_mask", "attention_mask"), *args, **kwargs)
        if "attention_mask" in padded:
            padded["audio_attention_mask"] = padded.pop("attention_mask")
        return padded

    def __call__(
        self,
        raw_speech: Any,
        sampling_rate: int | None = None,
        padding: bool | str = False,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
        names: Sequence[str] | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Prepare one clip or a batch (a sequence of clips). `names` (e.g. file paths) label clips in errors.

        `padding`, `max_length`, `truncation` and `pad_to_multiple_of` are `SequenceFeatureExtractor.pad`'s
        (`padding=False` by default: rows keep their lengths); truncation cuts each clip to `max_length` samples
        before windowing and normalisation. A 2-D array whose shorter axis has at most 2 entries is read as one
        stereo clip; pass batches as lists. Adds `clip_index` when a clip longer than `max_length_s` was split into
        windows (see the class docstring).
        """
        is_batched = (isinstance(raw_speech, Sequence) and not isinstance(raw_speech, (str, bytes))) or (
            isinstance(raw_speech, np.ndarray) and raw_speech.ndim == 2 and min(raw_speech.shape) > 2
        )
        # A 2-D array with one short axis of <= 2 is a stereo clip; a wider 2-D array is a batch of mono clips.
        clips = list(raw_speech) if is_batched else [raw_speech]
        if len(clips) == 0:
            raise GEmoClapAudioError("no audio was given (an empty batch); pass at least one clip.")
        if names is not None and len(names) != len(clips):
            raise ValueError(f"`names` has {len(names)} entries for {len(clips)} clips; give one name per clip.")
        if names is None:
            names = [f"#{index}" if is_batched else None for index in range(len(clips))]
        keep = self._truncation_length(truncation, max_length)
        rows, clip_index = self._rows(clips, sampling_rate, list(names), keep)
        if return_tensors is not None and not padding and len({len(row) for row in rows}) > 1:
            raise ValueError(
                f"the clips give rows of different lengths ({min(map(len, rows))} to {max(map(len, rows))} samples"
                f"{', long clips split into windows' if len(rows) > len(clips) else ''}), which cannot be stacked "
                f"into one tensor without padding; pass padding=True (or return_tensors=None)."
            )

        padded = self.pad(
            BatchFeature({"input_values": rows}),
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=True,
        )
        result = {"input_values": [np.asarray(v, dtype=np.float32) for v in padded["input_values"]]}
        want_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        if want_mask:
            result["audio_attention_mask"] = [np.asarray(m, dtype=np.int32) for m in padded["audio_attention_mask"]]
        if len(rows) > len(clips):
            result["clip_index"] = np.asarray(clip_index, dtype=np.int64)
        return BatchFeature(result, tensor_type=return_tensors)


def _renamed(features: Any, old: str, new: str) -> Any:
    """`features` (a dict, a BatchFeature or a list of them) with key `old` renamed to `new`."""
    if isinstance(features, (list, tuple)):
        return [_renamed(feature, old, new) for feature in features]
    if not hasattr(features, "keys") or old not in features:
        return features
    return {new if key == old else key: value for key, value in features.items()}


__all__ = [
    "DEFAULT_MAX_LENGTH_S",
    "MAX_ABS_AMPLITUDE",
    "GEmoClapAudioError",
    "GEmoClapFeatureExtractor",
    "is_audio_decoder",
    "prepare_waveform",
    "resample",
    "to_mono_float32",
    "unpack_clip",
]
