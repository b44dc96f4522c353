"""Interrupted and resumed training ends where an uninterrupted run ends; the output-folder rule of the scripts.

The interruptions are a callback that stops training in-process, and a real `train_gemo_clap.py` process killed
with SIGKILL in the middle of an epoch and restarted with the same command. Checkpoint folders that a killed save
left incomplete are skipped, never loaded.
"""

import json
import logging
import os
import shutil
import signal
import time

import pytest
import torch
from safetensors.torch import load_file

from gemo_clap_hf.training import TrainingInputError, parse_arguments, resolve_checkpoint, run_training
from gemo_clap_hf.training.checkpoints import checkpoint_problem, last_complete_checkpoint
from tests.helpers.training_helpers import (
    TRAIN_SCRIPT,
    StopAfterStep,
    describe,
    make_training_inputs,
    quick_flags,
    run_script,
    start_script,
)

MAX_DURATION_S = 0.3  # shorter than the 0.6 s fixture clips, so every training clip is randomly cropped
HELD_OUT_METRICS = ("eval_loss", "eval_uar", "eval_war", "eval_macro_f1")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_training_inputs(tmp_path_factory.mktemp("resume"))


def _flags(inputs, output_dir, **overrides):
    # 8 training clips / batch 4 = 2 steps per epoch: 6 steps cover 3 epochs, so the resumed run crosses epochs,
    # and checkpoint-3 falls in the middle of the second epoch.
    return quick_flags(
        inputs,
        output_dir,
        max_steps="6",
        save_strategy="steps",
        save_steps="3",
        max_duration_s=str(MAX_DURATION_S),
        **overrides,
    )


def _arguments(inputs, output_dir, **overrides):
    return parse_arguments(_flags(inputs, output_dir, **overrides))


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory):
    """The reference: the same 6-step run, never interrupted (checkpoint-3 and checkpoint-6 on the way)."""
    output_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    run_training(*_arguments(inputs, output_dir))
    return output_dir


# The scripts run with this process's torch thread count, as the in-process reference run did: another count sums
# the matmuls in another order (weights 3e-6 apart after 6 steps), which the 1e-6 comparison would see.
SAME_THREADS = {"OMP_NUM_THREADS": str(torch.get_num_threads())}


def _weights(folder):
    return load_file(folder / "model.safetensors")


def _assert_same_weights(expected_dir, actual_dir):
    expected, actual = _weights(expected_dir), _weights(actual_dir)
    assert expected.keys() == actual.keys()
    worst = max((expected[name] - actual[name]).abs().max().item() for name in expected)
    assert worst <= 1e-6, f"largest weight difference {worst}"


def _step_losses(output_dir) -> dict:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def test_resumed_run_ends_with_the_uninterrupted_weights(inputs, uninterrupted, tmp_path):
    interrupted = tmp_path / "interrupted"
    first = run_training(*_arguments(inputs, interrupted), callbacks=[StopAfterStep(3)])
    assert first["epoch"] == pytest.approx(1.5)
    assert (interrupted / "checkpoint-3" / "trainer_state.json").is_file()
    resumed = run_training(*_arguments(inputs, interrupted, resume_from_checkpoint=str(interrupted / "checkpoint-3")))
    assert resumed["epoch"] == pytest.approx(3.0)
    state = json.loads((interrupted / "trainer_state.json").read_text())
    assert state["global_step"] == 6

    _assert_same_weights(uninterrupted, interrupted)
    # Training did change the weights (the comparison is not between two untouched initialisations).
    assert not torch.equal(
        _weights(interrupted / "checkpoint-3")["audio_projection.dense_in.weight"],
        _weights(interrupted)["audio_projection.dense_in.weight"],
    )


