"""`run_training`: one GEmo-CLAP training run (one held-out fold), from parsed arguments to a saved model.

The steps are small functions so that the training script, the cross-validation script and the `gemo-clap demo`
command share them in-process. Under `accelerate launch` every process runs the same code; the Trainer synchronises
them, and only the main process writes files.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Sequence

import datasets
import transformers
from transformers import TrainerCallback, set_seed

from .arguments import DataArguments, GEmoClapTrainingArguments, ModelArguments
from .batching import GEmoClapDataCollator
from .checkpoints import resolve_checkpoint
from .data_setup import PreparedData, prepare_data, require_gender
from .model_setup import build_model, build_processor
from .outputs import held_out_prefix, push_final_model, write_card, write_confusion_matrix
from .trainer import GEmoClapTrainer

logger = logging.getLogger(__name__)


class _ScriptTrainer(GEmoClapTrainer):
    """`GEmoClapTrainer` whose `push_to_hub` uploads the GEmo-CLAP model card written by `run_training`
    (`Trainer.push_to_hub` would first replace README.md with a generic auto-generated card)."""

    def create_model_card(self, *args, **kwargs) -> None:
        return None


def setup_logging(training_args) -> None:
    """Info on the main process, warnings on the others (the example scripts' per-process logging)."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    level = training_args.get_process_log_level()
    logging.getLogger("gemo_clap_hf").setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank {training_args.process_index} of {training_args.world_size}, device "
        f"{training_args.device}, distributed: {training_args.world_size > 1}, bf16: {training_args.bf16}, "
        f"fp16: {training_args.fp16}"
    )
    warn_if_cpu_launch_started_one_process(training_args)


def warn_if_cpu_launch_started_one_process(training_args) -> None:
    """Say so when `accelerate launch --cpu --num_processes N` (N > 1) gave a single process.

    Without `--mpirun_hostfile`, accelerate's CPU launcher runs the script once: it sets MASTER_PORT (N > 1) but no
    WORLD_SIZE, so the run silently trains on one process with an N times smaller global batch.
    """
    env = os.environ
    cpu_launch = env.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1") and "MASTER_PORT" in env
    if cpu_launch and "WORLD_SIZE" not in env and training_args.world_size == 1:
        logger.warning(
            "accelerate launch --cpu started a single process: accelerate starts several CPU processes only "
            "through mpirun (--mpirun_hostfile). For N processes on CPU without MPI, run `accelerate launch "
            "--multi_gpu --num_processes N ... train_gemo_clap.py --use_cpu ...` (docs/training.md)."
        )


def trainer_arguments(training_args: GEmoClapTrainingArguments, data_args: DataArguments):
    """(copy of the training arguments for the Trainer, push requested, Hub token).

    The copy has the Hub settings taken out (the final model is pushed once, explicitly, so the token never reaches
    `training_args.bin`) and length-grouped batches switched on unless the user chose a sampling strategy.
    """
    run_args = copy.copy(training_args)
    push, token = run_args.push_to_hub, run_args.hub_token
    run_args.push_to_hub, run_args.hub_token = False, None
    if data_args.group_by_length and run_args.train_sampling_strategy == "random":
        run_args.train_sampling_strategy = "group_by_length"
        run_args.length_column_name = "length"
    return run_args, push, token


def build_trainer(
    model,
    processor,
    data: PreparedData,
    training_args,
    data_args: DataArguments,
    callbacks: Sequence[TrainerCallback] = (),
) -> GEmoClapTrainer:
    collator = GEmoClapDataCollator(
        processor, model.config, max_duration_s=data_args.max_duration_s, seed=training_args.seed
    )
    return _ScriptTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=collator,
        processing_class=processor,
        callbacks=list(callbacks) or None,
    )


def train_and_save(trainer: GEmoClapTrainer, checkpoint: str | None, num_train: int) -> dict:
    """Train (resuming from `checkpoint`), save the model and processor, and record the train metrics."""
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    metrics = {**result.metrics, "train_samples": num_train}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return metrics


