"""Inference figures: the classifier's forward ÷ the bare speech tower's, and `gemo-clap predict`'s bulk path."""

from __future__ import annotations

import torch

from gemo_clap_hf.cli.bench import measure_bulk_throughput

from .measure import interleaved_times, ratio_figure
from .settings import Settings, autocast
from .workload import describe_batch, equal_lengths, make_batch, varied_lengths


def measure_inference_overhead(settings: Settings, classifier, batch: dict, warmup: dict, repeats: int) -> dict:
    """Classifier forward (audio tower + pooling + projection + cached prompts) ÷ the audio tower alone."""
    audio_tower = classifier.gemo_clap.audio_model

    def gemo_clap_classifier(inputs):
        with autocast(settings):
            return classifier(inputs["input_values"], inputs["audio_attention_mask"])

    def audio_tower_only(inputs):
        with autocast(settings):
            return audio_tower(inputs["input_values"], attention_mask=inputs["audio_attention_mask"])

    calls = {"gemo_clap_classifier": gemo_clap_classifier, "audio_tower": audio_tower_only}
    classifier.eval()
    with torch.no_grad():
        # Warm-up: a short batch, then the timed batch itself, untimed, so both sides start with grown buffers.
        for data in (warmup, batch):
            interleaved_times(
                {name: lambda call=call, d=data: call(d) for name, call in calls.items()}, 1, settings.device
            )
        times = interleaved_times(
            {name: lambda call=call: call(batch) for name, call in calls.items()}, repeats, settings.device
        )
    return {
        **ratio_figure(times, "gemo_clap_classifier", "audio_tower", "inference_overhead"),
        "batch": describe_batch(batch),
    }


def measure_bulk_inference(settings: Settings, classifier) -> dict:
    """`gemo-clap predict`'s path (gemo_clap_hf/inference/engine.py) on WAV files: clips/s batched vs one at a time."""
    options = {"num_clips": 4 * settings.batch_size, "min_s": 1.0, "max_s": 8.0}
    if settings.size == "tiny":  # the smoke test: a few short clips, decoded in-process
        options = {"num_clips": 2 * settings.batch_size, "min_s": 0.3, "max_s": 0.6, "num_workers": 0}
    figure = measure_bulk_throughput(classifier, batch_size=settings.batch_size, device=settings.device, **options)
    return {**figure, "repeats": 1}


def run_inference_figures(settings: Settings, results: dict, classifier) -> None:
    warmup = make_batch(settings, equal_lengths(settings.batch_size, settings.warmup_seconds), settings.seed + 1)
    batch = make_batch(settings, equal_lengths(settings.batch_size, settings.clip_seconds), settings.seed)
    results["inference_overhead"] = measure_inference_overhead(settings, classifier, batch, warmup, settings.repeats)
    varied = make_batch(
        settings, varied_lengths(settings.batch_size, settings.seed + 3, settings.varied_scale), settings.seed + 3
    )
    results["inference_overhead_varied_lengths"] = measure_inference_overhead(
        settings, classifier, varied, warmup, settings.varied_repeats
    )
