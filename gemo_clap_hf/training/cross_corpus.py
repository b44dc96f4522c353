"""Cross-corpus evaluation: train on every utterance of corpus A, test on corpus B without any of B in training.

The classes are the labels A and B share after the cross-corpus label map (`data/cross_corpus.py`); labels only B
has are counted and reported, and with `--zero_shot_labels` the trained model also scores all of B against B's own
label names through its text prompts (a comparison no classifier head can make). The run saves the model and card
as `train_gemo_clap.py` does, and writes `cross_corpus_report.{json,md}` in output_dir.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from transformers import set_seed

from ..data import corpus_spec, load_corpus
from ..data.cross_corpus import LabelPlan, cross_corpus_label_map, harmonise_labels, plan_labels
from ..feature_extraction_gemo_clap import GEmoClapAudioError
from ..metrics import make_compute_metrics
from .arguments import ClipArguments, GEmoClapTrainingArguments, ModelArguments
from .checkpoints import resolve_checkpoint
from .data_setup import PreparedData, random_subset, require_classes
from .errors import TrainingInputError
from .run import fit_and_evaluate, push_final_model, setup_logging, trainer_arguments, write_reports

logger = logging.getLogger(__name__)

REPORT_JSON = "cross_corpus_report.json"
REPORT_MARKDOWN = "cross_corpus_report.md"


@dataclass
class CrossCorpusArguments(ClipArguments):
    """The training corpus A and the test corpus B (any corpus kind each), and how their labels meet."""

    train_corpus: str | None = field(
        default=None, metadata={"help": "Corpus kind trained on (all of it): iemocap, ravdess, ..., emobox. Required."}
    )
    train_data_dir: str | None = field(default=None, metadata={"help": "Its folder (or manifest file). Required."})
    train_emobox_dataset: str | None = field(
        default=None, metadata={"help": "With --train_corpus emobox: the EmoBox corpus (every line of its fold 1)."}
    )
    test_corpus: str | None = field(
        default=None, metadata={"help": "Corpus kind tested on zero-shot (all of it), never trained on. Required."}
    )
    test_data_dir: str | None = field(default=None, metadata={"help": "Its folder (or manifest file). Required."})
    test_emobox_dataset: str | None = field(
        default=None, metadata={"help": "With --test_corpus emobox: the EmoBox corpus (every line of its fold 1)."}
    )
    calm_as_neutral: bool = field(
        default=True,
        metadata={"help": "Count calm as neutral in both corpora (RAVDESS' default); --no_calm_as_neutral keeps it."},
    )
    zero_shot_labels: bool = field(
        default=False,
        metadata={
            "help": "Also score all of the test corpus against its own label names through the prompts, "
            "including labels the training corpus lacks."
        },
    )


CROSS_CORPUS_ARGUMENT_CLASSES = (ModelArguments, CrossCorpusArguments, GEmoClapTrainingArguments)


def _corpus_title(kind: str, emobox_dataset: str | None) -> str:
    return f"EmoBox {emobox_dataset}" if kind == "emobox" else corpus_spec(kind).title


def _load_side(args: CrossCorpusArguments, side: str) -> tuple[datasets.Dataset, str]:
    """(corpus with every label, harmonised; its title) of the "train" or "test" side."""
    kind, data_dir = getattr(args, f"{side}_corpus"), getattr(args, f"{side}_data_dir")
    emobox_dataset = getattr(args, f"{side}_emobox_dataset")
    if not kind or not data_dir:
        raise TrainingInputError(f"--{side}_corpus and --{side}_data_dir are required (the corpus {side}ed on).")
    try:
        corpus_spec(kind)
        options = {"dataset": emobox_dataset, "fold": 1} if kind == "emobox" else {}
        corpus = load_corpus(kind, data_dir, all_labels=True, skip_bad_files=args.skip_bad_files, **options)
    except (FileNotFoundError, GEmoClapAudioError, ValueError, TypeError) as error:
        raise TrainingInputError(f"--{side}_corpus {kind}: {error}") from error
    title = _corpus_title(kind, emobox_dataset)
    return harmonise_labels(corpus, title, args.calm_as_neutral), title


def _training_source(args: CrossCorpusArguments, title: str) -> str:
    """The card's "Training data" source: all of the training corpus (EmoBox: both files of its fold 1)."""
    if args.train_corpus == "emobox":
        return f"all of {title} (EmoBox's fold 1, train and test files together), the shared classes"
    return f"all of {title}, the shared classes"


