"""`training_scripts/train_gemo_clap.py` run as users run it.

Outputs, pipeline loading, JSON config, bad data, Hub push.
"""

import json
import shutil
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import pipeline

import gemo_clap_hf  # noqa: F401  (registers the model and the pipelines)
from gemo_clap_hf.data import load_corpus
from gemo_clap_hf.training import build_parser, parse_arguments, run_training
from tests.helpers.corpus_fixtures import make_manifest
from tests.helpers.tiny_models import random_clip
from tests.helpers.training_helpers import (
    TRAIN_SCRIPT,
    describe,
    make_training_inputs,
    quick_flags,
    run_script,
    start_script,
)

LABELS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_training_inputs(tmp_path_factory.mktemp("training"))


@pytest.fixture(scope="module")
def trained(inputs, tmp_path_factory):
    """One 2-step SL-GEmo-CLAP run on session 1, tested on session 2, through the script."""
    output_dir = tmp_path_factory.mktemp("run") / "sl"
    result = run_script(TRAIN_SCRIPT, quick_flags(inputs, output_dir))
    assert result.returncode == 0, describe(result)
    return output_dir


def test_script_writes_model_processor_metrics_image_and_card(trained):
    for name in (
        "model.safetensors",
        "config.json",
        "processor_config.json",
        "tokenizer_config.json",
        "all_results.json",
        "confusion_matrix.png",
        "README.md",
    ):
        assert (trained / name).is_file(), name
    assert not list(trained.glob("*.bin")) or [p.name for p in trained.glob("*.bin")] == ["training_args.bin"]
    config = json.loads((trained / "config.json").read_text())
    assert config["loss_type"] == "sl" and config["emotion_labels"] == LABELS
    assert config["id2label"] == {str(i): label for i, label in enumerate(LABELS)}
    results = json.loads((trained / "all_results.json").read_text())
    for key in ("eval_uar", "eval_war", "eval_macro_f1", "train_loss", "eval_samples"):
        assert key in results, key
    assert 0.0 <= results["eval_uar"] <= 1.0 and results["eval_samples"] == 8
    assert (trained / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_card_has_model_index_with_held_out_metrics(trained):
    card = ModelCard.load(trained / "README.md")
    results = {result.metric_type: result for result in card.data.eval_results}
    uar = json.loads((trained / "all_results.json").read_text())["eval_uar"]
    assert results["uar"].metric_value == pytest.approx(round(100 * uar, 2))
    assert results["uar"].dataset_type == "iemocap" and results["uar"].dataset_split == "fold 2"
    assert "leave-one-session-out with session 2 held out" in card.text
    assert "confusion_matrix.png" in card.text


def test_model_card_counts_the_training_data(trained, inputs):
    """The card's "Training data" section says what the run trained on: session 1, counted here from the corpus."""
    train = load_corpus("iemocap", inputs["corpus"]).filter(lambda row: row["fold"] == "1")
    text = ModelCard.load(trained / "README.md").text
    section = text.split("\n## Training data\n", 1)[1].split("\n## ", 1)[0]
    assert f"IEMOCAP, fold 1: {len(train)} utterances" in section
    assert f"from {len(set(train['speaker']))} speakers" in section
    for column in ("gender", "emotion"):
        for value, count in Counter(train[column]).items():
            assert f"{value} {count}" in section, (value, section)


def test_saved_folder_classifies_with_the_audio_classification_pipeline(trained):
    classifier = pipeline("audio-classification", model=str(trained))
    result = classifier(random_clip(0.8))
    assert sorted(item["label"] for item in result) == sorted(LABELS)
    assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)


def test_json_config_invocation_with_a_validation_fold(inputs, tmp_path):
    """One JSON file as the only argument; ML-GEmo-CLAP; --eval_fold adds test_* metrics for the held-out fold."""
    corpus = make_training_inputs(tmp_path / "three", sessions=(1, 2, 3))["corpus"]
    config = {
        "dataset": "iemocap",
        "data_dir": corpus,
        "audio_encoder": inputs["audio"],
        "text_encoder": inputs["text"],
        "loss_type": "ml",
        "test_fold": "2",
        "eval_fold": "3",
        "output_dir": str(tmp_path / "out"),
        "projection_dim": 16,
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 4,
        "max_duration_s": 0.5,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
    }
    path = tmp_path / "args.json"
    path.write_text(json.dumps(config))
    result = run_script(TRAIN_SCRIPT, [str(path)])
    assert result.returncode == 0, describe(result)
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert {"eval_uar", "test_uar", "test_war"} <= set(results)
    assert results["test_samples"] == 8 and results["eval_samples"] == 8
    assert json.loads((tmp_path / "out" / "config.json").read_text())["loss_type"] == "ml"
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["uar"] == pytest.approx(
        round(100 * results["test_uar"], 2)
    )


