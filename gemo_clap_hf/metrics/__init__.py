"""SER metrics for evaluation and `Trainer`: the local `evaluate` module `ser_metrics`, loaded by path (no Hub)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SER_METRICS_PATH = str(Path(__file__).resolve().parent / "ser_metrics")

__all__ = ["SER_METRICS_PATH", "load_ser_metric", "compute_ser_metrics", "make_compute_metrics", "SerComputeMetrics"]


def load_ser_metric(**load_kwargs):
    """`evaluate.load` of the bundled module by its folder path, so it works with HF_HUB_OFFLINE=1 and no cache."""
    import evaluate

    load_kwargs.setdefault("keep_in_memory", True)  # no arrow cache files or locks on disk for a few thousand ints
    return evaluate.load(SER_METRICS_PATH, **load_kwargs)


@functools.lru_cache(maxsize=1)
def _shared_metric():
    """One loaded module per process: `evaluate.load` copies and imports the script, too slow to repeat per eval."""
    return load_ser_metric()


def compute_ser_metrics(
    predictions: Sequence[int],
    references: Sequence[int],
    label_names: Sequence[str] | None,
    genders: Sequence[str] | None = None,
) -> dict:
    """UAR, WAR, macro-F1, `recall_<label>`, `uar_<gender>` and `confusion_matrix` (see the module's description)."""
    return _shared_metric().compute(
        predictions=[int(p) for p in predictions],
        references=[int(r) for r in references],
        genders=None if genders is None else [str(g) for g in genders],
        label_names=None if label_names is None else list(label_names),
    )


def _first(array_or_tuple):
    """Trainer hands a tuple when the model returns several outputs or labels; the first is the emotion one."""
    return array_or_tuple[0] if isinstance(array_or_tuple, (tuple, list)) else array_or_tuple


class SerComputeMetrics:
    """`Trainer(compute_metrics=...)` callable: scalars only (Trainer logs them); the last confusion matrix is kept."""

    def __init__(self, label_names, genders_for_eval=None, gender_names=None):
        self.label_names = list(label_names)
        self.genders_for_eval = None if genders_for_eval is None else [str(g) for g in genders_for_eval]
        self.gender_names = None if gender_names is None else list(gender_names)
        self.last_confusion_matrix = None

    def _genders(self, label_ids, num_examples):
        """Genders from `genders_for_eval` (eval-set order) or from gender ids carried as the second label array."""
        if self.genders_for_eval is not None:
            if len(self.genders_for_eval) != num_examples:
                raise ValueError(
                    f"genders_for_eval has {len(self.genders_for_eval)} entries but the evaluation produced "
                    f"{num_examples} predictions. Pass the gender column of the exact eval dataset given to the "
                    f"Trainer (same order, after any max_eval_samples/filtering), or genders_for_eval=None."
                )
            return self.genders_for_eval
        if self.gender_names is not None and isinstance(label_ids, (tuple, list)) and len(label_ids) > 1:
            return [self.gender_names[int(i)] for i in np.asarray(label_ids[1]).reshape(-1)]
        return None

    def __call__(self, eval_prediction) -> dict[str, float]:
        scores = np.asarray(_first(eval_prediction.predictions))
        predictions = scores.argmax(axis=-1) if scores.ndim > 1 else scores  # logits (N, C) or ids already
        references = np.asarray(_first(eval_prediction.label_ids)).reshape(-1)
        genders = self._genders(eval_prediction.label_ids, len(references))
        results = compute_ser_metrics(predictions, references, self.label_names, genders)
        self.last_confusion_matrix = results.pop("confusion_matrix")
        return {key: float(value) for key, value in results.items()}


def make_compute_metrics(
    label_names: Sequence[str],
    genders_for_eval: Sequence[str] | None = None,
    gender_names: Sequence[str] | None = None,
) -> SerComputeMetrics:
    """Build the `compute_metrics` for `transformers.Trainer`; read `.last_confusion_matrix` after `evaluate()`."""
    return SerComputeMetrics(label_names, genders_for_eval, gender_names)
