"""The `gemo-clap` console script: synth-corpus, predict, export-onnx, demo, bench and app sub-commands.

Each sub-command is a thin wrapper: the work lives in `data.synthetic`, `bulk_prediction`, `onnx_export`, `demo`
and `throughput`, which are imported only when their sub-command runs, so `gemo-clap --help` stays fast. Expected
failures (a missing file or model folder, an existing different corpus) end with one `gemo-clap <command>: error:
...` line and exit 2. `predict` exits 1 when it had files to classify and could classify none of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

EXIT_USAGE_ERROR = 2


class CommandError(Exception):
    """An expected failure; its message (naming the problem and the fix) is printed without a traceback."""


def _synth_corpus(args: argparse.Namespace) -> int:
    from ..data.synthetic import describe_corpus, generate_corpus

    try:
        generate_corpus(
            args.out_dir,
            seed=args.seed,
            utterances_per_speaker=args.utterances_per_speaker,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except FileExistsError as error:
        raise CommandError(f"{error} (or choose another OUT_DIR)") from error
    summary = describe_corpus(args.out_dir)
    per_emotion = ", ".join(f"{label} {count}" for label, count in summary["per_emotion"].items())
    per_gender = ", ".join(f"{label} {count}" for label, count in summary["per_gender"].items())
    print(
        f"Synthetic corpus (seed {summary['seed']}) in {args.out_dir}/IEMOCAP_full_release: "
        f"{summary['utterances']} utterances in the 4-class set, {summary['hours']:.2f} h, 5 sessions\n"
        f"  emotions: {per_emotion}\n  genders:  {per_gender}\n"
        f"Read it with load_corpus('synthetic', {str(args.out_dir)!r}) or train on it with "
        f"--dataset synthetic --data_dir {args.out_dir}."
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..feature_extraction_gemo_clap import GEmoClapAudioError
    from .bulk_prediction import run_predict
    from .prediction import PredictionError, format_predictions

    if args.json and args.output is not None:
        raise CommandError("--json prints to stdout; with --output, name a .jsonl file to get JSON rows instead.")
    if args.quiet:  # transformers' own "Loading weights" bar too
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    from .segment_cli import check_segment_flags, run_segment_predict

    if (stray := check_segment_flags(args)) is not None:
        raise CommandError(stray)
    try:
        if args.segments:  # one row per window: apps/segment_cli.py
            return run_segment_predict(args)
        predictions, summary = run_predict(
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
        )
    except (PredictionError, GEmoClapAudioError) as error:
        raise CommandError(str(error)) from error
    if args.output is None:
        if args.json:
            print(json.dumps([p.to_dict() for p in predictions], indent=2))
        elif predictions:
            print(format_predictions(predictions))
    if args.output is not None or summary.failures or not args.quiet:
        print(summary.format(args.output), file=sys.stderr)
    return summary.exit_code


def _export_onnx(args: argparse.Namespace) -> int:
    from ..feature_extraction_gemo_clap import GEmoClapAudioError, GEmoClapFeatureExtractor
    from .onnx_export import OnnxExportError, export_onnx
    from .prediction import PredictionError

    try:
        report = export_onnx(args.model, args.out_dir, opset=args.opset, verify=not args.no_verify)
        print(report.describe())
        if args.quantize == "int8":
            from .onnx_quantize import quantize_int8, read_check_audio

            rate = GEmoClapFeatureExtractor.from_pretrained(args.out_dir).sampling_rate
            extra = read_check_audio(args.check_audio, rate) if args.check_audio else None
            print(quantize_int8(args.out_dir, extra, force=args.force).describe())
    except (PredictionError, OnnxExportError, GEmoClapAudioError) as error:
        raise CommandError(str(error)) from error
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.output_dir, seed=args.seed, fast=args.fast)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..feature_extraction_gemo_clap import GEmoClapAudioError
    from .bulk_prediction import collect_inputs
    from .onnx_backend import load_backend
    from .prediction import PredictionError, resolve_device
    from .throughput import format_throughput, measure_predict_throughput

    try:
        files = collect_inputs(args.paths, args.recursive)  # before the model loads: a wrong path fails at once
        resolve_device(args.device)
        classifier, feature_extractor = load_backend(args.model, args.backend, args.device, args.threads)
        figures = measure_predict_throughput(
            classifier, feature_extractor, files, args.batch_size, args.repeats, args.device
        )
    except (PredictionError, GEmoClapAudioError) as error:
        raise CommandError(str(error)) from error
    print(json.dumps(figures, indent=2) if args.json else format_throughput(figures))
    return 0


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    from .app_cli import add_app_command
    from .segment_cli import add_segment_arguments

    parser = argparse.ArgumentParser(prog="gemo-clap", description="GEmo-CLAP speech emotion recognition tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth-corpus", help="write the synthetic emotional-speech corpus (IEMOCAP layout)")
    synth.add_argument("out_dir", metavar="OUT_DIR", help="folder to write IEMOCAP_full_release/ into")
    synth.add_argument("--seed", type=int, default=0, help="corpus seed (default 0); same seed, same corpus")
    synth.add_argument(
        "--utterances-per-speaker",
        type=int,
        default=120,
        help="utterances per speaker, 10 speakers (default 120: 1200 utterances, about 1.1 h)",
    )
    synth.add_argument("--overwrite", action="store_true", help="replace a different corpus already in OUT_DIR")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=_synth_corpus)

    predict = commands.add_parser(
        "predict",
        help="classify the emotion of audio files, folders or manifests with a trained model",
        description="Classify audio files in length-bucketed batches. Without --output, results go to stdout "
        "(text, or --json); with --output they stream to a CSV or JSONL file that a rerun resumes. Files "
        "that cannot be read are reported and skipped; the exit code is 1 only if nothing could be "
        "classified.",
    )
    predict.add_argument(
        "--model",
        required=True,
        metavar="DIR_OR_HUB_ID",
        help="a folder written by training (or `gemo-clap demo`), or a Hub id",
    )
    predict.add_argument(
        "paths",
        nargs="+",
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
    _add_backend_options(predict)
    predict.add_argument("--quiet", "-q", action="store_true", help="no progress bar (failures are still reported)")
    add_segment_arguments(predict)
    predict.set_defaults(handler=_predict)

    export = commands.add_parser(
        "export-onnx",
        help="export a trained classifier to ONNX (label prompts folded in: no text tower needed)",
        description="Write OUT_DIR/model.onnx (inputs input_values and audio_attention_mask, batch and time axes "
        "dynamic; outputs logits and audio_embeds) with the config, the feature extractor's settings "
        "and the label tables beside it. Needs the [onnx] extra: pip install 'gemo-clap-hf[onnx]'.",
    )
    export.add_argument(
        "--model",
        required=True,
        metavar="DIR_OR_HUB_ID",
        help="a folder written by training (or `gemo-clap demo`), or a Hub id",
    )
    export.add_argument("out_dir", metavar="OUT_DIR", help="folder to write model.onnx and its JSON files into")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    export.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime check against PyTorch on a padded batch"
    )
    export.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="also write model.int8.onnx (onnxruntime dynamic int8 quantisation of the MatMul/Gemm weights), after "
        "checking its argmax agreement with the float32 graph (refused below 95%% unless --force)",
    )
    export.add_argument("--force", action="store_true", help="write the int8 graph even below the agreement threshold")
    export.add_argument(
        "--check-audio",
        nargs="+",
        default=None,
        metavar="PATH",
        help="audio files, folders or manifests to add to the int8 check clips (default: synthetic speech only)",
    )
    export.set_defaults(handler=_export_onnx)

    demo = commands.add_parser("demo", help="the main job: synthetic corpus -> train SL-GEmo-CLAP -> held-out report")
    demo.add_argument(
        "--output-dir",
        default="gemo_clap_demo",
        help="where the corpus, towers and model go (default ./gemo_clap_demo)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the corpus and the training run (default 0)")
    demo.add_argument(
        "--fast",
        action="store_true",
        help="a tiny corpus and a few steps, to check that everything runs (results meaningless)",
    )
    demo.set_defaults(handler=_demo)

    bench = commands.add_parser(
        "bench",
        help="time `gemo-clap predict` on your files with your model (clips/s, real-time factor)",
        description="Run `gemo-clap predict`'s whole path (decoding, length bucketing, the model) on your files "
        "at each batch size, --repeats times in alternating order, and print the median clips/s with the "
        "slowest and fastest run and the real-time factor. (The model-overhead benchmark of the project "
        "lives in its checkout: `make bench`.)",
    )
    bench.add_argument(
        "--model", required=True, metavar="DIR_OR_HUB_ID", help="a folder written by training, or a Hub id"
    )
    bench.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or manifests, as for predict")
    bench.add_argument("--batch-size", type=int, nargs="+", default=[1, 8], help="batch sizes to time (default: 1 8)")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs per batch size (default 3)")
    bench.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    bench.add_argument("--recursive", "-r", action="store_true", help="also search the folders' sub-folders")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    _add_backend_options(bench)
    bench.set_defaults(handler=_bench)
    add_app_command(commands)  # `gemo-clap app`: apps/app_cli.py
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    # torch warns on every WavLM forward that transformers mixes a bool padding mask with a float position bias;
    # it says nothing about the user's input, so the command line keeps it out of their output.
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask", category=UserWarning)
    try:
        return args.handler(args)
    except CommandError as error:
        print(f"gemo-clap {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
