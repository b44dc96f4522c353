"""Cross-validation: `run_training` on every fold in turn, then the UAR/WAR table with mean ± std.

Folds follow the evaluation protocol (`data/protocol.py`): the sessions for IEMOCAP and the synthetic corpus
(leave-one-session-out, the paper's protocol); a manifest's own `fold` column when it has one; otherwise
speaker-grouped k-fold (`--num_folds`, default 5), so that no speaker is ever in both training and test. Each fold
trains in `output_dir/fold_<k>/` (model, card, confusion matrix); `output_dir/cv_results.md` and `cv_results.json`
hold the table, and `emobox_results.md`/`.json` the same folds under EmoBox's metric names (`emobox_report.py`). On
`--dataset emobox` the folds are EmoBox's own (`data/<name>/fold_<K>/`), each trained and tested as published.
A fold whose folder already has `all_results.json` is read instead of re-trained, so an interrupted cross-validation
restarted with the same command only runs the missing folds (`--overwrite_output_dir` re-runs them all).
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

from ..data.protocol import available_folds, fold_scheme, uses_own_folds
from .arguments import DataArguments, GEmoClapTrainingArguments, ModelArguments
from .data_setup import emobox_folds, load_training_corpus
from .emobox_report import emobox_summary, write_emobox_results
from .errors import TrainingInputError
from .outputs import held_out_prefix
from .run import run_training, setup_logging

logger = logging.getLogger(__name__)

DEFAULT_NUM_FOLDS = 5
RESULTS_MARKDOWN = "cv_results.md"
RESULTS_JSON = "cv_results.json"


def _check_arguments(data_args: DataArguments, training_args: GEmoClapTrainingArguments) -> None:
    """Reject the single-run flags that have no meaning when every fold is held out in turn."""
    if data_args.test_fold is not None or data_args.eval_fold is not None:
        raise TrainingInputError(
            "cross-validation holds out every fold in turn: drop --test_fold/--eval_fold "
            "(train one fold with train_gemo_clap.py)."
        )
    if training_args.push_to_hub:
        raise TrainingInputError(
            "cross-validation trains one model per fold and pushes none: drop --push_to_hub, "
            "then push the model you want with train_gemo_clap.py."
        )


def cross_validation_folds(data_args: DataArguments) -> tuple[DataArguments, list[str]]:
    """(data arguments every fold shares, the folds to hold out in turn); for EmoBox, its fold numbers."""
    if data_args.dataset == "emobox":
        if data_args.fold is not None:
            raise TrainingInputError("cross-validation runs every EmoBox fold in turn: drop --fold.")
        folds = [str(fold) for fold in emobox_folds(data_args)]
        logger.info(f"cross-validation on EmoBox {data_args.emobox_dataset}: EmoBox's folds {folds}.")
        return data_args, folds
    if not data_args.num_folds and not uses_own_folds(data_args.dataset):
        data_args = replace(data_args, num_folds=DEFAULT_NUM_FOLDS)
    folds = available_folds(load_training_corpus(data_args))
    if len(folds) < 2:
        data_args = replace(data_args, num_folds=DEFAULT_NUM_FOLDS)
        folds = available_folds(load_training_corpus(data_args))
    logger.info(
        f"cross-validation on {data_args.dataset}: {fold_scheme(data_args.dataset, data_args.num_folds)}, "
        f"folds {folds}."
    )
    return data_args, folds


def _fold_arguments(data_args, training_args, fold: str):
    """Per-fold copies: the fold held out, and its own subfolder of output_dir."""
    fold_training_args = copy.copy(training_args)
    fold_training_args.output_dir = str(Path(training_args.output_dir) / f"fold_{fold}")
    if data_args.dataset == "emobox":
        return replace(data_args, fold=int(fold)), fold_training_args
    return replace(data_args, test_fold=fold), fold_training_args


def _finished_results(fold_dir: Path, overwrite: bool) -> dict | None:
    results = fold_dir / "all_results.json"
    if overwrite or not results.is_file():
        return None
    logger.info(f"{fold_dir} is finished (all_results.json); reading it instead of training again.")
    return json.loads(results.read_text())


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single fold)."""
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(variance)


def summarize_folds(fold_results: dict[str, dict], data_args: DataArguments, loss_type: str) -> dict:
    """The per-fold UAR/WAR (fractions) and their mean and standard deviation."""
    rows = []
    for fold, metrics in fold_results.items():
        prefix = held_out_prefix(metrics)
        rows.append(
            {
                "fold": fold,
                "uar": metrics[f"{prefix}_uar"],
                "war": metrics[f"{prefix}_war"],
                "test_samples": metrics.get(f"{prefix}_samples"),
            }
        )
    summary = {"dataset": data_args.dataset, "loss_type": loss_type, "num_folds": len(rows), "folds": rows}
    for metric in ("uar", "war"):
        mean, std = _mean_std([row[metric] for row in rows])
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean, std
    return summary


def format_table(summary: dict) -> str:
    """Markdown table in %, one row per fold and a `mean ± std` row."""
    lines = [
        f"Cross-validation on {summary['dataset']} ({summary['loss_type']}), {summary['num_folds']} folds",
        "",
        "| fold | UAR (%) | WAR (%) | test utterances |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row['fold']} | {100 * row['uar']:.2f} | {100 * row['war']:.2f} | {row['test_samples']} |"
        for row in summary["folds"]
    ]
    lines.append(
        f"| mean ± std | {100 * summary['uar_mean']:.2f} ± {100 * summary['uar_std']:.2f} | "
        f"{100 * summary['war_mean']:.2f} ± {100 * summary['war_std']:.2f} | |"
    )
    return "\n".join(lines) + "\n"


def write_summary(output_dir: str, summary: dict) -> str:
    """Write cv_results.md and cv_results.json; return the markdown."""
    table = format_table(summary)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_MARKDOWN).write_text(table, encoding="utf-8")
    (out / RESULTS_JSON).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return table


def run_cross_validation(
    model_args: ModelArguments, data_args: DataArguments, training_args: GEmoClapTrainingArguments
) -> dict:
    """Train and evaluate every fold in-process, one after another; return the summary written to cv_results.json."""
    setup_logging(training_args)
    _check_arguments(data_args, training_args)
    shared_data_args, folds = cross_validation_folds(data_args)
    fold_results = {}
    for fold in folds:
        fold_data_args, fold_training_args = _fold_arguments(shared_data_args, training_args, fold)
        finished = _finished_results(Path(fold_training_args.output_dir), training_args.overwrite_output_dir)
        logger.info(f"===== fold {fold} of {folds} =====")
        fold_results[fold] = finished or run_training(model_args, fold_data_args, fold_training_args)
    summary = summarize_folds(fold_results, shared_data_args, model_args.loss_type)
    corpus = shared_data_args.emobox_dataset or shared_data_args.dataset
    emobox = emobox_summary(fold_results, corpus, held_out_prefix)
    if training_args.process_index == 0:
        print(write_summary(training_args.output_dir, summary))
        print(write_emobox_results(training_args.output_dir, emobox))
    return summary


__all__ = [
    "DEFAULT_NUM_FOLDS",
    "RESULTS_JSON",
    "RESULTS_MARKDOWN",
    "cross_validation_folds",
    "format_table",
    "run_cross_validation",
    "summarize_folds",
    "write_summary",
]
