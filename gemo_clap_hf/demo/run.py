"""`gemo-clap demo`, the main job: synthetic corpus -> SL-GEmo-CLAP trained on sessions 1-4 -> report on session 5.

Nothing can be downloaded where the demo runs, so it trains small randomly initialised towers shaped like the
package's default encoders, `microsoft/wavlm-base-plus` (group-norm feature encoder, post-LN transformer) and
`roberta-base` (`save_random_towers` presets), on the embedded synthetic corpus, through the same `run_training`
the training script uses, then classifies a few held-out clips through `pipeline("audio-classification")` as a user
would. `DEMO` is sized to finish in under 10 minutes on 2 CPU cores with a held-out UAR of at least 0.75; `FAST` runs
the same code path in seconds (its figures mean nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
import warnings
from pathlib import Path

from ..data.synthetic import describe_corpus, generate_corpus
from .towers import save_random_towers

TEST_SESSION = "5"


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Corpus size, tower size and training budget of one demo run."""

    utterances_per_speaker: int
    tower_size: str
    projection_dim: int
    learning_rate: float
    num_train_epochs: float
    batch_size: int
    max_duration_s: float
    warmup_steps: float = 0.1
    max_steps: int = -1
    clips_shown: int = 8


# The default encoders' structure, shrunk (demo/towers.py): the main job runs the path users' models take.
AUDIO_PRESET, TEXT_PRESET = "wavlm-base-plus", "roberta-base"

# Tuned on the shared 2-core CPU machine (README, "The main job", gives the measured time and UAR).
DEMO = DemoSettings(
    utterances_per_speaker=120,
    tower_size="small",
    projection_dim=64,
    learning_rate=1e-3,
    num_train_epochs=8,
    batch_size=16,
    max_duration_s=2.0,
)
# A third of the demo's corpus with 1 s crops: held-out SL UAR about 0.75 in under a minute on 2 CPU cores. The learning
# test (tests/training/test_demo_learning.py) uses it; the variant comparison (compare_variants.py) starts from it.
LEARNING = DemoSettings(
    utterances_per_speaker=40,
    tower_size="small",
    projection_dim=16,
    learning_rate=1e-3,
    num_train_epochs=8,
    batch_size=16,
    max_duration_s=1.0,
)
FAST = DemoSettings(
    utterances_per_speaker=4,
    tower_size="tiny",
    projection_dim=16,
    learning_rate=1e-3,
    num_train_epochs=1,
    batch_size=4,
    max_duration_s=1.0,
    max_steps=3,
    clips_shown=4,
)


@dataclasses.dataclass
class DemoResult:
    """What the report shows: held-out metrics, classified clips and where the outputs are."""

    settings: DemoSettings
    metrics: dict
    labels: list[str]
    clips: list[dict]
    model_dir: Path
    log_file: Path
    train_size: int
    test_size: int
    seconds: float


def training_arguments(settings: DemoSettings, model_dir: Path, seed: int):
    """The run's `TrainingArguments`: progress bar on, no checkpoints, logs quiet except one loss line per epoch."""
    import torch

    from ..training import GEmoClapTrainingArguments

    return GEmoClapTrainingArguments(
        output_dir=str(model_dir),
        overwrite_output_dir=True,
        seed=seed,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        warmup_steps=settings.warmup_steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=32,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="epoch",
        report_to=[],
        log_level="warning",
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )


def model_arguments(settings: DemoSettings, towers_dir: Path, seed: int, loss_type: str = "sl"):
    """Write the random towers and name them as the run's encoders; SL-GEmo-CLAP by default, the whole model
    trained."""
    from ..training import ModelArguments

    audio_dir, text_dir = save_random_towers(towers_dir, AUDIO_PRESET, TEXT_PRESET, size=settings.tower_size, seed=seed)
    # A randomly initialised CNN has learned nothing worth freezing: the demo trains the whole speech encoder.
    return ModelArguments(
        audio_encoder=str(audio_dir),
        text_encoder=str(text_dir),
        loss_type=loss_type,
        projection_dim=settings.projection_dim,
        freeze_feature_encoder=False,
    )


def data_arguments(settings: DemoSettings, corpus_dir: Path, dataset: str = "synthetic"):
    """Train on every session but `TEST_SESSION`, test on it; training clips cropped to `max_duration_s`."""
    from ..training import DataArguments

    return DataArguments(
        dataset=dataset, data_dir=str(corpus_dir), test_fold=TEST_SESSION, max_duration_s=settings.max_duration_s
    )


def train(settings: DemoSettings, corpus_dir: Path, towers_dir: Path, model_dir: Path, seed: int) -> dict:
    """SL-GEmo-CLAP on sessions 1-4 of the corpus, tested on session 5, saved to `model_dir` by `run_training`."""
    from ..training import run_training

    return run_training(
        model_arguments(settings, towers_dir, seed),
        data_arguments(settings, corpus_dir),
        training_arguments(settings, model_dir, seed),
    )


def held_out_examples(corpus_dir: Path, count: int) -> list[dict]:
    """`count` session-5 clips spread over emotions and genders (the first of each pair in turn), deterministic."""
    from ..data import load_corpus

    test = load_corpus("synthetic", corpus_dir, sessions=(int(TEST_SESSION),))
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in test:
        groups.setdefault((row["emotion"], row["gender"]), []).append(row)
    picked, rank = [], 0
    while len(picked) < count and any(len(rows) > rank for rows in groups.values()):
        picked += [rows[rank] for rows in groups.values() if len(rows) > rank]
        rank += 1
    return picked[:count]


