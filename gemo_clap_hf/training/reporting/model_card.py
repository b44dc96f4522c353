"""Model cards (README.md) for trained GEmo-CLAP models: Hub metadata from huggingface_hub, body from MODEL_CARD.md.

The YAML front matter (tags, base models, the `model-index` with UAR/WAR) is built by `huggingface_hub.ModelCardData`
and `EvalResult`, so the Hub reads it as it reads any other card; the prose comes from the `string.Template` in
`gemo_clap_hf/training/reporting/templates/MODEL_CARD.md`, a packaged copy of the repository's root `MODEL_CARD.md`.
Nothing here reads the environment or talks to the Hub: rendering is a function of its arguments (and of whether a
base model names a local folder: such encoders are named in the text but left out of the `base_model` metadata).
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

TAGS = ["audio-classification", "speech-emotion-recognition", "gemo-clap", "contrastive-learning"]
REQUIRED_CONFIG_KEYS = (
    "loss_type",
    "alpha_e",
    "target_normalization",
    "prompt_template",
    "emotion_labels",
    "gender_labels",
)
EXTRA_DEFAULTS = {
    "model_id": "path/to/saved-model",  # what the how-to-use snippets load
    "model_name": None,  # model-index name and title; default "<variant> on <dataset_name>"
    "license": "apache-2.0",
    "language": "en",  # None for corpora without a language (the synthetic one)
    "datasets": None,  # Hub dataset ids for the metadata; default [dataset_type]
    "training_data": None,  # free text for the "Training data" section
    "confusion_matrix_image": None,  # path relative to the card, e.g. "confusion_matrix.png"
}
LANGUAGES = {"en": "English", "zh": "Chinese", "de": "German", "fr": "French", "es": "Spanish", "ja": "Japanese"}

_SHARE = "a (1 − alpha_e) = {gender_share} share"
VARIANTS = {
    "emo": {
        "name": "Emo-CLAP",
        "description": "**Emo-CLAP** (the paper's baseline): the contrastive targets say which utterances of the batch "
        "share an emotion; the speaker's gender is not used.",
        "gender_role": "Not used in training (Emo-CLAP). The corpus gender metadata serves only to report UAR per "
        "gender below.",
    },
    "sl": {
        "name": "SL-GEmo-CLAP",
        "description": "**SL-GEmo-CLAP** (soft labels): the target of each contrastive row mixes emotion and gender "
        "agreement, alpha_e · M_emotion + (1 − alpha_e) · M_gender, so utterances with the same emotion and the "
        "same recorded speaker gender are pulled together most.",
        "gender_role": "Soft-label training signal: pairs of utterances whose speakers share the gender recorded in "
        f"the corpus get {_SHARE} of the contrastive target. The classifier takes only audio; no gender input "
        "is needed or used at inference.",
    },
    "ml": {
        "name": "ML-GEmo-CLAP",
        "description": "**ML-GEmo-CLAP** (multi-task): the emotion contrastive loss is combined with a second "
        "contrastive loss between the audio and the gender words, encoded by the same text tower: "
        "L = alpha_e · L_emotion + (1 − alpha_e) · L_gender.",
        "gender_role": f"Auxiliary task: a contrastive loss with {_SHARE} of the total aligns the audio with gender "
        "words taken from the corpus metadata. The classifier takes only audio and returns emotions.",
    },
}
NORMALISATIONS = {
    "sum": "`sum` (each target row divided by its sum)",
    "softmax": "`softmax` (row-wise softmax of the match matrix)",
}
_METRIC_PREFIXES = ("", "eval_", "test_", "predict_")


def summarize_config(config) -> dict:
    """The `config_summary` for `render_model_card`, read from a `GEmoClapConfig` (or anything with those fields)."""
    missing = [key for key in REQUIRED_CONFIG_KEYS if not hasattr(config, key)]
    if missing:
        raise ValueError(f"config lacks {missing}; pass a GEmoClapConfig (model.config).")
    summary = {key: getattr(config, key) for key in REQUIRED_CONFIG_KEYS}
    summary["projection_dim"] = getattr(config, "projection_dim", None)
    return summary


def load_template() -> str:
    """The packaged card template (identical to the repository's MODEL_CARD.md; a test keeps them in sync)."""
    return (
        resources.files("gemo_clap_hf.training.reporting")
        .joinpath("templates", "MODEL_CARD.md")
        .read_text(encoding="utf-8")
    )


def _percent(value: float) -> str:
    return f"{100 * value:.2f}"


def _scores(metrics: dict) -> dict:
    """Metric fractions without the Trainer's `eval_`/`test_` prefix, checked to be fractions, not percentages."""
    prefix = next((p for p in _METRIC_PREFIXES if f"{p}uar" in metrics and f"{p}war" in metrics), None)
    if prefix is None:
        raise ValueError(
            f"metrics need 'uar' and 'war' (optionally prefixed eval_/test_); got keys {sorted(metrics)}. "
            "Pass the dict from compute_ser_metrics or Trainer.evaluate()."
        )
    scores = {key[len(prefix) :]: value for key, value in metrics.items() if key.startswith(prefix)}
    for key, value in scores.items():
        if key.startswith(("uar", "war", "macro_f1", "recall_")) and not 0.0 <= float(value) <= 1.0:
            raise ValueError(
                f"metrics[{prefix + key!r}] = {value} is not a fraction in [0, 1]; the card converts to % itself. "
                "Pass the values as compute_ser_metrics returns them."
            )
    return scores


def _config_fields(config_summary: dict) -> dict:
    """Check the config summary and resolve the variant it describes."""
    missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config_summary]
    if missing:
        raise ValueError(f"config_summary lacks {missing}; build it with summarize_config(model.config).")
    loss_type = config_summary["loss_type"]
    if loss_type not in VARIANTS:
        raise ValueError(f"config_summary['loss_type'] = {loss_type!r}; allowed values are {sorted(VARIANTS)}.")
    return {**config_summary, "variant": VARIANTS[loss_type]}


