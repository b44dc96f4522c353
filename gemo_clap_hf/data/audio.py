"""Decode audio files (or their bytes) into the mono float32 waveforms the feature extractor expects.

soundfile does the decoding (librosa only for formats soundfile cannot read); int scaling, mono mixdown, NaN checks
and resampling are the feature extractor's own helpers, so a file and an in-memory array go through the same code.
Every failure is a `GEmoClapAudioError` (a `ValueError`) that names the file and the fix.
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..feature_extraction_gemo_clap import GEmoClapAudioError, is_audio_decoder, prepare_waveform

logger = logging.getLogger(__name__)

TARGET_SAMPLING_RATE = 16000

# Read integer PCM as integers so that `prepare_waveform` does the scaling (one definition of "int -> [-1, 1]").
_INT16_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16"}
_INT32_SUBTYPES = {"PCM_24", "PCM_32"}


@dataclass(frozen=True)
class AudioInfo:
    """What the corpus readers need from a file's header: its length and rate, without decoding it."""

    frames: int
    sampling_rate: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sampling_rate

    def num_samples(self, target_rate: int = TARGET_SAMPLING_RATE) -> int:
        """Length after resampling to `target_rate` (librosa's rounding: ceil)."""
        if self.sampling_rate == target_rate:
            return self.frames
        return int(math.ceil(self.frames * target_rate / self.sampling_rate))


def _name(source: Any) -> str:
    if isinstance(source, dict) and source.get("path"):
        return str(source["path"])
    return str(source) if isinstance(source, (str, os.PathLike)) else "<audio bytes>"


def _missing(path: Path) -> GEmoClapAudioError:
    return GEmoClapAudioError(f"audio file {str(path)!r} does not exist; check the path (and the corpus data_dir).")


def _unreadable(name: str, error: Exception) -> GEmoClapAudioError:
    return GEmoClapAudioError(
        f"audio file {name!r} cannot be read ({error}); it is corrupt or in a format neither soundfile nor librosa "
        "reads: re-export it as WAV/FLAC, or drop it from the corpus (readers: skip_bad_files=True)."
    )


def _empty(name: str) -> GEmoClapAudioError:
    return GEmoClapAudioError(
        f"audio file {name!r} holds no samples (0 frames); re-export it or drop it from the corpus "
        "(readers: skip_bad_files=True)."
    )


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Frames, rate and channels of a file from its header (soundfile.info: fast, no decoding).

    Formats soundfile cannot read fall back to decoding with librosa; corrupt or empty files raise
    `GEmoClapAudioError`.
    """
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        info = sf.info(os.fsencode(path))  # bytes: file names need not be UTF-8 on Linux
        result = AudioInfo(int(info.frames), int(info.samplerate), int(info.channels))
    except (sf.LibsndfileError, RuntimeError) as error:
        waveform, rate = _librosa_decode(path, error)
        result = AudioInfo(len(waveform), int(rate), 1)
    if result.frames <= 0:
        raise _empty(str(path))
    return result


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the file header (no decoding)."""
    return audio_info(path).duration


def _librosa_decode(path: Path, sf_error: Exception) -> tuple[np.ndarray, int]:
    """Fallback for formats libsndfile does not know (decoding through audioread, when a backend is installed).

    A file in a format libsndfile does know (WAV, FLAC, ...) that it cannot read is corrupt: no fallback.
    """
    if path.suffix.lstrip(".").upper() in sf.available_formats():
        raise _unreadable(str(path), sf_error) from sf_error
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns that it falls back to audioread: that is the point
            waveform, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as error:  # noqa: BLE001 - any failure here means the file is unreadable
        raise _unreadable(str(path), sf_error) from error
    # librosa gives (channels, time); soundfile's convention, used everywhere here, is (time, channels).
    return (waveform.T if waveform.ndim == 2 else waveform), int(rate)


def _read_with_soundfile(source: Any, name: str) -> tuple[np.ndarray, int]:
    with sf.SoundFile(source) as handle:
        if handle.frames == 0:
            raise _empty(name)
        subtype = handle.subtype
        dtype = "int16" if subtype in _INT16_SUBTYPES else "int32" if subtype in _INT32_SUBTYPES else "float32"
        data = handle.read(dtype=dtype, always_2d=False)
        return data, int(handle.samplerate)


def _decode(source: Any) -> tuple[np.ndarray, int]:
    """Raw samples (native int or float dtype, possibly multi-channel) and their rate."""
    name = _name(source)
    if isinstance(source, dict):  # a `datasets.Audio(decode=False)` value
        source = source.get("bytes") or source.get("path")
        if source is None:
            raise GEmoClapAudioError("the audio value has neither 'path' nor 'bytes'; pass a path or the file's bytes.")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise _empty(name)
        try:
            return _read_with_soundfile(io.BytesIO(bytes(source)), name)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise _unreadable(name, error) from error
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"load_audio expects a path, bytes, a {{'path', 'bytes'}} or {{'array', 'sampling_rate'}} dict or a "
            f"torchcodec AudioDecoder, not {type(source).__name__}."
        )
    path = Path(source)
    if not path.is_file():
        raise _missing(path)
    try:
        return _read_with_soundfile(os.fsencode(path), name)
    except (sf.LibsndfileError, RuntimeError) as error:
        waveform, rate = _librosa_decode(path, error)
        if waveform.size == 0:
            raise _empty(name) from error
        return waveform, rate


