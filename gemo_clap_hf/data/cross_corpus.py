"""Cross-corpus label sets: one documented map onto common names, the shared classes, and what only one corpus has.

Corpora name the same emotion differently (IEMOCAP's "excited" is counted as happy in the paper's 4-class set; EmoBox
writes "Fear" where RAVDESS' own reader says "fear"; manifests say "anger"), so both corpora's labels go through
`CROSS_CORPUS_LABEL_MAP` first. The classes of a cross-corpus run are the labels both corpora then share; labels
that only the test corpus has are counted and reported (a closed-set model cannot predict them; zero-shot prompts
can). Non-emotion labels ("other", "no_agreement", ...) are dropped with a count.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import datasets

from .labels import FOUR_CLASS_LABELS, format_counts

logger = logging.getLogger(__name__)

# Synonyms onto one name per emotion. "excited" -> "happy" follows the IEMOCAP 4-class convention.
CROSS_CORPUS_LABEL_MAP = {
    "excited": "happy",
    "happiness": "happy",
    "joy": "happy",
    "anger": "angry",
    "sadness": "sad",
    "fearful": "fear",
    "surprised": "surprise",
    "disgusted": "disgust",
}
# Optional (on by default, as the RAVDESS reader's default): calm counted as neutral.
CALM_AS_NEUTRAL = {"calm": "neutral"}
NOT_EMOTIONS = ("other", "no_agreement", "no-agreement", "xxx", "oth")


def cross_corpus_label_map(calm_as_neutral: bool = True) -> dict[str, str]:
    return {**CROSS_CORPUS_LABEL_MAP, **(CALM_AS_NEUTRAL if calm_as_neutral else {})}


def harmonise_labels(dataset: datasets.Dataset, corpus: str, calm_as_neutral: bool = True) -> datasets.Dataset:
    """The dataset with emotions mapped onto common names and non-emotion labels dropped (with a count)."""
    mapping = cross_corpus_label_map(calm_as_neutral)
    dataset = dataset.map(lambda row: {"emotion": mapping.get(row["emotion"], row["emotion"])})
    dropped = Counter(label for label in dataset["emotion"] if label in NOT_EMOTIONS)
    if dropped:
        logger.info(
            f"{corpus}: dropped {sum(dropped.values())} utterances without an emotion ({format_counts(dropped)})."
        )
        dataset = dataset.filter(lambda row: row["emotion"] not in NOT_EMOTIONS)
    return dataset


def _ordered(labels) -> list[str]:
    """The 4 classes first in their usual order, then the rest sorted."""
    labels = set(labels)
    return [label for label in FOUR_CLASS_LABELS if label in labels] + sorted(labels - set(FOUR_CLASS_LABELS))


@dataclass
class LabelPlan:
    """The classes both corpora share, and the utterances per label that only one of them has."""

    shared: list[str]
    only_in_train: dict[str, int]
    only_in_test: dict[str, int]
    test_labels: list[str]  # every label of the test corpus, shared first (the zero-shot label set)


def plan_labels(train: datasets.Dataset, test: datasets.Dataset) -> LabelPlan:
    train_counts, test_counts = Counter(train["emotion"]), Counter(test["emotion"])
    shared = _ordered(set(train_counts) & set(test_counts))
    if not shared:
        raise ValueError(
            f"the corpora share no emotion label after the cross-corpus label map (training: "
            f"{sorted(train_counts)}; test: {sorted(test_counts)}); map them onto common names with a label_map."
        )
    only_test = {label: test_counts[label] for label in _ordered(set(test_counts) - set(shared))}
    return LabelPlan(
        shared=shared,
        only_in_train={label: train_counts[label] for label in _ordered(set(train_counts) - set(shared))},
        only_in_test=only_test,
        test_labels=shared + list(only_test),
    )


__all__ = [
    "CALM_AS_NEUTRAL",
    "CROSS_CORPUS_LABEL_MAP",
    "LabelPlan",
    "cross_corpus_label_map",
    "harmonise_labels",
    "plan_labels",
]
