"""The main job learns: a short SL-GEmo-CLAP run on a small synthetic corpus beats chance on a held-out session,
and the same run with shuffled training labels does not; `gemo-clap demo --fast` runs the whole path end to end.

The learning run is the session's `learned_export` (the demo's `train` with its `LEARNING` settings, through the
synthetic reader). The control goes through `run_training` with the same settings on a manifest of the same corpus
whose rows equal the reader's (checked) except the training rows' emotions, so the comparison isolates the labels
(a broken loss or a label shuffle in the data path would leave the first run at chance too).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from gemo_clap_hf.data import load_corpus
from gemo_clap_hf.demo.run import LEARNING, TEST_SESSION, model_arguments, run_demo, training_arguments

pytestmark = pytest.mark.slow  # demo training runs (`make test-fast` skips them)

# apps/demo.LEARNING: the demo's small towers on a third of its corpus, 1 s crops (tiny towers or fewer clips stay
# at chance within such a budget).
# Chance UAR is 0.25; a model that learned nothing (shuffled labels) stays below this, a working one clears it.
UAR_MARGIN = 0.45


@pytest.fixture(scope="module")
def corpus_rows(learned_export) -> list[dict]:
    """The rows of the corpus the learning run was trained on."""
    return [dict(row) for row in load_corpus("synthetic", learned_export["corpus"])]


def write_manifest(path: Path, rows: list[dict], shuffle_training_labels: bool) -> Path:
    """The corpus as a manifest; with `shuffle_training_labels` the non-test rows' emotions are permuted."""
    emotions = [row["emotion"] for row in rows]
    if shuffle_training_labels:
        train = [i for i, row in enumerate(rows) if row["fold"] != TEST_SESSION]
        permuted = [emotions[i] for i in train]
        random.Random(0).shuffle(permuted)
        for i, emotion in zip(train, permuted):
            emotions[i] = emotion
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "emotion", "gender", "speaker", "fold"])
        writer.writeheader()
        for row, emotion in zip(rows, emotions):
            writer.writerow(
                {
                    "path": row["audio"],
                    "emotion": emotion,
                    "gender": row["gender"],
                    "speaker": row["speaker"],
                    "fold": row["fold"],
                }
            )
    return path


def held_out_uar(tmp_path: Path, rows: list[dict], shuffle_training_labels: bool) -> float:
    from gemo_clap_hf.training import DataArguments, run_training

    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(tmp_path / "manifest.csv", rows, shuffle_training_labels)
    data_args = DataArguments(
        dataset="manifest", data_dir=str(manifest), test_fold=TEST_SESSION, max_duration_s=LEARNING.max_duration_s
    )
    training_args = training_arguments(LEARNING, tmp_path / "model", seed=0)
    training_args.disable_tqdm = True
    results = run_training(model_arguments(LEARNING, tmp_path / "towers", seed=0), data_args, training_args)
    return results["eval_uar"]


def test_training_beats_chance_and_shuffled_labels_do_not(tmp_path, corpus_rows, learned_export):
    manifest = write_manifest(tmp_path / "manifest.csv", corpus_rows, shuffle_training_labels=False)
    from_manifest = load_corpus("manifest", manifest)
    for column in ("audio", "emotion", "gender", "speaker", "fold"):  # the two readers give the same rows
        assert from_manifest[column] == [row[column] for row in corpus_rows], column
    learned = learned_export["uar"]
    shuffled = held_out_uar(tmp_path / "shuffled_labels", corpus_rows, shuffle_training_labels=True)
    assert learned >= UAR_MARGIN, f"held-out UAR {learned:.3f} with true labels; expected >= {UAR_MARGIN}"
    assert shuffled < UAR_MARGIN, f"held-out UAR {shuffled:.3f} with shuffled labels; expected < {UAR_MARGIN}"


def test_fast_demo_runs_end_to_end_and_saves_a_pipeline_ready_model(tmp_path, capsys):
    from transformers import pipeline

    result = run_demo(tmp_path / "demo", seed=0, fast=True)
    report = capsys.readouterr().out
    for section in (
        "Per-class recall",
        "UAR",
        "WAR",
        "UAR per gender",
        'pipeline("audio-classification")',
        "Model folder:",
        "Confusion matrix:",
        "Load it:",
        "gemo-clap predict --model",
    ):
        assert section in report, section
    for label in result.labels:
        assert f"  {label} " in report
    model_dir = tmp_path / "demo" / "model"
    assert result.model_dir == model_dir and (model_dir / "confusion_matrix.png").is_file()
    assert result.clips and all(clip["predicted"] in result.labels for clip in result.clips)
    clip = next((tmp_path / "demo" / "corpus").rglob("*.wav"))
    predictions = pipeline("audio-classification", model=str(model_dir))(str(clip))
    assert {p["label"] for p in predictions} == set(result.labels)
