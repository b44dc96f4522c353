"""Training-step figures: one SL-GEmo-CLAP step ÷ one WavLMForSequenceClassification step, text-tower rows per
step, and the step's peak memory with and without activation checkpointing."""

from __future__ import annotations

import statistics
from contextlib import contextmanager, nullcontext

import torch

from .host_syncs import measure_host_syncs
from .measure import interleaved_times, peak_memory, pin_allocator_for_rss, ratio_figure
from .settings import TRAIN_BATCH_SIZE, Settings
from .workload import (
    audio_only,
    build_audio_baseline,
    describe_batch,
    equal_lengths,
    loss_type,
    make_batch,
    make_optimizer,
    text_embeddings_trained,
    training_step,
    varied_lengths,
)


def measure_train_step_overhead(
    settings: Settings,
    models: dict,
    optimizers: dict,
    batch: dict,
    warmup: dict,
    repeats: int,
    with_trained_embeddings: bool = True,
) -> dict:
    """One SL-GEmo-CLAP step ÷ one WavLMForSequenceClassification step on the same audio (fused AdamW both).

    `models` / `optimizers` hold "sl_gemo_clap" and "wavlm_classifier". GEmo-CLAP runs with the text tower's word
    embeddings frozen (the scripts' default) and, interleaved with it, trained (`with_trained_text_embeddings`).
    """
    gemo_clap = models["sl_gemo_clap"]
    sides = {"sl_gemo_clap": (gemo_clap, False), "wavlm_classifier": (models["wavlm_classifier"], None)}
    if with_trained_embeddings:
        sides["sl_gemo_clap_trained_text_embeddings"] = (gemo_clap, True)

    def steps_on(data: dict) -> dict:
        calls = {}
        for name, (model, trained) in sides.items():
            inputs = audio_only(data) if trained is None else {**data, "return_loss": True}
            optimizer = optimizers["wavlm_classifier" if trained is None else "sl_gemo_clap"]
            context = (
                nullcontext
                if trained is None
                else (lambda trained=trained: text_embeddings_trained(gemo_clap, trained))
            )

            def call(model=model, optimizer=optimizer, inputs=inputs, context=context):
                with context():
                    training_step(model, optimizer, inputs, settings)

            calls[name] = call
        return calls

    for model in models.values():
        model.train()
    # Warm-up on short clips: allocates gradients and AdamW state without a full-length step's cost.
    interleaved_times(steps_on(warmup), 1, settings.device)
    times = interleaved_times(steps_on(batch), repeats, settings.device)
    figure = ratio_figure(
        {k: times[k] for k in ("sl_gemo_clap", "wavlm_classifier")},
        "sl_gemo_clap",
        "wavlm_classifier",
        "train_step_overhead",
    )
    figure.update(batch=describe_batch(batch), text_word_embeddings="frozen")
    if with_trained_embeddings:
        trained = {
            "sl_gemo_clap": times["sl_gemo_clap_trained_text_embeddings"],
            "wavlm_classifier": times["wavlm_classifier"],
        }
        figure["with_trained_text_embeddings"] = ratio_figure(
            trained, "sl_gemo_clap", "wavlm_classifier", "train_step_overhead"
        )
    return figure


def measure_peak_memory(settings: Settings, gemo_clap, optimizer, batch: dict) -> dict:
    """Peak memory of an SL-GEmo-CLAP training step above the level before it, without and with checkpointing."""
    suffix = ""
    if settings.device.type == "cpu":
        pinned = pin_allocator_for_rss()
        suffix = ", glibc mmap threshold pinned at 1 MiB" if pinned else ", allocator not pinned (approximate)"
    inputs = {**batch, "return_loss": True}
    figure: dict = {"repeats": settings.memory_repeats}
    for label, checkpointing in (("without_checkpointing_mib", False), ("with_checkpointing_mib", True)):
        (gemo_clap.activation_checkpointing_enable if checkpointing else gemo_clap.activation_checkpointing_disable)()
        peaks = []
        for _ in range(settings.memory_repeats):
            with peak_memory(settings.device) as measured:
                training_step(gemo_clap, optimizer, inputs, settings)
            peaks.append(measured["mib"])
        figure[label] = round(statistics.median(peaks), 1)
        figure["method"] = measured["method"] + suffix
    gemo_clap.activation_checkpointing_disable()
    without = figure["without_checkpointing_mib"]
    figure["saving"] = round(1 - figure["with_checkpointing_mib"] / without, 3) if without > 0 else None
    return figure