@dataclass
class CrossCorpusData:
    prepared: PreparedData
    plan: LabelPlan
    test_all: datasets.Dataset  # every test utterance, whatever its label (the zero-shot set)
    titles: tuple[str, str]
    sizes: tuple[int, int]


def _protocol(titles: tuple[str, str], plan: LabelPlan) -> str:
    unmatched = sum(plan.only_in_test.values())
    sentence = (
        f"cross-corpus: trained on {titles[0]}, tested zero-shot on {titles[1]} (no test-corpus utterance in "
        f"training), on the {len(plan.shared)} classes both share after the cross-corpus label map "
        f"({', '.join(plan.shared)})"
    )
    if unmatched:
        only = ", ".join(f"{label} {count}" for label, count in plan.only_in_test.items())
        sentence += f"; {unmatched} test utterances with labels only {titles[1]} has ({only}) are not scored"
    return sentence


def prepare_cross_corpus(args: CrossCorpusArguments, seed: int) -> CrossCorpusData:
    train_all, train_title = _load_side(args, "train")
    test_all, test_title = _load_side(args, "test")
    try:
        plan = plan_labels(train_all, test_all)
    except ValueError as error:
        raise TrainingInputError(f"{train_title} -> {test_title}: {error}") from error
    require_classes(
        plan.shared,
        Counter(label for label in train_all["emotion"] if label in plan.shared),
        f"{train_title} -> {test_title}, classes both share after the cross-corpus label map",
        f"choose corpora with more emotions in common (training: {sorted(set(train_all['emotion']))}; test: "
        f"{sorted(set(test_all['emotion']))}).",
    )
    shared = set(plan.shared)
    train = train_all.filter(lambda row: row["emotion"] in shared)
    test = test_all.filter(lambda row: row["emotion"] in shared)
    logger.info(
        f"cross-corpus {train_title} -> {test_title}: shared classes {plan.shared}; only in {train_title}: "
        f"{plan.only_in_train or 'none'}; only in {test_title} (not scored closed-set): {plan.only_in_test or 'none'}."
    )
    titles = (train_title, test_title)
    prepared = PreparedData(
        train=random_subset(train, args.max_train_samples, seed),
        eval=random_subset(test, args.max_eval_samples, seed),
        test=None,
        labels=plan.shared,
        protocol=_protocol(titles, plan),
        card_name=f"{train_title} -> {test_title} (cross-corpus)",
        card_split=f"all of {test_title}, shared classes",
        card_type=args.test_corpus,
        card_training=_training_source(args, train_title),
    )
    return CrossCorpusData(
        prepared, plan, random_subset(test_all, args.max_eval_samples, seed), titles, (len(train_all), len(test_all))
    )


def zero_shot_metrics(trainer, dataset: datasets.Dataset, labels: list[str]) -> dict:
    """Metrics of the trained model on `dataset` scored against `labels` (its own label names) through the prompts.

    The model is re-labelled for the evaluation (its prompts follow `config.emotion_labels`) and restored after.
    """
    model = trainer.model
    trained, scorer = list(model.config.emotion_labels), trainer.compute_metrics
    model.config.emotion_labels = list(labels)
    trainer.compute_metrics = make_compute_metrics(labels, gender_names=model.config.gender_labels)
    try:
        metrics = trainer.evaluate(dataset, metric_key_prefix="zero_shot")
    finally:
        model.config.emotion_labels = trained
        trainer.compute_metrics = scorer
    return {**metrics, "zero_shot_samples": len(dataset)}