def test_help_documents_every_script_option():
    text = build_parser().format_help()
    for flag in (
        "--audio_encoder",
        "--text_encoder",
        "--loss_type",
        "--alpha_e",
        "--test_fold",
        "--eval_fold",
        "--label_map",
        "--max_duration_s",
        "--skip_bad_files",
        "--num_folds",
        "--overwrite_output_dir",
        "--no_freeze_feature_encoder",
    ):
        assert flag in text, flag
    assert "speaker-grouped k-fold" in text and "{emo,sl,ml}" in text


# ---- bad data: clear errors through the script ----------------------------------------------------------------------


def _bad_cases(inputs, root: Path) -> dict:
    """name -> (argv, text the error must contain)."""
    no_gender = make_manifest(
        root / "no_gender" / "manifest.csv", [{"path": f"a{i}.wav", "emotion": "sad", "speaker": "s"} for i in range(2)]
    )
    absent = make_manifest(
        root / "absent" / "manifest.csv",
        [{"path": "gone.wav", "emotion": "sad", "gender": "female", "fold": "1"}],
        write_audio=False,
    )
    corrupt_root = root / "corrupt"
    shutil.copytree(inputs["corpus"], corrupt_root / "IEMOCAP_full_release")
    bad_wav = next((corrupt_root / "IEMOCAP_full_release" / "Session1").rglob("*_F001.wav"))
    bad_wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    return {
        "missing data dir": (
            quick_flags(inputs, root / "o1", data_dir=str(root / "nowhere")),
            ["does not exist", str(root / "nowhere")],
        ),
        "manifest without gender column": (
            quick_flags(inputs, root / "o2", dataset="manifest", data_dir=no_gender),
            ["lacks the required columns", "gender"],
        ),
        "manifest naming missing files": (
            quick_flags(inputs, root / "o3", dataset="manifest", data_dir=absent, test_fold="1"),
            ["missing", "gone.wav", "--skip_bad_files"],
        ),
        "corrupt wav": (
            quick_flags(inputs, root / "o4", data_dir=str(corrupt_root)),
            ["cannot be read", bad_wav.name, "--skip_bad_files"],
        ),
        "empty test fold": (
            quick_flags(inputs, root / "o5", test_fold="9"),
            ["--test_fold 9", "has no utterances", "'1', '2'"],
        ),
    }


@pytest.fixture(scope="module")
def bad_runs(inputs, tmp_path_factory):
    """Every bad-data run, started together (each fails before training; most of the time is imports)."""
    cases = _bad_cases(inputs, tmp_path_factory.mktemp("bad"))
    processes = {name: start_script(TRAIN_SCRIPT, argv) for name, (argv, _) in cases.items()}
    outputs = {name: process.communicate(timeout=300) for name, process in processes.items()}
    return {name: ((processes[name].returncode, *outputs[name]), cases[name][1]) for name in cases}


@pytest.mark.parametrize(
    "case",
    [
        "missing data dir",
        "manifest without gender column",
        "manifest naming missing files",
        "corrupt wav",
        "empty test fold",
    ],
)
def test_bad_data_fails_with_a_clear_message(bad_runs, case):
    (returncode, stdout, stderr), expected = bad_runs[case]
    assert returncode != 0, stdout[-2000:]
    assert "train_gemo_clap.py: error:" in stderr, stderr[-2000:]
    message = stderr[stderr.index("train_gemo_clap.py: error:") :]
    assert "Traceback" not in message
    for text in expected:
        assert text in message, (text, message)