def classify_examples(model_dir: Path, rows: list[dict]) -> list[dict]:
    """Each clip through `pipeline("audio-classification")` loaded from the saved folder, as a user would."""
    from transformers import pipeline

    classifier = pipeline("audio-classification", model=str(model_dir), top_k=1)
    clips = []
    for row in rows:
        best = classifier(row["audio"])[0]
        clips.append(
            {
                "file": Path(row["audio"]).name,
                "gender": row["gender"],
                "true": row["emotion"],
                "predicted": best["label"],
                "score": best["score"],
            }
        )
    return clips


def run_demo(
    output_dir: str | Path = "demo_output",
    seed: int = 0,
    fast: bool = False,
    settings: DemoSettings | None = None,
    report: bool = True,
) -> DemoResult:
    """Generate, train, evaluate, classify a few clips, and print the report (unless `report=False`)."""
    from transformers.utils import logging as hf_logging

    settings = settings or (FAST if fast else DEMO)
    output_dir = Path(output_dir)
    corpus_dir, model_dir = output_dir / "corpus", output_dir / "model"
    start = time.perf_counter()
    generate_corpus(corpus_dir, seed=seed, utterances_per_speaker=settings.utterances_per_speaker, progress=True)
    log = io.StringIO()
    hf_logging.disable_progress_bar()  # weight loading/saving bars; the Trainer's own bar (stderr) stays
    try:
        # The Trainer's metric tables and loss lines go to stdout; the report says it all, so they go to a file.
        with contextlib.redirect_stdout(log), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")  # torch internals
            results = train(settings, corpus_dir, output_dir / "towers", model_dir, seed)
            clips = classify_examples(model_dir, held_out_examples(corpus_dir, settings.clips_shown))
    finally:
        hf_logging.enable_progress_bar()
        log_file = output_dir / "training_log.txt"
        log_file.write_text(log.getvalue(), encoding="utf-8")
    counts = describe_corpus(corpus_dir)["per_session"]
    sizes = {
        session: sum(sum(emotions.values()) for emotions in genders.values()) for session, genders in counts.items()
    }
    result = DemoResult(
        settings=settings,
        metrics=results,
        labels=results["labels"],
        clips=clips,
        model_dir=model_dir,
        log_file=log_file,
        train_size=sum(n for s, n in sizes.items() if s != TEST_SESSION),
        test_size=sizes[TEST_SESSION],
        seconds=time.perf_counter() - start,
    )
    if report:
        print(format_report(result, fast=fast))
    return result


def format_report(result: DemoResult, fast: bool = False) -> str:
    """The readable summary: per-class recall, UAR/WAR, UAR per gender, example clips, outputs, how to load."""
    from ..training.outputs import CONFUSION_MATRIX_FILE, held_out_prefix

    metrics = result.metrics
    prefix = held_out_prefix(metrics)
    rule = "=" * 72
    lines = [
        "",
        rule,
        f"GEmo-CLAP demo{' (--fast: a smoke run, figures meaningless)' if fast else ''}",
        f"SL-GEmo-CLAP with {result.settings.tower_size} random {AUDIO_PRESET} + {TEXT_PRESET} towers, trained on "
        f"synthetic sessions 1-4 "
        f"({result.train_size} clips), tested on held-out session {TEST_SESSION} ({result.test_size} clips).",
        rule,
        "",
        f"Per-class recall (session {TEST_SESSION}):",
    ]
    for label in result.labels:
        recall = metrics[f"{prefix}_recall_{label}"]
        lines.append(f"  {label:<10} {recall:6.1%}  {'#' * round(30 * recall)}")
    chance = 1 / len(result.labels)
    lines += [
        "",
        f"UAR {metrics[f'{prefix}_uar']:.1%}   WAR {metrics[f'{prefix}_war']:.1%}   (chance UAR {chance:.0%})",
        "UAR per gender: "
        + ", ".join(
            f"{key[len(prefix) + 5 :]} {value:.1%}"
            for key, value in metrics.items()
            if key.startswith(f"{prefix}_uar_")
        ),
        "",
        'Held-out clips through pipeline("audio-classification"):',
    ]
    for clip in result.clips:
        mark = "ok" if clip["predicted"] == clip["true"] else "MISS"
        lines.append(
            f"  {clip['file']:<28} {clip['gender']:<7} true {clip['true']:<8} predicted "
            f"{clip['predicted']:<8} ({clip['score']:.2f})  {mark}"
        )
    model_dir = result.model_dir
    lines += [
        "",
        f"Model folder:      {model_dir}",
        f"Confusion matrix:  {model_dir / CONFUSION_MATRIX_FILE}",
        f"Model card:        {model_dir / 'README.md'}",
        f"Training log:      {result.log_file}",
        "Load it:",
        f"  import gemo_clap_hf; from transformers import pipeline; "
        f'pipeline("audio-classification", model="{model_dir}")("clip.wav")',
        f"  gemo-clap predict --model {model_dir} clip.wav",
        "",
        f"Done in {result.seconds / 60:.1f} min.",
        rule,
    ]
    return "\n".join(lines)


__all__ = [
    "DEMO",
    "FAST",
    "DemoResult",
    "DemoSettings",
    "data_arguments",
    "format_report",
    "model_arguments",
    "run_demo",
    "training_arguments",
]
