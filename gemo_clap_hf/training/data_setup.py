"""From `DataArguments` to speaker-independent train / eval / test sets, with errors that name the flag to fix.

The protocol itself (fold choice, the speaker-leakage check, the model card's sentence) is `data/protocol.py`; this
module applies it to the flags. Every problem a user can cause with the data flags (missing folder, bad manifest,
corrupt audio, empty fold, speaker leakage) surfaces as a `TrainingInputError`, which the scripts print as one line
instead of a traceback.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, replace

import datasets

from ..data import FOUR_CLASS_LABELS, load_corpus
from ..data.building import UNKNOWN_GENDER
from ..data.labels import format_counts
from ..data.protocol import (
    assign_speaker_folds,
    available_folds,
    check_speaker_leakage,
    count_unknown_speakers,
    emobox_protocol_sentence,
    protocol_sentence,
    split_by_fold,
)
from ..data.readers import emobox
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
    card_name: str | None = None  # the model card's dataset name (default: the corpus' title)
    card_split: str | None = None  # the model card's split (default: "fold <test_fold>")
    card_type: str | None = None  # the corpus kind the card's metrics are on (default: --dataset)
    card_training: str | None = None  # the card's "Training data" source (default: the corpus and its folds)


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


EMOBOX_FLAGS = ("emobox_dataset", "fold", "emobox_audio_root", "emobox_demographics")


def emobox_folds(data_args: DataArguments) -> list[int]:
    """EmoBox's fold numbers of --emobox_dataset (its data/<name>/fold_K folders)."""
    try:
        return emobox.available_folds(emobox.dataset_dir(data_args.data_dir, data_args.emobox_dataset))
    except FileNotFoundError as error:
        raise TrainingInputError(f"--emobox_dataset {data_args.emobox_dataset}: {error}") from error


def corpus_options(data_args: DataArguments) -> dict:
    """The reader options the flags give: EmoBox's corpus and fold; nothing for the other corpora."""
    given = [f"--{name}" for name in EMOBOX_FLAGS if getattr(data_args, name) is not None]
    if data_args.dataset != "emobox":
        if given:
            raise TrainingInputError(
                f"{', '.join(given)} apply to --dataset emobox only; for {data_args.dataset} choose the held-out "
                "fold with --test_fold."
            )
        return {}
    if not data_args.emobox_dataset:
        raise TrainingInputError(
            "--dataset emobox needs --emobox_dataset NAME: an EmoBox corpus as named under <data_dir>/data/ "
            "(iemocap, ravdess, cremad, ...)."
        )
    if data_args.fold is None:
        raise TrainingInputError(
            f"--dataset emobox needs --fold K, EmoBox's fold; {data_args.emobox_dataset} has folds "
            f"{emobox_folds(data_args)} (cross_validate.py runs them all)."
        )
    return {
        "dataset": data_args.emobox_dataset,
        "fold": data_args.fold,
        "audio_root": data_args.emobox_audio_root,
        "demographics": data_args.emobox_demographics,
    }


