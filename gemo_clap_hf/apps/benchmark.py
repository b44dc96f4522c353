"""`gemo-clap bench`: what GEmo-CLAP costs beyond its speech encoder, measured side by side in one run.

Prints one JSON object. Every timing is a ratio of two medians measured interleaved in the same process (so load
from other processes and thermal drift hit both sides), on base-size towers (WavLM base-plus and RoBERTa base
shapes, random weights: speed does not depend on the values). `--quick` runs the same code on tiny towers as a
smoke test; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..configuration_gemo_clap import GEmoClapConfig
from ..modeling_gemo_clap import GEmoClapForAudioClassification
from .random_towers import speech_tower_config, text_tower_config, train_prompt_tokenizer

SAMPLING_RATE = 16000
ROBERTA_BASE_VOCAB = 50265
TARGETS = {"inference_overhead": 1.05, "train_step_overhead": 1.10, "padding_efficiency": 0.90}
# IEMOCAP's 4-class set (exc merged into happy): the class shares of a training batch.
IEMOCAP_CLASS_COUNTS = {"neutral": 1708, "happy": 1636, "sad": 1084, "angry": 1103}
# IEMOCAP-like durations: log-normal with median 3.5 s and σ = 0.7 (mean ≈ 4.5 s, as IEMOCAP's), clipped.
DURATION_MEDIAN_S, DURATION_SIGMA, DURATION_RANGE_S = 3.5, 0.7, (0.6, 30.0)
NUM_CLIPS, TRAIN_BATCH_SIZE = 5531, 32


@dataclass(frozen=True)
class Settings:
    """What one run measures on: tower size, device, the timed batch and the repeat counts."""

    size: str
    device: torch.device
    batch_size: int
    clip_seconds: float
    repeats: int
    memory_repeats: int
    warmup_seconds: float
    count_clip_seconds: float
    seed: int = 0


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="gemo-clap bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="'cpu' (default) or 'cuda' / 'cuda:N'")
    parser.add_argument("--quick", action="store_true", help="tiny towers, tiny batch, 1 repeat: a smoke test")
    parser.add_argument("--repeats", type=int, help="timed repeats per figure (default 5; 1 with --quick)")
    parser.add_argument("--memory_repeats", type=int, help="training steps per memory figure (default 2)")
    parser.add_argument("--batch_size", type=int, help="clips in the timed batch (default 8)")
    parser.add_argument("--clip_seconds", type=float, help="length of every timed clip (default 4.0)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch build sees no CUDA device (torch {torch.__version__}).")
    quick = args.quick
    pick = lambda given, full, small: given if given is not None else (small if quick else full)  # noqa: E731
    settings = Settings(
        size="tiny" if quick else "base",
        device=device,
        batch_size=pick(args.batch_size, 8, 2),
        clip_seconds=pick(args.clip_seconds, 4.0, 0.5),
        repeats=pick(args.repeats, 5, 1),
        memory_repeats=pick(args.memory_repeats, 2, 1),
        warmup_seconds=0.5 if not quick else 0.1,
        count_clip_seconds=0.5 if not quick else 0.1,
    )
    if min(settings.batch_size, settings.repeats, settings.memory_repeats) < 1:
        parser.error("--batch_size, --repeats and --memory_repeats must be at least 1.")
    return settings


# ---- timing and memory primitives ----------------------------------------------------------------------------


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(calls: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list]:
    """Seconds per call, interleaved so that background load affects every side alike.

    The order flips every repeat (A B, B A, A B, ...): whichever call runs first after another one pays for growing
    the allocator's buffers, which would otherwise always bill the same side.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    for repeat in range(repeats):
        order = list(calls.items())
        for name, call in order if repeat % 2 == 0 else reversed(order):
            _synchronize(device)
            start = time.perf_counter()
            call()
            _synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def _resident_bytes() -> Callable[[], int]:
    try:
        import psutil

        process = psutil.Process()
        return lambda: process.memory_info().rss
    except ImportError:
        page = os.sysconf("SC_PAGE_SIZE")
        return lambda: int(open("/proc/self/statm").read().split()[1]) * page


