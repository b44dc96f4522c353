"""`gemo-clap bench --quick` (tiny towers, 1 repeat) prints one JSON object with every figure, sane values.

No timing assertions: the quick run's figures mean nothing, only their presence and basic invariants do.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gemo_clap_hf.apps.benchmark import iemocap_like_lengths, padding_efficiency

SCRIPT = Path(__file__).parents[1] / "training_scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def quick_results() -> dict:
    """The thin script wrapper run as users run it; its stdout must be exactly one JSON object."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_every_figure_is_reported_with_its_repeats(quick_results):
    for figure in ("inference_overhead", "train_step_overhead", "padding_efficiency",
                   "text_tower_sequences_per_step", "peak_memory"):  # fmt: skip
        assert figure in quick_results
        assert quick_results[figure]["repeats"] >= 1
    environment = quick_results["environment"]
    assert environment["device"] == "cpu" and environment["threads"] >= 1 and environment["torch"]


def test_ratios_and_memory_are_positive_numbers(quick_results):
    for figure in ("inference_overhead", "train_step_overhead"):
        assert quick_results[figure]["ratio"] > 0
        assert isinstance(quick_results[figure]["met"], bool)
    memory = quick_results["peak_memory"]
    assert memory["method"]
    assert np.isfinite([memory["without_checkpointing_mib"], memory["with_checkpointing_mib"]]).all()


def test_length_grouping_pads_less_than_random_batches(quick_results):
    padding = quick_results["padding_efficiency"]
    assert 0 < padding["random"] < padding["group_by_length"] <= 1


def test_text_tower_sees_at_most_one_row_per_label(quick_results):
    counts = quick_results["text_tower_sequences_per_step"]
    assert counts["deduplicated"] == counts["distinct_labels_in_batch"] <= counts["num_labels"]
    assert counts["without_dedup"] == counts["batch_size"]


def test_padding_efficiency_counts_padded_samples():
    lengths = np.array([10, 5, 10, 5])
    assert padding_efficiency(lengths, [0, 1, 2, 3], batch_size=2) == pytest.approx(30 / 40)
    assert padding_efficiency(lengths, [0, 2, 1, 3], batch_size=2) == pytest.approx(1.0)
    assert padding_efficiency(lengths, [0, 2, 1], batch_size=2) == pytest.approx(25 / 25)
    durations = iemocap_like_lengths() / 16000
    assert len(durations) == 5531 and 0.6 <= durations.min() and durations.max() <= 30
    assert np.median(durations) == pytest.approx(3.5, rel=0.05)
