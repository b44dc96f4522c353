"""Model cards: Hub-parsable metadata with UAR/WAR, the per-gender table and risks, no template leftovers or secrets."""

import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from gemo_clap_hf.metrics import compute_ser_metrics
from gemo_clap_hf.training.reporting.model_card import (
    load_template,
    render_model_card,
    summarize_config,
    write_model_card,
)

LABELS = ["neutral", "happy", "sad", "angry"]
BASE_MODELS = ["microsoft/wavlm-base-plus", "FacebookAI/roberta-base"]
ROOT_TEMPLATE = Path(__file__).resolve().parents[2] / "MODEL_CARD.md"


def config_summary(loss_type="sl"):
    return {
        "loss_type": loss_type,
        "alpha_e": 0.9,
        "target_normalization": "sum",
        "prompt_template": "The speaker is {}.",
        "emotion_labels": LABELS,
        "gender_labels": ["female", "male"],
        "projection_dim": 512,
    }


@pytest.fixture
def metrics():
    references = [0, 0, 0, 1, 1, 2, 3, 3, 2, 1]
    predictions = [0, 0, 1, 1, 1, 2, 3, 0, 2, 1]
    genders = ["female", "male"] * 5
    return compute_ser_metrics(predictions, references, LABELS, genders)


def render(metrics, loss_type="sl", **extra):
    return render_model_card(
        config_summary(loss_type),
        metrics,
        "IEMOCAP",
        "iemocap",
        "session5",
        "5-fold leave-one-session-out; session 5 held out",
        BASE_MODELS,
        extra=extra or None,
    )


@pytest.mark.parametrize("loss_type, variant", [("emo", "Emo-CLAP"), ("sl", "SL-GEmo-CLAP"), ("ml", "ML-GEmo-CLAP")])
def test_card_parses_with_model_index(metrics, loss_type, variant):
    card = ModelCard(render(metrics, loss_type))
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "audio-classification"
    assert {"audio-classification", "speech-emotion-recognition", "gemo-clap", "contrastive-learning"} <= set(data.tags)
    assert data.base_model == BASE_MODELS and data.metrics == ["uar", "war"]
    values = {result.metric_type: result.metric_value for result in data.eval_results}
    assert values == {"uar": round(100 * metrics["uar"], 2), "war": round(100 * metrics["war"], 2)}
    result = data.eval_results[0]
    assert (result.task_type, result.dataset_name, result.dataset_type, result.dataset_split) == (
        "audio-classification",
        "IEMOCAP",
        "iemocap",
        "session5",
    )
    assert variant in card.text and f'loss_type="{loss_type}"' in card.text


def test_card_has_results_gender_table_and_risk_section(metrics):
    text = render(metrics)
    assert f"| UAR | {100 * metrics['uar']:.2f} |" in text
    assert f"| Macro-F1 | {100 * metrics['macro_f1']:.2f} |" in text
    for label in LABELS:
        assert f"| {label} | {100 * metrics[f'recall_{label}']:.2f} |" in text
        assert f"`The speaker is {label}.`" in text
    for gender in ("female", "male"):
        assert f"| {gender} | {100 * metrics[f'uar_{gender}']:.2f} |" in text
    assert "| gap (highest − lowest) |" in text
    assert "## Gender attribute: role and risks" in text
    assert "Do not use this model to infer gender" in text and "not a statement about anyone's" in text
    assert "## Limitations" in text and "arXiv:2306.07848" in text
    assert "trust_remote_code=True" in text and "import gemo_clap_hf" in text


def test_no_template_placeholder_is_left(metrics):
    for loss_type in ("emo", "sl", "ml"):
        text = render(metrics, loss_type, confusion_matrix_image="confusion_matrix.png")
        assert not re.search(r"\$\{?[A-Za-z_]", text), re.findall(r"\$\{?[A-Za-z_]\w*", text)
        assert "template-note" not in text


def test_missing_classes_and_genders_are_marked_not_invented():
    metrics = compute_ser_metrics([0, 1, 1], [0, 1, 0], LABELS)  # no sad/angry references, no genders
    text = render(metrics)
    assert "| sad | n/a (no references) |" in text
    assert "| female | n/a (not evaluated) |" in text and "gap (highest" not in text


