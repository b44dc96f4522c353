"""Paired comparison of two training variants over seeds: the difference per seed, its bootstrap interval and a
Wilcoxon signed-rank test (the analysis of docs/results/variants_protocol.md).

Each seed trains both variants from the same initial weights on the same folds, so the unit of analysis is the
seed: `paired_differences` averages each variant's metric over folds per seed and subtracts the baseline's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000


def seed_means(runs: Mapping[int, Sequence[float]]) -> dict[int, float]:
    """seed -> mean over that seed's folds."""
    return {seed: float(np.mean(values)) for seed, values in runs.items()}


def paired_differences(variant: Mapping[int, Sequence[float]], baseline: Mapping[int, Sequence[float]]) -> dict:
    """seed -> (fold mean of `variant`) - (fold mean of `baseline`), over the seeds both have with equal fold counts."""
    common = sorted(s for s in variant if s in baseline and len(variant[s]) == len(baseline[s]) and variant[s])
    ours, theirs = seed_means({s: variant[s] for s in common}), seed_means({s: baseline[s] for s in common})
    return {seed: ours[seed] - theirs[seed] for seed in common}


def bootstrap_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling the values, i.e. the seeds, with replacement)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean())
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def signed_rank_p(values: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value that the differences are centred on 0 (exact for small samples
    without ties; zero differences dropped, as Wilcoxon's original test does); nan below 2 non-zero values."""
    values = np.asarray(values, dtype=float)
    if np.count_nonzero(values) < 2:
        return float("nan")
    return float(stats.wilcoxon(values, zero_method="wilcox", alternative="two-sided").pvalue)


def compare(variant: Mapping[int, Sequence[float]], baseline: Mapping[int, Sequence[float]]) -> dict:
    """Mean paired difference, its 95 % bootstrap interval, the signed-rank p-value and the per-seed differences."""
    differences = paired_differences(variant, baseline)
    values = list(differences.values())
    if not values:
        return {"seeds": 0, "mean": float("nan"), "low": float("nan"), "high": float("nan"), "p": float("nan")}
    low, high = bootstrap_interval(values)
    return {
        "seeds": len(values),
        "mean": float(np.mean(values)),
        "low": low,
        "high": high,
        "p": signed_rank_p(values),
        "per_seed": differences,
    }


__all__ = ["bootstrap_interval", "compare", "paired_differences", "seed_means", "signed_rank_p"]
