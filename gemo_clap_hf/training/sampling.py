"""Length-grouped batches whose order is a function of (seed, epoch), so that resumed runs replay the same batches.

transformers' `LengthGroupedSampler` draws each epoch's order from the global torch generator. A run resumed in the
middle of epoch e restores that generator only after building the epoch's order, so it replays epoch 0's order
instead of epoch e's, and ends with different weights than the uninterrupted run. Seeding the order by epoch (told by
`trainer.EpochCallback` at every epoch start, the resumed one included) removes that dependence on history.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` whose permutation depends only on `seed`, `epoch` and the lengths."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=list(lengths))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


__all__ = ["EpochSeededLengthGroupedSampler"]
