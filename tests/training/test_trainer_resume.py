"""A library user's GEmoClapTrainer (no training script) with `group_by_length` and random crops resumes exactly:
a run stopped in the middle of an epoch and resumed from its checkpoint ends with the uninterrupted run's weights
and losses. (transformers' stock `LengthGroupedSampler` replays epoch 0's order on resume; test_resume.py covers the
scripts, this covers the documented library path.)"""

import json

import pytest
import torch
from transformers import TrainingArguments

from gemo_clap_hf import GEmoClapDataCollator, GEmoClapModel, GEmoClapTrainer
from tests.helpers.corpus_fixtures import varied_length_dataset
from tests.helpers.tiny_models import tiny_config, tiny_processor
from tests.helpers.training_helpers import StopAfterStep

EMOTIONS = ("neutral", "happy", "sad", "angry")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """12 clips of 0.3..1.4 s (cropped to 0.5 s for training), as `load_corpus` columns."""
    return varied_length_dataset(tmp_path_factory.mktemp("clips"), seed=4)


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok"))


def _train(dataset, processor, output_dir, stop_at=None, resume=None) -> GEmoClapModel:
    # 12 clips / batch 4 = 3 steps per epoch; 7 steps cross into the third epoch, checkpoint-4 is mid-epoch 2.
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        max_steps=7,
        learning_rate=1e-3,
        save_steps=4,
        save_strategy="steps",
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        seed=5,
        disable_tqdm=True,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
    )
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type="sl"))
    trainer = GEmoClapTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        data_collator=GEmoClapDataCollator(processor, max_duration_s=0.5, seed=5),
        callbacks=[StopAfterStep(stop_at)] if stop_at else None,
    )
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_state()
    return model


def _losses(output_dir) -> dict:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def test_library_trainer_resumed_mid_epoch_ends_like_the_uninterrupted_run(dataset, processor, tmp_path):
    reference = _train(dataset, processor, tmp_path / "uninterrupted")
    _train(dataset, processor, tmp_path / "interrupted", stop_at=4)
    checkpoint = tmp_path / "interrupted" / "checkpoint-4"
    assert checkpoint.is_dir()
    resumed = _train(dataset, processor, tmp_path / "interrupted", resume=str(checkpoint))
    assert _losses(tmp_path / "interrupted") == pytest.approx(_losses(tmp_path / "uninterrupted"), abs=1e-6)
    assert sorted(_losses(tmp_path / "interrupted")) == list(range(1, 8))
    expected, actual = reference.state_dict(), resumed.state_dict()
    floats = [name for name in expected if expected[name].is_floating_point()]
    worst = max((expected[name] - actual[name]).abs().max().item() for name in floats)
    assert worst <= 1e-6, f"largest weight difference {worst}"
