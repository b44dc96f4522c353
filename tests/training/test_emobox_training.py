"""The scripts on EmoBox corpora: `--dataset emobox --emobox_dataset NAME --fold K`, EmoBox-style results."""

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from gemo_clap_hf.training import TrainingInputError, parse_arguments, run_training
from gemo_clap_hf.training.cross_corpus import CROSS_CORPUS_ARGUMENT_CLASSES, prepare_cross_corpus, run_cross_corpus
from gemo_clap_hf.training.data_setup import prepare_data
from gemo_clap_hf.training.outputs import describe_training_data
from gemo_clap_hf.training.script import script_main
from tests.helpers.corpus_fixtures import make_manifest
from tests.helpers.emobox_fixtures import cremad_folds, iemocap_entry, iemocap_folds, write_emobox
from tests.helpers.training_helpers import (
    CV_SCRIPT,
    REPO,
    TRAIN_SCRIPT,
    describe,
    make_training_inputs,
    quick_flags,
    run_script,
)

CROSS_CORPUS_SCRIPT = REPO / "training_scripts" / "cross_corpus.py"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("emobox_training")
    inputs = make_training_inputs(root, sessions=(1,))
    emobox = root / "EmoBox"
    write_emobox(emobox, "iemocap", iemocap_folds(per_speaker=4))
    write_emobox(emobox, "cremad", cremad_folds())
    return {**inputs, "emobox": str(emobox)}


def _flags(inputs, output_dir, name, **overrides):
    flags = {"dataset": "emobox", "data_dir": inputs["emobox"], "emobox_dataset": name, "test_fold": None}
    return quick_flags(inputs, output_dir, **{**flags, **overrides})


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
    assert "EmoBox iemocap, fold 2: its train file: 8 utterances" in card.text  # not "fold train"
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
    assert "from 2 speakers (gender unknown for all 8 utterances)" in card  # not "2 speakers ( 8)"


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


# ---- bad EmoBox input through the scripts: one line naming the problem, exit 2, never a traceback ----


def _one_class_root(root: Path) -> Path:
    """An EmoBox iemocap fold whose lines all carry one label (angry)."""
    lines = {session: [iemocap_entry(session, s, i, "ang") for i in range(2) for s in "FM"] for session in (1, 2)}
    return write_emobox(root, "iemocap", {1: {"train": lines[2], "test": lines[1]}})


def test_one_emotion_class_exits_with_the_classes_found(inputs, tmp_path):
    root = _one_class_root(tmp_path / "EmoBox")
    result = run_script(TRAIN_SCRIPT, _flags(inputs, tmp_path / "run", "iemocap", fold="1", data_dir=str(root)))
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr
    assert "train_gemo_clap.py: error: EmoBox iemocap fold 1: 1 emotion class found (angry 8 utterances); a " in (
        result.stderr
    )


def _emobox_to_manifest(inputs, tmp_path, labels: list[str], emobox_root=None) -> list[str]:
    """cross_corpus.py flags: train on EmoBox iemocap, test on a manifest of `labels`."""
    rows = [{"path": f"{n}.wav", "emotion": label, "gender": "female"} for n, label in enumerate(labels)]
    manifest = make_manifest(tmp_path / "m.csv", rows)
    argv = quick_flags(inputs, tmp_path / "run", dataset=None, data_dir=None, test_fold=None)
    emobox_root = str(emobox_root or inputs["emobox"])
    argv += ["--train_corpus", "emobox", "--train_data_dir", emobox_root, "--train_emobox_dataset", "iemocap"]
    return argv + ["--test_corpus", "manifest", "--test_data_dir", str(manifest)]


