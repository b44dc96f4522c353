#!/usr/bin/env python
"""Emo-CLAP vs SL-GEmo-CLAP vs ML-GEmo-CLAP on the synthetic corpus, as pre-registered in
docs/results/variants_protocol.md: a confounded and a control corpus setting, seeds 0-9, 5-fold
leave-one-session-out, plus an SL alpha_e sweep on the confounded setting.

    nice -n 19 python training_scripts/compare_variants.py --runs-dir .variants_runs      # the protocol
    python training_scripts/compare_variants.py --runs-dir .variants_runs --report-only   # report what is done
    python training_scripts/compare_variants.py --pilot --runs-dir .variants_pilot        # the pilot

Every run (setting, variant, seed, fold) trains one model through `run_training` and saves its held-out metrics to
`<runs-dir>/results/<setting>/<variant>/seed<k>_fold<f>.json` as soon as it finishes; a rerun of the same command
skips the finished ones, so the protocol can be stopped and resumed. After every seed the report
(docs/results/variants.md and its picture) is rewritten from whatever is finished, marked partial until all runs
are. The pilot trains on sessions 1-3 and validates on session 4 (session 5 is never seen) and writes
`<runs-dir>/pilot.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

from gemo_clap_hf.data.synthetic import RELEASE_DIR, generate_corpus
from gemo_clap_hf.demo.run import LEARNING, data_arguments, model_arguments, training_arguments

SCRIPT_PATH = "training_scripts/compare_variants.py"
SETTINGS = ("confounded", "control")
FOLDS = ("1", "2", "3", "4", "5")
GENDERS = ("female", "male")
COLLAPSED_UAR = 0.30  # chance is 0.25 on 4 classes
REPORT_EVERY = 10  # runs between rewrites of the report

# Frozen by docs/results/variants_protocol.md (chosen by the pilot; see there).
CORPUS = {"utterances_per_speaker": 40, "cue_scale": 1.0, "spread": 1.0, "seed": 0}
# LEARNING's budget with tiny towers (5x cheaper per step than small) and a 30 % warm-up (0.1 collapsed SL).
RECIPE = dataclasses.replace(LEARNING, tower_size="tiny", learning_rate=1e-3, num_train_epochs=8, warmup_steps=0.3)
LOGIT_SCALE_INIT = 1 / 0.07

# name -> (label, loss_type, alpha_e); Emo-CLAP ignores alpha_e (SL at alpha_e 1.0 is exactly its loss).
VARIANTS = {
    "emo": ("Emo-CLAP", "emo", 1.0),
    "sl0.8": ("SL-GEmo-CLAP, alpha_e 0.8", "sl", 0.8),
    "sl0.9": ("SL-GEmo-CLAP, alpha_e 0.9", "sl", 0.9),
    "ml0.9": ("ML-GEmo-CLAP, alpha_e 0.9", "ml", 0.9),
    "sl0.5": ("SL-GEmo-CLAP, alpha_e 0.5", "sl", 0.5),
    "sl0.7": ("SL-GEmo-CLAP, alpha_e 0.7", "sl", 0.7),
}
MAIN_VARIANTS = ("emo", "sl0.8", "sl0.9", "ml0.9")
MAIN_SEEDS = tuple(range(10))
SWEEP = {"setting": "confounded", "seeds": (0, 1, 2), "alphas": {0.5: "sl0.5", 0.7: "sl0.7", 0.9: "sl0.9", 1.0: "emo"}}


@dataclasses.dataclass(frozen=True)
class Run:
    setting: str
    variant: str
    seed: int
    fold: str

    def result_path(self, runs_dir: Path) -> Path:
        return runs_dir / "results" / self.setting / self.variant / f"seed{self.seed}_fold{self.fold}.json"


def protocol_runs() -> list[Run]:
    """Every run of the protocol, seed by seed (so a partial run has whole seeds), then the sweep's extra runs."""
    runs = [
        Run(setting, variant, seed, fold)
        for seed in MAIN_SEEDS
        for setting in SETTINGS
        for variant in MAIN_VARIANTS
        for fold in FOLDS
    ]
    extra = [v for v in SWEEP["alphas"].values() if v not in MAIN_VARIANTS]
    runs += [Run(SWEEP["setting"], v, seed, fold) for seed in SWEEP["seeds"] for v in extra for fold in FOLDS]
    return runs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", default=".variants_runs", help="corpora, towers and per-run results")
    parser.add_argument("--results", default="docs/results/variants.md", help="the report to write")
    parser.add_argument("--report-only", action="store_true", help="write the report from finished runs only")
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--max-runs", type=int, default=None, help="stop after this many new runs (timing)")
    pilot = parser.add_argument_group("pilot (validation on session 4; session 5 never used)")
    pilot.add_argument("--pilot", action="store_true")
    pilot.add_argument("--pilot-settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    pilot.add_argument("--pilot-seeds", type=int, nargs="+", default=[0, 1])
    pilot.add_argument("--pilot-variants", nargs="+", default=["emo", "sl0.9"], choices=list(VARIANTS))
    pilot.add_argument("--cue-scale", type=float, default=CORPUS["cue_scale"])
    pilot.add_argument("--spread", type=float, default=CORPUS["spread"])
    pilot.add_argument("--tower-size", default=RECIPE.tower_size, choices=["tiny", "small"])
    pilot.add_argument("--crop", type=float, default=RECIPE.max_duration_s, help="training crop, seconds")
    pilot.add_argument("--learning-rate", type=float, default=RECIPE.learning_rate)
    pilot.add_argument("--epochs", type=float, default=RECIPE.num_train_epochs)
    pilot.add_argument("--warmup", type=float, default=RECIPE.warmup_steps)
    pilot.add_argument("--logit-scale-init", type=float, default=LOGIT_SCALE_INIT)
    return parser.parse_args(argv)


def corpus_dir(runs_dir: Path, setting: str, cue_scale: float, spread: float) -> Path:
    """The setting's corpus (generated once, then reused)."""
    folder = runs_dir / f"corpus_{setting}_cue{cue_scale:g}_spread{spread:g}"
    options = dict(setting=setting, cue_scale=cue_scale, spread=spread)
    return generate_corpus(
        folder, seed=CORPUS["seed"], utterances_per_speaker=CORPUS["utterances_per_speaker"], progress=False, **options
    )


def pilot_corpus_dir(full: Path) -> Path:
    """Sessions 1-4 of a corpus (links), so the pilot cannot see session 5."""
    folder = full.parent / f"{full.name}_sessions1-4"
    for session in (1, 2, 3, 4):
        link = folder / f"Session{session}"
        if not link.exists():
            folder.mkdir(parents=True, exist_ok=True)
            link.symlink_to((full / RELEASE_DIR / f"Session{session}").resolve())
    return folder


def train_one(run: Run, data_dir: Path, work_dir: Path, recipe, logit_scale_init: float) -> dict:
    """One model: trained on every session of `data_dir` but `run.fold`, scored on `run.fold`; metrics only kept."""
    label, loss_type, alpha_e = VARIANTS[run.variant]
    model_dir = work_dir / f"{run.setting}_{run.variant}_seed{run.seed}_fold{run.fold}"
    training_args = training_arguments(recipe, model_dir, run.seed)
    training_args.disable_tqdm = True
    data_args = dataclasses.replace(data_arguments(recipe, data_dir), test_fold=run.fold)
    # The same towers (and, through the seed, the same projection heads) for every variant of a seed.
    # Written per run (parallel runs never share files); the seed alone sets the weights.
    model_args = model_arguments(recipe, model_dir / "towers", run.seed, loss_type=loss_type)
    model_args = dataclasses.replace(model_args, alpha_e=alpha_e, logit_scale_init_value=logit_scale_init)
    from gemo_clap_hf.training import run_training
    from gemo_clap_hf.training.outputs import held_out_prefix

    model_dir.mkdir(parents=True, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    with open(model_dir / "log.txt", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        metrics = run_training(model_args, data_args, training_args)
    prefix = held_out_prefix(metrics)
    result = {
        **dataclasses.asdict(run),
        "uar": metrics[f"{prefix}_uar"],
        "war": metrics[f"{prefix}_war"],
        **{f"uar_{g}": metrics[f"{prefix}_uar_{g}"] for g in GENDERS},
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,  # all threads: about the wall time on 1 quiet core
        "train_loss": metrics.get("train_loss"),
        "train_runtime": metrics.get("train_runtime"),
    }
    shutil.rmtree(model_dir)
    return result


def save_result(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result, indent=1), encoding="utf-8")
    temporary.replace(path)  # atomic: an interrupted run leaves no half-written result


def run_pilot(args: argparse.Namespace) -> int:
    runs_dir = Path(args.runs_dir)
    recipe = dataclasses.replace(
        RECIPE,
        learning_rate=args.learning_rate,
        num_train_epochs=args.epochs,
        warmup_steps=args.warmup,
        tower_size=args.tower_size,
        max_duration_s=args.crop,
    )
    tag = f"cue{args.cue_scale:g}_spread{args.spread:g}_lr{args.learning_rate:g}_ep{args.epochs:g}_wu{args.warmup:g}"
    tag += f"_ls{args.logit_scale_init:g}_{args.tower_size}_crop{args.crop:g}"
    results = []
    for setting in args.pilot_settings:
        data_dir = pilot_corpus_dir(corpus_dir(runs_dir, setting, args.cue_scale, args.spread))
        for seed in args.pilot_seeds:
            for variant in args.pilot_variants:
                run = Run(setting, variant, seed, "4")
                path = runs_dir / "pilot" / tag / f"{setting}_{variant}_seed{seed}.json"
                if not path.is_file():
                    save_result(path, train_one(run, data_dir, runs_dir / "work" / tag, recipe, args.logit_scale_init))
                result = json.loads(path.read_text())
                results.append(result)
                print(
                    f"pilot {tag} {setting} {variant} seed {seed}: validation UAR {100 * result['uar']:.1f} "
                    f"(F {100 * result['uar_female']:.1f}, M {100 * result['uar_male']:.1f}) "
                    f"in {result['seconds']:.0f} s",
                    flush=True,
                )
    return 0


def protocol_worker(run: Run, data_dir: Path, runs_dir: Path, threads: int) -> dict:
    """One protocol run in a worker process: train, save the result file, return it."""
    import torch

    torch.set_num_threads(threads)
    result = train_one(run, data_dir, runs_dir / "work", RECIPE, LOGIT_SCALE_INIT)
    save_result(run.result_path(runs_dir), result)
    return result


def run_protocol(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from variant_report import write_report

    runs_dir = Path(args.runs_dir)
    started = time.time()
    corpora = {s: corpus_dir(runs_dir, s, CORPUS["cue_scale"], CORPUS["spread"]) for s in SETTINGS}
    pending = [run for run in protocol_runs() if not run.result_path(runs_dir).is_file()]
    print(f"{len(protocol_runs()) - len(pending)} of {len(protocol_runs())} runs already finished", flush=True)
    pending = pending[: args.max_runs]
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(protocol_worker, run, corpora[run.setting], runs_dir, args.threads): run for run in pending
        }
        for done, future in enumerate(as_completed(futures), 1):
            result = future.result()
            print(f"{futures[future]}: UAR {100 * result['uar']:.1f} in {result['seconds']:.0f} s", flush=True)
            if done % REPORT_EVERY == 0:
                write_report(runs_dir, args.results, command(), machine(), time.time() - started)
    write_report(runs_dir, args.results, command(), machine(), time.time() - started)
    return 0


def command() -> str:
    return " ".join(shlex.quote(a) for a in ["python", SCRIPT_PATH, *sys.argv[1:]])


def machine() -> str:
    import torch

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), no GPU"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.pilot:
        return run_pilot(args)
    if args.report_only:
        from variant_report import write_report

        write_report(Path(args.runs_dir), args.results, command(), machine(), None)
        return 0
    return run_protocol(args)


if __name__ == "__main__":
    sys.exit(main())
