"""The `gemo-clap` console script: synth-corpus, predict, export-onnx, demo, bench, app, serve and export-endpoint
sub-commands.

Each sub-command's options and handler live in a module of their own (`predict`, `export`, `bench`, `app`); the
work lives in the library (`inference/`, `data/`, `demo/`, `web/`), imported only when its sub-command runs.
Expected failures, every `GEmoClapError` the package raises on purpose (a missing file or model folder, a bad
option, an existing different corpus), end with one `gemo-clap <command>: error: ...` line and exit 2. `predict`
exits 1 when it had files to classify and could classify none of them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ..errors import CommandError, GEmoClapError
from .app import add_app_command
from .bench import add_bench_command
from .export import add_export_command
from .predict import add_predict_command
from .serve import add_serve_commands

EXIT_USAGE_ERROR = 2


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


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.output_dir, seed=args.seed, fast=args.fast)
    return 0


def build_parser() -> argparse.ArgumentParser:
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

    add_predict_command(commands)
    add_export_command(commands)
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

    add_bench_command(commands)
    add_app_command(commands)
    add_serve_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    # torch warns on every WavLM forward that transformers mixes a bool padding mask with a float position bias;
    # it says nothing about the user's input, so the command line keeps it out of their output.
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask", category=UserWarning)
    try:
        return args.handler(args)
    except GEmoClapError as error:
        print(f"gemo-clap {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