def pin_allocator_for_rss() -> bool:
    """Make glibc return freed large blocks to the OS (fixed 1 MiB mmap threshold), so RSS follows live tensors.

    Without this, glibc raises its mmap threshold after the first frees and keeps freed activations in the heap,
    and the next step's RSS would not grow. Done only before the memory figures: it slows allocation slightly.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 20))


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (VmHWM), Linux >= 4.0; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


@contextmanager
def peak_memory(device: torch.device):
    """Yield a dict that holds, on exit, the peak memory above the starting level in MiB, and how it was measured.

    CUDA: `torch.cuda.max_memory_allocated`. CPU: the kernel's exact RSS high-water mark (VmHWM), reset on entry
    (torch's CPU allocations are invisible to `tracemalloc`); where that cannot be reset, the RSS sampled every
    millisecond by a thread, which can miss short peaks.
    """
    result: dict[str, float | str] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        yield result
        torch.cuda.synchronize(device)
        result["mib"] = (torch.cuda.max_memory_allocated(device) - start) / 2**20
        result["method"] = "torch.cuda.max_memory_allocated"
        return
    rss = _resident_bytes()
    start = rss()
    if _reset_peak_rss():
        yield result
        result["mib"] = (_peak_rss_bytes() - start) / 2**20
        result["method"] = "process RSS high-water mark (VmHWM, reset per step)"
        return
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result["mib"] = (max(peak[0], rss()) - start) / 2**20
        result["method"] = "process RSS sampled every 1 ms"


# ---- models and batches --------------------------------------------------------------------------------------


def tower_configs(size: str):
    """Speech and text tower configs: WavLM base-plus and RoBERTa base shapes (with RoBERTa's real vocabulary)."""
    vocab = ROBERTA_BASE_VOCAB if size == "base" else 400
    return speech_tower_config("wavlm", size), text_tower_config("roberta", size, vocab_size=vocab)


def build_classifier(settings: Settings, tokenizer) -> GEmoClapForAudioClassification:
    """An SL-GEmo-CLAP classifier; its `.gemo_clap` dual encoder is the model the training steps use."""
    audio_config, text_config = tower_configs(settings.size)
    config = GEmoClapConfig(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(), loss_type="sl")
    torch.manual_seed(settings.seed)
    classifier = GEmoClapForAudioClassification(config)
    classifier.set_prompts(tokenizer)
    return classifier.to(settings.device)


def build_audio_baseline(settings: Settings):
    """`WavLMForSequenceClassification` with the same audio config: what fine-tuning the encoder alone costs."""
    from transformers import WavLMForSequenceClassification

    audio_config, _ = tower_configs(settings.size)
    audio_config.num_labels = len(IEMOCAP_CLASS_COUNTS)
    torch.manual_seed(settings.seed)
    return WavLMForSequenceClassification(audio_config).to(settings.device)


def draw_labels(batch_size: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Emotion ids with IEMOCAP's class shares and random gender ids."""
    counts = np.array(list(IEMOCAP_CLASS_COUNTS.values()), dtype=float)
    emotions = generator.choice(len(counts), size=batch_size, p=counts / counts.sum())
    return emotions, generator.integers(0, 2, size=batch_size)


def make_batch(settings: Settings, tokenizer, config: GEmoClapConfig, batch_size: int, seconds: float, seed: int):
    """Random audio of equal length, IEMOCAP-share labels and their tokenised prompts, on the device."""
    generator = np.random.default_rng(seed)
    samples = int(seconds * SAMPLING_RATE)
    audio = torch.from_numpy(generator.standard_normal((batch_size, samples), dtype=np.float32) * 0.1)
    emotions, genders = draw_labels(batch_size, generator)
    prompts = tokenizer(config.prompts([config.emotion_labels[i] for i in emotions]), padding=True, return_tensors="pt")
    batch = {
        "input_values": audio,
        "audio_attention_mask": torch.ones_like(audio, dtype=torch.long),
        "input_ids": prompts["input_ids"],
        "attention_mask": prompts["attention_mask"],
        "emotion_labels": torch.from_numpy(emotions),
        "gender_labels": torch.from_numpy(genders),
    }
    return {name: value.to(settings.device) for name, value in batch.items()}


def audio_only(batch: dict) -> dict:
    """The same batch in `WavLMForSequenceClassification`'s argument names."""
    return {"input_values": batch["input_values"], "attention_mask": batch["audio_attention_mask"],
            "labels": batch["emotion_labels"]}  # fmt: skip


def make_optimizer(model) -> torch.optim.Optimizer:
    """Fused AdamW: `Trainer`'s default optimizer (`optim="adamw_torch_fused"`), so the step is the one users get."""
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)


def training_step(model, optimizer, inputs: dict) -> None:
    """Forward with loss, backward, AdamW step: one optimisation step as the Trainer takes it."""
    model(**inputs).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


# ---- the figures ---------------------------------------------------------------------------------------------


def _ratio_figure(times: dict[str, list[float]], numerator: str, denominator: str, target: str) -> dict:
    medians = {f"{name}_s": statistics.median(values) for name, values in times.items()}
    ratio = medians[f"{numerator}_s"] / medians[f"{denominator}_s"]
    return {"ratio": round(ratio, 4), **{k: round(v, 4) for k, v in medians.items()},
            "target_max": TARGETS[target], "met": ratio <= TARGETS[target], "repeats": len(times[numerator])}  # fmt: skip


def measure_inference_overhead(settings: Settings, classifier, batch: dict, warmup: dict) -> dict:
    """Classifier forward (audio tower + pooling + projection + cached prompts) ÷ the audio tower alone."""
    audio_tower = classifier.gemo_clap.audio_model

    def gemo_clap_classifier(inputs):
        return classifier(inputs["input_values"], inputs["audio_attention_mask"])

    def audio_tower_only(inputs):
        return audio_tower(inputs["input_values"], attention_mask=inputs["audio_attention_mask"])

    calls = {"gemo_clap_classifier": gemo_clap_classifier, "audio_tower": audio_tower_only}
    classifier.eval()
    with torch.no_grad():
        # Warm-up: a short batch, then the timed batch itself, untimed, so both sides start with grown buffers.
        for data in (warmup, batch):
            interleaved_times({name: lambda call=call, d=data: call(d) for name, call in calls.items()}, 1,
                              settings.device)
        times = interleaved_times(
            {name: lambda call=call: call(batch) for name, call in calls.items()}, settings.repeats, settings.device
        )
    return _ratio_figure(times, "gemo_clap_classifier", "audio_tower", "inference_overhead")


def measure_train_step_overhead(settings: Settings, models: dict, optimizers: dict, batch: dict, warmup: dict) -> dict:
    """One SL-GEmo-CLAP step ÷ one WavLMForSequenceClassification step on the same audio (AdamW both).

    `models` / `optimizers` hold "sl_gemo_clap" and "wavlm_classifier".
    """
    inputs = {"sl_gemo_clap": lambda b: {**b, "return_loss": True}, "wavlm_classifier": audio_only}

    def steps_on(data: dict) -> dict:
        return {
            name: lambda name=name, ready=inputs[name](data): training_step(models[name], optimizers[name], ready)
            for name in models
        }

    for model in models.values():
        model.train()
    # Warm-up on short clips: allocates gradients and AdamW state without a full-length step's cost.
    interleaved_times(steps_on(warmup), 1, settings.device)
    times = interleaved_times(steps_on(batch), settings.repeats, settings.device)
    return _ratio_figure(times, "sl_gemo_clap", "wavlm_classifier", "train_step_overhead")


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
                training_step(gemo_clap, optimizer, inputs)
            peaks.append(measured["mib"])
        figure[label] = round(statistics.median(peaks), 1)
        figure["method"] = measured["method"] + suffix
    gemo_clap.activation_checkpointing_disable()
    figure["saving"] = round(1 - figure["with_checkpointing_mib"] / figure["without_checkpointing_mib"], 3)
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


def measure_text_sequences(settings: Settings, gemo_clap, tokenizer) -> dict:
    """Text-tower rows per training batch of 32: the model's forward (de-duplicated) vs encoding every row."""
    with_dedup, without_dedup, distinct = [], [], []
    gemo_clap.eval()
    for repeat in range(settings.repeats):
        batch = make_batch(settings, tokenizer, gemo_clap.config, TRAIN_BATCH_SIZE, settings.count_clip_seconds,
                           seed=settings.seed + 100 + repeat)  # fmt: skip
        with torch.no_grad():
            with count_text_rows(gemo_clap.text_model) as rows:
                gemo_clap(**batch, return_loss=True)
            with_dedup.append(rows[0])
            with count_text_rows(gemo_clap.text_model) as rows:
                gemo_clap.get_text_features(batch["input_ids"], batch["attention_mask"])
            without_dedup.append(rows[0])
        distinct.append(len(torch.unique(batch["emotion_labels"])))
    return {"deduplicated": statistics.median(with_dedup), "without_dedup": statistics.median(without_dedup),
            "distinct_labels_in_batch": statistics.median(distinct), "num_labels": len(gemo_clap.config.emotion_labels),
            "batch_size": TRAIN_BATCH_SIZE, "repeats": settings.repeats}  # fmt: skip


def iemocap_like_lengths(seed: int = 0) -> np.ndarray:
    """Clip lengths in samples: log-normal durations (median 3.5 s, σ 0.7) clipped to 0.6-30 s, 5531 clips."""
    generator = np.random.default_rng(seed)
    durations = np.clip(generator.lognormal(np.log(DURATION_MEDIAN_S), DURATION_SIGMA, NUM_CLIPS), *DURATION_RANGE_S)
    return (durations * SAMPLING_RATE).astype(np.int64)


def padding_efficiency(lengths: np.ndarray, order: list[int], batch_size: int) -> float:
    """Real samples ÷ padded samples when consecutive `batch_size` indices of `order` form a batch."""
    order = np.asarray(order)
    padded = sum(lengths[order[i : i + batch_size]].max() * len(order[i : i + batch_size])
                 for i in range(0, len(order), batch_size))  # fmt: skip
    return float(lengths[order].sum() / padded)


def measure_padding_efficiency(settings: Settings) -> dict:
    """One epoch per repeat through the training scripts' length-grouped sampler (transformers' grouping, seeded by
    epoch) vs random batches."""
    from ..training.sampling import EpochSeededLengthGroupedSampler

    lengths = iemocap_like_lengths(settings.seed)
    sampler = EpochSeededLengthGroupedSampler(TRAIN_BATCH_SIZE, lengths.tolist(), seed=settings.seed)
    grouped, random = [], []
    for repeat in range(max(settings.repeats, 3)):  # cheap: at least 3 epochs even in --quick
        generator = torch.Generator().manual_seed(settings.seed + repeat)
        sampler.set_epoch(repeat)
        order = list(sampler)
        grouped.append(padding_efficiency(lengths, order, TRAIN_BATCH_SIZE))
        random.append(padding_efficiency(lengths, torch.randperm(len(lengths), generator=generator).tolist(),
                                         TRAIN_BATCH_SIZE))  # fmt: skip
    value = statistics.median(grouped)
    return {"group_by_length": round(value, 4), "random": round(statistics.median(random), 4),
            "target_min": TARGETS["padding_efficiency"], "met": value >= TARGETS["padding_efficiency"],
            "batch_size": TRAIN_BATCH_SIZE, "clips": NUM_CLIPS, "median_duration_s": DURATION_MEDIAN_S,
            "sigma": DURATION_SIGMA, "repeats": len(grouped)}  # fmt: skip


# ---- the run -------------------------------------------------------------------------------------------------


def environment(settings: Settings) -> dict:
    import transformers

    device = settings.device
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "towers": f"wavlm + roberta, {settings.size} shapes, random weights",
        "timed_batch": f"{settings.batch_size} x {settings.clip_seconds} s",
        "repeats": settings.repeats,
        "memory_repeats": settings.memory_repeats,
    }


def run(settings: Settings) -> dict:
    """All figures, in an order that keeps peak memory low and the allocator untouched until the memory figure."""
    started = time.perf_counter()
    results = {"environment": environment(settings)}
    results["padding_efficiency"] = measure_padding_efficiency(settings)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = train_prompt_tokenizer(folder)
    classifier = build_classifier(settings, tokenizer)
    config = classifier.config
    batch = make_batch(settings, tokenizer, config, settings.batch_size, settings.clip_seconds, settings.seed)
    warmup = make_batch(settings, tokenizer, config, settings.batch_size, settings.warmup_seconds, settings.seed + 1)
    results["inference_overhead"] = measure_inference_overhead(settings, classifier, batch, warmup)
    gemo_clap = classifier.gemo_clap
    results["text_tower_sequences_per_step"] = measure_text_sequences(settings, gemo_clap, tokenizer)
    models = {"sl_gemo_clap": gemo_clap, "wavlm_classifier": build_audio_baseline(settings)}
    optimizers = {name: make_optimizer(model) for name, model in models.items()}
    results["train_step_overhead"] = measure_train_step_overhead(settings, models, optimizers, batch, warmup)
    del models["wavlm_classifier"], optimizers["wavlm_classifier"]  # free its memory before the memory figure
    results["peak_memory"] = measure_peak_memory(settings, gemo_clap, optimizers["sl_gemo_clap"], batch)
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


__all__ = ["main", "run", "parse_args", "padding_efficiency", "iemocap_like_lengths"]


if __name__ == "__main__":
    raise SystemExit(main())
