"""Inputs and outputs of `gemo-clap predict`: files, folders and manifests in; CSV/JSONL rows out, resumable.

- `collect_inputs` turns the command line's PATHs (audio files, folders, CSV/JSONL manifests) into one list of
  files, without duplicates. A PATH that does not exist is an error before the model loads (a typo fails in
  milliseconds); a file listed in a manifest that is missing is reported and skipped, like a corrupt one.
- `ResultWriter` streams one row per classified file to `--output` (CSV or JSONL, chosen by the extension), flushed
  after every batch. Reopening an existing output resumes: the files already in it are skipped, and a half-written
  last line (the previous run was killed mid-write) is cut off, so its file is classified again, not duplicated.
- `run_predict` ties them to the engine (`prediction.iter_predictions`) with a progress bar and a summary.
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

from .prediction import Failure, Prediction, PredictionError

# What `gemo-clap predict` picks up in a folder: the formats soundfile (libsndfile) decodes without ffmpeg.
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".aifc",
    ".au",
    ".caf",
    ".w64",
    ".rf64",
)
MANIFEST_EXTENSIONS = (".csv", ".jsonl", ".json")
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
SHOWN_FAILURES = 10


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith("._")  # "._x.wav": macOS debris


def _folder_files(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(path for path in found if path.is_file() and _is_audio(path))
    if not files:
        hint = "" if recursive or not any(p.is_dir() for p in folder.iterdir()) else " (sub-folders: add --recursive)"
        raise PredictionError(
            f"folder {str(folder)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS[:4])}, ...)"
            f"{hint}; pass audio files, a folder of them, or a CSV/JSONL manifest."
        )
    return files


def _manifest_files(manifest: Path) -> list[Path]:
    """The `path` column of a manifest (the training manifest format; other columns are ignored), resolved against
    the manifest's folder."""
    from ..data.readers.tables import read_table

    try:
        rows = read_table(manifest, "manifest", ["path"])
    except ValueError as error:
        raise PredictionError(str(error)) from error
    files = []
    for row in rows:
        path = Path(str(row["path"])).expanduser()
        files.append(path if path.is_absolute() else manifest.parent / path)
    return files


def collect_inputs(paths: Sequence[str | os.PathLike], recursive: bool = False) -> list[str]:
    """Every audio file named by `paths` (files, folders, manifests), in the order given, each once."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise PredictionError(f"audio file(s) not found: {', '.join(missing)}; check the path(s).")
    files: dict[str, None] = {}
    seen: set[str] = set()
    for given in map(Path, paths):
        if given.is_dir():
            found = _folder_files(given, recursive)
        elif given.suffix.lower() in MANIFEST_EXTENSIONS:
            found = _manifest_files(given)
        else:
            found = [given]
        for path in found:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                files[str(path)] = None
    return list(files)


def output_columns(config) -> list[str]:
    """The CSV header for a model: file, emotion, score, one probability per emotion label, gender for ML."""
    columns = ["file", "emotion", "score", *config.emotion_labels]
    if config.loss_type == "ml":
        columns += ["gender", "gender_score"]
    return columns


def _format_value(value) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def _parse_line(line: str, kind: str, columns: list[str]) -> dict | None:
    """One output line as a row dict, or None when it is not a complete row of this model's columns."""
    try:
        if kind == "jsonl":
            row = json.loads(line)
            return row if isinstance(row, dict) and list(row) == columns else None
        [values] = list(csv.reader([line]))
    except (ValueError, csv.Error):
        return None
    return dict(zip(columns, values)) if len(values) == len(columns) else None


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
        """Read the existing rows into `done`; return how many bytes of the file to keep (0: start it afresh)."""
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # the last piece is "" when the file ends with a newline
        self.repaired = bool(tail)
        if self.kind == "csv":
            if not complete:
                return 0  # not even a whole header: rewrite it
            header = next(csv.reader([complete[0].decode("utf-8", "surrogateescape")]))
            if header != self.columns:
                raise self._other_model(f"columns {header}")
            body, keep = complete[1:], len(complete[0]) + 1
        else:
            body, keep = complete, 0
        for number, raw in enumerate(body):
            row = _parse_line(raw.decode("utf-8", "surrogateescape"), self.kind, self.columns)
            if row is None:
                if number == len(body) - 1:  # a last line that lost its end, then got a newline: repair it too
                    self.repaired = True
                    break
                raise self._other_model(f"line {number + 1 + (self.kind == 'csv')}: {raw[:80]!r}")
            self.done.update({row["file"], os.path.abspath(row["file"])})
            keep += len(raw) + 1
        return keep

    def _other_model(self, what: str) -> PredictionError:
        return PredictionError(
            f"--output {str(self.path)!r} cannot be resumed: it holds {what}, not rows of this model's columns "
            f"{self.columns}. Choose another --output, or delete the file to start again."
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

    def write(self, prediction: Prediction) -> None:
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


class _Progress:
    """A tqdm bar over files showing clips/s and audio hours per second (stderr), or nothing when quiet."""

    def __init__(self, total: int, quiet: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="clip", disable=quiet, file=sys.stderr, dynamic_ncols=True)
        self.start, self.audio = time.perf_counter(), 0.0

    def update(self, result: Prediction | Failure) -> None:
        if isinstance(result, Prediction):
            self.audio += result.duration
        self.bar.update(1)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.audio / 3600 / elapsed:.3g} audio h/s", refresh=False)

    def report(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def tally(result, summary: Summary, progress: _Progress) -> bool:
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


def run_predict(
    model: str,
    paths: Sequence[str],
    output: str | None = None,
    batch_size: int = 8,
    device: str | None = None,
    top_k: int | None = None,
    recursive: bool = False,
    quiet: bool = False,
    backend: str = "torch",
    threads: int | None = None,
) -> tuple[list[Prediction], Summary]:
    """Classify every file named by `paths`; stream rows to `output` (resuming it) or return them in input order.
    `backend="onnx"` runs an `export-onnx` folder (or `.onnx` file) with onnxruntime (`onnx_backend`).

    Failures are reported on stderr as they happen and kept in the summary; they never stop the run.
    """
    from .onnx_backend import load_backend
    from .prediction import iter_predictions, resolve_device

    if top_k is not None and top_k < 1:
        raise PredictionError(f"--top-k must be at least 1, got {top_k}.")
    if batch_size < 1:
        raise PredictionError(f"--batch-size must be at least 1, got {batch_size}.")
    files = collect_inputs(paths, recursive)  # before the model loads: a wrong path fails in milliseconds
    resolve_device(device)
    check_output_name(output)
    classifier, feature_extractor = load_backend(model, backend, device, threads)
    writer = ResultWriter(Path(output), output_columns(classifier.config)) if output else None
    summary, files = pending_files(writer, files)
    progress = _Progress(len(files), quiet)
    if writer is not None and writer.repaired:
        progress.report(f"gemo-clap predict: {output}: cut off a half-written last line (its file is classified again)")
    predictions: list[Prediction] = []
    start = time.perf_counter()
    try:
        for result in iter_predictions(classifier, feature_extractor, files, batch_size, top_k=top_k):
            if not tally(result, summary, progress):
                continue
            if writer is None:
                predictions.append(result)
            else:
                writer.write(result)
                writer.flush()
    finally:
        progress.close()
        if writer is not None:
            writer.close()
        summary.seconds = time.perf_counter() - start
    order = {file: index for index, file in enumerate(files)}
    predictions.sort(key=lambda p: order[p.file])
    return predictions, summary


__all__ = ["AUDIO_EXTENSIONS", "ResultWriter", "Summary", "collect_inputs", "output_columns", "run_predict"]
