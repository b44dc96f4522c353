"""How a batch is built (gemo_clap_hf/data/batching.py): decode → crop → label ids → length-grouped sampler →
evaluation order, alone and inside GEmoClapTrainer's dataloaders.

The Trainer tests here also guard the one private Trainer hook the package overrides (`_get_train_sampler`): if
transformers renames it or stops calling it, the training batches stop following our sampler and they fail.
"""

import logging

import numpy as np
import pytest
import torch
from transformers import TrainingArguments
from transformers.utils import logging as hf_logging

from gemo_clap_hf import GEmoClapDataCollator, GEmoClapFeatureExtractor, GEmoClapModel, GEmoClapTrainer
from gemo_clap_hf.training.batching import EpochCallback, EpochSeededLengthGroupedSampler, length_grouped_sampler
from tests.helpers.corpus_fixtures import varied_length_dataset
from tests.helpers.tiny_models import random_clip, tiny_config, tiny_processor
from tests.helpers.training_helpers import cpu_training_arguments

RATE = 16000
EMOTIONS = ("neutral", "happy", "sad", "angry")


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    return varied_length_dataset(tmp_path_factory.mktemp("varied"), seed=0, rate=RATE)


def _rows(dataset, indices=None):
    return [dataset[i] for i in (range(len(dataset)) if indices is None else indices)]


# ---- the collator ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_type", ["emo", "sl", "ml"])
def test_collator_gives_padded_audio_and_long_label_ids_without_prompts(varied, processor, loss_type):
    config = tiny_config(loss_type=loss_type)
    rows = _rows(varied, range(5))
    batch = GEmoClapDataCollator(processor, config)(rows)
    assert set(batch) == {"input_values", "audio_attention_mask", "emotion_labels", "gender_labels"}
    assert batch["audio_attention_mask"].sum(1).tolist() == [row["length"] for row in rows]
    assert batch["input_values"].shape == (5, max(row["length"] for row in rows))
    assert batch["emotion_labels"].dtype == batch["gender_labels"].dtype == torch.long
    assert batch["emotion_labels"].tolist() == [config.label2id[row["emotion"]] for row in rows]
    assert batch["gender_labels"].tolist() == [config.gender_labels.index(row["gender"]) for row in rows]


def test_collator_takes_label_ids_as_well_as_names_and_unlabelled_rows(processor):
    config = tiny_config(loss_type="sl")
    named = [{"audio": random_clip(0.5), "emotion": "sad", "gender": "male"}]
    numbered = [
        {"audio": {"array": random_clip(0.5), "sampling_rate": RATE}, "emotion": np.int64(2), "gender": torch.tensor(1)}
    ]
    collator = GEmoClapDataCollator(processor, config)
    assert collator(named)["emotion_labels"].tolist() == collator(numbered)["emotion_labels"].tolist() == [2]
    assert collator(numbered)["gender_labels"].tolist() == [1]
    unlabelled = collator([{"audio": random_clip(0.5)}])  # predict() on audio without labels
    assert set(unlabelled) == {"input_values", "audio_attention_mask"}


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"id": "u7", "emotion": "surprised", "gender": "male"},
            r"row 1 \(id 'u7'\): the model's emotion labels are \['neutral', 'happy', 'sad', 'angry'\] and emotion "
            r"'surprised' is not one of them\. Map .* `label_map`",
        ),
        ({"id": "u7", "emotion": 4, "gender": "male"}, r"row 1 \(id 'u7'\): .* emotion id 4 is out of range 0\.\.3"),
        ({"id": "u7", "emotion": -1, "gender": "male"}, r"emotion id -1 is out of range 0\.\.3"),
        ({"id": "u7", "emotion": True, "gender": "male"}, r"emotion True is not one of them"),
        (
            {"id": "u7", "emotion": "sad", "gender": "f"},
            r"row 1 \(id 'u7'\): the model's gender labels are \['female', "
            r"'male'\] and gender 'f' is not one of them.*gender_labels=",
        ),
        ({"id": "u7", "emotion": "sad"}, r"loss_type='sl' needs a `gender` for every row; row 1 \(id 'u7'\) has none"),
        ({"id": "u7", "gender": "male"}, r"row 1 \(id 'u7'\) has no `emotion` while other rows"),
    ],
)
def test_collator_rejects_bad_labels_naming_the_row_and_the_fix(processor, row, message):
    collator = GEmoClapDataCollator(processor, tiny_config(loss_type="sl"))
    good = {"id": "u6", "audio": random_clip(0.5), "emotion": "sad", "gender": "male"}
    with pytest.raises(ValueError, match=message):
        collator([good, {"audio": random_clip(0.5, seed=1), **row}])