def test_cross_corpus_with_one_shared_class_exits_with_the_classes_found(inputs, tmp_path):
    result = run_script(CROSS_CORPUS_SCRIPT, _emobox_to_manifest(inputs, tmp_path, ["angry", "boredom", "angry"]))
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr
    assert (
        "cross_corpus.py: error: EmoBox iemocap -> custom manifest, classes both share after the cross-corpus label "
        "map: 1 emotion class found (angry 4 utterances)" in result.stderr
    )
    assert "['angry', 'happy', 'neutral', 'sad']" in result.stderr and "['angry', 'boredom']" in result.stderr


def _damage(root: Path, case: str) -> Path:
    folder = root / "data" / "iemocap"
    test = folder / "fold_1" / "iemocap_test_fold_1.jsonl"
    if case == "empty fold file":
        test.write_text("")
        return test
    if case == "label_map.json a list":
        (folder / "label_map.json").write_text('["neu", "ang"]')
        return folder / "label_map.json"
    if case == "non-UTF-8 byte":
        test.write_bytes(test.read_bytes().replace(b"impro04", b"impr\xf604", 1))
        return test
    lines = test.read_text().splitlines()  # "key an object"
    row = json.loads(lines[0])
    lines[0] = json.dumps({**row, "key": {"id": 1}})
    test.write_text("\n".join(lines) + "\n")
    return test


@pytest.mark.parametrize("case", ["empty fold file", "label_map.json a list", "non-UTF-8 byte", "key an object"])
def test_bad_emobox_files_end_in_one_line_naming_the_file(inputs, tmp_path, capsys, case):
    """Both scripts that read EmoBox (train_gemo_clap.py, cross_corpus.py): exit 2 and one line, no traceback."""
    root = write_emobox(tmp_path / "EmoBox", "iemocap", iemocap_folds(per_speaker=1))
    damaged = _damage(root, case)
    argv = _flags(inputs, tmp_path / "run", "iemocap", fold="1", data_dir=str(root))
    assert script_main(run_training, "train_gemo_clap.py", argv) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("train_gemo_clap.py: error: emobox: ") and str(damaged) in message

    argv = _emobox_to_manifest(inputs, tmp_path, ["angry", "sad"], emobox_root=root)
    assert script_main(run_cross_corpus, "cross_corpus.py", argv, CROSS_CORPUS_ARGUMENT_CLASSES) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("cross_corpus.py: error: --train_corpus emobox: emobox: ") and str(damaged) in message


def test_a_test_file_whose_lines_are_all_dropped_is_named_not_a_flag(inputs, tmp_path):
    """MSP-Podcast-like: every test line is "Other", which is not an emotion: the error names EmoBox's file, not
    --test_fold (which --dataset emobox refuses)."""
    label_map = {"neu": "Neutral", "ang": "Angry", "oth": "Other"}
    train = [iemocap_entry(2, s, i, ("neu", "ang")[i]) for i in range(2) for s in "FM"]
    test = [iemocap_entry(1, s, 0, "oth") for s in "FM"]
    root = write_emobox(tmp_path / "EmoBox", "iemocap", {1: {"train": train, "test": test}}, label_map=label_map)
    args = parse_arguments(_flags(inputs, tmp_path, "iemocap", fold="1", data_dir=str(root)))[1]
    with pytest.raises(TrainingInputError, match=r"EmoBox iemocap fold 1: no utterance of its test file is left") as e:
        prepare_data(args, seed=0)
    assert "--test_fold" not in str(e.value)


def test_cross_corpus_card_names_the_training_corpus_not_emobox_s_split_names(inputs, tmp_path):
    argv = _emobox_to_manifest(inputs, tmp_path, ["angry", "sad", "happy"])
    args = parse_arguments(argv, CROSS_CORPUS_ARGUMENT_CLASSES)[1]
    data = prepare_cross_corpus(args, seed=0)
    text = describe_training_data(data.prepared, data.prepared.card_name)
    assert text.startswith("all of EmoBox iemocap (EmoBox's fold 1, train and test files together), the shared ")
    # fold 1's train and test lines of the classes both share: 4 angry, 4 sad, 4 happy (exc merged), not neutral
    assert "folds" not in text and ": 12 utterances" in text
