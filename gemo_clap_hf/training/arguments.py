"""Command-line arguments of the training scripts: model, data and training dataclasses for `HfArgumentParser`.

Flags or one JSON file, as in the transformers example scripts: every field carries `help`, so `--help` lists them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from transformers import HfArgumentParser, TrainingArguments

from ..data import corpora

CORPORA = tuple(corpora.CORPORA)  # the registry's names, in its order


@dataclass
class ModelArguments:
    """Which pre-trained towers to start from and which GEmo-CLAP variant to train."""

    audio_encoder: str = field(
        default="microsoft/wavlm-base-plus",
        metadata={
            "help": "Speech encoder to start from: a Hub id or a local folder (WavLM, HuBERT, wav2vec 2.0, "
            "data2vec-audio)."
        },
    )
    text_encoder: str = field(
        default="roberta-base",
        metadata={
            "help": "Text encoder to start from, with its tokenizer: a Hub id or a local folder (RoBERTa, BERT, ...)."
        },
    )
    loss_type: Literal["emo", "sl", "ml"] = field(
        default="sl",
        metadata={
            "help": "emo: Emo-CLAP (emotion targets only); sl: SL-GEmo-CLAP (soft emotion+gender targets); "
            "ml: ML-GEmo-CLAP (emotion loss + gender loss)."
        },
    )
    alpha_e: float = field(
        default=0.9,
        metadata={
            "help": "Weight of emotion against gender (1 - alpha_e) in the sl targets or the ml loss; unused by emo."
        },
    )
    projection_dim: int = field(default=512, metadata={"help": "Size of the shared audio-text embedding space."})
    prompt_template: str = field(
        default="{}",
        metadata={"help": "How a label becomes the text prompt, e.g. '{}' or 'a person speaking in a {} voice'."},
    )
    target_normalization: Literal["sum", "softmax"] = field(
        default="sum",
        metadata={
            "help": "How a row of the label-match matrix becomes a target distribution: 'sum' (divide by "
            "the row sum) or 'softmax'."
        },
    )
    freeze_feature_encoder: bool = field(
        default=True,
        metadata={
            "help": "Freeze the speech encoder's CNN feature encoder (usual for wav2vec2-family fine-tuning); "
            "--no_freeze_feature_encoder trains it too."
        },
    )
    freeze_text_embeddings: bool = field(
        default=True,
        metadata={
            "help": "Freeze the text encoder's word-embedding matrix (RoBERTa base: 39M parameters, of which "
            "only the label prompts' token rows ever get a gradient), which saves its AdamW update "
            "every step; --no_freeze_text_embeddings trains it too. Measured effect: docs/training.md."
        },
    )
    layerdrop: float = field(
        default=0.0,
        metadata={
            "help": "LayerDrop of the speech encoder (its checkpoint's value, e.g. 0.1, is replaced). A skipped "
            "layer gets no gradient, which stops multi-process training under gradient checkpointing "
            "(DDP without find_unused_parameters); 0 (the default, as in transformers' speech "
            "recognition examples) keeps every layer. SpecAugment (mask_time_prob) is kept."
        },
    )
    logit_scale_init_value: float = field(
        default=1 / 0.07, metadata={"help": "Initial inverse temperature of both similarity directions."}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where downloaded encoders and tokenizers are cached (default: HF cache)."}
    )
    model_revision: str = field(
        default="main", metadata={"help": "Hub revision (branch, tag or commit) of both encoders."}
    )


@dataclass
class ClipArguments:
    """How training and evaluation sets are cut and clips cropped: shared by the single-corpus and the cross-corpus
    scripts."""

    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on a random subset of this many utterances (quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on a random subset of this many utterances (quick runs)."}
    )
    max_duration_s: float | None = field(
        default=20.0,
        metadata={
            "help": "Randomly crop longer training clips to this many seconds (a new window each epoch); "
            "evaluation always sees whole clips."
        },
    )
    skip_bad_files: bool = field(
        default=False,
        metadata={"help": "Skip missing or unreadable audio files (with a count in the log) instead of failing."},
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch clips of similar length (less padding) by setting --train_sampling_strategy "
            "group_by_length when it was left at 'random'; --no_group_by_length keeps random order."
        },
    )


@dataclass
class DataArguments(ClipArguments):
    """Which corpus, which held-out fold (and, from `ClipArguments`, how training clips are cut)."""

    dataset: Literal[CORPORA] = field(
        default="iemocap",
        metadata={
            "help": "Corpus layout of --data_dir; 'manifest' reads a CSV/JSONL of path, emotion, gender "
            "[, speaker, fold]; 'synthetic' is the embedded corpus (IEMOCAP layout)."
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "The corpus folder in its public layout (for 'manifest': the CSV/JSONL file; for 'emobox': "
            "the EmoBox repository root, holding data/<name>/ and the audio at its lines' paths). Required."
        },
    )
    emobox_dataset: str | None = field(
        default=None,
        metadata={"help": "With --dataset emobox: the EmoBox corpus, as named under data/ (iemocap, ravdess, cremad)."},
    )
    fold: int | None = field(
        default=None,
        metadata={
            "help": "With --dataset emobox: EmoBox's fold K (data/<name>/fold_K/), trained on its train file and "
            "tested on its test file (its valid file, where EmoBox has one, is the evaluation set)."
        },
    )
    emobox_audio_root: str | None = field(
        default=None,
        metadata={"help": "With --dataset emobox: where the lines' `wav` paths start (default: --data_dir)."},
    )
    emobox_demographics: str | None = field(
        default=None,
        metadata={
            "help": "With --dataset emobox --emobox_dataset cremad: CREMA-D's VideoDemographics.csv, for gender "
            "(default: downloads/cremad/VideoDemographics.csv beside the audio, when present)."
        },
    )
    test_fold: str | None = field(
        default=None,
        metadata={
            "help": "Fold held out for testing: the IEMOCAP session 1-5, a manifest's fold/split value, or "
            "1..num_folds with --num_folds. Required."
        },
    )
    eval_fold: str | None = field(
        default=None,
        metadata={
            "help": "Fold used for evaluation during training (model selection). If unset, the test fold is "
            "also the evaluation set (the usual IEMOCAP practice: do not select checkpoints on it)."
        },
    )
    num_folds: int | None = field(
        default=None,
        metadata={
            "help": "Re-assign folds as speaker-grouped k-fold (each speaker in one fold), for corpora "
            "without sessions (RAVDESS, CREMA-D, a manifest without folds)."
        },
    )
    label_map: str | None = field(
        default=None,
        metadata={
            "help": "JSON object source label -> target label (null drops it), e.g. "
            '\'{"neutral": "neutral", "excited": "happy", "happy": "happy"}\'. Labels it '
            "does not list are dropped. Default: the corpus' 4-class set."
        },
    )


_NATIVE_ACTIVATION_CHECKPOINTING = "activation_checkpointing" in {f.name for f in fields(TrainingArguments)}


@dataclass
class GEmoClapTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus `overwrite_output_dir`, which transformers 5 dropped but the example scripts' output
    folder rule needs."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start from scratch in a non-empty output_dir instead of failing or resuming from its "
            "last checkpoint."
        },
    )
    # transformers 5.24 renamed `--gradient_checkpointing` to `--activation_checkpointing` (the old flag stays a
    # deprecated alias there). Before 5.24 only the old name exists: the new one is added here, so both flags work
    # with every supported version.
    if not _NATIVE_ACTIVATION_CHECKPOINTING:
        activation_checkpointing: bool = field(
            default=False,
            metadata={"help": "transformers 5.24's name for --gradient_checkpointing (either turns it on)."},
        )

    def __post_init__(self):
        if not _NATIVE_ACTIVATION_CHECKPOINTING:  # from 5.24 transformers' own __post_init__ maps the two names
            self.gradient_checkpointing = self.activation_checkpointing = bool(
                self.gradient_checkpointing or self.activation_checkpointing
            )
        # With --load_best_model_at_end, pick checkpoints by UAR (the paper's headline), not transformers' default
        # `loss`: the contrastive loss on the evaluation set depends on the evaluation batch size and world size.
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = "uar"
            if self.greater_is_better is None:
                self.greater_is_better = True
        super().__post_init__()


ARGUMENT_CLASSES = (ModelArguments, DataArguments, GEmoClapTrainingArguments)


def build_parser(classes: tuple = ARGUMENT_CLASSES) -> HfArgumentParser:
    return HfArgumentParser(classes)


def parse_arguments(
    argv: Sequence[str] | None = None, classes: tuple = ARGUMENT_CLASSES
) -> tuple[ModelArguments, DataArguments, GEmoClapTrainingArguments]:
    """Flags, or a single `.json` path holding the same keys (the transformers example-script convention).

    `classes` are the argument dataclasses (the cross-corpus script has its own data arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(classes)
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = Path(argv[0]).expanduser().resolve()
        if not path.is_file():
            parser.error(f"argument file {str(path)!r} does not exist.")
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError as error:
            parser.error(f"argument file {str(path)!r} is not valid JSON: {error}.")
        return parser.parse_json_file(json_file=str(path))
    return parser.parse_args_into_dataclasses(args=argv)


__all__ = [
    "ARGUMENT_CLASSES",
    "ClipArguments",
    "CORPORA",
    "DataArguments",
    "GEmoClapTrainingArguments",
    "ModelArguments",
    "build_parser",
    "parse_arguments",
]