def _wait_for(path, process, log, timeout: float = 240.0) -> None:
    """Until `path` exists; fails with the run's output if the process ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before pausing:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the run did not reach its pause in {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _kill_after_checkpoint(argv, step: int, workdir):
    """Run the script until checkpoint-`step` is saved, then SIGKILL it (no chance to clean up or flush)."""
    ready, log = workdir / f"saved-{step}", workdir / "killed-run.log"
    process = start_script(
        TRAIN_SCRIPT,
        argv,
        log=log,
        harness=True,
        GEMO_TEST_PAUSE_AFTER_SAVE=str(step),
        GEMO_TEST_READY_FILE=str(ready),
        **SAME_THREADS,
    )
    try:
        _wait_for(ready, process, log)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()  # a second SIGKILL after the first is harmless; it matters when waiting failed
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def _half_written_copy(source, target) -> None:
    """What a process killed while saving `target` leaves: truncated weights and no trainer_state.json yet."""
    target.mkdir()
    shutil.copy(source / "config.json", target / "config.json")
    weights = (source / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(weights[: len(weights) // 2])


@pytest.mark.slow  # the training script run twice end to end, the first one killed
def test_run_killed_mid_epoch_and_restarted_with_the_same_command_ends_like_the_uninterrupted_run(
    inputs, uninterrupted, tmp_path
):
    output_dir = tmp_path / "killed"
    argv = _flags(inputs, output_dir)
    _kill_after_checkpoint(argv, 3, tmp_path)
    state = json.loads((output_dir / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["epoch"] == pytest.approx(1.5)  # killed in the middle of epoch 2
    assert checkpoint_problem(output_dir / "checkpoint-3") is None
    assert not (output_dir / "model.safetensors").exists() and not (output_dir / "all_results.json").exists()
    # Had the kill come while checkpoint-6 was being written, this is what it would have left.
    _half_written_copy(output_dir / "checkpoint-3", output_dir / "checkpoint-6")

    result = run_script(TRAIN_SCRIPT, argv, **SAME_THREADS)  # the same command, restarted
    assert result.returncode == 0, describe(result)
    output = result.stdout + result.stderr
    assert f"Skipping {output_dir / 'checkpoint-6'}: it has no trainer_state.json" in output
    assert f"resuming training at {output_dir / 'checkpoint-3'}" in output

    _assert_same_weights(uninterrupted, output_dir)
    expected = json.loads((uninterrupted / "all_results.json").read_text())
    actual = json.loads((output_dir / "all_results.json").read_text())
    for key in HELD_OUT_METRICS:
        assert actual[key] == pytest.approx(expected[key], abs=1e-6), key
    assert _step_losses(output_dir) == pytest.approx(_step_losses(uninterrupted), abs=1e-6)
    assert sorted(_step_losses(output_dir)) == [1, 2, 3, 4, 5, 6]
    assert checkpoint_problem(output_dir / "checkpoint-6") is None  # rewritten completely by the resumed run


# ---- which checkpoint is resumed ------------------------------------------------------------------------------------


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "no trainer state": (lambda folder: (folder / "trainer_state.json").unlink(), "has no trainer_state.json"),
    "unreadable trainer state": (
        lambda folder: _truncate(folder / "trainer_state.json"),
        "trainer_state.json is unreadable",
    ),
    "truncated weights": (
        lambda folder: _truncate(folder / "model.safetensors"),
        "model.safetensors is truncated or corrupt",
    ),
    "truncated optimizer": (lambda folder: _truncate(folder / "optimizer.pt"), "optimizer.pt is truncated or corrupt"),
    "truncated rng state": (
        lambda folder: _truncate(folder / "rng_state.pth"),
        "rng_state.pth is truncated or corrupt",
    ),
}


@pytest.fixture
def run_copy(uninterrupted, tmp_path):
    """A copy of the reference run's checkpoints (real Trainer checkpoints, complete)."""
    output_dir = tmp_path / "run"
    for step in (3, 6):
        shutil.copytree(uninterrupted / f"checkpoint-{step}", output_dir / f"checkpoint-{step}")
    return output_dir


def test_real_checkpoints_are_complete_and_the_last_one_is_resumed(run_copy):
    assert {path.name for path in (run_copy / "checkpoint-6").iterdir()} >= {
        "trainer_state.json",
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
    }
    assert checkpoint_problem(run_copy / "checkpoint-3") is None
    assert checkpoint_problem(run_copy / "checkpoint-6") is None
    (run_copy / "checkpoint-10-tmp").mkdir()  # not a checkpoint name: ignored
    assert resolve_checkpoint(parse_arguments(["--output_dir", str(run_copy)])[2]) == str(run_copy / "checkpoint-6")


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_incomplete_last_checkpoint_is_skipped_with_a_warning(run_copy, damage, caplog):
    spoil, reason = DAMAGE[damage]
    spoil(run_copy / "checkpoint-6")
    assert reason in checkpoint_problem(run_copy / "checkpoint-6")
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        assert last_complete_checkpoint(run_copy) == str(run_copy / "checkpoint-3")
    assert f"Skipping {run_copy / 'checkpoint-6'}: it" in caplog.text and reason in caplog.text


def test_only_incomplete_checkpoints_start_from_scratch(run_copy, caplog):
    for step in (3, 6):
        (run_copy / f"checkpoint-{step}" / "trainer_state.json").unlink()
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        assert resolve_checkpoint(parse_arguments(["--output_dir", str(run_copy)])[2]) is None
    assert "holds only incomplete checkpoints" in caplog.text and "starts from scratch" in caplog.text


def test_an_explicit_incomplete_checkpoint_is_refused_with_the_reason(run_copy):
    _truncate(run_copy / "checkpoint-6" / "model.safetensors")
    args = parse_arguments(
        ["--output_dir", str(run_copy.parent / "out"), "--resume_from_checkpoint", str(run_copy / "checkpoint-6")]
    )[2]
    with pytest.raises(TrainingInputError, match="not a complete Trainer checkpoint: its model.safetensors is trunc"):
        resolve_checkpoint(args)


def test_non_empty_output_dir_without_checkpoint_needs_overwrite(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"finished run")
    with pytest.raises(TrainingInputError, match="not empty.*--overwrite_output_dir"):
        resolve_checkpoint(parse_arguments(["--output_dir", str(tmp_path)])[2])
    (tmp_path / "checkpoint-4").mkdir()
    overwrite = parse_arguments(["--output_dir", str(tmp_path), "--overwrite_output_dir"])[2]
    assert resolve_checkpoint(overwrite) is None


def test_resume_from_a_folder_that_is_no_checkpoint_is_refused(tmp_path):
    args = parse_arguments(["--output_dir", str(tmp_path / "out"), "--resume_from_checkpoint", str(tmp_path)])[2]
    with pytest.raises(TrainingInputError, match="not a complete Trainer checkpoint: it has no trainer_state.json"):
        resolve_checkpoint(args)
