"""Speaker-independent evaluation splits: folds by session or by speaker, and a check that no speaker leaks."""

from __future__ import annotations

import logging
import random
from collections import Counter

import datasets

logger = logging.getLogger(__name__)


def assign_speaker_folds(dataset: datasets.Dataset, k: int = 5, seed: int = 0) -> datasets.Dataset:
    """Replace `fold` with "1".."k" so that each speaker sits in one fold and folds hold similar utterance counts.

    Greedy: speakers in descending utterance count (ties in a `seed`-shuffled order) each go to the fold with the
    fewest utterances so far. Deterministic for a given dataset, `k` and `seed`.
    """
    if k < 2:
        raise ValueError(f"k={k}: speaker folds need k >= 2.")
    speakers = dataset["speaker"]
    if any(speaker == "" for speaker in speakers):
        raise ValueError("some utterances have no speaker (''); speaker folds need a speaker for every utterance "
                         "(add a `speaker` column to the manifest).")
    counts = Counter(speakers)
    if len(counts) < k:
        raise ValueError(f"k={k} folds need at least {k} speakers, but the dataset has {len(counts)}; lower k.")
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda speaker: -counts[speaker])  # stable: ties keep the shuffled order
    sizes = [0] * k
    fold_of = {}
    for speaker in order:
        fold = min(range(k), key=lambda index: (sizes[index], index))
        fold_of[speaker] = str(fold + 1)
        sizes[fold] += counts[speaker]
    return dataset.map(lambda batch: {"fold": [fold_of[speaker] for speaker in batch["speaker"]]}, batched=True)


def split_by_fold(dataset: datasets.Dataset, test_fold: str | int) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, test): the test fold's utterances against all others. `test_fold` may be an int (IEMOCAP session)."""
    test_fold = str(test_fold)
    folds = dataset["fold"]
    available = sorted(set(folds))
    test_rows = [index for index, fold in enumerate(folds) if fold == test_fold]
    if not test_rows:
        raise ValueError(f"fold {test_fold!r} has no utterances; available folds: {available}"
                         + (" (the corpus has no folds: use assign_speaker_folds)" if available == [""] else "") + ".")
    if len(test_rows) == len(folds):
        raise ValueError(f"fold {test_fold!r} holds every utterance, leaving no training data; "
                         f"available folds: {available}.")
    test_set = set(test_rows)
    train_rows = [index for index in range(len(folds)) if index not in test_set]
    return dataset.select(train_rows), dataset.select(test_rows)


def check_speaker_leakage(train: datasets.Dataset, test: datasets.Dataset) -> None:
    """Raise if a speaker is in both sets (speaker-independent evaluation).

    Unknown ('') speakers cannot be checked: a warning says how many there are, since leakage may hide among them.
    """
    train_speakers, test_speakers = list(train["speaker"]), list(test["speaker"])
    unknown = train_speakers.count("") + test_speakers.count("")
    if unknown:
        logger.warning(f"{unknown} utterances have no speaker, so speaker leakage between the training and the test "
                       "set cannot be checked for them; add a `speaker` column to the manifest.")
    shared = sorted((set(train_speakers) & set(test_speakers)) - {""})
    if shared:
        shown = ", ".join(shared[:20]) + (f", ... ({len(shared)} in all)" if len(shared) > 20 else "")
        raise ValueError(f"speaker leakage: {len(shared)} speakers are in both the training and the test set: "
                         f"{shown}; split by speaker (split_by_fold on session/speaker folds).")


__all__ = ["assign_speaker_folds", "check_speaker_leakage", "split_by_fold"]