def evaluate_held_out(trainer: GEmoClapTrainer, data: PreparedData) -> tuple[dict, list | None]:
    """Metrics on the evaluation set (and the test fold when separate), and the held-out confusion matrix."""
    metrics = {}
    splits = [("eval", data.eval)] + ([("test", data.test)] if data.test is not None else [])
    for prefix, dataset in splits:
        split_metrics = {**trainer.evaluate(dataset, metric_key_prefix=prefix), f"{prefix}_samples": len(dataset)}
        trainer.log_metrics(prefix, split_metrics)
        trainer.save_metrics(prefix, split_metrics)
        metrics.update(split_metrics)
    return metrics, getattr(trainer.compute_metrics, "last_confusion_matrix", None)


def write_reports(
    trainer,
    metrics: dict,
    confusion,
    data: PreparedData,
    model_args: ModelArguments,
    data_args: DataArguments,
    hub_model_id: str | None,
) -> None:
    """Confusion-matrix image and model card, on the main process only."""
    if not trainer.is_world_process_zero():
        return
    output_dir = trainer.args.output_dir
    prefix = held_out_prefix(metrics)
    where = f"{data.card_name or data_args.dataset}, {data.card_split or f'fold {data_args.test_fold}'}"
    title = f"{where}: UAR {100 * metrics[f'{prefix}_uar']:.1f}%"
    image = write_confusion_matrix(output_dir, confusion, data.labels, title)
    write_card(
        output_dir, trainer.model, metrics, model_args, data_args, data, hub_model_id, has_image=image is not None
    )


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: GEmoClapTrainingArguments,
    callbacks: Sequence[TrainerCallback] = (),
) -> dict:
    """Train on every fold but the held-out one, evaluate, save, write the card, and push if asked.

    Returns the metrics of `all_results.json` (`train_*`, `eval_*`, and `test_*` with `--eval_fold`) plus
    `confusion_matrix` (held-out counts, rows = reference) and `labels` (the model's emotion labels in id order).
    `callbacks` are extra `TrainerCallback`s (progress reporting, early stopping).
    """
    setup_logging(training_args)
    run_args, push, token = trainer_arguments(training_args, data_args)
    checkpoint = resolve_checkpoint(run_args)
    set_seed(run_args.seed)
    data = prepare_data(data_args, seed=run_args.seed)
    trainer, metrics, confusion = fit_and_evaluate(model_args, data_args, run_args, data, checkpoint, callbacks)
    write_reports(trainer, metrics, confusion, data, model_args, data_args, run_args.hub_model_id)
    if push:
        push_final_model(trainer, token)
    return {**metrics, "confusion_matrix": confusion, "labels": list(data.labels)}


def fit_and_evaluate(
    model_args: ModelArguments,
    data_args,
    run_args,
    data: PreparedData,
    checkpoint: str | None,
    callbacks: Sequence[TrainerCallback] = (),
) -> tuple[GEmoClapTrainer, dict, list | None]:
    """Build the model for `data.labels`, train and save it, evaluate the held-out sets: (trainer, metrics, confusion).

    Shared by `run_training` and the cross-corpus run; `data_args` is any `ClipArguments` (crop length, batching).
    """
    require_gender(data, model_args.loss_type, data.card_name or data_args.dataset)
    processor = build_processor(model_args)
    model = build_model(model_args, data.labels, tokenizer=processor.tokenizer)
    trainer = build_trainer(model, processor, data, run_args, data_args, callbacks)
    train_metrics = train_and_save(trainer, checkpoint, len(data.train))
    eval_metrics, confusion = evaluate_held_out(trainer, data)
    return trainer, {**train_metrics, **eval_metrics}, confusion


__all__ = [
    "build_trainer",
    "evaluate_held_out",
    "fit_and_evaluate",
    "run_training",
    "setup_logging",
    "train_and_save",
    "write_reports",
]
