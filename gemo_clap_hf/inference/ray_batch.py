"""Bulk prediction on Ray Data: `RayPredictor` for `Dataset.map_batches`, and `iter_ray_results` for `predict --ray`.

`RayPredictor` is a callable class (one model per Ray actor, loaded once): it takes a batch with a `path` column
(files every node can read: a shared file system), or `bytes` (e.g. `ray.data.read_binary_files(...,
include_paths=True)`), or decoded `array` + `sampling_rate` columns, and returns the rows `gemo-clap predict` writes
(`Prediction.to_row`, or `Segment.to_row` with segments on) plus `duration` (s) and `error`: a file that cannot be
scored is a row with its `file` and `error` (the engine's message) and no scores. Scoring is the engine's
(`iter_predictions`, `iter_segmented_files`), so the rows equal `predict`'s.

    ds = ray.data.from_items([{"path": p} for p in paths])
    rows = ds.map_batches(RayPredictor, fn_constructor_kwargs={"model": "org/sl-gemo-clap"}, batch_size=32,
                          concurrency=4)

`iter_ray_results` runs that on a cluster and streams the rows back as `Prediction`, `SegmentedFile` and `Failure`
objects, which `predict`'s run loop writes, resumes and tallies exactly as it does its own.

Needs the [ray] extra: pip install 'gemo-clap-hf[ray]'.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..errors import PredictionError
from .backends import load_backend
from .engine import DEFAULT_BATCH_SIZE, iter_predictions, iter_segmented_files
from .predictions import Failure, Prediction, Segment, SegmentedFile, ranked
from .segments import SegmentOptions, merge_segments

EXTRA_COLUMNS = ("duration", "error")


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise PredictionError("--ray needs Ray Data: pip install 'gemo-clap-hf[ray]'.") from error
    return ray


def _materialise(batch: dict, folder: str) -> tuple[list[str], dict[str, str]]:
    """Paths to score for a batch, writing `bytes` / `array` rows to `folder`; {temporary path: name to report}."""
    names = [str(name) for name in batch["path"]] if "path" in batch else None
    if "bytes" not in batch and "array" not in batch:
        if names is None:
            raise PredictionError("RayPredictor needs a `path`, `bytes` or `array` (+ `sampling_rate`) column.")
        return names, {}
    count = len(batch["bytes"] if "bytes" in batch else batch["array"])
    names = names or [f"row-{index}" for index in range(count)]
    paths, renamed = [], {}
    for index in range(count):
        path = str(Path(folder) / f"clip-{index}")
        if "bytes" in batch:
            Path(path).write_bytes(bytes(batch["bytes"][index]))
        else:
            path += ".wav"
            sf.write(
                path,
                np.asarray(batch["array"][index], dtype=np.float32),
                int(batch["sampling_rate"][index]),
                subtype="FLOAT",
                format="WAV",
            )
        paths.append(path)
        renamed[path] = names[index]
    return paths, renamed


class RayPredictor:
    """Scores a Ray Data batch of files with the engine; one instance (one model) per actor.

    model: a folder every node can read, or a Hub id (with `backend="onnx"`: an `export-onnx` folder or `.onnx`).
    batch_size: clips per model call (the batch given by `map_batches` is bucketed by length into these).
    segments: `SegmentOptions` (or True for the defaults) for one row per window; None/False for one row per file.
    """

    def __init__(
        self,
        model: str,
        backend: str = "torch",
        batch_size: int = DEFAULT_BATCH_SIZE,
        segments: SegmentOptions | bool | None = None,
        threads: int | None = None,
        device: str | None = None,
    ):
        self.scorer = load_backend(model, backend, device, threads)
        self.batch_size = batch_size
        self.segments = SegmentOptions() if segments is True else segments or None
        self.columns = row_columns(self.scorer.config, self.segments is not None)

    def rows(self, paths: Sequence[str]) -> Iterator[dict]:
        """The output rows of `paths`: one per file (or per segment), a row with `error` per bad file."""
        fe = self.scorer.feature_extractor
        if self.segments is None:
            results = iter_predictions(self.scorer, fe, paths, self.batch_size, num_workers=1)
        else:
            results = iter_segmented_files(self.scorer, fe, paths, self.segments, self.batch_size)
        for result in results:
            if isinstance(result, Failure):
                yield {"file": result.file, "error": result.reason}
            elif isinstance(result, SegmentedFile):
                segments = merge_segments(result.segments) if self.segments.merge else result.segments
                for segment in segments:
                    yield {**segment.to_row(), "duration": result.duration}
            else:
                yield {**result.to_row(), "duration": result.duration}

    def __call__(self, batch: dict) -> dict[str, list]:
        with tempfile.TemporaryDirectory(prefix="gemo-clap-ray-") as folder:
            paths, renamed = _materialise(batch, folder)
            rows = list(self.rows(paths))
        table = {column: [] for column in self.columns}
        for row in rows:
            if row["file"] in renamed:
                row["error"] = row.get("error", "").replace(row["file"], renamed[row["file"]]) or None
                row["file"] = renamed[row["file"]]
            for column in self.columns:
                table[column].append(row.get(column))
        return table


def row_columns(config, segments: bool) -> list[str]:
    """`predict`'s output columns for this model (see `cli.results.output_columns`), then duration and error."""
    place = ["start", "end", "segment", "segments"] if segments else []
    gender = ["gender", "gender_score"] if config.loss_type == "ml" else []
    return ["file", *place, "emotion", "score", *config.emotion_labels, *gender, *EXTRA_COLUMNS]


