"""What one benchmark run measures: the command-line flags, the targets and the fixed workload constants."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from gemo_clap_hf.data.corpora import CORPORA

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
# Speech-tower presets (gemo_clap_hf/demo/towers.py) per `--size`; the text tower is RoBERTa base for every size.
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
# Measured only when named in --figures (minutes of generated audio through the CLI): benchmarks/long_recordings.py.
# cpu_inference exports base-size graphs and trains the demo unless --demo_model is given: benchmarks/cpu_inference.py.
# serving starts a local Ray cluster (the [ray] extra) for the endpoint and predict --ray: benchmarks/serving.py.
# streaming paces a generated recording through SegmentStream in real time, torch and int8: benchmarks/streaming.py.
OPTIONAL_FIGURES = ("long_recordings", "cpu_inference", "serving", "streaming")


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
    long_model: str | None = None
    long_minutes: tuple[float, ...] = (10.0,)
    long_repeats: int = 2
    long_vad: str = "on"  # long_recordings: with --vad ("on"), without ("off") or both
    stream_seconds: float = 60.0
    stream_threads: int = 2
    demo_model: str | None = None  # cpu_inference: the `model` folder of `gemo-clap demo` (trained when None)


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
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
        help=f"comma-separated figures to measure (default all): {','.join(FIGURES)}; on request: "
        f"{','.join(OPTIONAL_FIGURES)}",
    )
    parser.add_argument("--long_model", help="long_recordings: a trained model folder (e.g. gemo_clap_demo/model)")
    parser.add_argument("--long_minutes", help="long_recordings: comma-separated lengths, min (default 10; quick 1)")
    parser.add_argument("--long_repeats", type=int, help="long_recordings: runs per length (default 2; quick 1)")
    parser.add_argument("--stream_seconds", type=float, help="streaming: seconds of audio (default 60; quick 8)")
    parser.add_argument("--stream_threads", type=int, default=2, help="streaming: backend threads (default 2)")
    parser.add_argument(
        "--long_vad",
        choices=("on", "off", "both"),
        default="on",
        help="long_recordings: predict --segments with --vad (default), without it, or both",
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
    parser.add_argument(
        "--demo_model",
        default=None,
        help="cpu_inference: the model folder that `gemo-clap demo` wrote (its corpus beside it), for the int8 "
        "agreement on the held-out session (default: train the demo first, about 4 min)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch build sees no CUDA device (torch {torch.__version__}).")
    if args.bf16 and device.type != "cuda":
        parser.error("--bf16 is autocast on CUDA; on the CPU the benchmark runs in float32.")
    figures = tuple(name.strip() for name in args.figures.split(",") if name.strip())
    unknown = sorted(set(figures) - set(FIGURES) - set(OPTIONAL_FIGURES))
    if unknown or not figures:
        parser.error(f"--figures: unknown {unknown}; choose among {', '.join(FIGURES + OPTIONAL_FIGURES)}.")
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
        long_model=args.long_model,
        long_minutes=tuple(float(m) for m in (args.long_minutes or ("1" if quick else "10")).split(",")),
        long_repeats=pick(args.long_repeats, 2, 1),
        long_vad=args.long_vad,
        stream_seconds=pick(args.stream_seconds, 60.0, 8.0),
        stream_threads=args.stream_threads,
        demo_model=args.demo_model,
    )
    numbers = (
        settings.batch_size,
        settings.repeats,
        settings.memory_repeats,
        settings.varied_repeats,
        settings.end_to_end_steps,
        settings.end_to_end_batch_size,
        settings.end_to_end_repeats,
        settings.long_repeats,
    )
    if min(numbers) < 1:
        parser.error("batch sizes, repeats and steps must be at least 1.")
    return settings


def autocast(settings: Settings):
    """bf16 autocast on CUDA with `--bf16`, else nothing (float32)."""
    if settings.bf16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


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
