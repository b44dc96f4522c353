"""The scripts on EmoBox corpora: `--dataset emobox --emobox_dataset NAME --fold K`, EmoBox-style results."""

import json

import pytest
from emobox_fixtures import cremad_folds, iemocap_folds, write_emobox
from huggingface_hub import ModelCard
from training_helpers import CV_SCRIPT, TRAIN_SCRIPT, describe, make_training_inputs, quick_flags, run_script

from gemo_clap_hf.training import TrainingInputError, parse_arguments
from gemo_clap_hf.training.data_setup import prepare_data


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("emobox_training")
    inputs = make_training_inputs(root, sessions=(1,))
    emobox = root / "EmoBox"
    write_emobox(emobox, "iemocap", iemocap_folds(per_speaker=4))
    write_emobox(emobox, "cremad", cremad_folds())
    return {**inputs, "emobox": str(emobox)}


def _flags(inputs, output_dir, name, **overrides):
    return quick_flags(
        inputs,
        output_dir,
        dataset="emobox",
        data_dir=inputs["emobox"],
        emobox_dataset=name,
        test_fold=None,
        **overrides,
    )


def test_cross_validate_runs_emobox_s_folds_and_writes_the_emobox_table(inputs, tmp_path):
    output_dir = tmp_path / "cv"
    result = run_script(CV_SCRIPT, _flags(inputs, output_dir, "iemocap", max_steps="1"))
    assert result.returncode == 0, describe(result)
    summary = json.loads((output_dir / "emobox_results.json").read_text())
    assert [row["fold"] for row in summary["folds"]] == ["1", "2"]
    for row in summary["folds"]:
        fold_results = json.loads((output_dir / f"fold_{row['fold']}" / "all_results.json").read_text())
        assert row["num"] == len(iemocap_folds()[int(row["fold"])]["test"]) == 8
        assert row["ua"] == fold_results["eval_uar"] and row["macro_f1"] == fold_results["eval_macro_f1"]
        assert row["wa"] == row["micro_f1"] == fold_results["eval_war"]
        assert row["uar_female"] == fold_results["eval_uar_female"]
    for metric in ("ua", "wa", "macro_f1", "uar_male"):
        assert summary["mean"][metric] == pytest.approx(sum(r[metric] for r in summary["folds"]) / 2)
    table = (output_dir / "emobox_results.md").read_text()
    assert f"| iemocap | {100 * summary['mean']['ua']:.2f} | {100 * summary['mean']['wa']:.2f} |" in table
    card = ModelCard.load(output_dir / "fold_2" / "README.md")
    assert "EmoBox iemocap" in card.text and "EmoBox's iemocap fold 2 as published" in card.text
    assert {r.dataset_split for r in card.data.eval_results} == {"EmoBox fold 2 (test)"}


def test_corpus_without_gender_trains_emo_clap_and_refuses_sl(inputs, tmp_path):
    """EmoBox's CREMA-D without VideoDemographics.csv: no gender; its split shares speakers (a warning)."""
    refused = run_script(TRAIN_SCRIPT, _flags(inputs, tmp_path / "sl", "cremad", fold="1", loss_type="sl"))
    assert refused.returncode == 2, describe(refused)
    assert "EmoBox cremad has no gender labels for 8 of the 8 training utterances" in refused.stderr
    assert "--loss_type emo" in refused.stderr

    result = run_script(TRAIN_SCRIPT, _flags(inputs, tmp_path / "emo", "cremad", fold="1", loss_type="emo"))
    assert result.returncode == 0, describe(result)
    assert "speaker leakage: 2 speakers are in both" in result.stdout + result.stderr
    card = ModelCard.load(tmp_path / "emo" / "README.md").text
    assert "not speaker-independent: 2 speakers are in both training and test" in card


def test_emobox_flags_are_checked(inputs, tmp_path):
    args = parse_arguments(_flags(inputs, tmp_path, "iemocap"))[1]
    with pytest.raises(TrainingInputError, match=r"needs --fold K.*folds \[1, 2\]"):
        prepare_data(args, seed=0)
    args = parse_arguments(quick_flags(inputs, tmp_path, fold="1"))[1]
    with pytest.raises(TrainingInputError, match="--fold apply to --dataset emobox only"):
        prepare_data(args, seed=0)
    args = parse_arguments(_flags(inputs, tmp_path, "iemocap", fold="9"))[1]
    with pytest.raises(TrainingInputError, match=r"iemocap_train_fold_9\.jsonl does not exist"):
        prepare_data(args, seed=0)
