"""`gemo-clap bench`: how fast `gemo-clap predict` classifies a user's own files with their own model.

Every requested batch size runs the whole path a user's files take (header read, length bucketing, background
decoding, the model) `repeats` times, in alternating order so that load from other processes hits every size
alike, after one untimed warm-up batch. Reported per batch size: the median clips/s and real-time factor with the
spread (slowest and fastest run), and the largest probability difference to the first batch size (batching must
not change a clip's scores). The side-by-side measurement of the model's overhead lives in the checkout's
`benchmarks/` harness, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import PredictionError
from ..inference.backends import as_scorer, load_backend, load_classifier
from ..inference.engine import DEFAULT_BATCH_SIZE, DEFAULT_NUM_WORKERS, predict_files
from ..inference.inputs import collect_inputs
from .predict import add_backend_options, add_model_option


def measure_predict_throughput(
    classifier,
    feature_extractor,
    files: Sequence[str | os.PathLike],
    batch_sizes: Sequence[int] = (DEFAULT_BATCH_SIZE,),
    repeats: int = 3,
    device: str | torch.device | None = None,
    num_workers: int = DEFAULT_NUM_WORKERS,
) -> dict:
    """Throughput of `predict_files` on `files` for each batch size (see the module docstring); a JSON-ready dict.
    `classifier` is a torch classifier or a `backends.Scorer` (`OnnxScorer`: the onnx backend)."""
    if not files:
        raise PredictionError("no audio files to time: name files, folders or manifests that hold some.")
    if repeats < 1 or min(batch_sizes, default=0) < 1:
        raise PredictionError(f"repeats and batch sizes must be at least 1, got {repeats} and {list(batch_sizes)}.")
    classifier = as_scorer(classifier, device)
    predict_files(classifier, feature_extractor, files[: max(batch_sizes)], max(batch_sizes), num_workers=0)
    times: dict[int, list[float]] = {size: [] for size in batch_sizes}
    probabilities: dict[int, np.ndarray] = {}
    classified = audio_seconds = 0
    for repeat in range(repeats):
        for size in batch_sizes if repeat % 2 == 0 else list(reversed(batch_sizes)):
            start = time.perf_counter()
            predictions = predict_files(classifier, feature_extractor, files, size, num_workers=num_workers)
            times[size].append(time.perf_counter() - start)
            probabilities[size] = np.array([list(p.probabilities.values()) for p in predictions])
            classified, audio_seconds = len(predictions), sum(p.duration for p in predictions)
    if not classified:
        raise PredictionError("none of the files could be classified (see the warnings above): nothing to time.")
    reference = probabilities[batch_sizes[0]]
    figures = {
        "device": str(classifier.device),
        "backend": classifier.backend,
        "threads": classifier.threads,
        "files": len(files),
        "classified": classified,
        "audio_hours": audio_seconds / 3600,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "batch_sizes": {},
    }
    for size, measured in times.items():
        median = statistics.median(measured)
        figures["batch_sizes"][str(size)] = {
            "seconds": median,
            "clips_per_s": classified / median,
            "clips_per_s_range": [classified / max(measured), classified / min(measured)],
            "audio_hours_per_s": audio_seconds / 3600 / median,
            "real_time_factor": median / audio_seconds,
            "max_probability_difference": float(np.abs(probabilities[size] - reference).max()),
        }
    return figures


def format_throughput(figures: dict) -> str:
    """One line per batch size: clips/s (median, slowest-fastest run) and the real-time factor."""
    lines = [
        f"{figures['classified']} of {figures['files']} files, {figures['audio_hours'] * 3600:.1f} s of audio, "
        f"on {figures['device']} ({figures['backend']} backend, {figures['threads']} threads), median of "
        f"{figures['repeats']} runs:"
    ]
    for size, figure in figures["batch_sizes"].items():
        low, high = figure["clips_per_s_range"]
        lines.append(
            f"  batch {size:>3}: {figure['clips_per_s']:8.2f} clips/s ({low:.2f}-{high:.2f}), "
            f"real-time factor {figure['real_time_factor']:.4f}"
        )
    return "\n".join(lines)


def write_test_clips(folder: Path, num_clips: int, min_s: float, max_s: float, rate: int, seed: int) -> list[str]:
    """`num_clips` voiced-ish WAV files with durations spread log-uniformly over [min_s, max_s]; their paths."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for index in range(num_clips):
        seconds = float(np.exp(rng.uniform(np.log(min_s), np.log(max_s))))
        t = np.arange(int(seconds * rate)) / rate
        f0 = rng.uniform(100, 250)
        clip = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) + 0.1 * rng.standard_normal(t.shape)
        sf.write(folder / f"clip_{index:04d}.wav", (0.3 * clip / np.abs(clip).max()).astype(np.float32), rate)
    return sorted(str(p) for p in folder.glob("clip_*.wav"))


