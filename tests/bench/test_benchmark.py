"""The benchmark harness (`benchmarks/`, run as `training_scripts/benchmark.py --quick`: tiny towers, 1 repeat)
prints one JSON object with every figure, sane values.

No timing assertions: the quick run's figures mean nothing, only their presence and basic invariants do (the speed
targets live in the benchmark's output). The bulk-inference figure belongs to apps/prediction.py and is left out
here to keep this file fast.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.end_to_end import ClassifierInputs, GpuUtilisationSampler
from benchmarks.padding import padding_efficiency
from benchmarks.settings import FIGURES, Settings, parse_args
from benchmarks.workload import (
    build_classifier,
    iemocap_like_lengths,
    make_batch,
    make_optimizer,
    text_embeddings_trained,
    training_step,
    varied_lengths,
)
from gemo_clap_hf.demo.towers import train_prompt_tokenizer

SCRIPT = Path(__file__).parents[2] / "training_scripts" / "benchmark.py"
QUICK_FIGURES = [name for name in FIGURES if name != "bulk_inference"]


@pytest.fixture(scope="module")
def quick_results() -> dict:
    """The thin script wrapper run as users run it; its stdout must be exactly one JSON object."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, str(SCRIPT), "--quick", "--figures", ",".join(QUICK_FIGURES)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_every_figure_is_reported_with_its_repeats(quick_results):
    figures = (
        "inference_overhead",
        "inference_overhead_varied_lengths",
        "train_step_overhead",
        "train_step_overhead_small_batch",
        "train_step_overhead_varied_lengths",
        "padding_efficiency",
        "text_tower_sequences_per_step",
        "peak_memory",
        "host_syncs_per_step",
        "end_to_end",
    )
    for figure in figures:
        assert figure in quick_results, figure
        assert quick_results[figure]["repeats"] >= 1
    environment = quick_results["environment"]
    assert environment["device"] == "cpu" and environment["threads"] >= 1 and environment["torch"]
    assert environment["feature_encoder"] == "frozen (both sides)" and environment["precision"] == "float32"
    assert set(environment["seconds_per_figure"]) >= {"inference", "train_step_and_syncs", "end_to_end", "memory"}
    assert "bulk_inference" not in quick_results  # not asked for with --figures


def test_ratios_and_memory_are_positive_numbers(quick_results):
    for figure in (
        "inference_overhead",
        "inference_overhead_varied_lengths",
        "train_step_overhead",
        "train_step_overhead_small_batch",
        "train_step_overhead_varied_lengths",
    ):
        assert quick_results[figure]["ratio"] > 0
        assert isinstance(quick_results[figure]["met"], bool)
    for figure in ("train_step_overhead", "train_step_overhead_small_batch"):
        trained = quick_results[figure]["with_trained_text_embeddings"]
        assert trained["ratio"] > 0 and trained["wavlm_classifier_s"] == quick_results[figure]["wavlm_classifier_s"]
    memory = quick_results["peak_memory"]
    assert memory["method"]
    assert np.isfinite([memory["without_checkpointing_mib"], memory["with_checkpointing_mib"]]).all()


def test_batches_are_equal_length_or_padded_as_described(quick_results):
    assert quick_results["train_step_overhead"]["batch"]["fill"] == 1.0
    assert quick_results["train_step_overhead_small_batch"]["batch"]["clips"] == 2
    varied = quick_results["train_step_overhead_varied_lengths"]["batch"]
    assert varied["clips"] == 2 and 0 < varied["fill"] < 1
    assert varied["mean_s"] < varied["padded_s"]


def test_no_host_sync_comes_from_the_package_and_the_towers_are_listed(quick_results):
    syncs = quick_results["host_syncs_per_step"]
    assert syncs["package"] == {"emo": 0, "sl": 0, "ml": 0} and syncs["met"] is True
    for loss in ("emo", "sl", "ml"):
        listed = syncs["towers_and_autograd"][loss]
        assert listed["total"] == sum(listed["by_line"].values())
        assert all("gemo_clap_hf/" not in line.split(" (called from")[0] for line in listed["by_line"])
    assert syncs["wavlm_classifier_step"]["total"] >= 1  # the baseline's own mask handling syncs too


