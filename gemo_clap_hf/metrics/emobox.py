"""EmoBox's scores (UA, WA, micro-F1, macro-F1), as its evaluation code defines them, plus UAR per gender.

EmoBox's `EmoBox/EmoEval.py` (`ComputePerformance`) computes, with scikit-learn on label ids:
    WA = accuracy_score, UA = balanced_accuracy_score, micro-F1 = f1_score(average="micro"),
    macro-F1 = f1_score(average="macro").
That file does not run as published (undefined names), so the package computes the same numbers itself, from one
confusion matrix with the helpers of the `ser_metrics` module (scikit-learn is not a dependency of the package;
tests check every number against scikit-learn):
- UA: mean recall over the classes present in the references (balanced_accuracy_score leaves out a class that is
  only predicted) = the package's `uar`.
- WA: accuracy = the package's `war`; micro-F1 equals it for single-label classification (every error is one false
  positive and one false negative).
- macro-F1: unweighted mean F1 over the classes in the references or the predictions, 0 for a class predicted but
  never referenced (f1_score's labels and zero_division) = the package's `macro_f1`. Not the support-weighted mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .ser_metrics.ser_metrics import confusion_matrix, macro_f1, unweighted_average_recall

EMOBOX_METRICS = ("ua", "wa", "micro_f1", "macro_f1")
UNKNOWN_GENDER = ""


def _ids(references: Sequence, predictions: Sequence) -> tuple[np.ndarray, np.ndarray, int]:
    """Label names or ids as ids over the sorted union of both (as scikit-learn's `unique_labels`)."""
    classes = sorted(set(references) | set(predictions))
    index = {label: position for position, label in enumerate(classes)}
    return (
        np.array([index[label] for label in references], dtype=np.int64),
        np.array([index[label] for label in predictions], dtype=np.int64),
        len(classes),
    )


def emobox_scores(references: Sequence, predictions: Sequence, genders: Sequence[str] | None = None) -> dict:
    """`num`, `ua`, `wa`, `micro_f1`, `macro_f1` (fractions) and `uar_<gender>` for each known gender."""
    if len(references) != len(predictions) or (genders is not None and len(genders) != len(references)):
        raise ValueError("emobox_scores needs one reference, one prediction (and one gender) per utterance.")
    if not len(references):
        raise ValueError("emobox_scores needs at least one utterance.")
    refs, preds, num_classes = _ids(references, predictions)
    confusion = confusion_matrix(refs, preds, num_classes)
    accuracy = float(np.trace(confusion) / len(refs))
    scores = {
        "num": len(refs),
        "ua": unweighted_average_recall(confusion),
        "wa": accuracy,
        "micro_f1": accuracy,
        "macro_f1": macro_f1(confusion),
    }
    if genders is not None:
        genders = np.asarray([str(g) for g in genders], dtype=object)
        for gender in sorted(set(genders) - {UNKNOWN_GENDER}):
            subset = genders == gender
            scores[f"uar_{gender}"] = unweighted_average_recall(
                confusion_matrix(refs[subset], preds[subset], num_classes)
            )
    return scores


def emobox_row(metrics: Mapping[str, float], prefix: str) -> dict:
    """A run's held-out metrics (`<prefix>_uar`, ...) under EmoBox's names, with the per-gender UARs.

    The unknown gender "" has no UAR of its own (no `uar_` key), as in `emobox_scores`.

    The Trainer's metrics are the `ser_metrics` module's, which equal EmoBox's (see the module docstring).
    """
    row = {
        "num": metrics.get(f"{prefix}_samples"),
        "ua": metrics[f"{prefix}_uar"],
        "wa": metrics[f"{prefix}_war"],
        "micro_f1": metrics[f"{prefix}_war"],
        "macro_f1": metrics.get(f"{prefix}_macro_f1"),
    }
    start = f"{prefix}_uar_"
    genders = {key[len(start) :]: value for key, value in metrics.items() if key.startswith(start)}
    row.update({f"uar_{gender}": value for gender, value in genders.items() if gender != UNKNOWN_GENDER})
    return row


__all__ = ["EMOBOX_METRICS", "emobox_row", "emobox_scores"]