def load_audio(path_or_bytes: Any, sampling_rate: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Decode a file (path, bytes, or `Audio(decode=False)` dict) to a mono float32 waveform at `sampling_rate`.

    Also takes what a decoded `datasets` Audio column holds: a torchcodec `AudioDecoder` or an `{"array",
    "sampling_rate"}` dict (converted and resampled by the feature extractor's helpers; no file is read).
    Resampling is silent here (it happens per file at training time); corpus readers log it once per corpus.
    """
    decoded_dict = isinstance(path_or_bytes, dict) and ("array" in path_or_bytes or "raw" in path_or_bytes)
    if decoded_dict or is_audio_decoder(path_or_bytes):
        path = path_or_bytes.get("path") if isinstance(path_or_bytes, dict) else None
        return prepare_waveform(path_or_bytes, None, sampling_rate, name=path)
    data, rate = _decode(path_or_bytes)
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    elif data.ndim == 2:
        data = data.T  # (channels, time): unambiguous for prepare_waveform even for very short clips
    return prepare_waveform(data, rate, sampling_rate, name=_name(path_or_bytes))


# Streaming: decode a long file block by block, so that an hour of audio never sits in memory at once.
#
# `stream_waveform` yields consecutive mono float32 blocks at the model's rate. Concatenated, they equal
# `load_audio` of the whole file: the same soundfile read, the same int scaling and mono mixdown
# (`prepare_waveform`); resampling (other rates) runs per block with a margin of context on both sides on a grid
# where block edges fall on whole samples at both rates, so the blocks agree with resampling the whole file to well
# below the model's 1e-4 tolerance. Formats soundfile cannot read are decoded whole by `load_audio` (librosa), the
# one case where memory follows the file's length.

DEFAULT_BLOCK_S = 30.0
RESAMPLE_MARGIN_S = 0.5  # soxr_hq's filter reaches a few ms: half a second of context makes the block edges exact
_INT16_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16"}
_INT32_SUBTYPES = {"PCM_24", "PCM_32"}


def _read_dtype(subtype: str) -> str:
    # Integer PCM read as integers, as data.audio does, so `prepare_waveform` applies the one int -> [-1, 1] scale.
    return "int16" if subtype in _INT16_SUBTYPES else "int32" if subtype in _INT32_SUBTYPES else "float32"


def _mono(block: np.ndarray, rate: int, target: int, name: str) -> np.ndarray:
    # (channels, time), as load_audio passes it: unambiguous for prepare_waveform whatever the block's length.
    data = block[:, 0] if block.shape[1] == 1 else block.T
    return prepare_waveform(data, rate, target, name=name)


def _resampled_blocks(handle: sf.SoundFile, target: int, block_s: float, name: str) -> Iterator[np.ndarray]:
    """Blocks resampled with context: each source block starts on a frame that maps to a whole target sample."""
    rate, frames = int(handle.samplerate), int(handle.frames)
    step = rate // math.gcd(rate, target)  # source frames per whole number of target samples
    block = max(step, int(block_s * rate) // step * step)
    margin = max(step, int(RESAMPLE_MARGIN_S * rate) // step * step)
    dtype = _read_dtype(handle.subtype)
    total = int(math.ceil(frames * target / rate))  # librosa's output length for the whole file
    for start in range(0, frames, block):
        stop = min(frames, start + block)
        begin = max(0, start - margin)
        handle.seek(begin)
        raw = handle.read(min(frames, stop + margin) - begin, dtype=dtype, always_2d=True)
        waveform = _mono(raw, rate, target, name)
        skip = (start - begin) * target // rate
        first = start * target // rate
        last = total if stop == frames else stop * target // rate
        yield waveform[skip : skip + last - first]


def stream_waveform(
    path: str | os.PathLike, sampling_rate: int, block_s: float = DEFAULT_BLOCK_S
) -> Iterator[np.ndarray]:
    """Consecutive mono float32 blocks of about `block_s` seconds at `sampling_rate`, covering the whole file."""
    name = str(path)
    try:
        handle = sf.SoundFile(os.fsencode(Path(path)))
    except (sf.LibsndfileError, RuntimeError):
        yield load_audio(path, sampling_rate)  # librosa's formats: decoded whole (load_audio names any failure)
        return
    with handle:
        rate = int(handle.samplerate)
        if rate != sampling_rate:
            yield from _resampled_blocks(handle, sampling_rate, block_s, name)
            return
        block, frames = max(1, int(block_s * rate)), int(handle.frames)
        dtype = _read_dtype(handle.subtype)
        position = 0
        while position < frames:
            count = block if frames - position >= 2 * block else frames - position  # no tiny last block
            yield _mono(handle.read(count, dtype=dtype, always_2d=True), rate, sampling_rate, name)
            position += count


def cut_windows(blocks: Iterator[np.ndarray], windows: list[tuple[int, int]]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, samples) of each (start, end) window, sorted by start, cut from a stream of consecutive blocks.

    Only the samples from the earliest window still to come onwards are kept, so memory is one block plus the
    overlap of the windows, however long the stream.
    """
    order = sorted(range(len(windows)), key=lambda i: windows[i])
    buffer, offset = np.zeros(0, dtype=np.float32), 0  # buffer holds samples [offset, offset + len(buffer))
    blocks = iter(blocks)
    for index in order:
        start, end = windows[index]
        while offset + len(buffer) < end:
            block = next(blocks, None)
            if block is None:
                break
            buffer = np.concatenate([buffer, block])
        keep = max(0, start - offset)
        buffer, offset = buffer[keep:], offset + keep
        yield index, buffer[start - offset : end - offset].copy()


__all__ = [
    "DEFAULT_BLOCK_S",
    "AudioInfo",
    "TARGET_SAMPLING_RATE",
    "audio_duration",
    "audio_info",
    "cut_windows",
    "load_audio",
    "stream_waveform",
]