def _extra(extra: dict | None) -> dict:
    unknown = sorted(set(extra or {}) - set(EXTRA_DEFAULTS))
    if unknown:
        raise ValueError(f"extra has unknown keys {unknown}; allowed keys are {sorted(EXTRA_DEFAULTS)}.")
    return {**EXTRA_DEFAULTS, **(extra or {})}


def hub_model_ids(names: Sequence[str]) -> list[str]:
    """The names that are Hub model ids: local folders and paths are left out, as transformers' own cards do, because
    the Hub refuses a README whose `base_model` is not a model id (a push would fail after the whole training run)."""
    ids = []
    for name in names:
        try:
            validate_repo_id(str(name))
        except HFValidationError:
            continue
        if not os.path.isdir(name):
            ids.append(str(name))
    return ids


def _card_data(model_name, scores, dataset_name, dataset_type, split, base_models, options) -> ModelCardData:
    """Hub metadata with a `model-index` holding UAR and WAR in %."""
    results = [
        EvalResult(
            task_type="audio-classification",
            task_name="Speech Emotion Recognition",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=metric,
            metric_name=metric.upper(),
            metric_value=round(100 * float(scores[metric]), 2),
        )
        for metric in ("uar", "war")
    ]
    return ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag="audio-classification",
        license=options["license"],
        language=options["language"],
        tags=list(TAGS),
        datasets=options["datasets"] or [dataset_type],
        metrics=["uar", "war"],
        base_model=hub_model_ids(base_models) or None,
        eval_results=results,
    )


def _rows(cells: Sequence[Sequence[object]]) -> str:
    return "\n".join("| " + " | ".join(str(cell) for cell in row) + " |" for row in cells)


def _result_tables(scores: dict, emotion_labels, gender_labels) -> dict:
    """Markdown rows: overall metrics, recall per class, UAR per gender (with the gap between genders)."""
    overall = [("UAR", _percent(scores["uar"])), ("WAR", _percent(scores["war"]))]
    if "macro_f1" in scores:
        overall.append(("Macro-F1", _percent(scores["macro_f1"])))
    classes = [
        (label, _percent(scores[f"recall_{label}"]) if f"recall_{label}" in scores else "n/a (no references)")
        for label in emotion_labels
    ]
    per_gender = {g: scores[f"uar_{g}"] for g in gender_labels if f"uar_{g}" in scores}
    genders = [(g, _percent(per_gender[g]) if g in per_gender else "n/a (not evaluated)") for g in gender_labels]
    if len(per_gender) > 1:
        gap = 100 * (max(per_gender.values()) - min(per_gender.values()))
        genders.append(("gap (highest − lowest)", f"{gap:.2f} points"))
    return {"results_rows": _rows(overall), "class_rows": _rows(classes), "gender_rows": _rows(genders)}


