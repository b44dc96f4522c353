#!/usr/bin/env python
"""Emo-CLAP vs SL-GEmo-CLAP vs ML-GEmo-CLAP on the synthetic corpus: leave-one-session-out, several seeds, one budget.

    python training_scripts/compare_variants.py                       # writes docs/results/synthetic_variants.md
    python training_scripts/compare_variants.py --seeds 0 1 --output-dir runs/compare

Every variant trains the same small random WavLM + RoBERTa towers (the same initial weights for a given seed), on
the same corpus, with the same optimiser, steps and crops; only `loss_type` differs. Each (variant, seed) is a full
5-fold cross-validation (`run_cross_validation`); a finished one (its `cv_results.json` exists) is read, not re-run,
so an interrupted comparison restarted with the same command only runs what is missing. Not part of the tests: it
takes about half an hour on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

import torch

from gemo_clap_hf.data.synthetic import generate_corpus
from gemo_clap_hf.demo.run import LEARNING, DemoSettings, data_arguments, model_arguments, training_arguments
from gemo_clap_hf.training import run_cross_validation
from gemo_clap_hf.training.cross_validation import RESULTS_JSON
from gemo_clap_hf.training.outputs import held_out_prefix

SCRIPT_PATH = "training_scripts/compare_variants.py"

VARIANTS = {"emo": "Emo-CLAP", "sl": "SL-GEmo-CLAP", "ml": "ML-GEmo-CLAP"}
GENDERS = ("female", "male")
COLLAPSED_UAR = 0.30  # chance is 0.25 on 4 classes


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default="runs/compare_variants", help="corpus, towers and fold models")
    parser.add_argument("--results", default="docs/results/synthetic_variants.md", help="markdown table to write")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--utterances-per-speaker", type=int, default=LEARNING.utterances_per_speaker)
    parser.add_argument("--epochs", type=float, default=LEARNING.num_train_epochs)
    return parser.parse_args(argv)


def cross_validate(settings: DemoSettings, corpus_dir: Path, run_dir: Path, loss_type: str, seed: int) -> Path:
    """One (variant, seed) 5-fold cross-validation into `run_dir`; the Trainer's chatter goes to run_dir/log.txt."""
    if (run_dir / RESULTS_JSON).is_file():
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    training_args = training_arguments(settings, run_dir, seed)
    training_args.disable_tqdm = True
    data_args = dataclasses.replace(data_arguments(settings, corpus_dir), test_fold=None)
    model_args = model_arguments(settings, run_dir.parent / f"towers_seed{seed}", seed, loss_type=loss_type)
    with open(run_dir / "log.txt", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        run_cross_validation(model_args, data_args, training_args)
    return run_dir


def fold_metrics(run_dir: Path) -> list[dict]:
    """UAR, WAR and UAR per gender of every held-out fold of one cross-validation."""
    folds = []
    for fold in json.loads((run_dir / RESULTS_JSON).read_text())["folds"]:
        metrics = json.loads((run_dir / f"fold_{fold['fold']}" / "all_results.json").read_text())
        prefix = held_out_prefix(metrics)
        folds.append(
            {
                "uar": metrics[f"{prefix}_uar"],
                "war": metrics[f"{prefix}_war"],
                **{g: metrics[f"{prefix}_uar_{g}"] for g in GENDERS},
                "train_runtime": metrics.get("train_runtime", 0.0),
            }
        )
    return folds


def summarize(runs: dict[int, list[dict]]) -> dict:
    """Per metric: mean over seeds of the 5-fold means, and the standard deviation of those seed means."""
    summary = {}
    for metric in ("uar", "war", *GENDERS):
        per_seed = [statistics.fmean(fold[metric] for fold in folds) for folds in runs.values()]
        summary[metric] = (statistics.fmean(per_seed), statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0)
        summary[f"{metric}_per_seed"] = per_seed
    all_folds = [fold for folds in runs.values() for fold in folds]
    # A fold run that ends near chance (one emotion predicted for everything) dominates a mean: count them apart.
    summary["collapsed"] = sum(fold["uar"] < COLLAPSED_UAR for fold in all_folds)
    summary["fold_runs"] = len(all_folds)
    learned = [fold["uar"] for fold in all_folds if fold["uar"] >= COLLAPSED_UAR]
    summary["uar_not_collapsed"] = statistics.fmean(learned) if learned else float("nan")
    summary["train_minutes"] = sum(fold["train_runtime"] for fold in all_folds) / 60
    return summary


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, no GPU"
    )


