"""The variant comparison's analysis on fixed numbers: paired differences, the bootstrap interval and the
Wilcoxon signed-rank test, checked against independent computations (an explicit resampling loop, an exact
enumeration of sign flips) and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from gemo_clap_hf.metrics.paired_comparison import (
    bootstrap_interval,
    compare,
    paired_differences,
    signed_rank_p,
)

# Ten seeds' paired UAR differences (no ties, no zeros), as the protocol produces them.
DIFFERENCES = [0.031, -0.012, 0.054, 0.008, 0.022, -0.027, 0.046, 0.015, 0.061, -0.004]
# One seed far out: a skewed bootstrap distribution, where the percentile interval differs from other kinds.
SKEWED = [0.004, 0.011, -0.006, 0.002, 0.009, 0.151, 0.007, -0.003, 0.013, 0.005]


def exact_signed_rank_p(values) -> float:
    """Two-sided exact p-value by enumerating every sign assignment of the ranks of |values|."""
    values = np.asarray(values)
    ranks = stats.rankdata(np.abs(values))
    observed = ranks[values > 0].sum()
    centre = ranks.sum() / 2
    sums = np.array([np.dot(signs, ranks) for signs in itertools.product((0, 1), repeat=len(values))])
    return float(np.mean(np.abs(sums - centre) >= abs(observed - centre) - 1e-12))


def test_signed_rank_matches_exact_enumeration_and_scipy():
    assert signed_rank_p(DIFFERENCES) == pytest.approx(exact_signed_rank_p(DIFFERENCES), abs=1e-12)
    assert signed_rank_p(DIFFERENCES) == pytest.approx(stats.wilcoxon(DIFFERENCES).pvalue, abs=1e-12)
    # All ten positive: the smallest exact two-sided p, 2 / 2**10.
    assert signed_rank_p(np.abs(DIFFERENCES)) == pytest.approx(2 / 1024)


def test_signed_rank_drops_zeros_and_needs_two_values():
    with_zeros = [*DIFFERENCES[:6], 0.0, 0.0]
    assert signed_rank_p(with_zeros) == pytest.approx(exact_signed_rank_p(DIFFERENCES[:6]), abs=1e-12)
    assert np.isnan(signed_rank_p([0.01]))


@pytest.mark.parametrize("sample", [DIFFERENCES, SKEWED], ids=["symmetric", "skewed"])
def test_bootstrap_interval_matches_a_resampling_loop_and_scipy(sample):
    low, high = bootstrap_interval(sample)
    rng = np.random.default_rng(123)
    values = np.asarray(sample)
    means = values[rng.integers(0, len(values), size=(50_000, len(values)))].mean(axis=1)
    ref_low, ref_high = np.percentile(means, [2.5, 97.5])
    assert low == pytest.approx(ref_low, abs=0.002) and high == pytest.approx(ref_high, abs=0.002)
    scipy_ci = stats.bootstrap(
        (values,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(7)
    ).confidence_interval
    assert low == pytest.approx(scipy_ci.low, abs=0.002) and high == pytest.approx(scipy_ci.high, abs=0.002)
    assert low < np.mean(values) < high


def test_paired_differences_average_folds_per_seed_and_skip_incomplete_seeds():
    variant = {0: [0.7, 0.8, 0.9], 1: [0.6, 0.6, 0.6], 2: [0.5, 0.5]}
    baseline = {0: [0.6, 0.7, 0.8], 1: [0.7, 0.7, 0.7], 2: [0.5, 0.5, 0.5], 3: [0.4, 0.4, 0.4]}
    differences = paired_differences(variant, baseline)
    assert set(differences) == {0, 1}
    assert differences[0] == pytest.approx(0.1) and differences[1] == pytest.approx(-0.1)


def test_compare_reports_mean_interval_and_p():
    baseline = {seed: [0.70, 0.72] for seed in range(len(DIFFERENCES))}
    variant = {seed: [0.70 + d, 0.72 + d] for seed, d in enumerate(DIFFERENCES)}
    result = compare(variant, baseline)
    assert result["seeds"] == len(DIFFERENCES)
    assert result["mean"] == pytest.approx(np.mean(DIFFERENCES))
    assert (result["low"], result["high"]) == pytest.approx(bootstrap_interval(DIFFERENCES), abs=1e-9)
    assert result["p"] == pytest.approx(stats.wilcoxon(DIFFERENCES).pvalue)