def test_skip_bad_files_skips_the_corrupt_wav_with_a_count(inputs, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(inputs["corpus"], corpus / "IEMOCAP_full_release")
    next((corpus / "IEMOCAP_full_release" / "Session1").rglob("*_M002.wav")).write_bytes(b"not a wav at all")
    result = run_script(
        TRAIN_SCRIPT, quick_flags(inputs, tmp_path / "out", data_dir=str(corpus), max_steps="1", skip_bad_files=True)
    )
    assert result.returncode == 0, describe(result)
    assert "skipped 1 bad files" in result.stdout + result.stderr
    assert json.loads((tmp_path / "out" / "train_results.json").read_text())["train_samples"] == 7


# ---- Hub push (mocked: the Hub is unreachable here) -----------------------------------------------------------------


def test_push_to_hub_uploads_output_dir_with_our_card_and_never_writes_the_token(inputs, tmp_path):
    secret = "hf_TESTTOKEN0123456789abcdef"
    output_dir = tmp_path / "pushed"
    args = parse_arguments(
        quick_flags(
            inputs, output_dir, max_steps="1", push_to_hub=True, hub_model_id="someone/sl-gemo-clap", hub_token=secret
        )
    )
    with mock.patch("transformers.trainer.hf_api") as hf_api:
        hf_api.return_value.create_repo.return_value.repo_id = "someone/sl-gemo-clap"
        run_training(*args)
    api = hf_api.return_value
    api.create_repo.assert_called_once()
    assert (
        api.create_repo.call_args.args[0] == "someone/sl-gemo-clap"
        and api.create_repo.call_args.kwargs["token"] == secret
    )
    upload = api.upload_folder.call_args.kwargs
    assert upload["repo_id"] == "someone/sl-gemo-clap" and upload["token"] == secret
    assert Path(upload["folder_path"]) == output_dir
    assert ModelCard.load(output_dir / "README.md").data.model_name == "SL-GEmo-CLAP on IEMOCAP"
    assert "someone/sl-gemo-clap" in (output_dir / "README.md").read_text()
    for path in output_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # The model still trains and saves normally (safetensors).
    assert load_file(output_dir / "model.safetensors")
    assert np.isfinite(json.loads((output_dir / "all_results.json").read_text())["eval_uar"])


def test_hub_tokens_from_the_flag_and_the_environment_never_reach_the_output_or_any_file(inputs, tmp_path):
    """The script run as users run it (only the Hub client mocked), with --hub_token and HF_TOKEN both set: neither
    token is printed, logged, or written to any file of output_dir (checkpoints and training_args.bin included)."""
    flag_token, env_token = "hf_FLAGfake0123456789abcdefghijklmn", "hf_ENVfake0123456789abcdefghijklmno"
    output_dir, record = tmp_path / "pushed", tmp_path / "hub_calls.json"
    argv = quick_flags(
        inputs,
        output_dir,
        push_to_hub=True,
        hub_model_id="someone/sl-gemo-clap",
        hub_token=flag_token,
        save_strategy="steps",
        save_steps="1",
    )
    result = run_script(TRAIN_SCRIPT, argv, harness=True, GEMO_TEST_HUB_RECORD=str(record), HF_TOKEN=env_token)
    assert result.returncode == 0, describe(result)
    upload = json.loads(record.read_text())["upload_folder"]
    assert len(upload) == 1 and upload[0]["kwargs"]["token"] == flag_token  # the token did reach the upload
    assert upload[0]["kwargs"]["repo_id"] == "someone/sl-gemo-clap"

    files = [path for path in output_dir.rglob("*") if path.is_file()]
    names = {str(path.relative_to(output_dir)) for path in files}
    assert {
        "training_args.bin",
        "all_results.json",
        "README.md",
        "checkpoint-1/training_args.bin",
        "checkpoint-2/trainer_state.json",
    } <= names
    for token in (flag_token, env_token):
        assert token not in result.stdout and token not in result.stderr
        leaking = [str(path.relative_to(output_dir)) for path in files if token.encode() in path.read_bytes()]
        assert not leaking, f"the token is written to {leaking}"


def test_best_checkpoint_is_chosen_by_uar_unless_told_otherwise():
    """The eval loss depends on the evaluation batch and world size (a contrastive loss over the gathered batch), so
    --load_best_model_at_end picks by UAR unless --metric_for_best_model says otherwise."""
    from gemo_clap_hf.training.arguments import parse_arguments

    common = ["--output_dir", "/tmp/unused", "--eval_strategy", "epoch", "--save_strategy", "epoch"]
    _, _, best = parse_arguments([*common, "--load_best_model_at_end"])
    assert (best.metric_for_best_model, best.greater_is_better) == ("uar", True)
    _, _, chosen = parse_arguments([*common, "--load_best_model_at_end", "--metric_for_best_model", "war"])
    assert chosen.metric_for_best_model == "war"


@pytest.mark.parametrize("flag", ["--gradient_checkpointing", "--activation_checkpointing"])
def test_both_checkpointing_flag_names_turn_checkpointing_on(tmp_path, flag):
    """transformers 5.24 renamed the flag; users' scripts carry either name (the Trainer reads either field)."""
    training_args = parse_arguments([flag, "--output_dir", str(tmp_path)])[2]
    assert training_args.gradient_checkpointing is True and training_args.activation_checkpointing is True
    assert parse_arguments(["--output_dir", str(tmp_path)])[2].gradient_checkpointing is False
