"""`gemo-clap bench`: what GEmo-CLAP costs beyond its speech encoder, measured side by side in one run.

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
  `WavLMForSequenceClassification`, on the synthetic corpus (`benchmark_trainer.py`), with sampled GPU utilisation
  on CUDA.
- `padding_efficiency`, `text_tower_sequences_per_step`, `peak_memory`, `bulk_inference`.

`--quick` runs the same code on tiny towers as a smoke test; its figures mean nothing.
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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from ..configuration_gemo_clap import GEmoClapConfig
from ..data.corpora import CORPORA
from ..modeling_gemo_clap import GEmoClapForAudioClassification
from .random_towers import speech_tower_config, text_tower_config, train_prompt_tokenizer
from .sync_audit import SyncRecorder

SAMPLING_RATE = 16000
ROBERTA_BASE_VOCAB = 50265
TARGETS = {"inference_overhead": 1.05, "train_step_overhead": 1.10, "padding_efficiency": 0.90, "package_syncs": 0}
# IEMOCAP's 4-class set (exc merged into happy), from the corpus registry: the class shares of a training batch.
IEMOCAP_CLASS_COUNTS = CORPORA["iemocap"].class_counts
# IEMOCAP-like durations: log-normal with median 3.5 s and σ = 0.7 (mean ≈ 4.5 s, as IEMOCAP's), clipped.
DURATION_MEDIAN_S, DURATION_SIGMA, DURATION_RANGE_S = 3.5, 0.7, (0.6, 30.0)
NUM_CLIPS, TRAIN_BATCH_SIZE = sum(IEMOCAP_CLASS_COUNTS.values()), 32
# Training clips are cropped to this length by default (`--max_duration_s`), so no training batch is longer.
TRAIN_CROP_S = 20.0
MIN_CLIP_SAMPLES = 1600  # 0.1 s: above the towers' receptive field (400 samples) when --quick shrinks durations
# Speech-tower presets (apps/random_towers.py) per `--size`; the text tower is RoBERTa base for every size.
AUDIO_PRESETS = {"tiny": "wavlm-base-plus", "base": "wavlm-base-plus", "large": "wavlm-large"}
SMALL_BATCH = {"full": (4, 3.0), "quick": (2, 0.5)}
FIGURES = (
    "padding",
    "inference",
    "text_rows",
    "train_step",
    "train_step_varied",
    "syncs",
    "memory",
    "end_to_end",
    "bulk_inference",
)


@dataclass(frozen=True)
class Settings:
    """What one run measures on: tower size, device, the timed batches, the figures and the repeat counts."""

    size: str
    device: torch.device
    batch_size: int
    clip_seconds: float
    repeats: int
    memory_repeats: int
    warmup_seconds: float
    count_clip_seconds: float
    bf16: bool = False
    figures: tuple[str, ...] = FIGURES
    varied_repeats: int = 3
    small_batch: tuple[int, float] = SMALL_BATCH["full"]
    varied_scale: float = 1.0  # --quick shrinks the IEMOCAP-like durations
    end_to_end_steps: int = 4
    end_to_end_batch_size: int = 8
    end_to_end_repeats: int = 1
    dataloader_num_workers: int = 0
    train_feature_encoder: bool = False
    seed: int = 0


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="gemo-clap bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="'cpu' (default) or 'cuda' / 'cuda:N'")
    parser.add_argument(
        "--size",
        choices=("base", "large"),
        default="base",
        help="speech tower: WavLM base-plus (default) or WavLM large shapes; text tower: RoBERTa base",
    )
    parser.add_argument("--quick", action="store_true", help="tiny towers, tiny batch, 1 repeat: a smoke test")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides (CUDA only)")
    parser.add_argument("--repeats", type=int, help="timed repeats per figure (default 5; 1 with --quick)")
    parser.add_argument("--varied_repeats", type=int, help="timed repeats of the varied-length figures (default 3)")
    parser.add_argument("--memory_repeats", type=int, help="training steps per memory figure (default 2)")
    parser.add_argument("--batch_size", type=int, help="clips in the timed batches (default 8)")
    parser.add_argument("--clip_seconds", type=float, help="length of every clip of the equal-length batch (default 4)")
    parser.add_argument(
        "--figures",
        default=",".join(FIGURES),
        help=f"comma-separated figures to measure (default all): {','.join(FIGURES)}",
    )
    parser.add_argument(
        "--end_to_end_steps", type=int, help="timed Trainer steps per side, after 1 warm-up (default 4)"
    )
    parser.add_argument("--end_to_end_batch_size", type=int, help="Trainer batch size (default: --batch_size)")
    parser.add_argument(
        "--end_to_end_repeats", type=int, default=1, help="Trainer runs per side, alternating A B, B A, ... (default 1)"
    )
    parser.add_argument("--dataloader_num_workers", type=int, default=0, help="Trainer DataLoader workers (default 0)")
    parser.add_argument(
        "--train_feature_encoder",
        action="store_true",
        help="train the CNN feature encoder on both sides (default: frozen, as the scripts do)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch build sees no CUDA device (torch {torch.__version__}).")
    if args.bf16 and device.type != "cuda":
        parser.error("--bf16 is autocast on CUDA; on the CPU the benchmark runs in float32.")
    figures = tuple(name.strip() for name in args.figures.split(",") if name.strip())
    unknown = sorted(set(figures) - set(FIGURES))
    if unknown or not figures:
        parser.error(f"--figures: unknown {unknown}; choose among {', '.join(FIGURES)}.")
    quick = args.quick
    pick = lambda given, full, small: given if given is not None else (small if quick else full)  # noqa: E731
    batch_size = pick(args.batch_size, 8, 2)
    settings = Settings(
        size="tiny" if quick else args.size,
        device=device,
        batch_size=batch_size,
        clip_seconds=pick(args.clip_seconds, 4.0, 0.5),
        repeats=pick(args.repeats, 5, 1),
        memory_repeats=pick(args.memory_repeats, 2, 1),
        warmup_seconds=0.5 if not quick else 0.1,
        count_clip_seconds=0.5 if not quick else 0.1,
        bf16=args.bf16,
        figures=figures,
        varied_repeats=pick(args.varied_repeats, 3, 1),
        small_batch=SMALL_BATCH["quick" if quick else "full"],
        varied_scale=0.1 if quick else 1.0,
        end_to_end_steps=pick(args.end_to_end_steps, 4, 1),
        end_to_end_batch_size=args.end_to_end_batch_size or batch_size,
        end_to_end_repeats=args.end_to_end_repeats,
        dataloader_num_workers=args.dataloader_num_workers,
        train_feature_encoder=args.train_feature_encoder,
    )
    numbers = (
        settings.batch_size,
        settings.repeats,
        settings.memory_repeats,
        settings.varied_repeats,
        settings.end_to_end_steps,
        settings.end_to_end_batch_size,
        settings.end_to_end_repeats,
    )
    if min(numbers) < 1:
        parser.error("batch sizes, repeats and steps must be at least 1.")
    return settings


def autocast(settings: Settings):
    """bf16 autocast on CUDA with `--bf16`, else nothing (float32)."""
    if settings.bf16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


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
    with open("/proc/self/status") as status:
        for line in status:
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
    """The model's loss type inside the block (the loss is built from the config at every forward)."""
    saved = gemo_clap.config.loss_type
    gemo_clap.config.loss_type = name
    try:
        yield
    finally:
        gemo_clap.config.loss_type = saved


