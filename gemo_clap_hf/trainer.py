"""GEmoClapDataCollator and GEmoClapTrainer: GEmo-CLAP fine-tuning on `transformers.Trainer`.

The Trainer brings checkpointing, resumption, Accelerate (one GPU or many), logging and `report_to`; this module
adds only what is specific to GEmo-CLAP: decoding and cropping audio, tokenising the label prompts, and evaluating
by similarity to the emotion prompts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from .configuration_gemo_clap import GEmoClapConfig
from .data.audio import load_audio
from .metrics import make_compute_metrics
from .processing_gemo_clap import GEmoClapProcessor


@dataclasses.dataclass
class GEmoClapDataCollator:
    """Turn dataset rows into model inputs: padded audio + `audio_attention_mask`, label prompts, label ids.

    Rows hold `audio` (a path, bytes, an array at `sampling_rate`, or an `{"array", "sampling_rate"}` dict),
    `emotion` (a label name or id) and `gender` (a name or id). Audio is decoded here, lazily, so that the dataset
    keeps paths and DataLoader workers share the decoding.

    Args:
        processor: the model's processor (feature extractor + tokenizer).
        config: the model config, for the label sets, the prompt template and the loss type. May be left out
            when the collator is given to `GEmoClapTrainer`, which fills in its model's config.
        max_duration_s: random crop of longer clips to this length (a fresh window per epoch); `None` keeps them.
            Used only for training: `GEmoClapTrainer` evaluates with `for_evaluation()`, which never crops.
        seed: seed of the crop positions.
        epoch: the training epoch, kept up to date by `GEmoClapTrainer`.

    A crop's position is a hash of (seed, epoch, clip), not a draw from a stateful generator, so a run resumed from a
    checkpoint crops exactly as the uninterrupted run did (the Trainer neither saves a collator's state nor
    re-collates skipped batches), and the result does not depend on DataLoader workers or prefetching.
    """

    processor: GEmoClapProcessor
    config: GEmoClapConfig | None = None
    max_duration_s: float | None = None
    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def for_evaluation(self) -> GEmoClapDataCollator:
        """The same collator without random cropping (evaluation sees whole clips)."""
        return dataclasses.replace(self, max_duration_s=None)

    @property
    def sampling_rate(self) -> int:
        return self.processor.feature_extractor.sampling_rate

    def _label_id(self, value: Any, labels: Sequence[str], field: str) -> int:
        if isinstance(value, (int, np.integer)) and 0 <= int(value) < len(labels):
            return int(value)
        if isinstance(value, str) and value in labels:
            return labels.index(value)
        raise ValueError(
            f"{field} {value!r} is not one of the model's labels {list(labels)}; map it with `label_map` when loading "
            "the corpus or set the config's label list."
        )

    def _waveform(self, audio: Any) -> np.ndarray:
        if isinstance(audio, (str, bytes)) or (isinstance(audio, dict) and ("path" in audio or "bytes" in audio)
                                                and "array" not in audio):
            return load_audio(audio, sampling_rate=self.sampling_rate)
        if isinstance(audio, dict):
            from .feature_extraction_gemo_clap import prepare_waveform

            return prepare_waveform(audio["array"], audio["sampling_rate"], self.sampling_rate, audio.get("path"))
        return np.asarray(audio, dtype=np.float32)

    def _crop(self, waveform: np.ndarray, row: dict[str, Any]) -> np.ndarray:
        if not self.max_duration_s:
            return waveform
        window = int(self.max_duration_s * self.sampling_rate)
        if len(waveform) <= window:
            return waveform
        clip_key = self._clip_key(row, waveform)  # only for clips that are cropped: it may checksum the samples
        digest = hashlib.blake2b(f"{self.seed}:{self.epoch}:{clip_key}".encode(), digest_size=8).digest()
        start = int.from_bytes(digest, "little") % (len(waveform) - window + 1)
        return waveform[start : start + window]

    @staticmethod
    def _clip_key(row: dict[str, Any], waveform: np.ndarray) -> str:
        """What identifies a clip for its crop position: the row's id, its path, else its samples."""
        if row.get("id") is not None:
            return str(row["id"])
        if isinstance(row["audio"], str):
            return row["audio"]
        return f"crc{zlib.crc32(np.ascontiguousarray(waveform).tobytes())}"

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        config = self.config
        if config is None:
            raise ValueError("GEmoClapDataCollator has no model config: pass `config=model.config`, or hand the "
                             "collator to GEmoClapTrainer, which fills it in.")
        waveforms = [self._crop(self._waveform(row["audio"]), row) for row in rows]
        names = [str(row["audio"]) if isinstance(row["audio"], str) else str(row.get("id", f"#{i}")) for i, row in enumerate(rows)]
        emotions = [self._label_id(row["emotion"], config.emotion_labels, "emotion") for row in rows]
        batch = dict(
            self.processor.feature_extractor(
                waveforms, sampling_rate=self.sampling_rate, return_tensors="pt", names=names
            )
        )
        batch.update(self._prompts([config.emotion_labels[i] for i in emotions]))
        batch["emotion_labels"] = torch.tensor(emotions)
        if all("gender" in row for row in rows):
            genders = [self._label_id(row["gender"], config.gender_labels, "gender") for row in rows]
            batch["gender_labels"] = torch.tensor(genders)
            if config.loss_type == "ml":
                gender_prompts = self._prompts([config.gender_labels[i] for i in genders])
                batch["gender_input_ids"] = gender_prompts["input_ids"]
                batch["gender_attention_mask"] = gender_prompts["attention_mask"]
        elif config.loss_type in ("sl", "ml"):
            raise ValueError(f"loss_type={config.loss_type!r} needs a `gender` for every row; the batch lacks some.")
        return batch

    def _prompts(self, labels: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.processor.tokenizer(self.config.prompts(labels), padding=True, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


class EpochCallback(TrainerCallback):
    """Call `target.set_epoch(epoch)` at every epoch start, the resumed one included.

    For whatever draws per-epoch randomness from (seed, epoch) rather than from a stateful generator: the training
    collator's crops, the scripts' length-grouped sampler. A resumed run then replays the uninterrupted run exactly.
    """

    def __init__(self, target):
        self.target = target

    def on_epoch_begin(self, args, state, control, **kwargs):
        # `state.epoch` is fractional mid-epoch (resumed runs) and exactly the epoch number at epoch boundaries.
        self.target.set_epoch(int(state.epoch or 0))


class GEmoClapTrainer(Trainer):
    """`Trainer` for `GEmoClapModel`: trains with the configured GEmo-CLAP loss, evaluates by prompt similarity.

    Evaluation predicts, for every clip, the emotion whose prompt embedding is most similar to the clip's audio
    embedding (as `GEmoClapForAudioClassification` does) and reports UAR, WAR, macro-F1, per-class recall and UAR
    per gender, unless you pass your own `compute_metrics`. Give the dataset a `length` column (the readers do) and
    set `train_sampling_strategy="group_by_length"` for length-grouped batches.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.model.config
        # Labels are the emotion and gender ids; the gender ids let the metrics report UAR per gender.
        self.label_names = ["emotion_labels", "gender_labels"]
        if self.compute_metrics is None:
            self.compute_metrics = make_compute_metrics(config.emotion_labels, gender_names=config.gender_labels)
        if isinstance(self.data_collator, GEmoClapDataCollator) and self.data_collator.config is None:
            self.data_collator.config = config  # `GEmoClapDataCollator(processor)`: labels come from the model
        if hasattr(self.data_collator, "set_epoch"):
            self.add_callback(EpochCallback(self.data_collator))

    def _remove_unused_columns(self, dataset, description=None):
        # The collator needs the raw columns (audio path, emotion, gender), which are not forward() arguments.
        return dataset

    def _get_eval_sampler(self, eval_dataset):
        # transformers >= 5 also length-groups evaluation batches under `group_by_length`, which returns
        # `predict()` rows in a shuffled order; users pair predictions with their dataset rows, so keep its order
        # (grouping saves little at evaluation, where nothing is cropped and batches hold no gradients).
        if eval_dataset is None or self.args.world_size > 1:
            return None  # several processes: accelerate shards the dataset in order
        return torch.utils.data.SequentialSampler(eval_dataset)

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_collator(self.data_collator_for_evaluation, super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_collator(self.data_collator_for_evaluation, super().get_test_dataloader, test_dataset)

    @property
    def data_collator_for_evaluation(self):
        collator = self.data_collator
        return collator.for_evaluation() if hasattr(collator, "for_evaluation") else collator

    def _with_collator(self, collator, build, dataset):
        training_collator, self.data_collator = self.data_collator, collator
        try:
            return build(dataset)
        finally:
            self.data_collator = training_collator

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs, return_loss=True)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _label_prompt_embeddings(self, model) -> torch.Tensor:
        config = model.config
        processor = self.processing_class
        tokenizer = getattr(processor, "tokenizer", processor)
        prompts = tokenizer(config.prompts(), padding=True, return_tensors="pt").to(self.args.device)
        return model.get_text_features(prompts["input_ids"], prompts["attention_mask"])

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Loss on the batch, and logits = s_a · similarity of each clip to every emotion prompt."""
        inputs = self._prepare_inputs(inputs)
        unwrapped = self.accelerator.unwrap_model(model)
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(**inputs, return_loss=True)
            loss = outputs.loss.detach()
            if prediction_loss_only:
                return loss, None, None
            scale_audio, _ = unwrapped.logit_scales
            logits = scale_audio * outputs.audio_embeds @ self._label_prompt_embeddings(unwrapped).t()
        labels = inputs["emotion_labels"]
        if "gender_labels" in inputs:
            labels = (labels, inputs["gender_labels"])
        return loss, logits.detach(), labels


__all__ = ["EpochCallback", "GEmoClapDataCollator", "GEmoClapTrainer"]