def measure_bulk_throughput(
    model_dir_or_classifier,
    feature_extractor=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_clips: int = 24,
    min_s: float = 1.0,
    max_s: float = 6.0,
    repeats: int = 3,
    device: str | torch.device | None = None,
    num_workers: int = DEFAULT_NUM_WORKERS,
    seed: int = 0,
) -> dict:
    """`measure_predict_throughput` at batch 1 and `batch_size` on `num_clips` generated WAV files: what batching
    buys (`speedup`) where no files of one's own are at hand (the benchmark's `bulk_inference` figure)."""
    from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor

    if isinstance(model_dir_or_classifier, (str, os.PathLike)):
        classifier, loaded_extractor = load_classifier(str(model_dir_or_classifier), device)
        feature_extractor = feature_extractor or loaded_extractor
    else:
        classifier = as_scorer(model_dir_or_classifier, device)  # a torch classifier or the onnx backend
    feature_extractor = (
        feature_extractor or getattr(classifier, "feature_extractor", None) or GEmoClapFeatureExtractor()
    )
    with tempfile.TemporaryDirectory(prefix="gemo_clap_bulk_") as folder:
        files = write_test_clips(Path(folder), num_clips, min_s, max_s, feature_extractor.sampling_rate, seed)
        figures = measure_predict_throughput(
            classifier, feature_extractor, files, (1, batch_size), repeats, device, num_workers
        )
    one, batched = (figures["batch_sizes"][str(size)] for size in (1, batch_size))
    return {
        **{key: figures[key] for key in ("device", "backend", "threads", "audio_hours", "repeats", "torch_threads")},
        "clips": num_clips,
        "batch_size": batch_size,
        "one_at_a_time": one,
        "batched": batched,
        "speedup": one["seconds"] / batched["seconds"],
        "max_probability_difference": batched["max_probability_difference"],
    }


def add_bench_command(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="time `gemo-clap predict` on your files with your model (clips/s, real-time factor)",
        description="Run `gemo-clap predict`'s whole path (decoding, length bucketing, the model) on your files "
        "at each batch size, --repeats times in alternating order, and print the median clips/s with the "
        "slowest and fastest run and the real-time factor. (The model-overhead benchmark of the project "
        "lives in its checkout: `make bench`.)",
    )
    add_model_option(bench)
    bench.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or manifests, as for predict")
    bench.add_argument("--batch-size", type=int, nargs="+", default=[1, 8], help="batch sizes to time (default: 1 8)")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs per batch size (default 3)")
    bench.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    bench.add_argument("--recursive", "-r", action="store_true", help="also search the folders' sub-folders")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_backend_options(bench)
    bench.set_defaults(handler=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    files = collect_inputs(args.paths, args.recursive)  # before the model loads: a wrong path fails at once
    scorer = load_backend(args.model, args.backend, args.device, args.threads)
    figures = measure_predict_throughput(scorer, scorer.feature_extractor, files, args.batch_size, args.repeats)
    print(json.dumps(figures, indent=2) if args.json else format_throughput(figures))
    return 0


__all__ = [
    "add_bench_command",
    "bench_command",
    "format_throughput",
    "measure_bulk_throughput",
    "measure_predict_throughput",
    "write_test_clips",
]
