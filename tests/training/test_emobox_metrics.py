"""EmoBox's scores: a hand-computed example, and scikit-learn's calls of EmoBox's `EmoEval.ComputePerformance`."""

import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from gemo_clap_hf.metrics import compute_ser_metrics
from gemo_clap_hf.metrics.emobox import emobox_row, emobox_scores

# Class 3 is predicted once but never referenced; supports differ (4, 2, 2), so macro and weighted F1 differ.
REFERENCES = [0, 0, 0, 0, 1, 1, 2, 2]
PREDICTIONS = [0, 0, 0, 1, 1, 0, 2, 3]
GENDERS = ["female"] * 4 + ["male"] * 4


def test_hand_computed_example():
    scores = emobox_scores(REFERENCES, PREDICTIONS, GENDERS)
    # recalls 3/4, 1/2, 1/2 over the three referenced classes
    assert scores["ua"] == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert scores["wa"] == scores["micro_f1"] == pytest.approx(5 / 8)
    # F1: class 0 P=3/4 R=3/4; class 1 P=1/2 R=1/2; class 2 P=1 R=1/2 -> 2/3; class 3 (only predicted) 0
    assert scores["macro_f1"] == pytest.approx((0.75 + 0.5 + 2 / 3 + 0.0) / 4)
    assert scores["uar_female"] == pytest.approx(0.75) and scores["uar_male"] == pytest.approx(0.5)
    assert scores["num"] == 8


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_equals_emobox_s_sklearn_formula_macro_not_weighted():
    scores = emobox_scores(REFERENCES, PREDICTIONS)
    assert scores["wa"] == pytest.approx(accuracy_score(REFERENCES, PREDICTIONS))
    assert scores["ua"] == pytest.approx(balanced_accuracy_score(REFERENCES, PREDICTIONS))
    assert scores["micro_f1"] == pytest.approx(f1_score(REFERENCES, PREDICTIONS, average="micro"))
    assert scores["macro_f1"] == pytest.approx(f1_score(REFERENCES, PREDICTIONS, average="macro", zero_division=0))
    weighted = f1_score(REFERENCES, PREDICTIONS, average="weighted", zero_division=0)
    assert abs(scores["macro_f1"] - weighted) > 0.1  # the fixture tells the two averages apart


def test_label_names_work_like_ids():
    names = ["neu", "hap", "sad", "ang"]
    scores = emobox_scores([names[i] for i in REFERENCES], [names[i] for i in PREDICTIONS])
    assert scores == pytest.approx(emobox_scores(REFERENCES, PREDICTIONS))


def test_trainer_metrics_under_emobox_names_equal_emobox_scores():
    """The Trainer reports the ser_metrics module's numbers; under EmoBox's names they are EmoBox's."""
    labels = ["neutral", "happy", "sad", "angry"]
    metrics = compute_ser_metrics(PREDICTIONS, REFERENCES, labels, GENDERS)
    row = emobox_row({f"test_{k}": v for k, v in metrics.items()} | {"test_samples": 8}, "test")
    expected = emobox_scores(REFERENCES, PREDICTIONS, GENDERS)
    assert row == pytest.approx(expected)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_unknown_gender_has_no_uar_of_its_own():
    """A corpus without gender for some speakers ("" = unknown): no `uar_` key; the known genders' UARs are those
    of their own utterances (scikit-learn's balanced accuracy on each subset), and the overall scores use all."""
    genders = ["female", "", "male", "", "female", "", "male", "female"]
    scores = emobox_scores(REFERENCES, PREDICTIONS, genders)
    assert sorted(key for key in scores if key.startswith("uar")) == ["uar_female", "uar_male"]
    for gender in ("female", "male"):
        subset = [i for i, g in enumerate(genders) if g == gender]
        expected = balanced_accuracy_score([REFERENCES[i] for i in subset], [PREDICTIONS[i] for i in subset])
        assert scores[f"uar_{gender}"] == pytest.approx(expected)
    assert scores["ua"] == pytest.approx(balanced_accuracy_score(REFERENCES, PREDICTIONS)) and scores["num"] == 8

    labels = ["neutral", "happy", "sad", "angry"]
    metrics = compute_ser_metrics(PREDICTIONS, REFERENCES, labels, genders)
    row = emobox_row({f"test_{k}": v for k, v in metrics.items()} | {"test_samples": 8, "test_uar_": 0.5}, "test")
    assert "uar_" not in row and row == pytest.approx(scores)


PER_UTTERANCE = r"^emobox_scores needs one reference, one prediction \(and one gender\) per utterance\.$"


@pytest.mark.parametrize(
    "references, predictions, genders, message",
    [
        ([0, 1], [0], None, PER_UTTERANCE),
        ([0, 1], [0, 1], ["female"], PER_UTTERANCE),
        ([], [], None, r"^emobox_scores needs at least one utterance\.$"),
    ],
)
def test_mismatched_or_empty_inputs_are_refused_with_what_is_needed(references, predictions, genders, message):
    with pytest.raises(ValueError, match=message):
        emobox_scores(references, predictions, genders)
