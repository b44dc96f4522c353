"""The report of compare_variants.py: docs/results/variants.md and its picture, from the per-run result files.

Written from whatever runs are finished; until every run of the protocol is, the report says it is partial and
how many runs of how many it holds, and claims nothing.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from compare_variants import (
    COLLAPSED_UAR,
    CORPUS,
    GENDERS,
    LOGIT_SCALE_INIT,
    MAIN_VARIANTS,
    RECIPE,
    SCRIPT_PATH,
    SETTINGS,
    SWEEP,
    VARIANTS,
    protocol_runs,
)

from gemo_clap_hf.metrics.paired_comparison import compare, seed_means

PICTURE = "variants_paired_differences.png"
BASELINE = "emo"


def load_results(runs_dir: Path) -> dict:
    """setting -> variant -> seed -> list of per-fold result dicts (folds in order)."""
    table: dict = {}
    for path in sorted((runs_dir / "results").glob("*/*/seed*_fold*.json")):
        result = json.loads(path.read_text())
        table.setdefault(result["setting"], {}).setdefault(result["variant"], {}).setdefault(result["seed"], [])
        table[result["setting"]][result["variant"]][result["seed"]].append(result)
    for variants in table.values():
        for seeds in variants.values():
            for seed, folds in seeds.items():
                seeds[seed] = sorted(folds, key=lambda r: r["fold"])
    return table


def wall_span_minutes(runs_dir: Path) -> float:
    """Minutes from the first finished run's start to the last one's end (pauses between invocations included)."""
    paths = list((runs_dir / "results").glob("*/*/seed*_fold*.json"))
    if not paths:
        return 0.0
    starts = [p.stat().st_mtime - json.loads(p.read_text())["seconds"] for p in paths]
    return (max(p.stat().st_mtime for p in paths) - min(starts)) / 60


def complete_seeds(seeds: dict, metric: str = "uar", folds: int = 5) -> dict[int, list[float]]:
    """seed -> per-fold values, for the seeds whose every fold is finished."""
    return {seed: [r[metric] for r in rows] for seed, rows in seeds.items() if len(rows) == folds}


def pct(value: float) -> str:
    return "–" if value != value else f"{100 * value:.1f}"


def mean_sd(per_seed: dict[int, float]) -> str:
    values = list(per_seed.values())
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * sd:.1f}"


def progress_table(variants: dict, names) -> list[str]:
    """Only what is finished (no figures): seeds complete, fold runs done, collapses so far."""
    lines = ["| variant | seeds complete | fold runs finished | collapsed so far |", "| --- | --- | --- | --- |"]
    for name in names:
        seeds = variants.get(name, {})
        folds = [r for rows in seeds.values() for r in rows]
        collapsed = sum(r["uar"] < COLLAPSED_UAR for r in folds)
        lines.append(f"| {VARIANTS[name][0]} | {len(complete_seeds(seeds))} | {len(folds)} | {collapsed} |")
    return lines


def variant_table(variants: dict, names) -> list[str]:
    lines = [
        "| variant | seeds | UAR | WAR | UAR female | UAR male | collapsed fold runs (UAR < 30 %) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        seeds = variants.get(name, {})
        uar = complete_seeds(seeds)
        metrics = [seed_means(complete_seeds(seeds, m)) for m in ("uar", "war", *(f"uar_{g}" for g in GENDERS))]
        folds = [r for rows in seeds.values() for r in rows]
        collapsed = sum(r["uar"] < COLLAPSED_UAR for r in folds)
        lines.append(
            f"| {VARIANTS[name][0]} | {len(uar)} | " + " | ".join(mean_sd(m) for m in metrics) + f" | "
            f"{collapsed} of {len(folds)} |"
        )
    return lines


def paired_rows(variants: dict, names, metric: str = "uar") -> dict[str, dict]:
    baseline = complete_seeds(variants.get(BASELINE, {}), metric)
    return {name: compare(complete_seeds(variants.get(name, {}), metric), baseline) for name in names}


def difference_table(comparisons: dict[str, dict]) -> list[str]:
    lines = [
        "| variant − Emo-CLAP | seeds | mean UAR difference (points) | 95 % bootstrap CI | Wilcoxon p | seeds better |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in comparisons.items():
        if not c["seeds"]:
            lines.append(f"| {VARIANTS[name][0]} | 0 | – | – | – | – |")
            continue
        better = sum(d > 0 for d in c.get("per_seed", {}).values())
        p = "–" if c["p"] != c["p"] else f"{c['p']:.3f}"
        lines.append(
            f"| {VARIANTS[name][0]} | {c['seeds']} | {100 * c['mean']:+.1f} | "
            f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}] | {p} | {better} of {c['seeds']} |"
        )
    return lines


def verdict(c: dict) -> str:
    if c["seeds"] < 2:
        return "not enough seeds"
    if c["low"] > 0:
        return "better than Emo-CLAP"
    if c["high"] < 0:
        return "worse than Emo-CLAP"
    return "no difference detected"


def outcome_lines(comparisons: dict[str, dict[str, dict]]) -> list[str]:
    """The pre-registered reading: a variant confirms the prediction when its interval lies above 0 on the
    confounded setting and does not on the control setting."""
    lines = []
    for name in MAIN_VARIANTS[1:]:
        confounded, control = comparisons["confounded"][name], comparisons["control"][name]
        holds = confounded["low"] > 0 and not control["low"] > 0
        lines.append(
            f"- {VARIANTS[name][0]}: confounded {verdict(confounded)} ({100 * confounded['mean']:+.1f} points), "
            f"control {verdict(control)} ({100 * control['mean']:+.1f} points): prediction "
            f"{'confirmed' if holds else 'not confirmed'}."
        )
    return lines


def sweep_lines(table: dict) -> list[str]:
    variants = table.get(SWEEP["setting"], {})
    seeds = SWEEP["seeds"]
    baseline = {s: v for s, v in complete_seeds(variants.get(BASELINE, {})).items() if s in seeds}
    lines = [
        "| alpha_e | seeds | UAR | UAR − Emo-CLAP (points) | 95 % bootstrap CI |",
        "| --- | --- | --- | --- | --- |",
    ]
    for alpha, name in sorted(SWEEP["alphas"].items()):
        runs = {s: v for s, v in complete_seeds(variants.get(name, {})).items() if s in seeds}
        c = compare(runs, baseline)
        interval = "–" if c["seeds"] < 2 else f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
        difference = "–" if not c["seeds"] else f"{100 * c['mean']:+.1f}"
        same = " (Emo-CLAP's runs: the same loss)" if name == BASELINE else ""
        lines.append(f"| {alpha:g}{same} | {len(runs)} | {mean_sd(seed_means(runs))} | {difference} | {interval} |")
    return lines


def draw(comparisons: dict[str, dict[str, dict]], path: Path) -> None:
    """Paired UAR differences (variant − Emo-CLAP) with 95 % intervals, one panel per setting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = MAIN_VARIANTS[1:]
    figure = Figure(figsize=(8, 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(SETTINGS), sharey=True)
    for ax, setting in zip(axes, SETTINGS):
        for x, name in enumerate(names):
            c = comparisons[setting][name]
            if c["seeds"] == 0:
                continue
            ax.errorbar(
                x,
                100 * c["mean"],
                yerr=[[100 * (c["mean"] - c["low"])], [100 * (c["high"] - c["mean"])]],
                fmt="o",
                capsize=5,
                color="C0",
            )
            per_seed = 100 * np.array(list(c["per_seed"].values()))
            ax.scatter(np.full(len(per_seed), x + 0.18), per_seed, s=9, color="0.6", zorder=0)
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set_xticks(range(len(names)), [VARIANTS[n][0].replace(", ", "\n") for n in names], fontsize=8)
        ax.set_title(f"{setting} setting", fontsize=10)
    axes[0].set_ylabel("UAR − Emo-CLAP UAR (points)")
    figure.savefig(path, dpi=110)


# Below this line the report holds what people wrote after reading the results (the discussion): a rewrite of the
# report keeps it as it is.
DISCUSSION_MARKER = "<!-- Written after the results were known; kept when the report is rewritten. -->"


def kept_discussion(out: Path) -> list[str]:
    """The hand-written part of an existing report, from `DISCUSSION_MARKER` on (none: an empty list)."""
    text = out.read_text(encoding="utf-8") if out.is_file() else ""
    return text[text.index(DISCUSSION_MARKER) :].splitlines() if DISCUSSION_MARKER in text else []


def write_report(runs_dir: Path, results: str, command: str, machine: str, elapsed: float | None) -> None:
    table = load_results(Path(runs_dir))
    total = len(protocol_runs())
    done = sum(1 for run in protocol_runs() if run.result_path(Path(runs_dir)).is_file())
    seconds = [
        r["seconds"]
        for variants in table.values()
        for seeds in variants.values()
        for rows in seeds.values()
        for r in rows
    ]
    comparisons = {s: paired_rows(table.get(s, {}), MAIN_VARIANTS[1:]) for s in SETTINGS}
    partial = done < total
    out = Path(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Emo-CLAP vs SL-GEmo-CLAP vs ML-GEmo-CLAP: confounded and control synthetic corpora",
        "",
        f"Protocol (committed before these runs): [variants_protocol.md](variants_protocol.md). "
        f"{done} of {total} runs finished.",
        "",
    ]
    if partial:
        lines += [
            f"**PARTIAL: {done} of {total} runs are finished. No figures are shown and nothing is concluded until the "
            "protocol is complete: the tables below only count what is finished.**",
            "",
            f"To finish it (finished runs are skipped): `nice -n 19 python {SCRIPT_PATH} --runs-dir {runs_dir}`; it "
            "rewrites this report at the end (`--report-only` rewrites it from the finished runs at any time).",
            "",
        ]
    for setting in SETTINGS:
        lines += [f"## {setting.capitalize()} setting", ""]
        if partial:
            lines += progress_table(table.get(setting, {}), MAIN_VARIANTS) + [""]
            continue
        lines += variant_table(table.get(setting, {}), MAIN_VARIANTS) + [""]
        lines += [
            "Paired differences (per seed: the variant's 5-fold mean UAR minus Emo-CLAP's, same initial weights):",
            "",
        ]
        lines += difference_table(comparisons[setting])
        lines += [""]
    if partial:
        lines += ["## Outcome", "", "Not stated: the protocol is not complete.", ""]
    else:
        lines += ["## SL alpha_e sweep (confounded setting, seeds 0-2)", ""] + sweep_lines(table) + [""]
        lines += ["## Outcome", ""] + outcome_lines(comparisons) + [""]
        draw(comparisons, out.parent / PICTURE)
        lines += [f"![paired UAR differences with 95 % intervals]({PICTURE})", ""]
    lines += [
        "Figures in %: mean ± standard deviation over seeds of each seed's 5-fold (leave-one-session-out) mean; "
        "per-gender UAR is the UAR within each gender's held-out clips. Intervals: percentile bootstrap of the mean "
        "paired difference over seeds (10 000 resamples); p: two-sided Wilcoxon signed-rank test over seeds.",
        "",
        f"Corpus: {CORPUS['utterances_per_speaker']} utterances per speaker, corpus seed {CORPUS['seed']}, "
        f"cue_scale {CORPUS['cue_scale']:g}, spread {CORPUS['spread']:g}. Recipe: {RECIPE.tower_size} random "
        f"wavlm-base-plus + roberta-base towers, projection dim {RECIPE.projection_dim}, "
        f"learning rate {RECIPE.learning_rate:g}, warm-up {RECIPE.warmup_steps:g}, "
        f"{RECIPE.num_train_epochs:g} epochs of batch {RECIPE.batch_size}, "
        f"{RECIPE.max_duration_s:g} s crops, initial logit scale {LOGIT_SCALE_INIT:.3g}.",
        "",
        f"Command: `{command}`",
        f"Machine: {machine}; {sum(seconds) / 60:.0f} min of run time summed over the finished runs"
        + f"; {wall_span_minutes(Path(runs_dir)):.0f} min of wall time from the first run's start to the last run's "
        "end (pauses between invocations included)"
        + (f", {elapsed / 60:.0f} min in the last invocation." if elapsed else "."),
        "",
    ]
    discussion = kept_discussion(out)
    out.write_text("\n".join(lines + discussion + ([""] if discussion else [])), encoding="utf-8")