def _percent_or_dash(value: float) -> str:
    return "–" if value != value else f"{100 * value:.1f}"  # NaN: every fold run collapsed


def format_results(summaries: dict[str, dict], args: argparse.Namespace, settings: DemoSettings) -> str:
    pct = lambda pair: f"{100 * pair[0]:.1f} ± {100 * pair[1]:.1f}"  # noqa: E731
    lines = [
        "# Emo-CLAP vs SL-GEmo-CLAP vs ML-GEmo-CLAP on the synthetic corpus",
        "",
        f"Leave-one-session-out (5 folds) on the embedded synthetic corpus ({settings.utterances_per_speaker} "
        f"utterances per speaker, 10 speakers), seeds {', '.join(map(str, args.seeds))}. Figures in %: mean over "
        "seeds of the 5-fold mean ± standard deviation across seeds; UAR per gender is the UAR within each gender's "
        "held-out clips. A fold run is counted as collapsed when its UAR is below "
        f"{100 * COLLAPSED_UAR:.0f} % (chance is 25 %).",
        "",
        "| variant | UAR | WAR | UAR female | UAR male | UAR per seed | collapsed fold runs | UAR of the others |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for loss_type, summary in summaries.items():
        seeds = ", ".join(f"{100 * value:.1f}" for value in summary["uar_per_seed"])
        lines.append(
            f"| {VARIANTS[loss_type]} (`{loss_type}`) | {pct(summary['uar'])} | {pct(summary['war'])} | "
            f"{pct(summary['female'])} | {pct(summary['male'])} | {seeds} | "
            f"{summary['collapsed']} of {summary['fold_runs']} | {_percent_or_dash(summary['uar_not_collapsed'])} |"
        )
    lines += [
        "",
        "Same budget for every variant: small random-initialised WavLM + RoBERTa towers (hidden size 96, 2 layers; "
        f"the same initial weights per seed), projection dim {settings.projection_dim}, learning rate "
        f"{settings.learning_rate}, {settings.num_train_epochs:g} epoch(s) of batch {settings.batch_size}, training "
        f"clips randomly cropped to {settings.max_duration_s:g} s, alpha_e 0.9 (SL and ML), target normalisation "
        "`sum`, prompt template `{}`.",
        "",
        f"Command: `{' '.join(shlex.quote(a) for a in ['python', SCRIPT_PATH, *sys.argv[1:]])}`",
        f"Machine: {machine()}; {sum(s['train_minutes'] for s in summaries.values()):.0f} min of training in all "
        "(the Trainer's train_runtime summed over every fold run).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = dataclasses.replace(
        LEARNING, utterances_per_speaker=args.utterances_per_speaker, num_train_epochs=args.epochs
    )
    output_dir = Path(args.output_dir)
    corpus_dir = generate_corpus(output_dir / "corpus", utterances_per_speaker=settings.utterances_per_speaker)
    summaries = {}
    for loss_type in args.variants:
        runs = {}
        for seed in args.seeds:
            run_dir = cross_validate(settings, corpus_dir, output_dir / f"{loss_type}_seed{seed}", loss_type, seed)
            runs[seed] = fold_metrics(run_dir)
            print(
                f"{VARIANTS[loss_type]} seed {seed}: UAR per fold "
                f"{[round(100 * fold['uar'], 1) for fold in runs[seed]]}",
                flush=True,
            )
        summaries[loss_type] = summarize(runs)
    table = format_results(summaries, args, settings)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
