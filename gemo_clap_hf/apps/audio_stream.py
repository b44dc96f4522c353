"""Decode a long audio file block by block, so that an hour of audio never sits in memory at once.

`stream_waveform` yields consecutive mono float32 blocks at the model's rate. Concatenated, they equal
`data.load_audio` of the whole file: the same soundfile read, the same int scaling and mono mixdown
(`prepare_waveform`); resampling (other rates) runs per block with a margin of context on both sides on a grid
where block edges fall on whole samples at both rates, so the blocks agree with resampling the whole file to well
below the model's 1e-4 tolerance. Formats soundfile cannot read are decoded whole by `load_audio` (librosa), the
one case where memory follows the file's length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from ..data import load_audio
from ..feature_extraction_gemo_clap import prepare_waveform

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


__all__ = ["DEFAULT_BLOCK_S", "cut_windows", "stream_waveform"]
