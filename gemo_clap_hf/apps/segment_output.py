"""Rows out of `gemo-clap predict --segments`: CSV/JSONL that resumes, text for the terminal, and the run itself.

Each row is one segment: `file, start, end, segment, segments, emotion, score`, one probability per label, and
`gender, gender_score` for ML models. A file's rows are written together once all its windows are scored;
`segment` / `segments` (its number, 1-based, and its file's count) let a rerun tell a complete file from one whose
rows were cut off by a kill: `SegmentWriter` cuts such a trailing file's rows away, and that file is scored again,
without duplicates. Files that are complete are skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .bulk_prediction import (
    ResultWriter,
    Summary,
    _parse_line,
    _Progress,
    check_output_name,
    collect_inputs,
    pending_files,
    tally,
)
from .onnx_backend import load_backend
from .prediction import PredictionError, resolve_device
from .segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, SegmentedFile, check_window, iter_segmented_files, merge_segments


def segment_columns(config) -> list[str]:
    """The CSV header of a model's segment rows."""
    columns = ["file", "start", "end", "segment", "segments", "emotion", "score", *config.emotion_labels]
    if config.loss_type == "ml":
        columns += ["gender", "gender_score"]
    return columns


class SegmentWriter(ResultWriter):
    """`ResultWriter` for segment rows: a file counts as done only when all its `segments` rows are there.

    The rows of one file are written in one go, so only the last file of an output can be incomplete; resuming
    cuts its rows off (`repaired`) and it is scored again.
    """

    def _resume(self) -> int:
        keep = super()._resume()
        if keep == 0:
            return 0
        with open(self.path, "rb") as handle:
            lines = handle.read(keep).split(b"\n")[:-1]
        offset = len(lines[0]) + 1 if self.kind == "csv" else 0
        body = lines[1:] if self.kind == "csv" else lines
        group_file, group_start, seen = None, offset, 0
        for raw in body:
            row = _parse_line(raw.decode("utf-8", "surrogateescape"), self.kind, self.columns)
            if row["file"] != group_file:
                group_file, group_start, seen = row["file"], offset, 0
            seen += 1
            offset += len(raw) + 1
            if seen == int(row["segments"]):
                group_file = None  # complete: the next row starts a new file
        if group_file is not None:  # the last file's rows stop short of its count
            self.done -= {group_file, os.path.abspath(group_file)}
            self.repaired = True
            return group_start
        return keep

    def write_file(self, result: SegmentedFile) -> None:
        for segment in result.segments:
            self.write(segment)
        self.flush()


def format_segments(results: Sequence[SegmentedFile]) -> str:
    """Readable lines: per file, one line per segment with its time range, best emotion and score."""
    lines = []
    for result in results:
        lines.append(f"{result.file} ({result.duration:.1f} s, {len(result.segments)} segments):")
        for segment in result.segments:
            gender = ""
            if segment.gender_probabilities is not None:
                gender = "  " + max(segment.gender_probabilities, key=segment.gender_probabilities.get)
            lines.append(
                f"  {segment.start:8.2f} - {segment.end:8.2f} s  {segment.emotion} "
                f"{segment.probabilities[segment.emotion]:.2f}{gender}"
            )
    return "\n".join(lines)


@dataclass
class SegmentOptions:
    """`--segments`' settings: window and hop (s), voice-activity detection, merging, the timeline picture."""

    window: float = DEFAULT_WINDOW_S
    hop: float = DEFAULT_HOP_S
    vad: bool = False
    merge: bool = False
    plot: str | None = None


class _SegmentProgress(_Progress):
    def update(self, result) -> None:
        if isinstance(result, SegmentedFile):
            self.audio += result.duration
        self.bar.update(1)


def run_segments(
    model: str,
    paths: Sequence[str],
    options: SegmentOptions,
    output: str | None = None,
    batch_size: int = 8,
    device: str | None = None,
    recursive: bool = False,
    quiet: bool = False,
    backend: str = "torch",
    threads: int | None = None,
) -> tuple[list[SegmentedFile], Summary]:
    """Segment every file named by `paths`; stream rows to `output` (resuming it) or return them; draw `plot`."""
    check_window(options.window, options.hop)
    if batch_size < 1:
        raise PredictionError(f"--batch-size must be at least 1, got {batch_size}.")
    files = collect_inputs(paths, recursive)
    resolve_device(device)
    check_output_name(output)
    if options.plot is not None and len(files) != 1:
        raise PredictionError(f"--plot draws one recording's timeline; {len(files)} files were given: pass one file.")
    if options.vad:
        from .vad import vad_available

        if not vad_available():
            raise PredictionError(
                "--vad needs silero-vad: pip install 'gemo-clap-hf[app]' (or: pip install silero-vad)."
            )
    classifier, feature_extractor = load_backend(model, backend, device, threads)  # torch, or an onnx export
    writer = SegmentWriter(Path(output), segment_columns(classifier.config)) if output else None
    summary, files = pending_files(writer, files)
    progress = _SegmentProgress(len(files), quiet)
    if writer is not None and writer.repaired:
        progress.report(f"gemo-clap predict: {output}: cut off the rows of a file that was not finished (it is redone)")
    results: list[SegmentedFile] = []
    start = time.perf_counter()
    try:
        found = iter_segmented_files(
            classifier, feature_extractor, files, options.window, options.hop, options.vad, batch_size
        )
        for result in found:
            if not tally(result, summary, progress):
                continue
            if options.plot is not None:
                from .timeline_plot import save_timeline_png

                save_timeline_png(result, options.plot, labels=list(classifier.config.emotion_labels))
            if options.merge:
                result.segments = merge_segments(result.segments)
            if writer is None:
                results.append(result)
            else:
                writer.write_file(result)
    finally:
        progress.close()
        if writer is not None:
            writer.close()
        summary.seconds = time.perf_counter() - start
    return results, summary


__all__ = ["SegmentOptions", "SegmentWriter", "format_segments", "run_segments", "segment_columns"]
