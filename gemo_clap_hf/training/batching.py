"""How a batch is built: decode → crop → label ids → length-grouped sampler → evaluation order, in one place.

`GEmoClapTrainer` uses this module, so library users get what the training scripts get:

- `GEmoClapDataCollator` decodes each row's audio (paths stay in the dataset, decoding happens in the DataLoader
  workers), crops long training clips to a window that depends on (seed, epoch, clip), pads them with the feature
  extractor (which also splits clips longer than its `max_length_s` into windows, with `clip_index`) and turns
  label names into ids, checked here on the CPU so that the model never reads label values back from the device.
  Prompts are not tokenised per batch: the model holds the table of label prompts (`model.set_prompts`).
- `EpochSeededLengthGroupedSampler` groups clips of similar length (little padding), with an order that is a
  function of (seed, epoch), so that a run resumed in the middle of an epoch replays the uninterrupted run exactly.
- `EpochCallback` tells the collator and the sampler the epoch at every epoch start, the resumed one included.
- `evaluation_dataloader` keeps the dataset's order and whole clips, so `predict()` rows pair with dataset rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, SequentialSampler
from transformers import TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from ..configuration_gemo_clap import GEmoClapConfig
from ..data.audio import load_audio
from ..feature_extraction_gemo_clap import is_audio_decoder


def _row_name(row: dict[str, Any], position: int) -> str:
    """How an error names a batch row: its id, else its audio path, else its position in the batch."""
    if row.get("id") is not None:
        return f"row {position} (id {row['id']!r})"
    if isinstance(row.get("audio"), str):
        return f"row {position} ({row['audio']})"
    return f"row {position} of the batch"


@dataclasses.dataclass
class GEmoClapDataCollator:
    """Turn dataset rows into model inputs: padded audio + `audio_attention_mask` (+ `clip_index`), label ids.

    Rows hold `audio` (a path, bytes, an `Audio(decode=False)` dict, an array at `sampling_rate`, an
    `{"array", "sampling_rate"}` dict, or a torchcodec `AudioDecoder`: a decoded `datasets` Audio column),
    `emotion` (a label name or id) and `gender` (a name or id). The output holds `input_values`,
    `audio_attention_mask`, `clip_index` when long clips were split into windows, and `emotion_labels` /
    `gender_labels` (`torch.long`, in the model config's label order). Rows without `emotion` (prediction on
    unlabelled audio) give a batch without labels. Label names and ids are checked here, where they are still Python
    values: an unknown label fails with an error naming the row and the fix.

    Args:
        processor: the model's processor (its feature extractor pads and windows the audio), or the feature
            extractor itself. Prompts are not tokenised here: the model holds the label-prompt table.
        config: the model config, for the label sets and the loss type. May be left out when the collator is given
            to `GEmoClapTrainer`, which fills in its model's config.
        max_duration_s: random crop of longer clips to this length (a fresh window per epoch); `None` keeps them.
            Used only for training: evaluation uses `for_evaluation()`, which never crops.
        seed: seed of the crop positions.
        epoch: the training epoch, kept up to date by `EpochCallback`.
        gender_required: SL/ML training needs every row's gender, so a row without one is an error. Evaluation
            (`for_evaluation()`) only scores emotions: a corpus without gender labels (a cross-corpus test set)
            gives batches without `gender_labels`, evaluated without a loss and without per-gender UAR.

    A crop's position is a hash of (seed, epoch, clip), not a draw from a stateful generator, so a run resumed from a
    checkpoint crops exactly as the uninterrupted run did (the Trainer neither saves a collator's state nor
    re-collates skipped batches), and the result does not depend on DataLoader workers or prefetching.
    """

    processor: Any
    config: GEmoClapConfig | None = None
    max_duration_s: float | None = None
    seed: int = 0
    epoch: int = 0
    gender_required: bool = True

    def __post_init__(self):
        # DataLoader workers hold copies of the collator; with persistent workers those copies live for the whole
        # run, so the epoch they crop with is kept in shared memory, which `set_epoch` updates for all of them.
        self._shared_epoch = torch.tensor(int(self.epoch), dtype=torch.long).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._shared_epoch.fill_(self.epoch)

    def for_evaluation(self) -> GEmoClapDataCollator:
        """The same collator without random cropping (evaluation sees whole clips), and genders optional."""
        return dataclasses.replace(self, max_duration_s=None, gender_required=False)

    @property
    def feature_extractor(self):
        return getattr(self.processor, "feature_extractor", self.processor)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    # ---- decode and crop ----

    def _waveform(self, audio: Any) -> np.ndarray:
        if isinstance(audio, (str, bytes, dict)) or is_audio_decoder(audio):
            return load_audio(audio, sampling_rate=self.sampling_rate)
        return np.asarray(audio, dtype=np.float32)

    def _crop(self, waveform: np.ndarray, row: dict[str, Any]) -> np.ndarray:
        if not self.max_duration_s:
            return waveform
        window = int(self.max_duration_s * self.sampling_rate)
        if len(waveform) <= window:
            return waveform
        clip_key = self._clip_key(row, waveform)  # only for clips that are cropped: it may checksum the samples
        epoch = int(self._shared_epoch)
        digest = hashlib.blake2b(f"{self.seed}:{epoch}:{clip_key}".encode(), digest_size=8).digest()
        start = int.from_bytes(digest, "little") % (len(waveform) - window + 1)
        return waveform[start : start + window]

    @staticmethod
    def _clip_key(row: dict[str, Any], waveform: np.ndarray) -> str:
        """What identifies a clip for its crop position: the row's id, its path, else its samples."""
        if row.get("id") is not None:
            return str(row["id"])
        if isinstance(row["audio"], str):
            return row["audio"]
        return f"crc{zlib.crc32(np.ascontiguousarray(waveform).tobytes())}"

    # ---- labels ----

    @staticmethod
    def _label_id(row: dict[str, Any], position: int, field: str, labels: Sequence[str]) -> int:
        """The id of `row[field]` (a label name or an id) in `labels`, or a ValueError naming the row and the fix."""
        value = row[field]
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = value.item()  # a row from a torch-formatted dataset: a CPU scalar
        if isinstance(value, str) and value in labels:
            return labels.index(value)
        is_id = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if is_id and 0 <= int(value) < len(labels):
            return int(value)
        what = f"id {value!r} is out of range 0..{len(labels) - 1}" if is_id else f"{value!r} is not one of them"
        raise ValueError(
            f"{_row_name(row, position)}: the model's {field} labels are {list(labels)} and {field} {what}. Map the "
            f"corpus' labels onto these with `label_map` (`load_corpus(..., label_map=...)`, --label_map in the "
            f"scripts), or build the model with the labels you train on (`{field}_labels=` in GEmoClapConfig)."
        )

    def _labels(self, rows: list[dict[str, Any]], field: str, labels: Sequence[str]) -> torch.Tensor:
        ids = [self._label_id(row, position, field, labels) for position, row in enumerate(rows)]
        return torch.tensor(ids, dtype=torch.long)

    def _add_labels(self, batch: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> None:
        config = self.config
        has_emotion = ["emotion" in row for row in rows]
        if not any(has_emotion):
            return  # unlabelled audio: prediction only
        if not all(has_emotion):
            missing = _row_name(rows[has_emotion.index(False)], has_emotion.index(False))
            raise ValueError(f"{missing} has no `emotion` while other rows of the batch have one; label every row.")
        batch["emotion_labels"] = self._labels(rows, "emotion", config.emotion_labels)
        has_gender = ["gender" in row and row["gender"] != "" for row in rows]  # "": the corpus gives no gender
        if all(has_gender):
            batch["gender_labels"] = self._labels(rows, "gender", config.gender_labels)
        elif config.loss_type in ("sl", "ml") and self.gender_required:
            missing = _row_name(rows[has_gender.index(False)], has_gender.index(False))
            raise ValueError(
                f"loss_type={config.loss_type!r} needs a `gender` for every row; {missing} has none (the corpus "
                "has no gender labels for it). Add a gender column, or train with loss_type='emo'."
            )

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.config is None:
            raise ValueError(
                "GEmoClapDataCollator has no model config: pass `config=model.config`, or hand the "
                "collator to GEmoClapTrainer, which fills it in."
            )
        waveforms = [self._crop(self._waveform(row["audio"]), row) for row in rows]
        names = [
            str(row["audio"]) if isinstance(row["audio"], str) else str(row.get("id", f"#{i}"))
            for i, row in enumerate(rows)
        ]
        batch = dict(
            self.feature_extractor(
                waveforms, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt", names=names
            )
        )
        self._add_labels(batch, rows)
        return batch


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` whose permutation depends only on `seed`, `epoch` and the lengths.

    transformers' `LengthGroupedSampler` draws each epoch's order from the global torch generator. A run resumed in
    the middle of epoch e restores that generator only after building the epoch's order, so it replays epoch 0's
    order instead of epoch e's, and ends with different weights than the uninterrupted run. Seeding the order by
    epoch (told by `EpochCallback` at every epoch start, the resumed one included) removes that dependence on history.
    """

    def __init__(self, batch_size: int, lengths: Sequence[int], seed: int):
        super().__init__(batch_size, lengths=list(lengths))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def length_grouped_sampler(dataset, args) -> EpochSeededLengthGroupedSampler | None:
    """The training sampler for `args.train_sampling_strategy="group_by_length"`; None for other strategies.

    Lengths come from the dataset's `args.length_column_name` column (`load_corpus` writes `length`, in samples),
    never from decoding the audio. Batches of `train_batch_size * gradient_accumulation_steps` clips are grouped, in
    an order seeded by `data_seed` (else `seed`) and the epoch.
    """
    if args.train_sampling_strategy != "group_by_length" or not hasattr(dataset, "column_names"):
        return None
    column = args.length_column_name
    if column not in dataset.column_names:
        raise ValueError(
            f"train_sampling_strategy='group_by_length' needs the clip lengths: the training dataset has no "
            f"{column!r} column (columns: {dataset.column_names}). Datasets from `load_corpus` have `length` (in "
            "samples); add such a column, or set `length_column_name`, or use another train_sampling_strategy."
        )
    return EpochSeededLengthGroupedSampler(
        args.train_batch_size * args.gradient_accumulation_steps,
        dataset[column],
        seed=args.data_seed if args.data_seed is not None else args.seed,
    )


def evaluation_dataloader(dataset, collator: Callable, args, prepare: Callable[[DataLoader], DataLoader]) -> DataLoader:
    """Batches of `args.eval_batch_size` rows in dataset order, collated without cropping.

    Dataset order, so that `predict()` rows pair with the dataset's rows (transformers >= 5 length-groups evaluation
    batches too under `group_by_length`, which reorders them; grouping saves little at evaluation, where nothing is
    cropped and batches hold no gradients). Under several processes, `prepare` (the Trainer's
    `accelerator.prepare`) shards the batches in order. The DataLoader options are the Trainer's.
    """
    if hasattr(collator, "for_evaluation"):
        collator = collator.for_evaluation()
    workers = args.dataloader_num_workers
    options = {"num_workers": workers, "pin_memory": args.dataloader_pin_memory, "drop_last": args.dataloader_drop_last}
    if workers > 0:
        options.update(
            persistent_workers=args.dataloader_persistent_workers,
            prefetch_factor=args.dataloader_prefetch_factor,
            multiprocessing_context=getattr(args, "dataloader_multiprocessing_context", None),
        )
    if getattr(args, "dataloader_in_order", True) is False:
        options["in_order"] = False
    ordered = None if isinstance(dataset, IterableDataset) else SequentialSampler(dataset)
    loader = DataLoader(dataset, batch_size=args.eval_batch_size, sampler=ordered, collate_fn=collator, **options)
    return prepare(loader)


class EpochCallback(TrainerCallback):
    """Call `target.set_epoch(epoch)` on each of its targets at every epoch start, the resumed one included.

    For whatever draws per-epoch randomness from (seed, epoch) rather than from a stateful generator: the training
    collator's crops, the length-grouped sampler. A resumed run then replays the uninterrupted run exactly. One
    callback holds every target (transformers warns when a second callback of the same class is added); `track`
    replaces a target of the same class, so a rebuilt train dataloader does not leave its old sampler behind.
    """

    def __init__(self, *targets):
        self.targets = list(targets)

    def track(self, target) -> None:
        self.targets = [known for known in self.targets if type(known) is not type(target)] + [target]

    def on_epoch_begin(self, args, state, control, **kwargs):
        # `state.epoch` is fractional mid-epoch (resumed runs) and exactly the epoch number at epoch boundaries.
        for target in self.targets:
            target.set_epoch(int(state.epoch or 0))


__all__ = [
    "EpochCallback",
    "EpochSeededLengthGroupedSampler",
    "GEmoClapDataCollator",
    "evaluation_dataloader",
    "length_grouped_sampler",
]