# ---- the figures ---------------------------------------------------------------------------------------------


def _ratio_figure(times: dict[str, list[float]], numerator: str, denominator: str, target: str) -> dict:
    medians = {f"{name}_s": statistics.median(values) for name, values in times.items()}
    ratio = medians[f"{numerator}_s"] / medians[f"{denominator}_s"]
    return {
        "ratio": round(ratio, 4),
        **{k: round(v, 4) for k, v in medians.items()},
        "target_max": TARGETS[target],
        "met": ratio <= TARGETS[target],
        "repeats": len(times[numerator]),
    }


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
        **_ratio_figure(times, "gemo_clap_classifier", "audio_tower", "inference_overhead"),
        "batch": describe_batch(batch),
    }


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
    figure = _ratio_figure(
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
        figure["with_trained_text_embeddings"] = _ratio_figure(
            trained, "sl_gemo_clap", "wavlm_classifier", "train_step_overhead"
        )
    return figure


def measure_host_syncs(settings: Settings, models: dict, optimizers: dict, batch: dict) -> dict:
    """Host-device syncs of one training step (forward, loss, backward, temperature clamp) per loss type: those
    issued by the package's own lines (target 0) and those of the towers (transformers) and autograd, by line.

    The optimizer step is left out of the recording (torch's, the same on both sides). The WavLM classifier's step
    is recorded too, for comparison.
    """
    gemo_clap = models["sl_gemo_clap"]
    per_loss, towers = {}, {}
    for name in ("emo", "sl", "ml"):
        with loss_type(gemo_clap, name):
            training_step(gemo_clap, optimizers["sl_gemo_clap"], {**batch, "return_loss": True}, settings)  # warm
            with SyncRecorder() as recorder:
                forward_backward(gemo_clap, {**batch, "return_loss": True}, settings)
                gemo_clap.clamp_logit_scales_()
            optimizers["sl_gemo_clap"].zero_grad(set_to_none=True)
        per_loss[name] = len(recorder.package_syncs)
        towers[name] = {"total": len(recorder.tower_syncs), "by_line": SyncRecorder.summarize(recorder.tower_syncs)}
        if recorder.package_syncs:
            towers[name]["package_lines"] = SyncRecorder.summarize(recorder.package_syncs)
    baseline = models["wavlm_classifier"]
    with SyncRecorder() as recorder:
        forward_backward(baseline, audio_only(batch), settings)
    baseline.zero_grad(set_to_none=True)
    worst = max(per_loss.values())
    return {
        "package": per_loss,
        "target_max": TARGETS["package_syncs"],
        "met": worst <= TARGETS["package_syncs"],
        "towers_and_autograd": towers,
        "wavlm_classifier_step": {"total": len(recorder.syncs), "by_line": SyncRecorder.summarize(recorder.syncs)},
        "batch": describe_batch(batch),
        "repeats": 1,
    }


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


def iemocap_like_lengths(seed: int = 0) -> np.ndarray:
    """Clip lengths in samples: log-normal durations (median 3.5 s, σ 0.7) clipped to 0.6-30 s, 5531 clips."""
    generator = np.random.default_rng(seed)
    durations = np.clip(generator.lognormal(np.log(DURATION_MEDIAN_S), DURATION_SIGMA, NUM_CLIPS), *DURATION_RANGE_S)
    return (durations * SAMPLING_RATE).astype(np.int64)


def padding_efficiency(lengths: np.ndarray, order: list[int], batch_size: int) -> float:
    """Real samples ÷ padded samples when consecutive `batch_size` indices of `order` form a batch."""
    order = np.asarray(order)
    padded = sum(
        lengths[order[i : i + batch_size]].max() * len(order[i : i + batch_size])
        for i in range(0, len(order), batch_size)
    )
    return float(lengths[order].sum() / padded)


def measure_padding_efficiency(settings: Settings) -> dict:
    """One epoch per repeat through the training scripts' length-grouped sampler (transformers' grouping, seeded by
    epoch) vs random batches."""
    from ..data.batching import EpochSeededLengthGroupedSampler

    lengths = iemocap_like_lengths(settings.seed)
    sampler = EpochSeededLengthGroupedSampler(TRAIN_BATCH_SIZE, lengths.tolist(), seed=settings.seed)
    grouped, random = [], []
    for repeat in range(max(settings.repeats, 3)):  # cheap: at least 3 epochs even in --quick
        generator = torch.Generator().manual_seed(settings.seed + repeat)
        sampler.set_epoch(repeat)
        order = list(sampler)
        grouped.append(padding_efficiency(lengths, order, TRAIN_BATCH_SIZE))
        random.append(
            padding_efficiency(lengths, torch.randperm(len(lengths), generator=generator).tolist(), TRAIN_BATCH_SIZE)
        )
    value = statistics.median(grouped)
    return {
        "group_by_length": round(value, 4),
        "random": round(statistics.median(random), 4),
        "target_min": TARGETS["padding_efficiency"],
        "met": value >= TARGETS["padding_efficiency"],
        "batch_size": TRAIN_BATCH_SIZE,
        "clips": NUM_CLIPS,
        "median_duration_s": DURATION_MEDIAN_S,
        "sigma": DURATION_SIGMA,
        "repeats": len(grouped),
    }


# ---- the run -------------------------------------------------------------------------------------------------


def environment(settings: Settings) -> dict:
    import transformers

    device = settings.device
    audio = AUDIO_PRESETS[settings.size]
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "towers": f"{audio} + roberta-base, {settings.size} shapes, random weights",
        "precision": "bf16 autocast" if settings.bf16 else "float32",
        "feature_encoder": "trained" if settings.train_feature_encoder else "frozen (both sides)",
        "timed_batch": f"{settings.batch_size} x {settings.clip_seconds} s",
        "small_batch": f"{settings.small_batch[0]} x {settings.small_batch[1]} s",
        "figures": list(settings.figures),
        "repeats": settings.repeats,
        "varied_repeats": settings.varied_repeats,
        "memory_repeats": settings.memory_repeats,
    }


