"""Confusion-matrix images for cross-validation folds and model cards, drawn headless.

Uses matplotlib's object API with the Agg canvas instead of `pyplot`: no display, no global backend switch, so it is
safe on servers, under `accelerate launch` and inside a user's notebook alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _row_percentages(counts: np.ndarray) -> np.ndarray:
    """Each row as % of its references (per-class recall on the diagonal); rows without references stay 0."""
    support = counts.sum(axis=1, keepdims=True)
    return np.divide(100.0 * counts, support, out=np.zeros(counts.shape), where=support > 0)


def _check_confusion(confusion, label_names) -> np.ndarray:
    """A square count matrix with one row per label name, or a clear error."""
    counts = np.asarray(confusion)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(label_names):
        raise ValueError(
            f"confusion must be square with one row per label name: got shape {counts.shape} for "
            f"{len(label_names)} label names {list(label_names)}. Pass the `confusion_matrix` returned by "
            f"compute_ser_metrics with the same label_names."
        )
    return counts


def save_confusion_matrix_png(
    confusion: Sequence[Sequence[int]],
    label_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    normalize: bool = True,
) -> Path:
    """Write a PNG of the confusion matrix (rows = reference); cells show row % (recall) and counts when normalised."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = _check_confusion(confusion, label_names)
    shown = _row_percentages(counts) if normalize else counts
    size = 1.2 + 0.9 * len(label_names)
    figure = Figure(figsize=(size + 1.2, size), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shown, cmap="Blues", vmin=0, vmax=100 if normalize else max(int(counts.max()), 1))
    figure.colorbar(image, ax=axes, label="% of references" if normalize else "utterances")
    ticks = np.arange(len(label_names))
    axes.set_xticks(ticks, labels=list(label_names), rotation=45, ha="right")
    axes.set_yticks(ticks, labels=list(label_names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("reference")
    if title:
        axes.set_title(title)
    threshold = (100 if normalize else counts.max()) / 2
    support = counts.sum(axis=1)
    for row, col in np.ndindex(counts.shape):
        if not normalize:
            text = str(counts[row, col])
        elif support[row] == 0:
            text = "n/a\n(0)"  # no references: recall is undefined, not 0 %
        else:
            text = f"{shown[row, col]:.1f}%\n({counts[row, col]})"
        colour = "white" if shown[row, col] > threshold else "black"
        axes.text(col, row, text, ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