def _probabilities(row: dict, labels: Sequence[str]) -> dict[str, float]:
    return {label: float(row[label]) for label in labels}


def prediction_from_row(row: dict, config, top_k: int | None = None) -> Prediction:
    """The `Prediction` a `RayPredictor` row was made from (ranked emotions, genders, probabilities, duration)."""
    emotions = list(config.emotion_labels)
    probabilities = _probabilities(row, emotions)
    prediction = Prediction(
        row["file"],
        ranked(torch.tensor(list(probabilities.values())), emotions, top_k),
        probabilities=probabilities,
        duration=float(row["duration"]),
    )
    if config.loss_type == "ml":
        genders = list(config.gender_labels)
        score = float(row["gender_score"])
        other = [g for g in genders if g != row["gender"]]
        # Two gender labels: the best one's score gives the other's (softmax over two).
        prediction.gender_probabilities = {row["gender"]: score, **{g: 1.0 - score for g in other}}
        prediction.gender_probabilities = {g: prediction.gender_probabilities[g] for g in genders}
        prediction.genders = ranked(torch.tensor(list(prediction.gender_probabilities.values())), genders, None)
    return prediction


def segment_from_row(row: dict, config) -> Segment:
    genders = None
    if config.loss_type == "ml":
        score = float(row["gender_score"])
        genders = {g: score if g == row["gender"] else 1.0 - score for g in config.gender_labels}
    segment = Segment(
        row["file"], float(row["start"]), float(row["end"]), _probabilities(row, config.emotion_labels), genders
    )
    segment.index, segment.count = int(row["segment"]) - 1, int(row["segments"])
    return segment


def results_from_rows(rows, config, top_k: int | None = None) -> Iterator[Prediction | SegmentedFile | Failure]:
    """`RayPredictor` rows back as the engine's results; a file's segment rows (consecutive) as one `SegmentedFile`."""
    current: SegmentedFile | None = None
    for row in rows:
        if row.get("error"):
            yield Failure(row["file"], row["error"])
        elif row.get("segments") is None:
            yield prediction_from_row(row, config, top_k)
        else:
            if current is None:
                current = SegmentedFile(row["file"], float(row["duration"]))
            current.segments.append(segment_from_row(row, config))
            if len(current.segments) == int(row["segments"]):
                yield current
                current = None


def _renamed(result, file: str):
    """`result` under the name the caller gave its file (the cluster was given absolute paths)."""
    if isinstance(result, Failure):
        return Failure(file, result.reason.replace(result.file, file))
    if isinstance(result, SegmentedFile):
        for segment in result.segments:
            segment.file = file
    result.file = file
    return result


def connect(address: str | None) -> bool:
    """Join the Ray cluster at `address` ("auto": the one this machine belongs to), or start a local one when None;
    True when this call started Ray (the caller shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as error:
        raise PredictionError(
            f"--ray {address}: no Ray cluster answers there ({error}); start one with `ray start --head`, or pass "
            "--ray without an address for a local cluster."
        ) from error
    return True


def iter_ray_results(
    model: str,
    files: Sequence[str],
    config,
    address: str | None = None,
    backend: str = "torch",
    batch_size: int = DEFAULT_BATCH_SIZE,
    segments: SegmentOptions | None = None,
    top_k: int | None = None,
    threads: int | None = None,
    workers: int | None = None,
) -> Iterator[Prediction | SegmentedFile | Failure]:
    """`predict`'s results for `files`, scored by `RayPredictor` actors on a Ray cluster (`connect(address)`) and
    streamed back as they finish. `workers` actors (default: as many as the cluster's CPUs allow, `threads` CPUs
    each); each gets batches of `4 * batch_size` files, bucketed by length. Merging is left to the caller."""
    ray = import_ray()
    started = connect(address)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # predict shows its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = threads or 1
        most = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        pool = (
            ray.data.ActorPoolStrategy(size=workers)
            if workers
            else ray.data.ActorPoolStrategy(min_size=1, max_size=most)
        )
        model = os.path.abspath(model) if Path(model).expanduser().exists() else model
        options = dataclasses.replace(segments, merge=False) if segments is not None else None
        dataset = ray.data.from_items([{"path": os.path.abspath(f)} for f in files])
        rows = dataset.map_batches(
            RayPredictor,
            fn_constructor_kwargs={
                "model": model,
                "backend": backend,
                "batch_size": batch_size,
                "segments": options,
                "threads": threads,
            },
            batch_size=4 * batch_size,
            compute=pool,
            num_cpus=cpus,
        )
        given = {os.path.abspath(f): f for f in files}
        for result in results_from_rows(rows.iter_rows(), config, top_k):
            yield _renamed(result, given.get(result.file, result.file))
    finally:
        if started:
            ray.shutdown()


__all__ = [
    "RayPredictor",
    "connect",
    "iter_ray_results",
    "prediction_from_row",
    "results_from_rows",
    "row_columns",
    "segment_from_row",
]