def measure_bulk_inference(settings: Settings, classifier) -> dict:
    """`gemo-clap predict`'s path (apps/prediction.py) on WAV files: clips/s batched vs one at a time."""
    try:
        from .prediction import measure_bulk_throughput
    except ImportError as error:
        return {"measured": False, "reason": f"apps/prediction.py has no measure_bulk_throughput ({error})"}
    options = {"num_clips": 4 * settings.batch_size, "min_s": 1.0, "max_s": 8.0}
    if settings.size == "tiny":  # the smoke test: a few short clips, decoded in-process
        options = {"num_clips": 2 * settings.batch_size, "min_s": 0.3, "max_s": 0.6, "num_workers": 0}
    figure = measure_bulk_throughput(classifier, batch_size=settings.batch_size, device=settings.device, **options)
    return {**figure, "repeats": 1}


def _run_inference_figures(settings: Settings, results: dict, classifier) -> None:
    warmup = make_batch(settings, equal_lengths(settings.batch_size, settings.warmup_seconds), settings.seed + 1)
    batch = make_batch(settings, equal_lengths(settings.batch_size, settings.clip_seconds), settings.seed)
    results["inference_overhead"] = measure_inference_overhead(settings, classifier, batch, warmup, settings.repeats)
    varied = make_batch(
        settings, varied_lengths(settings.batch_size, settings.seed + 3, settings.varied_scale), settings.seed + 3
    )
    results["inference_overhead_varied_lengths"] = measure_inference_overhead(
        settings, classifier, varied, warmup, settings.varied_repeats
    )


def _run_step_figures(settings: Settings, results: dict, classifier) -> torch.optim.Optimizer:
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
            _run_inference_figures(settings, results, classifier)
    if "text_rows" in figures:
        with timed("text_rows"):
            results["text_tower_sequences_per_step"] = measure_text_sequences(settings, gemo_clap)
    optimizer = None
    if {"train_step", "train_step_varied", "syncs"} & set(figures):
        with timed("train_step_and_syncs"):
            optimizer = _run_step_figures(settings, results, classifier)
    if "bulk_inference" in figures:
        with timed("bulk_inference"):
            results["bulk_inference"] = measure_bulk_inference(settings, classifier)
    if "end_to_end" in figures:
        from .benchmark_trainer import measure_end_to_end

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


__all__ = ["main", "run", "parse_args", "padding_efficiency", "iemocap_like_lengths"]


if __name__ == "__main__":
    raise SystemExit(main())