def test_trainer_prefixed_metrics_are_accepted(metrics):
    prefixed = {f"eval_{key}": value for key, value in metrics.items() if key != "confusion_matrix"}
    prefixed["eval_loss"] = 1.23
    assert ModelCard(render(prefixed)).data.eval_results[0].metric_value == round(100 * metrics["uar"], 2)


def test_hf_token_in_environment_never_reaches_the_card(metrics, monkeypatch):
    fake_token = "hf_FAKEtokenFAKEtokenFAKEtokenFAKE1234"
    monkeypatch.setenv("HF_TOKEN", fake_token)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", fake_token)
    assert fake_token not in render(metrics, model_id="me/gemo-clap")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"metrics": {"uar": 71.2, "war": 73.0}}, "not a fraction"),
        ({"metrics": {"accuracy": 0.7}}, "need 'uar' and 'war'"),
        ({"loss_type": "kl"}, "allowed values"),
        ({"extra": {"token": "x"}}, "unknown keys"),
        ({"base_models": ["only-audio"]}, "base_models"),
    ],
)
def test_bad_arguments_name_the_problem(metrics, change, message):
    summary = config_summary(change.get("loss_type", "sl"))
    with pytest.raises(ValueError, match=message):
        render_model_card(
            summary,
            change.get("metrics", metrics),
            "IEMOCAP",
            "iemocap",
            "session5",
            "LOSO",
            change.get("base_models", BASE_MODELS),
            extra=change.get("extra"),
        )


def test_write_model_card_writes_a_loadable_readme(metrics, tmp_path):
    path = write_model_card(
        tmp_path / "model",
        config_summary("ml"),
        metrics,
        "Synthetic",
        "synthetic",
        "session5",
        "LOSO",
        [],
        extra={"language": None},
    )
    assert path.name == "README.md"
    card = ModelCard.load(path)
    assert card.data.base_model is None and "trained from scratch" in card.text
    assert "non-linguistic" in card.text


def test_local_encoder_folders_are_named_in_the_text_but_left_out_of_the_metadata(metrics, tmp_path, monkeypatch):
    """The Hub refuses a README whose base_model is not a model id, so a push after training on local towers would
    fail; the settings table still says which folders the model started from."""
    (tmp_path / "towers" / "audio").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for audio in ("towers/audio", str(tmp_path / "towers" / "audio")):  # relative (id-shaped) and absolute
        card = ModelCard(
            render_model_card(
                config_summary(), metrics, "IEMOCAP", "iemocap", "session5", "LOSO", [audio, "FacebookAI/roberta-base"]
            )
        )
        assert card.data.base_model == ["FacebookAI/roberta-base"], audio
        assert f"| Audio encoder | {audio} |" in card.text and "| Text encoder | FacebookAI/roberta-base |" in card.text


def test_card_has_every_section_a_model_user_needs(metrics):
    text = ModelCard(render(metrics)).text
    for heading in (
        "## Model description",
        "## Intended use",
        "## Labels and prompt wording",
        "## Training data",
        "## Evaluation protocol",
        "## Results",
        "## Gender attribute: role and risks",
        "## Limitations",
        "## How to use",
        "## Citation",
    ):
        assert f"\n{heading}\n" in text, heading


def test_summarize_config_reads_the_config_fields():
    class Config:  # stands in for GEmoClapConfig: only the attributes matter
        def __init__(self):
            self.__dict__.update(config_summary("ml"))

    assert summarize_config(Config()) == config_summary("ml")
    with pytest.raises(ValueError, match="GEmoClapConfig"):
        summarize_config(object())


def test_packaged_template_is_identical_to_the_root_model_card():
    if not ROOT_TEMPLATE.is_file():
        pytest.skip("running from an installed wheel: the repository's MODEL_CARD.md is not here")
    assert load_template() == ROOT_TEMPLATE.read_text(encoding="utf-8"), (
        "gemo_clap_hf/training/reporting/templates/MODEL_CARD.md differs from MODEL_CARD.md: edit the root file, "
        "then run "
        "`cp MODEL_CARD.md gemo_clap_hf/training/reporting/templates/MODEL_CARD.md`"
    )