def _confusion_section(scores: dict, emotion_labels, image: str | None) -> str:
    """The confusion-matrix image if one was saved, else the counts as a table, else nothing."""
    if image:
        return f"Confusion matrix (rows: reference, columns: predicted):\n\n![Confusion matrix]({image})"
    matrix = scores.get("confusion_matrix")
    if not matrix:
        return ""
    header = _rows([["reference \\ predicted", *emotion_labels], ["---"] * (len(emotion_labels) + 1)])
    body = _rows([[label, *row] for label, row in zip(emotion_labels, matrix)])
    return f"Confusion matrix (counts):\n\n{header}\n{body}"


def _prompt_sections(fields: dict) -> dict:
    """The prompt each emotion label becomes, and the gender words when ML-GEmo-CLAP encodes them."""
    template = fields["prompt_template"]
    rows = [(i, label, f"`{template.format(label)}`") for i, label in enumerate(fields["emotion_labels"])]
    gender_words = ", ".join(f"`{g}`" for g in fields["gender_labels"])
    gender_prompts = {
        "emo": f"Gender labels in the corpus metadata, used only for the per-gender evaluation: {gender_words}.",
        "sl": f"Gender labels from the corpus metadata, used for the soft targets: {gender_words}.",
        "ml": f"Gender words encoded by the text tower for the auxiliary loss: {gender_words}.",
    }[fields["loss_type"]]
    return {"prompt_rows": _rows(rows), "gender_prompts": gender_prompts}


def render_model_card(
    config_summary: dict,
    metrics: dict,
    dataset_name: str,
    dataset_type: str,
    split: str,
    protocol: str,
    base_models: list[str],
    extra: dict | None = None,
) -> str:
    """The README.md text for a saved model: Hub metadata plus the filled MODEL_CARD.md template.

    `config_summary` comes from `summarize_config(model.config)`; `metrics` are fractions as returned by
    `compute_ser_metrics` or `Trainer.evaluate()`; `base_models` is [audio encoder, text encoder] (or [] when trained
    from scratch); `extra` may set the keys of `EXTRA_DEFAULTS`.
    """
    fields, scores, options = _config_fields(config_summary), _scores(metrics), _extra(extra)
    if len(base_models) not in (0, 2):
        raise ValueError(f"base_models must be [audio encoder, text encoder] (or [] from scratch); got {base_models}.")
    variant = fields["variant"]
    model_name = options["model_name"] or f"{variant['name']} on {dataset_name}"
    emotion_labels, gender_labels = list(fields["emotion_labels"]), list(fields["gender_labels"])
    gender_share = f"{1 - float(fields['alpha_e']):.2f}"
    card_data = _card_data(model_name, scores, dataset_name, dataset_type, split, base_models, options)
    values = {
        "card_data": card_data.to_yaml(),
        "model_name": model_name,
        "model_id": options["model_id"],
        "variant": variant["name"],
        "variant_description": variant["description"],
        "gender_role": variant["gender_role"].format(gender_share=gender_share),
        "loss_type": fields["loss_type"],
        "alpha_e": fields["alpha_e"] if fields["loss_type"] != "emo" else f"{fields['alpha_e']} (unused by Emo-CLAP)",
        "target_normalization": NORMALISATIONS.get(fields["target_normalization"], fields["target_normalization"]),
        "prompt_template": fields["prompt_template"],
        "projection_dim": fields.get("projection_dim") or "shared",
        "audio_encoder": base_models[0] if base_models else "trained from scratch",
        "text_encoder": base_models[1] if base_models else "trained from scratch",
        "num_labels": len(emotion_labels),
        "labels_inline": ", ".join(emotion_labels),
        "dataset_name": dataset_name,
        "dataset_type": dataset_type,
        "split": split,
        "protocol": protocol,
        "training_data": options["training_data"]
        or f"{dataset_name} (`{dataset_type}`): all utterances outside the evaluation split `{split}`.",
        "language_note": LANGUAGES.get(options["language"], options["language"])
        if options["language"]
        else "non-linguistic or unspecified-language",
        "confusion_matrix": _confusion_section(scores, emotion_labels, options["confusion_matrix_image"]),
        **_prompt_sections(fields),
        **_result_tables(scores, emotion_labels, gender_labels),
    }
    template = re.sub(r"<!-- template-note.*?-->\n*", "", load_template(), count=1, flags=re.DOTALL)
    content = string.Template(template).substitute(values)
    ModelCard(content)  # fails here, not on the Hub, if the metadata does not parse
    return content


def write_model_card(output_dir: str | os.PathLike, *args, **kwargs) -> Path:
    """Render (arguments as for `render_model_card`) and write `output_dir/README.md`; returns its path."""
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_model_card(*args, **kwargs), encoding="utf-8")
    return path
