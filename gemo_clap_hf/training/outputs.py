"""What a finished run leaves in output_dir (main process only), and the push to the Hub.

output_dir/
  config.json, model.safetensors, code files   the model (`save_pretrained`, safetensors)
  preprocessor/tokenizer files                 the processor, so `pipeline(..., model=output_dir)` works
  train_results.json, eval_results.json, all_results.json, trainer_state.json
  confusion_matrix.png                         of the held-out fold
  README.md                                    the model card (MODEL_CARD.md template, model-index with UAR/WAR)
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from ..data.corpora import corpus_spec
from ..data.labels import describe_speakers, format_counts
from ..data.protocol import available_folds
from .arguments import DataArguments, ModelArguments
from .data_setup import PreparedData
from .reporting import save_confusion_matrix_png, summarize_config, write_model_card

logger = logging.getLogger(__name__)

CONFUSION_MATRIX_FILE = "confusion_matrix.png"


def held_out_prefix(metrics: dict) -> str:
    """'test' when a separate test fold was evaluated, else 'eval' (the test fold was the evaluation set)."""
    return "test" if "test_uar" in metrics else "eval"


def write_confusion_matrix(output_dir: str, confusion, labels, title: str) -> Path | None:
    if confusion is None:
        logger.warning("no confusion matrix was computed (custom compute_metrics?); skipping the image.")
        return None
    return save_confusion_matrix_png(confusion, labels, Path(output_dir) / CONFUSION_MATRIX_FILE, title=title)


def describe_training_data(data: PreparedData, dataset_name: str) -> str:
    """The card's "Training data" text: what the model was trained on (after --max_train_samples), counted."""
    train = data.train
    folds = available_folds(train)
    where = f"{dataset_name}, fold{'s' if len(folds) > 1 else ''} {', '.join(folds)}" if folds else dataset_name
    hours = sum(train["duration"]) / 3600
    return (
        f"{data.card_training or where}: {len(train)} utterances ({hours:.2f} h) from "
        f"{describe_speakers(train['speaker'], train['gender'])}. "
        f"Utterances per emotion: {format_counts(Counter(train['emotion']))}."
    )


def write_card(
    output_dir: str,
    model,
    metrics: dict,
    model_args: ModelArguments,
    data_args: DataArguments,
    data: PreparedData,
    hub_model_id: str | None,
    has_image: bool,
) -> Path:
    """README.md model card: the variant, data, protocol and held-out metrics of this run."""
    dataset_type = data.card_type or data_args.dataset
    corpus = corpus_spec(dataset_type)
    dataset_name = data.card_name or corpus.title
    prefix = held_out_prefix(metrics)
    held_out = {key: value for key, value in metrics.items() if key.startswith(f"{prefix}_")}
    extra = {
        "model_id": hub_model_id or str(output_dir),
        "confusion_matrix_image": CONFUSION_MATRIX_FILE if has_image else None,
        "language": corpus.language,
        "training_data": describe_training_data(data, dataset_name),
    }
    return write_model_card(
        output_dir,
        summarize_config(model.config),
        held_out,
        dataset_name=dataset_name,
        dataset_type=dataset_type,
        split=data.card_split or f"fold {data_args.test_fold}",
        protocol=data.protocol,
        base_models=[model_args.audio_encoder, model_args.text_encoder],
        extra=extra,
    )


def push_final_model(trainer, token: str | None) -> None:
    """Upload output_dir (model, processor, metrics, card; not the checkpoints) to `--hub_model_id`.

    The token is handed to this call only: it never sits in the `TrainingArguments` that `save_model` pickles into
    `training_args.bin`, so no file of output_dir (or of the upload) contains it.
    """
    logger.info(f"Pushing {trainer.args.output_dir} to the Hub as {trainer.args.hub_model_id or '(output_dir name)'}.")
    trainer.push_to_hub(token=token, commit_message="GEmo-CLAP training: final model, metrics and card")


__all__ = [
    "CONFUSION_MATRIX_FILE",
    "describe_training_data",
    "held_out_prefix",
    "push_final_model",
    "write_card",
    "write_confusion_matrix",
]
