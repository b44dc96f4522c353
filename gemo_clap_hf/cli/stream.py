"""`gemo-clap predict --segments --stream -`: emotion over a live stream of raw PCM on stdin, one JSON row per window
on stdout as soon as the window is complete (flushed per row), for pipes such as

    ffmpeg -i rtsp://... -f s16le -ac 1 -ar 16000 - | gemo-clap predict --model M --segments --stream -

stdin is read as 16-bit little-endian mono PCM at `--rate` Hz (another rate than the model's is resampled), in
whatever pieces the pipe delivers; the work is `inference.streaming.SegmentStream`'s.
"""

from __future__ import annotations

import json
import os
import sys
from typing import BinaryIO, TextIO

import numpy as np

from ..errors import CommandError
from ..inference.segments import SegmentOptions

READ_BYTES = 1 << 15  # at most this much per read: a pipe hands over what it has, so rows are not held back
PCM = np.dtype("<i2")


def pcm_chunks(source: BinaryIO):
    """int16 chunks of a byte stream as they arrive (an odd trailing byte waits for its partner)."""
    descriptor = source.fileno() if hasattr(source, "fileno") else None
    spare = b""
    while True:
        data = os.read(descriptor, READ_BYTES) if descriptor is not None else source.read(READ_BYTES)
        if not data:
            break
        data = spare + data
        whole = len(data) // PCM.itemsize * PCM.itemsize
        spare = data[whole:]
        if whole:
            yield np.frombuffer(data[:whole], dtype=PCM)


def check_stream_arguments(stream: str | None, paths, rate: int | None, segments: SegmentOptions | None) -> None:
    if stream is None:
        if rate is not None:
            raise CommandError("--rate gives the sampling rate of --stream's raw PCM; add --segments --stream -.")
        if not paths:
            raise CommandError(
                "name at least one PATH (an audio file, folder or manifest), or read stdin with --segments --stream -."
            )
        return
    if segments is None:
        raise CommandError("--stream only applies to --segments; add --segments.")
    if stream != "-":
        raise CommandError(f"--stream {stream!r}: only '-' (raw 16-bit mono PCM on stdin) is supported.")
    if paths:
        raise CommandError("--stream - reads stdin; drop the PATHs (or drop --stream to classify files).")
    if rate is not None and rate <= 0:
        raise CommandError(f"--rate must be a positive sampling rate in Hz, got {rate}.")


def run_stream(
    model: str,
    options: SegmentOptions,
    rate: int | None = None,
    source: BinaryIO | None = None,
    sink: TextIO | None = None,
    backend: str = "torch",
    device: str | None = None,
    threads: int | None = None,
    batch_size: int = 8,
) -> tuple[int, float]:
    """Stream `source` (default stdin) to JSON rows on `sink` (default stdout); returns (rows, seconds of audio)."""
    from ..inference.backends import load_backend
    from ..inference.streaming import SegmentStream, stream_segments

    source = source if source is not None else sys.stdin.buffer
    sink = sink if sink is not None else sys.stdout
    scorer = load_backend(model, backend, device, threads)
    stream = SegmentStream(scorer, scorer.feature_extractor, options, sampling_rate=rate, batch_size=batch_size)
    rows = 0
    for segment in stream_segments(stream, pcm_chunks(source)):
        sink.write(json.dumps(segment.to_row()) + "\n")
        sink.flush()
        rows += 1
    return rows, stream.duration


__all__ = ["check_stream_arguments", "pcm_chunks", "run_stream"]
