"""The `--segments` options of `gemo-clap predict` and their handler, kept apart from `cli.py` so that the
predict command's other options grow without touching this (and the other way round)."""

from __future__ import annotations

import argparse
import json
import sys

# Segment length and hop (s); defined here, not in segments.py, so that `gemo-clap --help` imports no torch.
DEFAULT_WINDOW_S, DEFAULT_HOP_S = 3.0, 1.0


def add_segment_arguments(predict: argparse.ArgumentParser) -> None:
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
        "--vad", action="store_true", help="score speech only (silero VAD, from the [app] extra); no segment in pauses"
    )
    group.add_argument("--merge", action="store_true", help="merge neighbouring segments with the same emotion")
    group.add_argument("--plot", metavar="OUT.png", default=None, help="draw the timeline of one file to a PNG")


def check_segment_flags(args: argparse.Namespace) -> str | None:
    """The message for segment options given without --segments, or None."""
    if args.segments:
        return None
    stray = [flag for flag, on in (("--vad", args.vad), ("--merge", args.merge), ("--plot", args.plot)) if on]
    if stray:
        return f"{', '.join(stray)} only apply to --segments; add --segments."
    return None


def run_segment_predict(args: argparse.Namespace) -> int:
    """`gemo-clap predict --segments ...`: rows to --output (resumed) or stdout; the summary to stderr."""
    from .segment_output import SegmentOptions, format_segments, run_segments

    options = SegmentOptions(args.window, args.hop, args.vad, args.merge, args.plot)
    results, summary = run_segments(
        args.model,
        args.paths,
        options,
        args.output,
        args.batch_size,
        args.device,
        args.recursive,
        args.quiet,
        backend=args.backend,
        threads=args.threads,
    )
    if args.output is None:
        if args.json:
            print(json.dumps([segment.to_row() for result in results for segment in result.segments], indent=2))
        elif results:
            print(format_segments(results))
    if args.output is not None or summary.failures or not args.quiet:
        print(summary.format(args.output), file=sys.stderr)
    if args.plot is not None and summary.classified:
        print(f"timeline in {args.plot}", file=sys.stderr)
    return summary.exit_code


__all__ = ["add_segment_arguments", "check_segment_flags", "run_segment_predict"]
