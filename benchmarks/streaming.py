"""`streaming` (only when named in `--figures`): can `SegmentStream` keep up with a live stream on a small CPU?

A generated recording (`data.synthetic.recording`, `--stream_seconds`, default 60 s) is pushed in 0.1 s chunks at
the pace of real time (each chunk when its last sample would have been captured) into a `SegmentStream` (3 s
windows every 1 s, no VAD), once with the torch backend and once with the int8 ONNX graph (`export-onnx --quantize
int8`), each on `--threads` intra-op threads (default 2). Figures per backend:

- `delay_s`: from the moment a window's last sample arrived to the moment its row came back (median, p95, max);
- `real_time_factor`: the time spent inside `push`/`flush` over the audio's duration (below 1: it keeps up);
- `keeps_up`: real-time factor below 1 and median delay below the target (1 s).

Without `--long_model` the model is random towers of the benchmark's `--size` (speed figures only: the labels
mean nothing).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gemo_clap_hf.data.synthetic.recording import synthetic_recording

from .long_recordings import stand_in_model
from .settings import SAMPLING_RATE, Settings

CHUNK_S = 0.1
TARGET_DELAY_S = 1.0


def _int8_graph(model: str, folder: Path) -> Path:
    from gemo_clap_hf.feature_extraction_gemo_clap import GEmoClapFeatureExtractor
    from gemo_clap_hf.inference.backends import load_classifier
    from gemo_clap_hf.inference.onnx_export import export_onnx
    from gemo_clap_hf.inference.onnx_quantize import quantize_int8

    classifier, _ = load_classifier(model)
    export_onnx(classifier.cpu(), folder, GEmoClapFeatureExtractor(max_length_s=None), dynamo=True)
    return quantize_int8(folder, verify=False).path


def paced_run(scorer, waveform: np.ndarray, chunk_s: float = CHUNK_S) -> dict:
    """Push `waveform` at real-time pace; the delay of every row and the time spent in the stream."""
    from gemo_clap_hf.inference.streaming import SegmentStream

    SegmentStream(scorer, scorer.feature_extractor).push(waveform[: 3 * SAMPLING_RATE])  # warm-up: one window
    stream = SegmentStream(scorer, scorer.feature_extractor)
    size = int(round(chunk_s * SAMPLING_RATE))
    delays, busy = [], 0.0
    started = time.perf_counter()
    for first in range(0, len(waveform), size):
        chunk = waveform[first : first + size]
        arrived = started + (first + len(chunk)) / SAMPLING_RATE
        time.sleep(max(0.0, arrived - time.perf_counter()))
        begin = time.perf_counter()
        rows = stream.push(chunk)
        done = time.perf_counter()
        busy += done - begin
        delays += [done - (started + segment.end) for segment in rows]
    begin = time.perf_counter()
    rows = stream.flush()
    done = time.perf_counter()
    busy += done - begin
    delays += [done - (started + segment.end) for segment in rows]
    audio_s = len(waveform) / SAMPLING_RATE
    median, p95 = statistics.median(delays), float(np.percentile(delays, 95))
    return {
        "rows": len(delays),
        "delay_s": {"median": round(median, 3), "p95": round(p95, 3), "max": round(max(delays), 3)},
        "real_time_factor": round(busy / audio_s, 3),
        "keeps_up": busy / audio_s < 1.0 and median < TARGET_DELAY_S,
    }


def measure_streaming(settings: Settings) -> dict:
    """The figures described in the module docstring, as one JSON-ready dict."""
    from gemo_clap_hf.inference.backends import load_backend

    waveform, _ = synthetic_recording(settings.stream_seconds, seed=settings.seed)
    threads = settings.stream_threads
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = settings.long_model or stand_in_model(settings, folder)
        graph = _int8_graph(model, folder / "onnx")
        for name, source, backend in (("torch", model, "torch"), ("onnx_int8", str(graph), "onnx")):
            scorer = load_backend(source, backend, threads=threads)
            figures[name] = paced_run(scorer, waveform)
    return {
        "model": settings.long_model or f"random {settings.size} towers (speed figures only)",
        "audio_s": round(len(waveform) / SAMPLING_RATE, 1),
        "chunk_s": CHUNK_S,
        "window_s": 3.0,
        "hop_s": 1.0,
        "threads": threads,
        "target_median_delay_s": TARGET_DELAY_S,
        "backends": figures,
    }


__all__ = ["measure_streaming", "paced_run"]
