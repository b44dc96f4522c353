"""Speech-emotion-recognition metrics as a local `evaluate` module: UAR, WAR, macro-F1, per-class and per-gender recall.

Loaded by path (``evaluate.load("<...>/metrics/ser_metrics")``), so it works offline and never touches the Hub.

Why numpy and not scikit-learn: ``evaluate`` copies this script into its module cache and checks that every library it
imports is installed, and scikit-learn is not a dependency of gemo-clap-hf; numpy already is. Computing from the
confusion matrix also pins down the one convention SER papers care about and sklearn's defaults get differently: a
class absent from the references is left out of UAR (sklearn's ``recall_score(average="macro")`` counts it as 0 when it
is predicted). The tests cross-check every number against scikit-learn with explicit ``labels``.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Metrics for speech emotion recognition (SER), computed from one confusion matrix (rows = references, columns =
predictions, in label-id order):

- `uar`: unweighted average recall, the mean of the per-class recalls over the classes that occur in the references.
  A class with no reference utterance has no recall; it is left out of UAR and gets no `recall_<label>` key (a
  leave-one-session-out fold may lack a rare class; counting it as 0 would punish the model for the split).
- `war`: weighted average recall, i.e. accuracy.
- `macro_f1`: mean F1 over the classes that occur in the references or the predictions (a class predicted but never
  referenced has F1 = 0), as scikit-learn's `f1_score(average="macro", zero_division=0)`.
- `recall_<label>`: recall of each class present in the references.
- `uar_<gender>`: UAR within each gender's utterances, when `genders` are given. An empty string means "unknown" and
  is left out of the per-gender figures (not of the overall ones).
- `confusion_matrix`: nested lists of counts.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted label ids.
    references (`list` of `int`): reference label ids.
    genders (`list` of `str`, *optional*): the speaker's gender per utterance from corpus metadata, for `uar_<gender>`.
    label_names (`list` of `str`, *optional*): id -> name, used for the `recall_<label>` keys and the size of the
        confusion matrix. Without it, ids name the keys and the matrix covers ids 0..max id.
Returns:
    dict with `uar`, `war`, `macro_f1` (floats in [0, 1]), `recall_<label>`, `uar_<gender>` and `confusion_matrix`.
Examples:
    >>> metric = evaluate.load("gemo_clap_hf/metrics/ser_metrics")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], label_names=["neutral", "happy"])["uar"]
    0.75
"""

_CITATION = """\
@article{pan2023gemoclap,
  title={GEmo-CLAP: Gender-Attribute-Enhanced Contrastive Language-Audio Pretraining for Accurate Speech Emotion Recognition},
  author={Pan, Yu and Hu, Yanni and Yang, Yuguang and Fei, Wen and Yao, Jixun and Lu, Heng and Ma, Lei and Zhao, Jianjun},
  journal={arXiv preprint arXiv:2306.07848},
  year={2023}
}
"""

UNKNOWN_GENDER = ""


def confusion_matrix(references, predictions, num_classes):
    """Counts with rows = reference id, columns = predicted id."""
    flat = np.asarray(references, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_recall(confusion):
    """Recall per class; NaN for a class with no references (undefined, not 0)."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)


def unweighted_average_recall(confusion):
    """Mean recall over the classes present in the references."""
    recalls = per_class_recall(confusion)
    present = ~np.isnan(recalls)
    return float(recalls[present].mean()) if present.any() else 0.0


def macro_f1(confusion):
    """Mean F1 over classes seen in references or predictions; F1 = 0 where precision + recall = 0."""
    true_pos = np.diag(confusion).astype(np.float64)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    seen = (support + predicted) > 0
    denominator = support + predicted  # 2TP + FP + FN
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)
    return float(f1[seen].mean()) if seen.any() else 0.0


def _check_ids(name, ids, num_classes, label_names):
    """Reject ids that cannot index the confusion matrix, naming the id and the fix."""
    bad = ids[(ids < 0) | (ids >= num_classes)]
    if bad.size:
        known = f"label_names has {num_classes} names {list(label_names)}" if label_names else "ids must be >= 0"
        raise ValueError(
            f"{name} contain the unknown label id {int(bad[0])}: {known}. Pass label_names covering every id "
            f"(config.id2label order), or map labels to ids with config.label2id first."
        )


def _check_lengths(predictions, references, genders):
    """Lengths must agree; say which input is off so the caller can fix the right one."""
    lengths = {"predictions": len(predictions), "references": len(references)}
    if genders is not None:
        lengths["genders"] = len(genders)
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"SER metric inputs differ in length: {lengths}. Give one prediction, one reference "
            f"(and one gender, or '' for unknown) per utterance, in the same order."
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SerMetrics(evaluate.Metric):
    """UAR/WAR/macro-F1 with per-class and per-gender recall; `genders` is an optional input (defaults to unknown)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                    "genders": datasets.Value("string"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2306.07848"],
        )

    # evaluate requires every feature in every call; these three fill `genders` with "unknown" when it is left out.
    def add_batch(self, *, predictions=None, references=None, genders=None, **kwargs):
        """Add a batch of predicted and reference ids, with optional genders."""
        if predictions is not None and references is not None:
            _check_lengths(predictions, references, genders)
            if genders is None:
                genders = [UNKNOWN_GENDER] * len(predictions)
        return super().add_batch(predictions=predictions, references=references, genders=genders, **kwargs)

    def add(self, *, prediction=None, reference=None, genders=None, **kwargs):
        """Add one predicted and reference id, with an optional gender."""
        if prediction is not None and genders is None:
            genders = UNKNOWN_GENDER
        return super().add(prediction=prediction, reference=reference, genders=genders, **kwargs)

    def compute(self, *, predictions=None, references=None, genders=None, **kwargs):
        """Compute the SER metrics (evaluate appends the argument description below)."""
        if predictions is not None and references is not None:
            _check_lengths(predictions, references, genders)
            if genders is None:
                genders = [UNKNOWN_GENDER] * len(predictions)
        return super().compute(predictions=predictions, references=references, genders=genders, **kwargs)

    def _compute(self, predictions, references, genders=None, label_names=None):
        predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
        references = np.asarray(references, dtype=np.int64).reshape(-1)
        genders = np.asarray([UNKNOWN_GENDER] * len(references) if genders is None else genders, dtype=object)
        _check_lengths(predictions, references, genders)
        if label_names is not None:
            label_names = [str(name) for name in label_names]
            num_classes = len(label_names)
        else:
            seen = np.concatenate([predictions, references])
            num_classes = int(seen.max()) + 1 if seen.size else 0
        _check_ids("references", references, num_classes, label_names)
        _check_ids("predictions", predictions, num_classes, label_names)
        names = label_names or [str(i) for i in range(num_classes)]

        confusion = confusion_matrix(references, predictions, num_classes)
        results = {
            "uar": unweighted_average_recall(confusion),
            "war": float((predictions == references).mean()) if references.size else 0.0,
            "macro_f1": macro_f1(confusion),
        }
        for name, recall in zip(names, per_class_recall(confusion)):
            if not np.isnan(recall):
                results[f"recall_{name}"] = float(recall)
        for gender in sorted(set(genders) - {UNKNOWN_GENDER, None}):
            subset = genders == gender
            results[f"uar_{gender}"] = unweighted_average_recall(
                confusion_matrix(references[subset], predictions[subset], num_classes)
            )
        results["confusion_matrix"] = confusion.tolist()
        return results
