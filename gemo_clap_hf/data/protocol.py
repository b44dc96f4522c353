"""The evaluation protocol: which folds a corpus is split into, the speaker-leakage check, and how a model card says it.

- Folds come from the corpus registry (`CORPORA[name].folds`): IEMOCAP and the synthetic corpus hold out one
  recording session at a time (leave-one-session-out, the paper's protocol); MSP-Podcast has the release's splits; a
  manifest its own `fold`/`split` column; RAVDESS, CREMA-D and corpora without folds are split by speaker
  (`assign_speaker_folds`, k folds, each speaker in exactly one).
- No speaker may be in both the training and a held-out set (`check_speaker_leakage`). Utterances whose speaker
  the corpus does not know (speaker "") cannot be checked: they are left out of the check, with a warning, and the
  model card says how many there were.
- `protocol_sentence` is the one sentence the model card uses to describe the split a model was evaluated on.
"""

from __future__ import annotations

import logging
import random
from collections import Counter

import datasets

from .corpora import corpus_spec

logger = logging.getLogger(__name__)

FOLD_SEED = 0  # speaker-fold assignment is part of the protocol: fixed, not tied to the training seed
UNKNOWN_SPEAKER = ""
_SHOWN = 20


def available_folds(dataset: datasets.Dataset) -> list[str]:
    """The dataset's folds in natural order ("2" before "10"); "" (no fold) is not one."""
    return sorted(
        set(dataset["fold"]) - {""}, key=lambda fold: (not fold.isdigit(), int(fold) if fold.isdigit() else 0, fold)
    )


def uses_own_folds(name: str) -> bool:
    """Whether cross-validation holds out the corpus' own folds (sessions, a manifest's column), not speaker folds.

    A release's train/development/test split (MSP-Podcast) is one split, not a set of folds to rotate through.
    """
    return corpus_spec(name).folds in ("session", "column")


def fold_scheme(name: str, num_folds: int | None = None) -> str:
    """How the folds of corpus `name` are formed, in words: "leave-one-session-out", "speaker-grouped 5-fold", ..."""
    if num_folds:
        return f"speaker-grouped {num_folds}-fold"
    return {
        "session": "leave-one-session-out",
        "split": "the release's splits",
        "column": "the manifest's folds",
        "speaker": "no folds (speaker-grouped folds need num_folds)",
    }[corpus_spec(name).folds]


def protocol_sentence(
    name: str,
    test_fold: str | int,
    eval_fold: str | int | None = None,
    num_folds: int | None = None,
    unknown_speakers: int = 0,
) -> str:
    """The model card's description of the split: the held-out fold, the validation choice, speaker independence."""
    scheme = fold_scheme(name, num_folds)
    if num_folds:
        held_out = f"{scheme} split with fold {test_fold} held out for test"
    elif corpus_spec(name).folds == "session":
        held_out = f"{scheme} with session {test_fold} held out for test"
    else:
        held_out = f"the corpus' fold {str(test_fold)!r} held out for test"
    selection = (
        f"fold {eval_fold} served as the validation set"
        if eval_fold is not None
        else "the test fold also served as the evaluation set, without a separate validation fold"
    )
    independence = "speaker-independent, no speaker is in both training and test"
    if unknown_speakers:
        independence = (
            f"speaker-independent, no known speaker is in both training and test ({unknown_speakers} "
            "utterances have no speaker id and could not be checked)"
        )
    return f"{held_out}; {selection}; {independence}"


def count_unknown_speakers(dataset: datasets.Dataset) -> int:
    """Utterances whose speaker the corpus does not give (speaker "")."""
    return list(dataset["speaker"]).count(UNKNOWN_SPEAKER)


