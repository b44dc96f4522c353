"""What `gemo-clap predict` writes: CSV/JSONL rows that resume, text for the terminal, the progress and the summary.

- `ResultWriter` streams one row per classified file to `--output` (CSV or JSONL, chosen by the extension), flushed
  after every batch. Reopening an existing output resumes: the files already in it are skipped, and a half-written
  last line (the previous run was killed mid-write) is cut off, so its file is classified again, not duplicated.
- `SegmentWriter` does the same for `--segments` rows (`file, start, end, segment, segments, emotion, score`, ...).
  A file's rows are written together once all its windows are scored; `segment` / `segments` (its number, 1-based,
  and its file's count) let a rerun tell a complete file from one whose rows were cut off by a kill: such a
  trailing file's rows are cut away and that file is scored again, without duplicates.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PredictionError
from ..inference.predictions import Failure, Prediction, SegmentedFile

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
SHOWN_FAILURES = 10


def output_columns(config, segments: bool = False, speakers: bool = False) -> list[str]:
    """The CSV header for a model: file (then start, end, segment, segments for `--segments` rows, and speaker with
    `--turns`), emotion, score, one probability per emotion label, and gender, gender_score for ML models."""
    place = ["start", "end", "segment", "segments"] if segments else []
    place += ["speaker"] if speakers else []
    columns = ["file", *place, "emotion", "score", *config.emotion_labels]
    if config.loss_type == "ml":
        columns += ["gender", "gender_score"]
    return columns


def _format_value(value) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def parse_row(line: str, kind: str, columns: list[str]) -> dict | None:
    """One output line as a row dict, or None when it is not a complete row of this model's columns."""
    try:
        if kind == "jsonl":
            row = json.loads(line)
            return row if isinstance(row, dict) and list(row) == columns else None
        [values] = list(csv.reader([line]))
    except (ValueError, csv.Error):
        return None
    return dict(zip(columns, values)) if len(values) == len(columns) else None


def split_records(data: bytes, kind: str) -> tuple[list[bytes], bytes]:
    """The complete records of an output file (without their newline) and the unfinished tail after them.

    A JSONL record is one line (JSON escapes newlines). A CSV record ends at a newline outside quotes: a quoted
    field (a file name with a newline in it) spans lines. The quotes are counted on the bytes: `"` (0x22) never
    occurs inside a multi-byte UTF-8 character, nor in the surrogate-escaped bytes of a non-UTF-8 name.
    """
    pieces = data.split(b"\n")
    records, current = [], None
    for piece in pieces[:-1]:
        current = piece if current is None else current + b"\n" + piece
        if kind != "csv" or current.count(b'"') % 2 == 0:
            records.append(current)
            current = None
    tail = pieces[-1] if current is None else current + b"\n" + pieces[-1]
    return records, tail