def test_collator_without_a_config_says_how_to_get_one(processor):
    with pytest.raises(ValueError, match="no model config: pass `config=model.config`"):
        GEmoClapDataCollator(processor)([{"audio": random_clip(0.5), "emotion": "sad"}])


def _crop_start(clip: np.ndarray, window: np.ndarray) -> int:
    """Where `window` (raw samples) starts in `clip`, found from its first 64 samples."""
    views = np.lib.stride_tricks.sliding_window_view(clip, 64)
    (starts,) = np.nonzero(np.all(views == window[:64], axis=1))
    assert len(starts) == 1
    return int(starts[0])


def test_crop_window_is_a_function_of_seed_epoch_and_clip_and_only_for_training(processor):
    config = tiny_config(loss_type="emo")
    raw = GEmoClapFeatureExtractor(do_normalize=False)  # so that the cropped row is the clip's own samples
    clip = random_clip(2.0, seed=3)
    row = {"id": "long", "audio": clip, "emotion": "sad"}

    def start(seed: int, epoch: int) -> int:
        collator = GEmoClapDataCollator(raw, config, max_duration_s=0.5, seed=seed, epoch=epoch)
        values = collator([row])["input_values"][0].numpy()
        assert len(values) == RATE // 2
        found = _crop_start(clip, values)
        np.testing.assert_array_equal(values, clip[found : found + RATE // 2])
        return found

    assert start(0, 1) == start(0, 1)  # a resumed run (a new collator, same epoch) crops the same window
    assert len({start(0, epoch) for epoch in range(4)}) > 1  # a fresh window per epoch
    assert len({start(seed, 0) for seed in range(4)}) > 1
    evaluation = GEmoClapDataCollator(raw, config, max_duration_s=0.5).for_evaluation()
    np.testing.assert_array_equal(evaluation([row])["input_values"][0].numpy(), clip)


def test_long_clips_are_windowed_with_clip_index_and_one_label_per_clip(processor):
    config = tiny_config(loss_type="emo")
    windowed = GEmoClapFeatureExtractor(max_length_s=1.0)
    rows = [{"audio": random_clip(2.5), "emotion": "angry"}, {"audio": random_clip(0.5), "emotion": "sad"}]
    batch = GEmoClapDataCollator(windowed, config)(rows)
    assert batch["clip_index"].tolist() == [0, 0, 0, 1]
    assert batch["emotion_labels"].tolist() == [3, 2]


# ---- the sampler and the epoch callback -------------------------------------------------------------------------


def test_epoch_seeded_sampler_groups_by_length_and_replays_by_seed_and_epoch():
    lengths = np.random.default_rng(1).integers(4000, 200_000, size=64).tolist()
    sampler = EpochSeededLengthGroupedSampler(4, lengths, seed=7)
    orders = []
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders[0] == orders[2] != orders[1]
    assert sorted(orders[1]) == list(range(64))
    assert lengths[orders[1][0]] == max(lengths)  # transformers' grouping: the longest clip comes first

    def padded(order):
        return sum(max(lengths[i] for i in order[s : s + 4]) * 4 for s in range(0, 64, 4))

    random_order = np.random.default_rng(2).permutation(64).tolist()
    assert padded(orders[1]) < padded(random_order)


def test_one_epoch_callback_sets_every_target_and_replaces_a_rebuilt_sampler(processor):
    collator = GEmoClapDataCollator(processor, tiny_config())
    first, second = (EpochSeededLengthGroupedSampler(2, [1, 2, 3, 4], seed=0) for _ in range(2))
    callback = EpochCallback(collator)
    callback.track(first)
    callback.track(second)  # the train dataloader was rebuilt: the old sampler is not kept
    assert callback.targets == [collator, second]

    class State:
        epoch = 2.5  # a run resumed in the middle of its third epoch

    callback.on_epoch_begin(None, State(), None)
    assert collator.epoch == second.epoch == 2 and first.epoch == 0


def test_length_grouping_without_a_length_column_names_the_column(varied, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), train_sampling_strategy="group_by_length", use_cpu=True)
    with pytest.raises(ValueError, match=r"no 'length' column .* `length_column_name`"):
        length_grouped_sampler(varied.remove_columns("length"), args)
    args.train_sampling_strategy = "random"
    assert length_grouped_sampler(varied, args) is None


# ---- inside GEmoClapTrainer: the dataloaders ---------------------------------------------------------------------


def _trainer(varied, processor, tmp_path, **arguments):
    settings = dict(
        per_device_eval_batch_size=5,
        seed=3,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
    )
    args = cpu_training_arguments(tmp_path, **{**settings, **arguments})
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type="sl"))
    collator = GEmoClapDataCollator(processor, max_duration_s=0.5, seed=3)
    trainer = GEmoClapTrainer(
        model=model,
        args=args,
        train_dataset=varied,
        eval_dataset=varied,
        data_collator=collator,
        processing_class=processor,
    )
    return trainer, args


