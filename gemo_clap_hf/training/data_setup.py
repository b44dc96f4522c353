"""From `DataArguments` to speaker-independent train / eval / test sets, with errors that name the flag to fix.

The protocol itself (fold choice, the speaker-leakage check, the model card's sentence) is `data/protocol.py`; this
module applies it to the flags. Every problem a user can cause with the data flags (missing folder, bad manifest,
corrupt audio, empty fold, speaker leakage) surfaces as a `TrainingInputError`, which the scripts print as one line
instead of a traceback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import datasets

from ..data import FOUR_CLASS_LABELS, load_corpus
from ..data.protocol import (
    assign_speaker_folds,
    available_folds,
    check_speaker_leakage,
    count_unknown_speakers,
    protocol_sentence,
    split_by_fold,
)
from ..feature_extraction_gemo_clap import GEmoClapAudioError
from .arguments import DataArguments
from .errors import TrainingInputError

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """The three evaluation-protocol sets and what the model card says about them."""

    train: datasets.Dataset
    eval: datasets.Dataset
    test: datasets.Dataset | None  # None when the test fold doubles as the evaluation set
    labels: list[str]
    protocol: str


def parse_label_map(text: str | None) -> dict[str, str | None] | None:
    """`--label_map` JSON into a dict, or None for the corpus' default label set."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise TrainingInputError(
            f"--label_map is not valid JSON ({error}); pass an object such as "
            '\'{"excited": "happy", "happy": "happy", "neutral": "neutral"}\'.'
        ) from None
    if not isinstance(value, dict):
        raise TrainingInputError(f"--label_map must be a JSON object of source label -> target label, got {text!r}.")
    return value


def load_training_corpus(data_args: DataArguments) -> datasets.Dataset:
    """The whole corpus with its folds (re-assigned by speaker when --num_folds is set)."""
    if not data_args.data_dir:
        raise TrainingInputError(
            f"--data_dir is required: the {data_args.dataset} corpus folder "
            "(for --dataset manifest: the CSV/JSONL file)."
        )
    try:
        corpus = load_corpus(
            data_args.dataset,
            data_args.data_dir,
            label_map=parse_label_map(data_args.label_map),
            skip_bad_files=data_args.skip_bad_files,
        )
    except (FileNotFoundError, GEmoClapAudioError, ValueError) as error:
        # The readers name the library option; the script user needs the flag.
        raise TrainingInputError(str(error).replace("skip_bad_files=True", "--skip_bad_files")) from error
    if data_args.num_folds:
        try:
            corpus = assign_speaker_folds(corpus, k=data_args.num_folds)
        except ValueError as error:
            raise TrainingInputError(f"--num_folds {data_args.num_folds}: {error}") from error
    return corpus


def label_order(present: set[str], label_map: dict[str, str | None] | None) -> list[str]:
    """The model's label order: the label map's targets (or the 4-class order) first, then the rest sorted."""
    preferred = [target for target in (label_map or {}).values() if target] if label_map else list(FOUR_CLASS_LABELS)
    ordered = [label for label in dict.fromkeys(preferred) if label in present]
    return ordered + sorted(present - set(ordered))


def _hold_out(dataset: datasets.Dataset, fold: str, flag: str, folds: list[str]):
    """(rest, fold's utterances), with an error naming the flag when the fold is empty or is everything."""
    try:
        return split_by_fold(dataset, fold)
    except ValueError as error:
        hint = "; pass --num_folds K for speaker-grouped folds" if not folds else f"; choose {flag} from {folds}"
        raise TrainingInputError(f"{flag} {fold}: {error.args[0].rstrip('.')}{hint}.") from error


def _subset(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset for quick runs (classes stay mixed), as in the transformers example scripts."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit))


def split_for_training(corpus: datasets.Dataset, data_args: DataArguments, seed: int) -> PreparedData:
    """Train / eval / test by fold, checked for speaker leakage and cut to --max_*_samples."""
    folds = available_folds(corpus)
    if data_args.test_fold is None:
        raise TrainingInputError(
            f"--test_fold is required; the corpus has folds {folds}"
            + ("" if folds else " (none: pass --num_folds K for speaker-grouped folds)")
            + "."
        )
    if data_args.eval_fold is not None and str(data_args.eval_fold) == str(data_args.test_fold):
        raise TrainingInputError(
            f"--eval_fold {data_args.eval_fold} equals --test_fold; choose another fold or "
            "leave --eval_fold unset to evaluate on the test fold."
        )
    rest, test = _hold_out(corpus, str(data_args.test_fold), "--test_fold", folds)
    train, evaluation = rest, test
    if data_args.eval_fold is not None:
        train, evaluation = _hold_out(rest, str(data_args.eval_fold), "--eval_fold", folds)
    for held_out in (test,) if data_args.eval_fold is None else (test, evaluation):
        try:
            check_speaker_leakage(train, held_out)
        except ValueError as error:
            raise TrainingInputError(f"{error} (or pass --num_folds K)") from error
    labels = label_order(set(corpus["emotion"]), parse_label_map(data_args.label_map))
    logger.info(
        f"{data_args.dataset}: {len(train)} training, {len(evaluation)} evaluation"
        + (f", {len(test)} test" if data_args.eval_fold else "")
        + f" utterances; labels {labels}."
    )
    prepared = PreparedData(
        train=_subset(train, data_args.max_train_samples, seed),
        eval=_subset(evaluation, data_args.max_eval_samples, seed),
        test=_subset(test, data_args.max_eval_samples, seed) if data_args.eval_fold is not None else None,
        labels=labels,
        protocol=protocol_sentence(
            data_args.dataset,
            data_args.test_fold,
            data_args.eval_fold,
            data_args.num_folds,
            unknown_speakers=count_unknown_speakers(corpus),
        ),
    )
    _warn_untrained_labels(prepared)
    return prepared


def _warn_untrained_labels(data: PreparedData) -> None:
    """A label only the held-out folds carry is never trained on: often a mislabeled row, or too small a subset."""
    trained = set(data.train["emotion"])
    untrained = [label for label in data.labels if label not in trained]
    if untrained:
        logger.warning(
            f"labels {untrained} have no training utterance (they occur only in the held-out folds), so "
            "the model never learns them; fix those rows or map them with --label_map (null drops them), "
            "or raise --max_train_samples."
        )


def prepare_data(data_args: DataArguments, seed: int) -> PreparedData:
    return split_for_training(load_training_corpus(data_args), data_args, seed)


__all__ = [
    "PreparedData",
    "label_order",
    "load_training_corpus",
    "parse_label_map",
    "prepare_data",
    "split_for_training",
]
