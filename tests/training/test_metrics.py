"""SER metrics: every number checked against loops written here and against scikit-learn; Trainer hook; offline load."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import EvalPrediction

from gemo_clap_hf.metrics import SER_METRICS_PATH, compute_ser_metrics, load_ser_metric, make_compute_metrics
from gemo_clap_hf.training.reporting import save_confusion_matrix_png

try:  # the second independent check; the loop-based one below always runs
    from sklearn import metrics as sklearn_metrics
except ImportError:
    sklearn_metrics = None
needs_sklearn = pytest.mark.skipif(sklearn_metrics is None, reason="scikit-learn (test extra) not installed")

LABELS = ["neutral", "happy", "sad", "angry"]


def loop_metrics(predictions, references, num_classes):
    """Reference implementation with plain loops: UAR over classes present in references, WAR, macro-F1."""
    recalls, f1s = {}, []
    for c in range(num_classes):
        support = sum(1 for r in references if r == c)
        predicted = sum(1 for p in predictions if p == c)
        hits = sum(1 for p, r in zip(predictions, references) if p == c and r == c)
        if support:
            recalls[c] = hits / support
        if support or predicted:
            precision = hits / predicted if predicted else 0.0
            recall = hits / support if support else 0.0
            f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    correct = sum(1 for p, r in zip(predictions, references) if p == r)
    return {
        "uar": sum(recalls.values()) / len(recalls),
        "war": correct / len(references),
        "macro_f1": sum(f1s) / len(f1s),
        "recalls": recalls,
    }


def assert_matches_independent(result, predictions, references, label_names):
    expected = loop_metrics(predictions, references, len(label_names))
    for key in ("uar", "war", "macro_f1"):
        assert result[key] == pytest.approx(expected[key]), key
    recall_keys = {key for key in result if key.startswith("recall_")}
    assert recall_keys == {f"recall_{label_names[c]}" for c in expected["recalls"]}
    for c, recall in expected["recalls"].items():
        assert result[f"recall_{label_names[c]}"] == pytest.approx(recall)
    if sklearn_metrics is not None:
        assert_matches_sklearn(result, predictions, references, label_names)


def assert_matches_sklearn(result, predictions, references, label_names):
    present = sorted(set(references))
    assert result["uar"] == pytest.approx(
        sklearn_metrics.recall_score(references, predictions, labels=present, average="macro", zero_division=0)
    )
    assert result["war"] == pytest.approx(sklearn_metrics.accuracy_score(references, predictions))
    assert result["macro_f1"] == pytest.approx(
        sklearn_metrics.f1_score(references, predictions, average="macro", zero_division=0)
    )
    assert (
        result["confusion_matrix"]
        == sklearn_metrics.confusion_matrix(references, predictions, labels=list(range(len(label_names)))).tolist()
    )


def test_imbalanced_uar_differs_from_war():
    # 8 neutral (all right), 2 happy (both wrong): WAR 0.8 but UAR 0.5; sad and angry absent from both.
    references = [0] * 8 + [1] * 2
    predictions = [0] * 8 + [0] * 2
    result = compute_ser_metrics(predictions, references, LABELS)
    assert result["war"] == pytest.approx(0.8)
    assert result["uar"] == pytest.approx(0.5)
    assert_matches_independent(result, predictions, references, LABELS)


def test_class_never_predicted():
    references = [0, 0, 1, 1, 2, 2, 3, 3]
    predictions = [0, 1, 1, 1, 0, 1, 3, 0]  # sad (2) never predicted: recall 0, F1 0
    result = compute_ser_metrics(predictions, references, LABELS)
    assert result["recall_sad"] == 0.0
    assert_matches_independent(result, predictions, references, LABELS)


def test_class_absent_from_references_is_left_out_of_uar():
    references = [0, 0, 1, 1, 3, 3]  # no sad reference
    predictions = [0, 2, 1, 1, 3, 2]  # but sad is predicted twice
    result = compute_ser_metrics(predictions, references, LABELS)
    assert "recall_sad" not in result
    assert result["uar"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert_matches_independent(result, predictions, references, LABELS)


@needs_sklearn
def test_sklearn_default_macro_recall_would_count_an_absent_class_as_zero():
    references, predictions = [0, 0, 1, 1, 3, 3], [0, 2, 1, 1, 3, 2]
    sklearn_default = sklearn_metrics.recall_score(references, predictions, average="macro", zero_division=0)
    assert compute_ser_metrics(predictions, references, LABELS)["uar"] != pytest.approx(sklearn_default)


def test_per_gender_uar_is_uar_within_each_subset():
    references = [0, 1, 2, 3, 0, 1, 2, 3, 0, 0]
    predictions = [0, 1, 2, 0, 1, 1, 0, 3, 0, 2]
    genders = ["female"] * 4 + ["male"] * 4 + ["female", ""]  # "" = unknown: in overall figures only
    result = compute_ser_metrics(predictions, references, LABELS, genders)
    assert set(key for key in result if key.startswith("uar_")) == {"uar_female", "uar_male"}
    for gender in ("female", "male"):
        idx = [i for i, g in enumerate(genders) if g == gender]
        sub_refs, sub_preds = [references[i] for i in idx], [predictions[i] for i in idx]
        assert result[f"uar_{gender}"] == pytest.approx(loop_metrics(sub_preds, sub_refs, 4)["uar"])
        if sklearn_metrics is not None:
            assert result[f"uar_{gender}"] == pytest.approx(
                sklearn_metrics.recall_score(sub_refs, sub_preds, labels=sorted(set(sub_refs)), average="macro")
            )
    assert_matches_independent(result, predictions, references, LABELS)


@needs_sklearn
@pytest.mark.parametrize("seed", range(5))
def test_random_cases_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    references = rng.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05]).tolist()
    predictions = rng.integers(0, 4, size=n).tolist()
    assert_matches_independent(compute_ser_metrics(predictions, references, LABELS), predictions, references, LABELS)


def test_ids_name_the_keys_without_label_names():
    result = compute_ser_metrics([0, 2, 2], [0, 1, 2], None)
    assert {"recall_0", "recall_1", "recall_2"} <= set(result)
    assert len(result["confusion_matrix"]) == 3


@pytest.mark.parametrize(
    "predictions, references, genders, message",
    [
        ([0, 1, 1], [0, 1], None, "differ in length"),
        ([0, 1], [0, 1], ["female"], "differ in length"),
        ([0, 7], [0, 1], None, "unknown label id 7"),
        ([0, 1], [0, -1], None, "unknown label id -1"),
    ],
)
def test_bad_inputs_name_the_problem(predictions, references, genders, message):
    with pytest.raises(ValueError, match=message):
        compute_ser_metrics(predictions, references, LABELS, genders)


def test_streaming_add_batch_with_and_without_genders():
    metric = load_ser_metric()
    metric.add_batch(predictions=[0, 1], references=[0, 0], genders=["female", "male"])
    metric.add_batch(predictions=[2], references=[2])  # genders left out: unknown
    result = metric.compute(label_names=LABELS)
    assert result["war"] == pytest.approx(2 / 3)
    assert result["uar_female"] == 1.0 and result["uar_male"] == 0.0


def test_compute_metrics_for_trainer_from_logits():
    logits = np.array([[3.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1.0], [0, 5.0, 0, 0], [0, 0, 1.0, 0]])
    labels = np.array([0, 1, 3, 0, 2])
    compute_metrics = make_compute_metrics(LABELS, genders_for_eval=["female", "male", "female", "male", "male"])
    result = compute_metrics(EvalPrediction(predictions=(logits, np.zeros((5, 8))), label_ids=labels))
    assert all(type(value) is float for value in result.values())  # Trainer logs scalars only
    assert "confusion_matrix" not in result and compute_metrics.last_confusion_matrix[0] == [1, 1, 0, 0]
    assert result["war"] == pytest.approx(0.8)
    assert result["uar"] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert result["uar_male"] == pytest.approx((0 + 1 + 1) / 3)
    assert make_compute_metrics(LABELS)(EvalPrediction(predictions=logits, label_ids=labels)) == {
        key: value for key, value in result.items() if not key.startswith("uar_")
    }


def test_compute_metrics_reads_gender_ids_from_second_label_array():
    logits = np.eye(4)
    labels = (np.arange(4), np.array([0, 1, 0, 1]))
    result = make_compute_metrics(LABELS, gender_names=["female", "male"])(EvalPrediction(logits, labels))
    assert result["uar_female"] == 1.0 and result["uar_male"] == 1.0


def test_compute_metrics_rejects_misaligned_genders():
    compute_metrics = make_compute_metrics(LABELS, genders_for_eval=["female"])
    with pytest.raises(ValueError, match="genders_for_eval has 1 entries but the evaluation produced 2"):
        compute_metrics(EvalPrediction(predictions=np.eye(4)[:2], label_ids=np.array([0, 1])))


def test_loads_by_path_offline_with_an_empty_cache(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    script = (
        "import json, evaluate; "
        f"m = evaluate.load({SER_METRICS_PATH!r}); "
        "print(json.dumps(m.compute(predictions=[0, 1, 1], references=[0, 1, 0], label_names=['a', 'b'])))"
    )
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["uar"] == pytest.approx(0.75) and result["war"] == pytest.approx(2 / 3)


def test_metric_folder_is_a_package_found_for_the_wheel():
    from setuptools import find_packages

    root = Path(SER_METRICS_PATH).parents[2]  # <root>/gemo_clap_hf/metrics/ser_metrics
    if not (root / "pyproject.toml").is_file():
        pytest.skip("installed from a wheel: nothing to find")
    assert "gemo_clap_hf.metrics.ser_metrics" in find_packages(str(root), include=["gemo_clap_hf*"])


def test_confusion_matrix_png_is_written(tmp_path):
    import matplotlib.image

    result = compute_ser_metrics([0, 1, 1, 0, 3], [0, 1, 0, 0, 3], LABELS)  # sad row empty: drawn as n/a
    path = save_confusion_matrix_png(result["confusion_matrix"], LABELS, tmp_path / "cm" / "fold1.png", title="f1")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    counts_only = save_confusion_matrix_png(result["confusion_matrix"], LABELS, tmp_path / "raw.png", normalize=False)
    assert counts_only.stat().st_size > 5_000


def test_confusion_matrix_png_rejects_mismatched_labels(tmp_path):
    with pytest.raises(ValueError, match="one row per label name"):
        save_confusion_matrix_png([[1, 0], [0, 1]], LABELS, tmp_path / "x.png")