def test_end_to_end_compares_the_two_trainer_runs(quick_results):
    figure = quick_results["end_to_end"]
    assert figure["sl_gemo_clap_samples_per_s"] > 0 and figure["wavlm_classifier_samples_per_s"] > 0
    expected = figure["sl_gemo_clap_samples_per_s"] / figure["wavlm_classifier_samples_per_s"]
    assert figure["ratio"] == pytest.approx(expected, rel=1e-3)
    assert figure["target_min"] == 0.9 and figure["met"] == (figure["ratio"] >= 0.9)
    assert figure["gpu_utilisation"]["sl_gemo_clap"] == {"measured": False, "reason": "not measured: CPU run"}
    assert "frozen text word embeddings: True" in figure["set_up"]


def test_text_tower_encodes_the_label_table_whatever_the_batch(quick_results):
    counts = quick_results["text_tower_sequences_per_step"]
    assert counts["sl"] == counts["num_labels"] == 4
    assert counts["ml"] == counts["num_labels"] + counts["num_gender_labels"]
    assert counts["batch_size"] == 32


def test_padding_efficiency_counts_padded_samples():
    lengths = np.array([10, 5, 10, 5])
    assert padding_efficiency(lengths, [0, 1, 2, 3], batch_size=2) == pytest.approx(30 / 40)
    assert padding_efficiency(lengths, [0, 2, 1, 3], batch_size=2) == pytest.approx(1.0)
    assert padding_efficiency(lengths, [0, 2, 1], batch_size=2) == pytest.approx(25 / 25)
    durations = iemocap_like_lengths() / 16000
    assert len(durations) == 5531 and durations.min() >= 0.6 and durations.max() <= 30
    assert np.median(durations) == pytest.approx(3.5, rel=0.05)


def test_varied_batch_is_padded_like_a_collator_batch():
    lengths = varied_lengths(6, seed=1)
    assert all(0.6 * 16000 <= n <= 20 * 16000 for n in lengths) and len(set(lengths)) == 6
    settings = parse_args(["--quick"])
    batch = make_batch(settings, lengths, seed=0)
    mask = batch["audio_attention_mask"]
    assert mask.shape == batch["input_values"].shape == (6, max(lengths))
    assert mask.sum(-1).tolist() == lengths
    assert torch.all(batch["input_values"][mask == 0] == 0)
    assert set(batch) == {"input_values", "audio_attention_mask", "emotion_labels", "gender_labels"}


def test_arguments_select_size_figures_and_refuse_cpu_bf16(capsys):
    settings = parse_args(["--size", "large", "--batch_size", "32", "--figures", "syncs,end_to_end"])
    assert isinstance(settings, Settings)
    assert (settings.size, settings.batch_size, settings.figures) == ("large", 32, ("syncs", "end_to_end"))
    assert settings.end_to_end_batch_size == 32 and settings.small_batch == (4, 3.0)
    for bad in (["--bf16"], ["--figures", "speed"], ["--size", "huge"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
    assert "--bf16 is autocast on CUDA" in capsys.readouterr().err


def test_classifier_inputs_rename_the_collator_batch_and_cpu_runs_sample_no_gpu():
    batch = {
        "input_values": torch.ones(2, 5),
        "audio_attention_mask": torch.ones(2, 5, dtype=torch.long),
        "emotion_labels": torch.tensor([1, 3]),
        "gender_labels": torch.tensor([0, 1]),
    }
    renamed = ClassifierInputs(lambda rows: batch)([{}, {}])
    assert set(renamed) == {"input_values", "attention_mask", "labels"}
    assert renamed["labels"].tolist() == [1, 3] and renamed["attention_mask"] is batch["audio_attention_mask"]
    sampler = GpuUtilisationSampler(torch.device("cpu"))
    sampler.start()
    sampler.stop()
    assert sampler.summary() == {"measured": False, "reason": "not measured: CPU run"}


def test_trained_embeddings_side_really_updates_them_and_the_default_side_does_not(tmp_path):
    """The with/without comparison of item 2 measures what it says: one model and optimizer, the 39 M-row matrix
    (here tiny) skipped by AdamW when frozen and updated when trained."""
    settings = parse_args(["--quick"])
    gemo_clap = build_classifier(settings, train_prompt_tokenizer(tmp_path)).gemo_clap.train()
    optimizer = make_optimizer(gemo_clap)
    batch = {**make_batch(settings, [8000, 6000], seed=0), "return_loss": True}
    embeddings = gemo_clap.text_model.get_input_embeddings().weight
    before = embeddings.detach().clone()
    training_step(gemo_clap, optimizer, batch, settings)
    assert torch.equal(before, embeddings) and not embeddings.requires_grad
    with text_embeddings_trained(gemo_clap, True):
        training_step(gemo_clap, optimizer, batch, settings)
    assert not torch.equal(before, embeddings)
    assert not embeddings.requires_grad and embeddings.grad is None  # frozen again after the block