def load_training_corpus(data_args: DataArguments) -> datasets.Dataset:
    """The whole corpus with its folds (re-assigned by speaker when --num_folds is set)."""
    if not data_args.data_dir:
        raise TrainingInputError(
            f"--data_dir is required: the {data_args.dataset} corpus folder "
            "(for --dataset manifest: the CSV/JSONL file; for --dataset emobox: the EmoBox root)."
        )
    options = corpus_options(data_args)
    try:
        corpus = load_corpus(
            data_args.dataset,
            data_args.data_dir,
            label_map=parse_label_map(data_args.label_map),
            skip_bad_files=data_args.skip_bad_files,
            **options,
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


def _hold_out(dataset: datasets.Dataset, fold: str, flag: str, folds: list[str], data_args: DataArguments):
    """(rest, fold's utterances), with an error naming the flag (or EmoBox's file) when the fold is empty or all."""
    try:
        return split_by_fold(dataset, fold)
    except ValueError as error:
        if data_args.dataset == "emobox":  # EmoBox's splits are its files, not a flag the user chose
            raise TrainingInputError(
                f"EmoBox {data_args.emobox_dataset} fold {data_args.fold}: no utterance of its {fold} file is left "
                f"(the corpus' splits here: {folds}); its lines were all dropped (labels outside the label set, or "
                "missing audio with --skip_bad_files): see the log above, and fix the file or the audio."
            ) from error
        hint = "; pass --num_folds K for speaker-grouped folds" if not folds else f"; choose {flag} from {folds}"
        raise TrainingInputError(f"{flag} {fold}: {error.args[0].rstrip('.')}{hint}.") from error


def require_classes(labels: list[str], counts: Counter, corpus: str, fix: str) -> None:
    """A classifier needs two emotion classes at least: refuse fewer before a model is built, naming those found."""
    if len(labels) >= 2:
        return
    found = f"{format_counts(counts)} utterances" if counts else "none"
    raise TrainingInputError(
        f"{corpus}: {len(labels)} emotion class{'' if len(labels) == 1 else 'es'} found ({found}); a classifier "
        f"needs at least two: {fix}"
    )


def random_subset(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset for quick runs (classes stay mixed), as in the transformers example scripts."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit))


def _emobox_splits(corpus: datasets.Dataset, data_args: DataArguments) -> DataArguments:
    """EmoBox's test file is the test fold, its valid file (where it has one) the evaluation fold."""
    if data_args.test_fold not in (None, "test") or data_args.eval_fold not in (None, "valid"):
        raise TrainingInputError(
            "--dataset emobox takes EmoBox's own split of --fold: drop --test_fold/--eval_fold (the test file is "
            "the test set, the valid file, where EmoBox has one, the evaluation set)."
        )
    eval_fold = "valid" if "valid" in set(corpus["fold"]) else None
    return replace(data_args, test_fold="test", eval_fold=eval_fold)


def _protocol(corpus, data_args: DataArguments, shared: int) -> str:
    unknown = count_unknown_speakers(corpus)
    if data_args.dataset == "emobox":
        return emobox_protocol_sentence(data_args.emobox_dataset, data_args.fold, data_args.eval_fold, shared, unknown)
    return protocol_sentence(
        data_args.dataset, data_args.test_fold, data_args.eval_fold, data_args.num_folds, unknown_speakers=unknown
    )


def split_for_training(corpus: datasets.Dataset, data_args: DataArguments, seed: int) -> PreparedData:
    """Train / eval / test by fold, checked for speaker leakage and cut to --max_*_samples.

    EmoBox folds are taken as published: speakers shared between its train and test files are warned about, not
    refused.
    """
    is_emobox = data_args.dataset == "emobox"
    if is_emobox:
        data_args = _emobox_splits(corpus, data_args)
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
    rest, test = _hold_out(corpus, str(data_args.test_fold), "--test_fold", folds, data_args)
    train, evaluation = rest, test
    if data_args.eval_fold is not None:
        train, evaluation = _hold_out(rest, str(data_args.eval_fold), "--eval_fold", folds, data_args)
    shared = set()
    for held_out in (test,) if data_args.eval_fold is None else (test, evaluation):
        try:
            shared.update(check_speaker_leakage(train, held_out, warn_only=is_emobox))
        except ValueError as error:
            raise TrainingInputError(f"{error} (or pass --num_folds K)") from error
    labels = label_order(set(corpus["emotion"]), parse_label_map(data_args.label_map))
    require_classes(
        labels,
        Counter(corpus["emotion"]),
        f"EmoBox {data_args.emobox_dataset} fold {data_args.fold}" if is_emobox else data_args.dataset,
        "check the corpus' labels (for EmoBox, the fold files' `emo` codes and label_map.json) and --label_map, "
        "which may map every label onto one name or drop all but one.",
    )
    logger.info(
        f"{data_args.dataset}: {len(train)} training, {len(evaluation)} evaluation"
        + (f", {len(test)} test" if data_args.eval_fold else "")
        + f" utterances; labels {labels}."
    )
    prepared = PreparedData(
        train=random_subset(train, data_args.max_train_samples, seed),
        eval=random_subset(evaluation, data_args.max_eval_samples, seed),
        test=random_subset(test, data_args.max_eval_samples, seed) if data_args.eval_fold is not None else None,
        labels=labels,
        protocol=_protocol(corpus, data_args, len(shared)),
        card_name=f"EmoBox {data_args.emobox_dataset}" if is_emobox else None,
        card_split=f"EmoBox fold {data_args.fold} (test)" if is_emobox else None,
        card_training=_emobox_training_source(data_args) if is_emobox else None,
    )
    _warn_untrained_labels(prepared)
    return prepared


def _emobox_training_source(data_args: DataArguments) -> str:
    name = f"EmoBox {data_args.emobox_dataset}, fold {data_args.fold}"
    return f"{name}: its train file" + ("" if data_args.eval_fold is None else " (its valid file for evaluation)")


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


def require_gender(data: PreparedData, loss_type: str, corpus: str) -> None:
    """SL/ML-GEmo-CLAP learn from speaker gender: refuse a training set the corpus gives no gender for."""
    if loss_type == "emo":
        return
    unknown = list(data.train["gender"]).count(UNKNOWN_GENDER)
    if unknown:
        raise TrainingInputError(
            f"--loss_type {loss_type} needs speaker gender, but {corpus} has no gender labels for {unknown} of the "
            f"{len(data.train)} training utterances (the corpus' metadata gives none, and none is guessed); train "
            "Emo-CLAP with --loss_type emo, or give the gender (a manifest with a gender column; for EmoBox "
            "CREMA-D, --emobox_demographics)."
        )


def prepare_data(data_args: DataArguments, seed: int) -> PreparedData:
    return split_for_training(load_training_corpus(data_args), data_args, seed)


__all__ = [
    "EMOBOX_FLAGS",
    "PreparedData",
    "corpus_options",
    "emobox_folds",
    "label_order",
    "load_training_corpus",
    "parse_label_map",
    "prepare_data",
    "require_classes",
    "require_gender",
    "split_for_training",
]
