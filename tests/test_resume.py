"""Interrupted and resumed training ends where an uninterrupted run ends; the output-folder rule of the scripts."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from gemo_clap_hf.training import TrainingInputError, parse_arguments, resolve_checkpoint, run_training
from training_helpers import make_training_inputs, quick_flags

MAX_DURATION_S = 0.3  # shorter than the 0.6 s fixture clips, so every training clip is randomly cropped


class StopAfterStep(TrainerCallback):
    """Simulates an interruption: stop once `step` is done (its checkpoint is saved in the same step)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_training_inputs(tmp_path_factory.mktemp("resume"))


def _arguments(inputs, output_dir, **overrides):
    # 8 training clips / batch 4 = 2 steps per epoch: 6 steps cover 3 epochs, so the resumed run crosses epochs.
    return parse_arguments(quick_flags(inputs, output_dir, max_steps="6", save_strategy="steps", save_steps="3",
                                       max_duration_s=str(MAX_DURATION_S), **overrides))


def _weights(folder):
    return load_file(folder / "model.safetensors")


def test_resumed_run_ends_with_the_uninterrupted_weights(inputs, tmp_path):
    uninterrupted = tmp_path / "uninterrupted"
    run_training(*_arguments(inputs, uninterrupted))

    interrupted = tmp_path / "interrupted"
    first = run_training(*_arguments(inputs, interrupted), callbacks=[StopAfterStep(3)])
    assert first["epoch"] == pytest.approx(1.5)
    assert (interrupted / "checkpoint-3" / "trainer_state.json").is_file()
    resumed = run_training(*_arguments(inputs, interrupted, resume_from_checkpoint=str(interrupted / "checkpoint-3")))
    assert resumed["epoch"] == pytest.approx(3.0)
    state = json.loads((interrupted / "trainer_state.json").read_text())
    assert state["global_step"] == 6

    expected, actual = _weights(uninterrupted), _weights(interrupted)
    assert expected.keys() == actual.keys()
    worst = max((expected[name] - actual[name]).abs().max().item() for name in expected)
    assert worst <= 1e-6, f"largest weight difference {worst}"
    # Training did change the weights (the comparison is not between two untouched initialisations).
    assert not torch.equal(_weights(interrupted / "checkpoint-3")["audio_projection.dense_in.weight"],
                           actual["audio_projection.dense_in.weight"])


def test_last_checkpoint_is_found_in_output_dir(tmp_path):
    for step in (2, 10, 9):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    args = parse_arguments(["--output_dir", str(tmp_path)])[2]
    assert resolve_checkpoint(args) == str(tmp_path / "checkpoint-10")


def test_non_empty_output_dir_without_checkpoint_needs_overwrite(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"finished run")
    with pytest.raises(TrainingInputError, match="not empty.*--overwrite_output_dir"):
        resolve_checkpoint(parse_arguments(["--output_dir", str(tmp_path)])[2])
    (tmp_path / "checkpoint-4").mkdir()
    overwrite = parse_arguments(["--output_dir", str(tmp_path), "--overwrite_output_dir"])[2]
    assert resolve_checkpoint(overwrite) is None


def test_resume_from_a_folder_that_is_no_checkpoint_is_refused(tmp_path):
    args = parse_arguments(["--output_dir", str(tmp_path / "out"), "--resume_from_checkpoint", str(tmp_path)])[2]
    with pytest.raises(TrainingInputError, match="not a Trainer checkpoint folder"):
        resolve_checkpoint(args)
