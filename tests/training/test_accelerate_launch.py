"""`accelerate launch` with 2 CPU processes (gloo): the script trains on the global batch and saves one model.

accelerate 1.x's `--cpu` launcher starts several CPU processes only through `mpirun` (`--mpirun_hostfile`); without MPI,
`--num_processes 2 --cpu` runs a single process (the script then warns). The torchrun launcher (`--multi_gpu`) starts
the 2 processes, and the script's `--use_cpu` makes them pick gloo on CPU. That is what docs/training.md recommends on
machines without GPUs; both commands are run here.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open
from transformers import pipeline

import gemo_clap_hf  # noqa: F401
from tests.helpers.tiny_models import random_clip
from tests.helpers.training_helpers import (
    REPO,
    TRAIN_SCRIPT,
    free_port,
    make_training_inputs,
    multi_process_flags,
    quick_flags,
    script_env,
)

pytestmark = pytest.mark.slow  # 2-process `accelerate launch` runs (`make test-fast` skips them)

ACCELERATE = shutil.which("accelerate") or os.path.join(os.path.dirname(sys.executable), "accelerate")


needs_accelerate = pytest.mark.skipif(not os.path.exists(ACCELERATE), reason="the accelerate command is not installed")


MULTI_PROCESS = multi_process_flags(2)


def _launch(
    launcher_flags: list[str], tmp_path, per_device_batch: int, audio_overrides: dict | None = None, **flags
) -> tuple[Path, str]:
    """Train a few steps under `accelerate launch <launcher_flags>` (`flags` add or replace the script's flags);
    return the output folder and the whole log."""
    inputs = make_training_inputs(tmp_path / "data", audio_overrides=audio_overrides)
    # The text tower's checkpoint holds a pooler, as roberta-base's does (GEmo-CLAP never uses it).
    with safe_open(Path(inputs["text"]) / "model.safetensors", "pt") as weights:
        names = list(weights.keys())
    assert "pooler.dense.weight" in names, names
    output_dir = tmp_path / "out"
    argv = quick_flags(
        inputs,
        output_dir,
        per_device_train_batch_size=str(per_device_batch),
        per_device_eval_batch_size=str(per_device_batch),
        **flags,
    )
    launcher = [ACCELERATE, "launch", *launcher_flags, "--main_process_port", str(free_port())]
    result = subprocess.run(
        [*launcher, str(TRAIN_SCRIPT), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        env=script_env(OMP_NUM_THREADS="1", ACCELERATE_DISABLE_RICH="1"),
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return output_dir, log


def _assert_one_saved_model(output_dir: Path) -> None:
    """One set of outputs, written by the main process only (no per-rank copies, no leftovers), that classifies."""
    names = sorted(path.name for path in output_dir.iterdir())
    for name in ("model.safetensors", "config.json", "all_results.json", "confusion_matrix.png", "README.md"):
        assert names.count(name) == 1, names
    assert not [name for name in names if "rank" in name or name.endswith(".tmp")], names
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["eval_samples"] == 8 and 0.0 <= results["eval_uar"] <= 1.0
    classifier = pipeline("audio-classification", model=str(output_dir))
    assert len(classifier(random_clip(0.7))) == 4


@needs_accelerate
def test_two_process_cpu_launch_trains_and_saves_one_model(tmp_path):
    # Batch 2 per process = global batch 4 over the 8 training clips.
    output_dir, log = _launch(MULTI_PROCESS, tmp_path, per_device_batch=2)
    assert "Process rank 0 of 2" in log and "Process rank 1 of 2" in log
    assert "Total train batch size (w. parallel, distributed & accumulation) = 4" in log
    assert "started a single process" not in log
    _assert_one_saved_model(output_dir)
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 2


@needs_accelerate
def test_two_process_training_with_gradient_checkpointing_completes_its_steps(tmp_path):
    """Under gradient checkpointing the Trainer wraps the model in DDP with `find_unused_parameters=False`: a module
    without gradient (the text tower's pooler) stops the run at the second step ("Expected to have finished
    reduction in the prior iteration"). GEmo-CLAP's towers hold no unused module, so 3 steps complete. The speech
    tower keeps the regularisation of transformers' WavLM defaults (SpecAugment `mask_time_prob=0.05`, and
    `layerdrop=0.1`, which the script turns off with its `--layerdrop 0` default: a skipped layer is also a module
    without gradient)."""
    regularised = {"layerdrop": 0.1, "mask_time_prob": 0.05}
    output_dir, log = _launch(
        MULTI_PROCESS,
        tmp_path,
        per_device_batch=2,
        audio_overrides=regularised,
        max_steps="3",
        gradient_checkpointing=True,
    )
    assert "Process rank 0 of 2" in log and "Process rank 1 of 2" in log
    assert "Expected to have finished reduction" not in log
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 3
    _assert_one_saved_model(output_dir)


@needs_accelerate
def test_cpu_flag_launch_completes_on_one_process_and_says_so(tmp_path):
    """The command users try first, `accelerate launch --num_processes 2 --cpu`, trains and saves, and warns that
    it ran one process (a change in accelerate that starts two would fail here: update docs/training.md then)."""
    output_dir, log = _launch(["--num_processes", "2", "--cpu"], tmp_path, per_device_batch=4)
    assert "Process rank 0 of 1" in log and "Process rank 1" not in log
    assert "accelerate launch --cpu started a single process" in log and "--multi_gpu --num_processes N" in log
    _assert_one_saved_model(output_dir)