@dataclass
class ResultWriter:
    """Streams prediction rows to a CSV or JSONL file, resuming (and repairing) one that a previous run wrote.

    `done` holds the files already in the output (as written and as absolute paths); `repaired` says whether a
    half-written last line was cut off.
    """

    path: Path
    columns: list[str]
    kind: str = field(init=False)
    done: set[str] = field(default_factory=set, init=False)
    kept: list[tuple[dict, int]] = field(default_factory=list, init=False)
    repaired: bool = field(default=False, init=False)

    def __post_init__(self):
        self.path = Path(self.path)
        self.kind = OUTPUT_FORMATS.get(self.path.suffix.lower())
        if self.kind is None:
            raise PredictionError(
                f"--output {str(self.path)!r}: name a .csv or .jsonl file (the format follows the extension)."
            )
        if self.path.is_dir():
            raise PredictionError(f"--output {str(self.path)!r} is a folder; name a .csv or .jsonl file in it.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep = self._resume() if self.path.is_file() else 0
        self._handle = open(self.path, "r+b" if keep else "wb")  # noqa: SIM115 - closed in close()
        self._handle.truncate(keep)
        self._handle.seek(keep)
        if keep == 0 and self.kind == "csv":
            self._write_line(self._csv_line(self.columns))

    def _resume(self) -> int:
        """Read the existing rows into `done` (and `kept`: each row with its size in bytes); return how many bytes
        of the file to keep (0: start it afresh)."""
        records, tail = split_records(self.path.read_bytes(), self.kind)
        self.repaired = bool(tail)
        if self.kind == "csv":
            if not records:
                return 0  # not even a whole header: rewrite it
            header = next(csv.reader([records[0].decode("utf-8", "surrogateescape")]))
            if header != self.columns:
                raise self._not_resumable(f"it was written for the columns {header}, not this model's {self.columns}")
            body, keep = records[1:], len(records[0]) + 1
        else:
            body, keep = records, 0
        line = 2 if self.kind == "csv" else 1  # the physical line each record starts on
        for number, raw in enumerate(body):
            row = parse_row(raw.decode("utf-8", "surrogateescape"), self.kind, self.columns)
            if row is None:
                if number == len(body) - 1:  # a last line that lost its end, then got a newline: repair it too
                    self.repaired = True
                    break
                raise self._not_resumable(
                    f"line {line} is not a row of this model's columns {self.columns}: {raw[:80]!r} (was the file "
                    "edited, or written by another model?)"
                )
            self.done.update({row["file"], os.path.abspath(row["file"])})
            self.kept.append((row, len(raw) + 1))
            keep += len(raw) + 1
            line += raw.count(b"\n") + 1
        return keep

    def _not_resumable(self, why: str) -> PredictionError:
        return PredictionError(
            f"--output {str(self.path)!r} cannot be resumed: {why}. Choose another --output, or delete the file to "
            "start again."
        )

    def is_done(self, file: str) -> bool:
        return file in self.done or os.path.abspath(file) in self.done

    @staticmethod
    def _csv_line(values: Iterable) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()

    def _write_line(self, line: str) -> None:
        # File names need not be UTF-8 on Linux (Python holds their bytes as surrogates): write those bytes back.
        self._handle.write(line.encode("utf-8", "surrogateescape"))

    def write(self, prediction) -> None:
        """Write one `Prediction` (or `Segment`) as a row."""
        row = prediction.to_row()
        if self.kind == "csv":
            self._write_line(self._csv_line(_format_value(row[name]) for name in self.columns))
        else:
            self._write_line(json.dumps({name: row[name] for name in self.columns}) + "\n")
        self.done.add(prediction.file)

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


@dataclass
class Summary:
    """What a `gemo-clap predict` run did, for the closing lines and the exit code."""

    total: int = 0
    already_done: int = 0
    classified: int = 0
    failures: list[Failure] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 when there were files and none has a result (from this run, or in the output from an earlier one)."""
        return 1 if self.total and self.classified + self.already_done == 0 else 0

    def format(self, output: str | None = None) -> str:
        rate = self.classified / self.seconds if self.seconds else 0.0
        lines = [
            f"classified {self.classified} of {self.total} file(s)"
            + (f" ({self.already_done} already in {output}, skipped)" if self.already_done else "")
            + f", {len(self.failures)} failed; {self.audio_seconds / 3600:.3f} h of audio in {self.seconds:.1f} s"
            + (f" ({rate:.1f} clips/s)" if self.classified else "")
        ]
        if self.failures:
            shown = ", ".join(failure.file for failure in self.failures[:SHOWN_FAILURES])
            more = len(self.failures) - SHOWN_FAILURES
            lines.append(f"failed: {shown}" + (f" and {more} more" if more > 0 else "") + " (reasons above)")
        if output and self.classified:
            lines.append(f"results in {output}")
        return "\n".join(lines)


class Progress:
    """A tqdm bar over files showing clips/s and audio hours per second (stderr), or nothing when quiet."""

    def __init__(self, total: int, quiet: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="clip", disable=quiet, file=sys.stderr, dynamic_ncols=True)
        self.start, self.audio = time.perf_counter(), 0.0

    def update(self, result) -> None:
        if isinstance(result, (Prediction, SegmentedFile)):
            self.audio += result.duration
        self.bar.update(1)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.audio / 3600 / elapsed:.3g} audio h/s", refresh=False)

    def report(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def tally(result, summary: Summary, progress: Progress) -> bool:
    """Count one file's result in the summary and the progress bar; report a `Failure`. True when it succeeded."""
    progress.update(result)
    if isinstance(result, Failure):
        summary.failures.append(result)
        progress.report(f"gemo-clap predict: skipped {result.file}: {result.reason}")
        return False
    summary.classified += 1
    summary.audio_seconds += result.duration
    return True


def check_output_name(output: str | None) -> None:
    """An `--output` must name a .csv or .jsonl file: checked before the model loads."""
    if output is not None and OUTPUT_FORMATS.get(Path(output).suffix.lower()) is None:
        raise PredictionError(f"--output {output!r}: name a .csv or .jsonl file (the format follows the extension).")


def pending_files(writer, files: list[str]) -> tuple[Summary, list[str]]:
    """The run's `Summary` and the files still to do: those the output file (`writer`, resumed) lacks."""
    summary = Summary(total=len(files))
    if writer is not None:
        todo = [file for file in files if not writer.is_done(file)]
        summary.already_done, files = len(files) - len(todo), todo
    return summary, files


def _segment_count(row: dict, writer: ResultWriter) -> int:
    try:
        return int(row["segments"])
    except ValueError:
        raise writer._not_resumable(f"a row of {row['file']!r} has segments={row['segments']!r}, not a count") from None


class SegmentWriter(ResultWriter):
    """`ResultWriter` for segment rows: a file counts as done only when all its `segments` rows are there.

    The rows of one file are written in one go, so only the last file of an output can be incomplete; resuming
    cuts its rows off (`repaired`) and it is scored again.
    """

    def _resume(self) -> int:
        keep = super()._resume()
        if keep == 0:
            return 0
        offset = keep - sum(size for _, size in self.kept)  # where the rows start (after a CSV header)
        group_file, group_start, seen = None, offset, 0
        for row, size in self.kept:
            if row["file"] != group_file:
                group_file, group_start, seen = row["file"], offset, 0
            seen += 1
            offset += size
            if seen == _segment_count(row, self):
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


def format_predictions(predictions: Sequence[Prediction]) -> str:
    """Human-readable lines: the file, then its top emotions with scores (and the gender for ML models)."""
    lines = []
    for prediction in predictions:
        emotions = ", ".join(f"{e['label']} {e['score']:.2f}" for e in prediction.emotions)
        lines.append(f"{prediction.file}: {emotions}")
        if prediction.genders is not None:
            best = prediction.genders[0]
            lines.append(f"  gender: {best['label']} {best['score']:.2f}")
    return "\n".join(lines)


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


__all__ = [
    "OUTPUT_FORMATS",
    "Progress",
    "ResultWriter",
    "SegmentWriter",
    "Summary",
    "check_output_name",
    "format_predictions",
    "format_segments",
    "output_columns",
    "parse_row",
    "pending_files",
    "split_records",
    "tally",
]