def _batch_lengths(loader) -> list[list[int]]:
    return [batch["audio_attention_mask"].sum(1).tolist() for batch in loader]


def test_trainer_training_batches_follow_the_epoch_seeded_sampler_on_raw_columns(varied, processor, tmp_path):
    trainer, args = _trainer(varied, processor, tmp_path)
    trainer.data_collator.max_duration_s = None  # whole clips, so each row's mask length is its `length`
    loader = trainer.get_train_dataloader()
    lengths = list(varied["length"])
    order = list(EpochSeededLengthGroupedSampler(4, lengths, seed=3))  # epoch 0
    assert _batch_lengths(loader) == [[lengths[i] for i in order[s : s + 4]] for s in range(0, 12, 4)]
    # The dataset kept its raw columns for the collator (which failed above if not), on the Trainer's copy of the
    # arguments only: the caller's stay as they were.
    assert trainer.args.remove_unused_columns is False and args.remove_unused_columns is True


def test_trainer_evaluation_batches_keep_dataset_order_and_whole_clips(varied, processor, tmp_path):
    trainer, _ = _trainer(varied, processor, tmp_path)  # group_by_length and cropping at 0.5 s for training
    lengths = list(varied["length"])
    expected = [lengths[s : s + 5] for s in range(0, 12, 5)]
    assert _batch_lengths(trainer.get_eval_dataloader()) == expected
    assert _batch_lengths(trainer.get_test_dataloader(varied)) == expected
    assert trainer.data_collator.max_duration_s == 0.5  # the training collator itself is untouched


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_trainer_registers_one_epoch_callback_and_tells_collator_and_sampler_the_epoch(varied, processor, tmp_path):
    records = _Records()
    hf_logging.get_logger("transformers").addHandler(records)  # transformers' loggers do not propagate to root
    try:
        trainer, _ = _trainer(varied, processor, tmp_path, num_train_epochs=2, learning_rate=1e-3)
        trainer.train()
        trainer.train()  # a second run builds a second sampler: still no second callback
    finally:
        hf_logging.get_logger("transformers").removeHandler(records)
    assert not [message for message in records.messages if "there is already one" in message]
    callbacks = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, EpochCallback)]
    assert len(callbacks) == 1
    collator, sampler = callbacks[0].targets
    assert collator is trainer.data_collator and isinstance(sampler, EpochSeededLengthGroupedSampler)
    assert collator.epoch == sampler.epoch == 1


def test_persistent_dataloader_workers_crop_with_the_current_epoch(processor):
    """Workers keep their own copy of the collator for the whole run under `dataloader_persistent_workers`: the
    epoch they crop with must still follow `set_epoch` (else every epoch reuses one crop, and resumes differ)."""
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    rows = [
        {
            "audio": np.random.default_rng(0).standard_normal(48000).astype(np.float32),
            "id": "a",
            "emotion": "sad",
            "gender": "male",
        }
    ]
    crops = {}
    for workers, persistent in ((0, False), (1, True)):
        collator = GEmoClapDataCollator(processor, tiny_config(), max_duration_s=0.5, seed=1)
        callback = EpochCallback(collator)
        loader = DataLoader(rows, batch_size=1, collate_fn=collator, num_workers=workers, persistent_workers=persistent)
        crops[workers] = []
        for epoch in range(3):
            callback.on_epoch_begin(None, SimpleNamespace(epoch=float(epoch)), None)
            crops[workers].append(next(iter(loader))["input_values"][0, :50])
    for in_main, in_worker in zip(crops[0], crops[1]):
        torch.testing.assert_close(in_worker, in_main, rtol=0, atol=0)
    assert not torch.equal(crops[0][0], crops[0][1])  # a fresh window each epoch
