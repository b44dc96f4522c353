"""The measured workload: towers with the real checkpoints' structure and sizes, collator-style batches, and one
training step as the Trainer takes it (fused AdamW)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from gemo_clap_hf.configuration_gemo_clap import GEmoClapConfig
from gemo_clap_hf.demo.towers import speech_tower_config, text_tower_config
from gemo_clap_hf.modeling_gemo_clap import GEmoClapForAudioClassification

from .settings import (
    AUDIO_PRESETS,
    DURATION_MEDIAN_S,
    DURATION_RANGE_S,
    DURATION_SIGMA,
    IEMOCAP_CLASS_COUNTS,
    MIN_CLIP_SAMPLES,
    NUM_CLIPS,
    ROBERTA_BASE_VOCAB,
    SAMPLING_RATE,
    TRAIN_CROP_S,
    Settings,
    autocast,
)


def tower_configs(size: str):
    """Speech and text tower configs at the checkpoints' own sizes ("tiny": shrunk), structure from the presets:
    WavLM base-plus or large, and RoBERTa base with its real vocabulary (its 39 M-row word embeddings)."""
    full = size != "tiny"
    speech = speech_tower_config(AUDIO_PRESETS[size], "full" if full else "tiny")
    text = text_tower_config("roberta-base", "full" if full else "tiny", vocab_size=ROBERTA_BASE_VOCAB if full else 400)
    return speech, text


def build_classifier(settings: Settings, tokenizer) -> GEmoClapForAudioClassification:
    """An SL-GEmo-CLAP classifier; its `.gemo_clap` dual encoder is the model the training steps use, with the
    training scripts' defaults (frozen CNN unless `--train_feature_encoder`, frozen text word embeddings)."""
    audio_config, text_config = tower_configs(settings.size)
    config = GEmoClapConfig(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(), loss_type="sl")
    torch.manual_seed(settings.seed)
    classifier = GEmoClapForAudioClassification(config)
    classifier.set_prompts(tokenizer)
    if not settings.train_feature_encoder:
        classifier.gemo_clap.freeze_feature_encoder()
    classifier.gemo_clap.freeze_text_embeddings()
    return classifier.to(settings.device)


def build_audio_baseline(settings: Settings):
    """`WavLMForSequenceClassification` with the same audio config: what fine-tuning the encoder alone costs."""
    from transformers import WavLMForSequenceClassification

    audio_config, _ = tower_configs(settings.size)
    audio_config.num_labels = len(IEMOCAP_CLASS_COUNTS)
    torch.manual_seed(settings.seed)
    model = WavLMForSequenceClassification(audio_config)
    if not settings.train_feature_encoder:
        model.freeze_feature_encoder()
    return model.to(settings.device)


