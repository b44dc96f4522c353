"""The EmoBox-style results of a cross-validation: one row per fold and the mean, under EmoBox's metric names.

EmoBox's leaderboards give, per corpus, UA, WA and macro-F1 averaged over its folds (in %). `emobox_results.json`
holds one row per fold (`fold`, `num`, `ua`, `wa`, `micro_f1`, `macro_f1`, `uar_<gender>`, fractions) and their
mean; `emobox_results.md` the same as a table, with the leaderboard line (mean UA / WA / macro-F1) last.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..metrics.emobox import EMOBOX_METRICS, emobox_row

RESULTS_MARKDOWN = "emobox_results.md"
RESULTS_JSON = "emobox_results.json"


def emobox_summary(fold_results: dict[str, dict], corpus: str, prefix_of) -> dict:
    """{"corpus", "folds": [row per fold], "mean": {metric: mean over folds}} from each fold's run metrics."""
    rows = [{"fold": fold, **emobox_row(metrics, prefix_of(metrics))} for fold, metrics in fold_results.items()]
    metrics = [*EMOBOX_METRICS, *sorted({key for row in rows for key in row if key.startswith("uar_")})]
    mean = {}
    for metric in metrics:
        values = [row[metric] for row in rows if row.get(metric) is not None]
        mean[metric] = sum(values) / len(values) if len(values) == len(rows) else None
    return {"corpus": corpus, "num_folds": len(rows), "folds": rows, "mean": mean}


def _percent(value) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def format_emobox_table(summary: dict) -> str:
    genders = [key for key in summary["mean"] if key.startswith("uar_")]
    header = ["fold", "#utts", "UA (%)", "WA (%)", "Micro-F1 (%)", "Macro-F1 (%)"]
    header += [f"UAR {key[4:]} (%)" for key in genders]
    lines = [f"EmoBox-style results on {summary['corpus']}, {summary['num_folds']} folds", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    metrics = [*EMOBOX_METRICS, *genders]
    for row in summary["folds"]:
        cells = [str(row["fold"]), str(row.get("num") or "")] + [_percent(row.get(m)) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| mean | | " + " | ".join(_percent(summary["mean"][m]) for m in metrics) + " |")
    mean = summary["mean"]
    lines += [
        "",
        "| Dataset | UA | WA | F1 |",
        "| --- | --- | --- | --- |",
        f"| {summary['corpus']} | {_percent(mean['ua'])} | {_percent(mean['wa'])} | {_percent(mean['macro_f1'])} |",
    ]
    return "\n".join(lines) + "\n"


def write_emobox_results(output_dir: str, summary: dict) -> str:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = format_emobox_table(summary)
    (out / RESULTS_MARKDOWN).write_text(table, encoding="utf-8")
    (out / RESULTS_JSON).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return table


__all__ = ["RESULTS_JSON", "RESULTS_MARKDOWN", "emobox_summary", "format_emobox_table", "write_emobox_results"]