def assign_speaker_folds(dataset: datasets.Dataset, k: int = 5, seed: int = FOLD_SEED) -> datasets.Dataset:
    """Replace `fold` with "1".."k" so that each speaker sits in one fold and folds hold similar utterance counts.

    Greedy: speakers in descending utterance count (ties in a `seed`-shuffled order) each go to the fold with the
    fewest utterances so far. Deterministic for a given dataset, `k` and `seed`.
    """
    if k < 2:
        raise ValueError(f"k={k}: speaker folds need k >= 2.")
    unknown = count_unknown_speakers(dataset)
    if unknown:
        raise ValueError(
            f"{unknown} utterances have no known speaker (''); speaker folds need a speaker for every "
            "utterance: add a `speaker` column to the manifest, or use the corpus' own folds or splits "
            "(MSP-Podcast: its Split_Set, e.g. test fold Test1)."
        )
    counts = Counter(dataset["speaker"])
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
        raise ValueError(
            f"fold {test_fold!r} has no utterances; available folds: {available}"
            + (" (the corpus has no folds: use assign_speaker_folds)" if available == [""] else "")
            + "."
        )
    if len(test_rows) == len(folds):
        raise ValueError(
            f"fold {test_fold!r} holds every utterance, leaving no training data; available folds: {available}."
        )
    test_set = set(test_rows)
    train_rows = [index for index in range(len(folds)) if index not in test_set]
    return dataset.select(train_rows), dataset.select(test_rows)


def check_speaker_leakage(train: datasets.Dataset, test: datasets.Dataset, warn_only: bool = False) -> list[str]:
    """Raise if a known speaker is in both sets (speaker-independent evaluation); return the shared speakers.

    Unknown ("") speakers are not one shared speaker and cannot be checked: they are left out, and a warning says how
    many there are, since leakage may hide among them. `warn_only` (a published split that is taken as it is, such
    as EmoBox's CREMA-D fold) warns about shared speakers instead of raising.
    """
    unknown = count_unknown_speakers(train) + count_unknown_speakers(test)
    if unknown:
        logger.warning(
            f"{unknown} utterances have no speaker, so speaker leakage between the training and the test "
            "set cannot be checked for them (the corpus does not know their speaker, e.g. MSP-Podcast's "
            "SpkrID 'Unknown'); for a manifest, add a `speaker` column."
        )
    shared = sorted((set(train["speaker"]) & set(test["speaker"])) - {UNKNOWN_SPEAKER})
    if shared:
        shown = ", ".join(shared[:_SHOWN]) + (f", ... ({len(shared)} in all)" if len(shared) > _SHOWN else "")
        message = f"speaker leakage: {len(shared)} speakers are in both the training and the test set: {shown}"
        if warn_only:
            logger.warning(f"{message}; the published split is kept as it is, so results are not speaker-independent.")
        else:
            raise ValueError(f"{message}; split by speaker (split_by_fold on session/speaker folds).")
    return shared


def emobox_protocol_sentence(dataset: str, fold: int, eval_split: str | None, shared: int, unknown: int) -> str:
    """The model card's description of an EmoBox fold: the files it came from and how speaker-independent it is."""
    held_out = (
        f"EmoBox's {dataset} fold {fold} as published (trained on data/{dataset}/fold_{fold}/"
        f"{dataset}_train_fold_{fold}.jsonl, tested on {dataset}_test_fold_{fold}.jsonl)"
    )
    selection = (
        f"EmoBox's {eval_split} file served as the validation set"
        if eval_split
        else "the test file also served as the evaluation set, without a separate validation set"
    )
    if shared:
        independence = f"not speaker-independent: {shared} speakers are in both training and test"
    elif unknown:
        independence = f"speaker independence unchecked: EmoBox gives no speaker for {unknown} utterances"
    else:
        independence = "speaker-independent, no speaker is in both training and test"
    return f"{held_out}; {selection}; {independence}"


__all__ = [
    "FOLD_SEED",
    "assign_speaker_folds",
    "available_folds",
    "check_speaker_leakage",
    "count_unknown_speakers",
    "emobox_protocol_sentence",
    "fold_scheme",
    "protocol_sentence",
    "split_by_fold",
    "uses_own_folds",
]