def _scores(metrics: dict, prefix: str) -> dict:
    keys = ("samples", "uar", "war", "macro_f1")
    scores = {key: metrics.get(f"{prefix}_{key}") for key in keys}
    start = f"{prefix}_uar_"
    scores.update({key[len(prefix) + 1 :]: value for key, value in metrics.items() if key.startswith(start)})
    return scores


def build_report(args: CrossCorpusArguments, data: CrossCorpusData, metrics: dict, zero_shot: dict | None) -> dict:
    plan = data.plan
    side = {
        name: {
            "kind": getattr(args, f"{name}_corpus"),
            "name": title,
            "data_dir": str(getattr(args, f"{name}_data_dir")),
            "utterances": size,
        }
        for name, title, size in zip(("train", "test"), data.titles, data.sizes)
    }
    return {
        "train_corpus": side["train"],
        "test_corpus": side["test"],
        "label_map": cross_corpus_label_map(args.calm_as_neutral),
        "shared_classes": plan.shared,
        "num_shared_classes": len(plan.shared),
        "only_in_train": plan.only_in_train,
        "only_in_test": plan.only_in_test,
        "unmatched_test_utterances": sum(plan.only_in_test.values()),
        "closed_set": _scores(metrics, "eval"),
        "zero_shot": None if zero_shot is None else {"labels": plan.test_labels, **_scores(zero_shot, "zero_shot")},
    }


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def format_report(report: dict) -> str:
    train, test = report["train_corpus"]["name"], report["test_corpus"]["name"]
    lines = [
        f"Cross-corpus: trained on {train}, tested zero-shot on {test}",
        "",
        f"Shared classes ({report['num_shared_classes']}): {', '.join(report['shared_classes'])}",
        f"Only in {train} (not trained): {report['only_in_train'] or 'none'}",
        f"Only in {test} ({report['unmatched_test_utterances']} utterances, not scored closed-set): "
        f"{report['only_in_test'] or 'none'}",
        "",
    ]
    rows = [("shared classes", report["closed_set"])]
    if report["zero_shot"]:
        rows.append((f"zero-shot, {test}'s {len(report['zero_shot']['labels'])} labels", report["zero_shot"]))
    genders = sorted({key for _, scores in rows for key in scores if key.startswith("uar_")})
    header = ["scored on", "#utts", "UAR (%)", "WAR (%)", "Macro-F1 (%)", *[f"UAR {g[4:]} (%)" for g in genders]]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, scores in rows:
        cells = [name, str(scores["samples"])] + [_percent(scores.get(k)) for k in ("uar", "war", "macro_f1", *genders)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(output_dir: str, report: dict) -> str:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = format_report(report)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / REPORT_MARKDOWN).write_text(text, encoding="utf-8")
    return text


def run_cross_corpus(
    model_args: ModelArguments, args: CrossCorpusArguments, training_args: GEmoClapTrainingArguments
) -> dict:
    """Train on A, save the model and card, score B (shared classes; all of B's labels with --zero_shot_labels)."""
    setup_logging(training_args)
    run_args, push, token = trainer_arguments(training_args, args)
    checkpoint = resolve_checkpoint(run_args)
    set_seed(run_args.seed)
    data = prepare_cross_corpus(args, seed=run_args.seed)
    trainer, metrics, confusion = fit_and_evaluate(model_args, args, run_args, data.prepared, checkpoint)
    zero_shot = zero_shot_metrics(trainer, data.test_all, data.plan.test_labels) if args.zero_shot_labels else None
    write_reports(trainer, metrics, confusion, data.prepared, model_args, args, run_args.hub_model_id)
    report = build_report(args, data, metrics, zero_shot)
    if trainer.is_world_process_zero():
        print(write_report(run_args.output_dir, report))
    if push:
        push_final_model(trainer, token)
    return report


__all__ = [
    "CROSS_CORPUS_ARGUMENT_CLASSES",
    "CrossCorpusArguments",
    "build_report",
    "format_report",
    "prepare_cross_corpus",
    "run_cross_corpus",
    "zero_shot_metrics",
]
