"""What GEmo-CLAP costs beyond its speech encoder, measured side by side in one run (`make bench`).

Prints one JSON object. Every step timing is a ratio of two medians measured interleaved in the same process (so
load from other processes and thermal drift hit both sides), on towers with the real checkpoints' structure and
sizes (WavLM base-plus or large, and RoBERTa base with its real 50,265-token vocabulary; random weights: speed does
not depend on the values), the CNN feature encoder frozen on both sides and fused AdamW, as `train_gemo_clap.py`
trains by default. The figures:

- `inference_overhead`, `train_step_overhead`: one equal-length batch (`--batch_size` x `--clip_seconds`);
  `*_varied_lengths`: one padded batch of IEMOCAP-like durations; `train_step_overhead_small_batch`: 4 x 3 s, where
  the text tower's fixed per-step cost weighs most. Each training ratio is given with the text tower's word
  embeddings frozen (the scripts' default) and trained (`with_trained_text_embeddings`).
- `host_syncs_per_step`: host-device syncs of one training step per loss type (`sync_audit`): the package's own
  (target 0) and the towers' own, listed by line.
- `end_to_end`: training samples/s of the training script's Trainer set-up ÷ the same Trainer running
  `WavLMForSequenceClassification`, on the synthetic corpus (`end_to_end.py`), with sampled GPU utilisation
  on CUDA.
- `padding_efficiency`, `text_tower_sequences_per_step`, `peak_memory`, `bulk_inference`.
- `long_recordings` (only when named in `--figures`): `predict --segments --vad` on generated 0.5- and 10-minute
  recordings, peak memory ratio and emotion changes found (`long_recordings.py`).
- `streaming` (only when named in `--figures`): `SegmentStream` fed in real time, torch and int8 ONNX on 2 threads:
  delay from a window's end to its row, real-time factor (`streaming.py`).
- `cpu_inference` (only when named in `--figures`; it trains the demo unless `--demo_model` is given): PyTorch's
  bare tower vs the classifier vs onnxruntime float32 and int8, bulk `predict` per backend, and int8's agreement
  on the demo model's held-out session (`cpu_inference.py`).
- `serving` (only when named in `--figures`; the [ray] extra): the Ray Serve endpoint's requests/s and p50/p99
  latency for 1, 4 and 16 clients with and without dynamic batching, and `predict --ray` against `predict`, on 2 CPU
  cores (`serving.py`).

`--quick` runs the same code on tiny towers as a smoke test; its figures mean nothing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager

from gemo_clap_hf.demo.towers import train_prompt_tokenizer

from .inference import measure_bulk_inference, run_inference_figures
from .padding import measure_padding_efficiency
from .settings import AUDIO_PRESETS, Settings, environment, parse_args
from .train_step import measure_peak_memory, measure_text_sequences, run_step_figures
from .workload import build_classifier, equal_lengths, make_batch, make_optimizer, training_step


def run(settings: Settings) -> dict:
    """The chosen figures, in an order that keeps peak memory low and the allocator untouched until the memory
    figure (it pins glibc's mmap threshold, which slows allocation: it comes last)."""
    started = time.perf_counter()
    figures = settings.figures
    results = {"environment": environment(settings)}
    seconds = results["environment"]["seconds_per_figure"] = {}

    @contextmanager
    def timed(name: str):
        begin = time.perf_counter()
        yield
        seconds[name] = round(time.perf_counter() - begin, 1)

    if "padding" in figures:
        with timed("padding"):
            results["padding_efficiency"] = measure_padding_efficiency(settings)
    classifier = gemo_clap = None
    if set(figures) - {"padding", "end_to_end"}:
        with tempfile.TemporaryDirectory() as folder:
            tokenizer = train_prompt_tokenizer(folder)
        classifier = build_classifier(settings, tokenizer)
        gemo_clap = classifier.gemo_clap
    if "inference" in figures:
        with timed("inference"):
            run_inference_figures(settings, results, classifier)
    if "text_rows" in figures:
        with timed("text_rows"):
            results["text_tower_sequences_per_step"] = measure_text_sequences(settings, gemo_clap)
    optimizer = None
    if {"train_step", "train_step_varied", "syncs"} & set(figures):
        with timed("train_step_and_syncs"):
            optimizer = run_step_figures(settings, results, classifier)
    if "bulk_inference" in figures:
        with timed("bulk_inference"):
            results["bulk_inference"] = measure_bulk_inference(settings, classifier)
    if "cpu_inference" in figures:
        from .cpu_inference import measure_cpu_inference

        with timed("cpu_inference"):
            results["cpu_inference"] = measure_cpu_inference(settings, classifier)
    if "serving" in figures:
        from .serving import measure_serving

        with timed("serving"):
            results["serving"] = measure_serving(settings, classifier)
    if "end_to_end" in figures:
        from .end_to_end import measure_end_to_end

        with timed("end_to_end"):
            results["end_to_end"] = measure_end_to_end(
                settings.size,
                AUDIO_PRESETS[settings.size],
                settings.device,
                settings.end_to_end_batch_size,
                settings.end_to_end_steps,
                bf16=settings.bf16,
                workers=settings.dataloader_num_workers,
                seed=settings.seed,
                repeats=settings.end_to_end_repeats,
            )
    if "long_recordings" in figures:  # child processes: before the memory figure pins this process's allocator
        from .long_recordings import measure_long_recordings

        with timed("long_recordings"):
            results["long_recordings"] = measure_long_recordings(settings)
    if "streaming" in figures:
        from .streaming import measure_streaming

        with timed("streaming"):
            results["streaming"] = measure_streaming(settings)
    if "memory" in figures:
        with timed("memory"):
            batch = make_batch(settings, equal_lengths(settings.batch_size, settings.clip_seconds), settings.seed)
            optimizer = optimizer or make_optimizer(gemo_clap)
            gemo_clap.train()
            training_step(gemo_clap, optimizer, {**batch, "return_loss": True}, settings)  # AdamW state first
            results["peak_memory"] = measure_peak_memory(settings, gemo_clap, optimizer, batch)
    results["environment"]["total_s"] = round(time.perf_counter() - started, 1)
    return results


@contextmanager
def stdout_to_stderr():
    """Send everything written to file descriptor 1 (including native code's, e.g. tokenizers') to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its one JSON object on stdout (everything else goes to stderr)."""
    settings = parse_args(argv)
    with stdout_to_stderr():
        results = run(settings)
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