def draw_labels(batch_size: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Emotion ids with IEMOCAP's class shares and random gender ids."""
    counts = np.array(list(IEMOCAP_CLASS_COUNTS.values()), dtype=float)
    emotions = generator.choice(len(counts), size=batch_size, p=counts / counts.sum())
    return emotions, generator.integers(0, 2, size=batch_size)


def make_batch(settings: Settings, lengths: list[int], seed: int) -> dict:
    """A collator-style batch on the device: random audio of the given lengths (samples), zero-padded to the
    longest, with `audio_attention_mask`, IEMOCAP-share emotion ids and gender ids (no prompts: the model holds
    the label-prompt table)."""
    generator = np.random.default_rng(seed)
    audio = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        audio[row, :length] = torch.from_numpy(generator.standard_normal(length, dtype=np.float32) * 0.1)
        mask[row, :length] = 1
    emotions, genders = draw_labels(len(lengths), generator)
    batch = {
        "input_values": audio,
        "audio_attention_mask": mask,
        "emotion_labels": torch.from_numpy(emotions),
        "gender_labels": torch.from_numpy(genders),
    }
    return {name: value.to(settings.device) for name, value in batch.items()}


def equal_lengths(batch_size: int, seconds: float) -> list[int]:
    return [int(seconds * SAMPLING_RATE)] * batch_size


def varied_lengths(batch_size: int, seed: int, scale: float = 1.0) -> list[int]:
    """`batch_size` IEMOCAP-like durations (a random batch, as without length grouping), cropped at the training
    default of 20 s; `scale` shrinks them (the sync count's short batch)."""
    generator = np.random.default_rng(seed)
    durations = np.clip(generator.lognormal(np.log(DURATION_MEDIAN_S), DURATION_SIGMA, batch_size), *DURATION_RANGE_S)
    return [max(int(min(d, TRAIN_CROP_S) * scale * SAMPLING_RATE), MIN_CLIP_SAMPLES) for d in durations]


def describe_batch(batch: dict) -> dict:
    lengths = batch["audio_attention_mask"].sum(-1).cpu()
    return {
        "clips": len(lengths),
        "padded_s": round(batch["input_values"].shape[1] / SAMPLING_RATE, 2),
        "mean_s": round(float(lengths.float().mean()) / SAMPLING_RATE, 2),
        "fill": round(float(lengths.sum()) / batch["audio_attention_mask"].numel(), 3),
    }


def audio_only(batch: dict) -> dict:
    """The same batch in `WavLMForSequenceClassification`'s argument names."""
    return {
        "input_values": batch["input_values"],
        "attention_mask": batch["audio_attention_mask"],
        "labels": batch["emotion_labels"],
    }


def make_optimizer(model) -> torch.optim.Optimizer:
    """Fused AdamW: `Trainer`'s default optimizer (`optim="adamw_torch_fused"`), so the step is the one users get.

    Over every parameter: AdamW skips those without a gradient (frozen ones, with `zero_grad(set_to_none=True)`),
    which costs what leaving them out costs, and lets `text_embeddings_trained` switch the word embeddings on.
    """
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)


def forward_backward(model, inputs: dict, settings: Settings) -> None:
    """Forward with loss (under autocast with `--bf16`) and backward."""
    with autocast(settings):
        loss = model(**inputs).loss
    loss.backward()


def training_step(model, optimizer, inputs: dict, settings: Settings) -> None:
    """Forward with loss, backward, fused AdamW step, temperature clamp: one optimisation step as the Trainer
    takes it."""
    forward_backward(model, inputs, settings)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if hasattr(model, "clamp_logit_scales_"):
        model.clamp_logit_scales_()


@contextmanager
def text_embeddings_trained(gemo_clap, trained: bool):
    """Train (or freeze) the text tower's word embeddings inside the block; frozen again after it.

    Frozen, the matrix gets no gradient (`zero_grad(set_to_none=True)` leaves it None), so AdamW skips it: the
    same model and optimizer measure both settings.
    """
    embeddings = gemo_clap.text_model.get_input_embeddings()
    embeddings.requires_grad_(trained)
    try:
        yield
    finally:
        embeddings.requires_grad_(False)


@contextmanager
def loss_type(gemo_clap, name: str):
    """The model's loss type inside the block (the model builds its loss once: rebuilt on each change)."""
    saved = gemo_clap.config.loss_type
    gemo_clap.config.loss_type = name
    gemo_clap.rebuild_loss()
    try:
        yield
    finally:
        gemo_clap.config.loss_type = saved
        gemo_clap.rebuild_loss()


def iemocap_like_lengths(seed: int = 0) -> np.ndarray:
    """Clip lengths in samples: log-normal durations (median 3.5 s, σ 0.7) clipped to 0.6-30 s, 5531 clips."""
    generator = np.random.default_rng(seed)
    durations = np.clip(generator.lognormal(np.log(DURATION_MEDIAN_S), DURATION_SIGMA, NUM_CLIPS), *DURATION_RANGE_S)
    return (durations * SAMPLING_RATE).astype(np.int64)
