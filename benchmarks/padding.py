"""Padding efficiency of the training scripts' length-grouped sampler on IEMOCAP-like durations vs random batches."""

from __future__ import annotations

import statistics

import numpy as np
import torch

from gemo_clap_hf.training.batching import EpochSeededLengthGroupedSampler

from .settings import DURATION_MEDIAN_S, DURATION_SIGMA, NUM_CLIPS, TARGETS, TRAIN_BATCH_SIZE, Settings
from .workload import iemocap_like_lengths


def padding_efficiency(lengths: np.ndarray, order: list[int], batch_size: int) -> float:
    """Real samples ÷ padded samples when consecutive `batch_size` indices of `order` form a batch."""
    order = np.asarray(order)
    padded = sum(
        lengths[order[i : i + batch_size]].max() * len(order[i : i + batch_size])
        for i in range(0, len(order), batch_size)
    )
    return float(lengths[order].sum() / padded)


def measure_padding_efficiency(settings: Settings) -> dict:
    """One epoch per repeat through the training scripts' length-grouped sampler (transformers' grouping, seeded by
    epoch) vs random batches."""
    lengths = iemocap_like_lengths(settings.seed)
    sampler = EpochSeededLengthGroupedSampler(TRAIN_BATCH_SIZE, lengths.tolist(), seed=settings.seed)
    grouped, random = [], []
    for repeat in range(max(settings.repeats, 3)):  # cheap: at least 3 epochs even in --quick
        generator = torch.Generator().manual_seed(settings.seed + repeat)
        sampler.set_epoch(repeat)
        order = list(sampler)
        grouped.append(padding_efficiency(lengths, order, TRAIN_BATCH_SIZE))
        random.append(
            padding_efficiency(lengths, torch.randperm(len(lengths), generator=generator).tolist(), TRAIN_BATCH_SIZE)
        )
    value = statistics.median(grouped)
    return {
        "group_by_length": round(value, 4),
        "random": round(statistics.median(random), 4),
        "target_min": TARGETS["padding_efficiency"],
        "met": value >= TARGETS["padding_efficiency"],
        "batch_size": TRAIN_BATCH_SIZE,
        "clips": NUM_CLIPS,
        "median_duration_s": DURATION_MEDIAN_S,
        "sigma": DURATION_SIGMA,
        "repeats": len(grouped),
    }
