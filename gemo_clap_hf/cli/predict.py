"""`gemo-clap predict`: its options, and the one run loop for files (one row each) and segments (one row per window).

Everything is validated here, once, before the model loads (a typo fails in milliseconds): the paths, the output
name, the batch size, top-k, the segment options and the backend/device/threads (by `load_backend`). Files and
segments then differ only in the engine iterator, the writer and the columns they supply.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import CommandError, PredictionError
from ..inference.engine import check_batch_size, check_top_k, iter_predictions, iter_segmented_files
from ..inference.inputs import collect_inputs
from ..inference.predictions import Prediction, SegmentedFile
from ..inference.segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, SegmentOptions, merge_segments
from .ray_options import add_ray_arguments, check_ray_options, ray_address
from .results import (
    Progress,
    ResultWriter,
    SegmentWriter,
    Summary,
    check_output_name,
    format_predictions,
    format_segments,
    output_columns,
    pending_files,
    tally,
)
from .stream import check_stream_arguments, run_stream


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch (default: --model is a trained model) or onnx (onnxruntime on the CPU: --model is an "
        "export-onnx folder, or its model.int8.onnx for the int8 graph)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads of the backend (default: one per core)"
    )


def add_model_option(parser: argparse.ArgumentParser, help: str = "a folder written by training, or a Hub id") -> None:
    parser.add_argument("--model", required=True, metavar="DIR_OR_HUB_ID", help=help)


def _add_segment_arguments(predict: argparse.ArgumentParser) -> None:
    group = predict.add_argument_group(
        "emotion over time",
        "--segments scores each file window by window: one row per segment (file, start, end, segment, segments, "
        "emotion, score, the label probabilities; gender for ML models). Each segment's scores equal predict "
        "on that cut-out clip.",
    )
    group.add_argument("--segments", action="store_true", help="one row per window instead of one per file")
    group.add_argument(
        "--window", type=float, default=DEFAULT_WINDOW_S, help=f"segment length, s (default {DEFAULT_WINDOW_S})"
    )
    group.add_argument(
        "--hop", type=float, default=DEFAULT_HOP_S, help=f"time between segment starts, s (default {DEFAULT_HOP_S})"
    )
    group.add_argument(
        "--vad",
        action="store_true",
        help="score speech only (silero VAD, from the [app] extra); no segment in pauses. Recommended for speech "
        "with pauses: far fewer false emotion switches (docs/long_recordings.md)",
    )
    group.add_argument("--merge", action="store_true", help="merge neighbouring segments with the same emotion")
    group.add_argument("--plot", metavar="OUT.png", default=None, help="draw the timeline of one file to a PNG")
    group.add_argument(
        "--stream",
        metavar="-",
        default=None,
        help="read raw 16-bit mono PCM from stdin (no PATHs) and write one JSON row per window to stdout as it goes",
    )
    group.add_argument(
        "--turns",
        metavar="FILE",
        default=None,
        help="speaker turns of the one file (RTTM, or CSV/JSONL with start, end, speaker): windows stay inside "
        "each turn, rows gain speaker, and a per-speaker summary goes to stderr",
    )
    group.add_argument("--rate", type=int, default=None, help="--stream's sampling rate, Hz (default: the model's)")


def add_predict_command(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify the emotion of audio files, folders or manifests with a trained model",
        description="Classify audio files in length-bucketed batches. Without --output, results go to stdout "
        "(text, or --json); with --output they stream to a CSV or JSONL file that a rerun resumes. Files "
        "that cannot be read are reported and skipped; the exit code is 1 only if nothing could be "
        "classified.",
    )
    add_model_option(predict, "a folder written by training (or `gemo-clap demo`), or a Hub id")
    predict.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="audio files (WAV, FLAC, OGG, MP3: read with soundfile), folders of them, or CSV/JSONL "
        "manifests with a `path` column (the training manifest format)",
    )
    predict.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="FILE.csv|FILE.jsonl",
        help="stream one row per file here (file, emotion, score, one probability per label; gender "
        "and gender_score for ML models); an existing file is resumed",
    )
    predict.add_argument("--batch-size", type=int, default=8, help="clips per batch, grouped by length (default 8)")
    predict.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    predict.add_argument("--recursive", "-r", action="store_true", help="also search the folders' sub-folders")
    predict.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="print only the k best emotions (stdout and --json; the output file keeps every label)",
    )
    predict.add_argument("--json", action="store_true", help="print a JSON list, one object per file (no --output)")
    add_backend_options(predict)
    predict.add_argument("--quiet", "-q", action="store_true", help="no progress bar (failures are still reported)")
    _add_segment_arguments(predict)
    add_ray_arguments(predict)
    predict.set_defaults(handler=predict_command)


def _segment_options(args: argparse.Namespace) -> SegmentOptions | None:
    """The segment options of the command line, or None without --segments (where they are usage errors)."""
    if args.segments:
        return SegmentOptions(args.window, args.hop, args.vad, args.merge)
    flags = (("--vad", args.vad), ("--merge", args.merge), ("--plot", args.plot), ("--turns", args.turns))
    stray = [flag for flag, on in flags if on]
    if stray:
        raise CommandError(f"{', '.join(stray)} only apply to --segments; add --segments.")
    return None


def _check_vad(segments: SegmentOptions | None) -> None:
    if segments is not None and segments.vad:
        from ..inference.vad import vad_available

        if not vad_available():
            raise PredictionError(
                "--vad needs silero-vad: pip install 'gemo-clap-hf[app]' (or: pip install silero-vad)."
            )


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
    segments: SegmentOptions | None = None,
    plot: str | None = None,
    ray: str | None = None,
    ray_workers: int | None = None,
    turns=None,
) -> tuple[list[Prediction] | list[SegmentedFile], Summary]:
    """Classify every file named by `paths` (one row each, or with `segments` one row per window); stream rows to
    `output` (resuming it) or return the results in input order; `plot` draws one file's timeline; `turns` (one
    file's diarization) keeps the windows inside speaker turns and reports a per-speaker summary.

    Failures are reported on stderr as they happen and kept in the summary; they never stop the run. With `ray`
    (a Ray address, "auto", or `LOCAL_CLUSTER`) the files are scored on a Ray cluster by `ray_workers` actors.
    """
    from ..inference.backends import load_backend

    check_batch_size(batch_size)
    check_top_k(top_k)
    files = collect_inputs(paths, recursive)  # before the model loads: a wrong path fails in milliseconds
    check_output_name(output)
    if plot is not None and (segments is None or len(files) != 1):
        raise PredictionError(f"--plot draws one recording's timeline; {len(files)} files were given: pass one file.")
    _check_vad(segments)
    check_ray_options(ray, device, plot, ray_workers)
    if ray is not None and turns is not None:
        raise PredictionError("--turns keeps windows inside one file's speaker turns on this machine; drop --ray.")
    if turns is not None:
        from ..inference.turns import turns_for

        turns = turns_for(turns, files)  # read and checked before the model loads
    scorer = load_backend(model, backend, device, threads)  # torch, or an onnx export; the device is checked here
    columns = output_columns(scorer.config, segments=segments is not None, speakers=turns is not None)
    writer = (SegmentWriter if segments else ResultWriter)(Path(output), columns) if output else None
    summary, files = pending_files(writer, files)
    progress = Progress(len(files), quiet)
    if writer is not None and writer.repaired:
        what = "the rows of a file that was not finished (it is redone)" if segments else "a half-written last line"
        progress.report(
            f"gemo-clap predict: {output}: cut off {what}" + ("" if segments else " (its file is classified again)")
        )
    if ray is not None:
        from ..inference.ray_batch import iter_ray_results

        found = iter_ray_results(
            model, files, scorer.config, ray_address(ray), backend, batch_size, segments, top_k, threads, ray_workers
        )
    elif segments is None:
        found = iter_predictions(scorer, scorer.feature_extractor, files, batch_size, top_k=top_k)
    else:
        found = iter_segmented_files(scorer, scorer.feature_extractor, files, segments, batch_size, turns=turns)
    results = []
    start = time.perf_counter()
    try:
        for result in found:
            if not tally(result, summary, progress):
                continue
            if isinstance(result, SegmentedFile):
                if plot is not None:
                    from ..inference.timeline_plot import save_timeline_png

                    save_timeline_png(result, plot, labels=list(scorer.config.emotion_labels))
                if result.turns is not None:
                    from ..inference.turns import format_speaker_summary, speaker_summary

                    progress.report(format_speaker_summary(result.file, speaker_summary(result.segments)))
                if segments.merge:
                    result.segments = merge_segments(result.segments)
            if writer is None:
                results.append(result)
            elif isinstance(result, SegmentedFile):
                writer.write_file(result)
            else:
                writer.write(result)
                writer.flush()
    finally:
        progress.close()
        if writer is not None:
            writer.close()
        summary.seconds = time.perf_counter() - start
    order = {file: index for index, file in enumerate(files)}
    results.sort(key=lambda r: order[r.file])
    return results, summary


def predict_command(args: argparse.Namespace) -> int:
    """`gemo-clap predict ...`: rows to --output (resumed) or stdout; the summary to stderr."""
    if args.json and args.output is not None:
        raise CommandError("--json prints to stdout; with --output, name a .jsonl file to get JSON rows instead.")
    segments = _segment_options(args)
    check_stream_arguments(args.stream, args.paths, args.rate, segments)
    if args.quiet:  # transformers' own "Loading weights" bar too
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    if args.stream is not None:
        rows, seconds = run_stream(
            args.model, segments, args.rate, None, None, args.backend, args.device, args.threads, args.batch_size
        )
        if not args.quiet:
            print(f"streamed {rows} segment(s) over {seconds:.1f} s of audio", file=sys.stderr)
        return 0
    results, summary = run_predict(
        args.model,
        args.paths,
        output=args.output,
        batch_size=args.batch_size,
        device=args.device,
        top_k=args.top_k,
        recursive=args.recursive,
        quiet=args.quiet,
        backend=args.backend,
        threads=args.threads,
        segments=segments,
        plot=args.plot,
        ray=args.ray,
        ray_workers=args.ray_workers,
        turns=args.turns,
    )
    if args.output is None:
        if args.json:
            rows = [s.to_row() for r in results for s in r.segments] if segments else [p.to_dict() for p in results]
            print(json.dumps(rows, indent=2))
        elif results:
            print(format_segments(results) if segments else format_predictions(results))
    if args.output is not None or summary.failures or not args.quiet:
        print(summary.format(args.output), file=sys.stderr)
    if args.plot is not None and summary.classified:
        print(f"timeline in {args.plot}", file=sys.stderr)
    return summary.exit_code


__all__ = ["add_backend_options", "add_model_option", "add_predict_command", "predict_command", "run_predict"]
