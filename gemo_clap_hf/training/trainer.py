"""GEmoClapTrainer: GEmo-CLAP fine-tuning on `transformers.Trainer`.

The Trainer brings checkpointing, resumption, Accelerate (one GPU or many), logging and `report_to`; this module
adds only what is specific to GEmo-CLAP: the configured loss, evaluation by similarity to the label prompts, the
temperatures' cap and weight-decay exclusion, and the batch pipeline of `training/batching.py` (re-exported here).
"""

from __future__ import annotations

import copy
import inspect

import torch
from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback
from transformers.modeling_utils import unwrap_model  # DDP, DataParallel, DeepSpeed, FSDP, torch.compile

from ..metrics import make_compute_metrics
from ..processing_gemo_clap import GEmoClapProcessor
from .batching import EpochCallback, GEmoClapDataCollator, evaluation_dataloader, length_grouped_sampler


class LogitScaleClampCallback(TrainerCallback):
    """After every optimizer step, clamp the model's log-temperatures to at most log(100) (open_clip's way).

    Clamping the parameter, not `exp()` in the forward, keeps the gradient alive: a scale that overshoots the cap is
    put back on it and can come down again."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is not None:
            unwrap_model(model).clamp_logit_scales_()


class GEmoClapTrainer(Trainer):
    """`Trainer` for `GEmoClapModel`: trains with the configured GEmo-CLAP loss, evaluates by prompt similarity.

    ```python
    collator = GEmoClapDataCollator(processor, max_duration_s=20.0)  # decodes, crops, label ids
    args = TrainingArguments(output_dir, train_sampling_strategy="group_by_length", length_column_name="length")
    trainer = GEmoClapTrainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                              data_collator=collator, processing_class=processor)
    ```

    Batches are built by `gemo_clap_hf.training.batching`, as in the training scripts:

    - With `train_sampling_strategy="group_by_length"` and a length column (`load_corpus` datasets have `length`),
      training batches hold clips of similar length, in an order seeded by (`data_seed` or `seed`, epoch): a run
      resumed from a checkpoint replays exactly the batches, and crops, of the uninterrupted run (transformers'
      stock `LengthGroupedSampler` does not).
    - The datasets keep their raw columns (audio path, emotion, gender) for the collator, which decodes them:
      `remove_unused_columns` is switched off on the Trainer's copy of `args` when the collator is a
      `GEmoClapDataCollator`. `data_collator` defaults to `GEmoClapDataCollator(processing_class)` for a
      `GEmoClapProcessor`.
    - Evaluation and `predict()` see whole clips in dataset order, so predictions pair with the dataset's rows.

    The model holds the label-prompt table: if it has none (`model.has_prompts`), the tokenizer of
    `processing_class` (or of the collator's processor) fills it. Evaluation predicts, for every clip, the emotion
    whose prompt embedding is most similar to the clip's audio embedding (as `GEmoClapForAudioClassification` does)
    and reports UAR, WAR, macro-F1, per-class recall and UAR per gender, unless you pass your own `compute_metrics`.
    The two temperatures are never weight-decayed and are clamped to at most 100 after every optimizer step.

    Run several GPUs with `accelerate launch` (one process per GPU): a single process seeing several GPUs is
    refused, since `nn.DataParallel` would compute the contrastive loss per replica on a fraction of the batch.
    """

    def __init__(self, *args, **kwargs):
        params = inspect.signature(Trainer.__init__).bind(self, *args, **kwargs).arguments
        del params["self"]
        processor, collator = params.get("processing_class"), params.get("data_collator")
        if collator is None and isinstance(processor, GEmoClapProcessor):
            collator = params["data_collator"] = GEmoClapDataCollator(processor)
        if isinstance(collator, GEmoClapDataCollator) and params.get("args") is not None:
            # The collator needs the raw columns (audio path, emotion, gender), which are not forward() arguments:
            # `remove_unused_columns` is switched off below, on a copy, so that the caller's arguments (perhaps
            # shared with another Trainer) stay as they were.
            params["args"] = copy.copy(params["args"])
        super().__init__(**params)
        if isinstance(self.data_collator, GEmoClapDataCollator):
            self.args.remove_unused_columns = False
        self._refuse_data_parallel()
        config = self.model.config
        # Labels are the emotion and gender ids; the gender ids let the metrics report UAR per gender.
        self.label_names = ["emotion_labels", "gender_labels"]
        if self.compute_metrics is None:
            self.compute_metrics = make_compute_metrics(config.emotion_labels, gender_names=config.gender_labels)
        if isinstance(self.data_collator, GEmoClapDataCollator) and self.data_collator.config is None:
            self.data_collator.config = config  # `GEmoClapDataCollator(processor)`: labels come from the model
        self._ensure_prompts()
        self._evaluation_dataloaders = {}
        # One callback for every per-epoch target (the collator now, the train sampler once it is built).
        self._epoch_callback = EpochCallback()
        if hasattr(self.data_collator, "set_epoch"):
            self._epoch_callback.track(self.data_collator)
        self.add_callback(self._epoch_callback)
        if hasattr(self.model, "clamp_logit_scales_"):
            self.add_callback(LogitScaleClampCallback())

    # ---- set-up checks ----

    def _refuse_data_parallel(self) -> None:
        if self.args.n_gpu > 1:
            raise RuntimeError(
                f"This single process sees {self.args.n_gpu} GPUs, so the Trainer would wrap the model in "
                "nn.DataParallel: the contrastive loss would be computed per replica, on a fraction of the batch, and "
                "long clips' windows scattered away from their clips. Start one process per GPU with `accelerate "
                "launch --multi_gpu --num_processes N your_script.py ...` (or `torchrun`), or make one GPU visible "
                "(CUDA_VISIBLE_DEVICES=0)."
            )

    def _prompt_tokenizer(self):
        """The tokenizer of `processing_class` (a processor's, or itself), else of the collator's processor."""
        for holder in (self.processing_class, getattr(self.data_collator, "processor", None)):
            tokenizer = getattr(holder, "tokenizer", None)
            if tokenizer is None and isinstance(holder, PreTrainedTokenizerBase):
                tokenizer = holder
            if tokenizer is not None:
                return tokenizer
        return None

    def _ensure_prompts(self) -> None:
        model = self.model
        if not hasattr(model, "has_prompts") or model.has_prompts:
            return
        tokenizer = self._prompt_tokenizer()
        if tokenizer is None:
            raise ValueError(
                "The model holds no label prompts (`model.has_prompts` is False) and GEmoClapTrainer found no "
                "tokenizer to make them: pass `processing_class=processor` (a GEmoClapProcessor) or "
                "`data_collator=GEmoClapDataCollator(processor)`, or call `model.set_prompts(tokenizer)` first."
            )
        model.set_prompts(tokenizer)

    # ---- batches (gemo_clap_hf.training.batching) ----

    def _get_train_sampler(self, train_dataset=None):
        # A private hook of `Trainer.get_train_dataloader` (tests/training/test_batching.py and test_trainer_resume.py
        # fail if it is renamed or stops being called); overriding it keeps everything else the Trainer's DataLoader
        # does (workers, seeding, sharding, skipping batches on resume).
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        sampler = length_grouped_sampler(dataset, self.args)
        if sampler is None:
            return super()._get_train_sampler(train_dataset)
        self._epoch_callback.track(sampler)
        return sampler

    def get_eval_dataloader(self, eval_dataset=None):
        if eval_dataset is None and self.eval_dataset is None:
            raise ValueError("Trainer: evaluation requires an eval_dataset.")
        key = eval_dataset if isinstance(eval_dataset, str) else "eval" if eval_dataset is None else None
        cache = self._evaluation_dataloaders
        if key in cache:
            return cache[key]  # only filled with persistent workers: do not start new workers per evaluation
        if isinstance(eval_dataset, str):
            eval_dataset = self.eval_dataset[eval_dataset]
        loader = self._evaluation_dataloader(eval_dataset if eval_dataset is not None else self.eval_dataset)
        if key is not None and self.args.dataloader_persistent_workers:
            cache[key] = loader
        return loader

    def get_test_dataloader(self, test_dataset):
        return self._evaluation_dataloader(test_dataset)

    def _evaluation_dataloader(self, dataset):
        return evaluation_dataloader(dataset, self.data_collator, self.args, self.accelerator.prepare)

    # ---- optimisation ----

    def get_decay_parameter_names(self, model) -> list[str]:
        """The Trainer's choice, less the two log-temperatures (0-d scales that weight decay would pull to 1)."""
        scales = set(getattr(unwrap_model(model), "logit_scale_parameter_names", ()))
        # Names are prefixed when the model is wrapped (`gemo_clap.logit_scale_audio` in the classifier).
        return [name for name in super().get_decay_parameter_names(model) if name.rsplit(".", 1)[-1] not in scales]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs, return_loss=True)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Loss on the batch, and logits = s_a · similarity of each clip to every emotion prompt (N × labels)."""
        inputs = self._prepare_inputs(inputs)
        has_labels = "emotion_labels" in inputs
        # SL/ML losses need genders; a test corpus without them (cross-corpus) is scored without a loss.
        with_loss = has_labels and (unwrap_model(model).config.loss_type == "emo" or "gender_labels" in inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            # No `input_ids`: the model scores the clips against its cached emotion-prompt table.
            outputs = model(**inputs, return_loss=with_loss)
        loss = outputs.loss.detach() if with_loss else None
        if prediction_loss_only:
            return loss, None, None
        labels = None
        if has_labels:
            labels = inputs["emotion_labels"]
            if "gender_labels" in inputs:
                labels = (labels, inputs["gender_labels"])
        return loss, outputs.logits_per_audio.detach(), labels


__all__ = ["EpochCallback", "GEmoClapDataCollator", "GEmoClapTrainer", "LogitScaleClampCallback"]