@contextmanager
def count_text_rows(text_model):
    """Count the rows (sequences) of every text-tower forward inside the block."""
    counted = [0]

    def hook(module, args, kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        counted[0] += int(input_ids.shape[0])

    handle = text_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counted
    finally:
        handle.remove()


def measure_text_sequences(settings: Settings, gemo_clap) -> dict:
    """Text-tower rows per training forward on a batch of 32: the fixed label-prompt table (emotion labels, plus
    the gender labels for ML), whatever the batch holds; per-row prompts would be 32 (64 for ML)."""
    rows = {}
    gemo_clap.train()
    batch = make_batch(settings, equal_lengths(TRAIN_BATCH_SIZE, settings.count_clip_seconds), settings.seed + 100)
    for name in ("sl", "ml"):
        with loss_type(gemo_clap, name), torch.no_grad(), count_text_rows(gemo_clap.text_model) as counted:
            gemo_clap(**batch, return_loss=True)
        rows[name] = counted[0]
    config = gemo_clap.config
    return {
        "sl": rows["sl"],
        "ml": rows["ml"],
        "num_labels": len(config.emotion_labels),
        "num_gender_labels": len(config.gender_labels),
        "batch_size": TRAIN_BATCH_SIZE,
        "distinct_labels_in_batch": len(torch.unique(batch["emotion_labels"])),
        "repeats": 1,
    }


def run_step_figures(settings: Settings, results: dict, classifier) -> torch.optim.Optimizer:
    """Everything that times or records training steps against the WavLM classifier (freed at the end); returns
    GEmo-CLAP's optimizer, with its state."""
    gemo_clap = classifier.gemo_clap
    models = {"sl_gemo_clap": gemo_clap, "wavlm_classifier": build_audio_baseline(settings)}
    optimizers = {name: make_optimizer(model) for name, model in models.items()}
    warmup = make_batch(settings, equal_lengths(settings.batch_size, settings.warmup_seconds), settings.seed + 1)
    if "train_step" in settings.figures:
        batch = make_batch(settings, equal_lengths(settings.batch_size, settings.clip_seconds), settings.seed)
        results["train_step_overhead"] = measure_train_step_overhead(
            settings, models, optimizers, batch, warmup, settings.repeats
        )
        small = make_batch(settings, equal_lengths(*settings.small_batch), settings.seed + 2)
        results["train_step_overhead_small_batch"] = measure_train_step_overhead(
            settings, models, optimizers, small, warmup, settings.repeats
        )
    if "train_step_varied" in settings.figures:
        varied = make_batch(
            settings, varied_lengths(settings.batch_size, settings.seed + 3, settings.varied_scale), settings.seed + 3
        )
        results["train_step_overhead_varied_lengths"] = measure_train_step_overhead(
            settings, models, optimizers, varied, warmup, settings.varied_repeats, with_trained_embeddings=False
        )
    if "syncs" in settings.figures:
        # Short clips of varied lengths: the masks and padding paths run, at a fraction of a full step's cost.
        lengths = varied_lengths(settings.batch_size, settings.seed + 4, 0.25 * settings.varied_scale)
        short = make_batch(settings, lengths, settings.seed + 4)
        results["host_syncs_per_step"] = measure_host_syncs(settings, models, optimizers, short)
    del models["wavlm_classifier"], optimizers["wavlm_classifier"]
    return optimizers["sl_gemo_clap"]
