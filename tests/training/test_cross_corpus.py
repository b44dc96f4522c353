"""`training_scripts/cross_corpus.py` run with the command docs/training.md gives: synthetic model -> manifest."""

import json
import re
import shlex
from collections import Counter

import pytest
from huggingface_hub import ModelCard

from gemo_clap_hf.data import load_corpus
from gemo_clap_hf.data.cross_corpus import harmonise_labels, plan_labels
from tests.helpers.corpus_fixtures import make_manifest
from tests.helpers.training_helpers import REPO, describe, make_training_inputs, quick_flags, run_script

SCRIPT = REPO / "training_scripts" / "cross_corpus.py"

# The test corpus: labels partly shared with the training corpus (neutral, happy, angry), partly its own (fear,
# disgust); "fearful" and "anger" reach the shared names through the cross-corpus label map.
MANIFEST_LABELS = ["neutral", "happy", "anger", "fearful", "disgust", "neutral", "happy", "angry", "fearful", "neutral"]


def _docs_command() -> tuple[str, dict]:
    """The cross-corpus command of docs/training.md: (script, {flag: value or True})."""
    text = (REPO / "docs" / "training.md").read_text()
    section = text.split("\n## Cross-corpus\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    words = shlex.split(block)
    assert words[:2] == ["python", "training_scripts/cross_corpus.py"]
    flags, index = {}, 2
    while index < len(words):
        name = words[index][2:]
        if index + 1 < len(words) and not words[index + 1].startswith("--"):
            flags[name], index = words[index + 1], index + 2
        else:
            flags[name], index = True, index + 1
    return words[1], flags


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cross_corpus")
    inputs = make_training_inputs(root, sessions=(1, 2))
    rows = [
        {"path": f"clips/{n}.wav", "emotion": label, "gender": "female" if n % 2 else "male", "speaker": f"s{n % 3}"}
        for n, label in enumerate(MANIFEST_LABELS)
    ]
    manifest = make_manifest(root / "my_corpus" / "manifest.csv", rows)
    script, flags = _docs_command()
    assert flags["train_corpus"] == "synthetic" and flags["test_corpus"] == "manifest" and flags["zero_shot_labels"]
    # The docs' command with this test's paths, then a few-step run of tiny towers (later flags win in argparse).
    flags.update(train_data_dir=inputs["corpus"], test_data_dir=str(manifest))
    argv = [item for key, value in flags.items() for item in ([f"--{key}"] if value is True else [f"--{key}", value])]
    argv += quick_flags(inputs, root / "run", dataset=None, data_dir=None, test_fold=None)
    result = run_script(REPO / script, argv)
    assert result.returncode == 0, describe(result)
    return {"result": result, "output_dir": root / "run", "inputs": inputs, "manifest": manifest}


def test_report_names_corpora_shared_classes_and_unmatched_counts(run):
    report = json.loads((run["output_dir"] / "cross_corpus_report.json").read_text())
    assert report["train_corpus"]["name"] == "synthetic gender-confounded speech"
    assert report["test_corpus"]["kind"] == "manifest"
    # Independent count: the training corpus' labels through the IEMOCAP codes, the test corpus' as written.
    train = harmonise_labels(load_corpus("synthetic", run["inputs"]["corpus"], all_labels=True), "a")
    test = harmonise_labels(load_corpus("manifest", run["manifest"], all_labels=True), "b")
    assert set(train["emotion"]) == {"neutral", "happy", "sad", "angry", "frustrated"}
    assert report["shared_classes"] == ["neutral", "happy", "angry"]
    assert report["only_in_test"] == {"disgust": 1, "fear": 2}
    assert report["unmatched_test_utterances"] == 3
    assert report["only_in_train"] == {"sad": Counter(train["emotion"])["sad"], "frustrated": 2}
    assert plan_labels(train, test).shared == report["shared_classes"]

    closed, zero_shot = report["closed_set"], report["zero_shot"]
    assert closed["samples"] == 7 and zero_shot["samples"] == 10  # 10 test utterances, 3 of them unmatched
    assert zero_shot["labels"] == ["neutral", "happy", "angry", "disgust", "fear"]
    for scores in (closed, zero_shot):
        assert {"uar", "war", "macro_f1", "uar_female", "uar_male"} <= set(scores)
        assert all(0.0 <= scores[key] <= 1.0 for key in ("uar", "war", "macro_f1"))
    text = (run["output_dir"] / "cross_corpus_report.md").read_text()
    assert "Shared classes (3): neutral, happy, angry" in text and "(3 utterances, not scored closed-set)" in text
    assert text in run["result"].stdout


def test_saved_model_keeps_the_shared_classes_and_the_card_names_both_corpora(run):
    config = json.loads((run["output_dir"] / "config.json").read_text())
    assert config["emotion_labels"] == ["neutral", "happy", "angry"]  # not the zero-shot relabelling
    card = ModelCard.load(run["output_dir"] / "README.md")
    assert "synthetic gender-confounded speech -> custom manifest (cross-corpus)" in card.text
    assert "tested zero-shot on custom manifest" in card.text
    assert {result.dataset_type for result in card.data.eval_results} == {"manifest"}


def test_corpora_without_a_shared_label_are_refused(tmp_path):
    inputs = make_training_inputs(tmp_path, sessions=(1,))
    manifest = make_manifest(tmp_path / "m.csv", [{"path": "a.wav", "emotion": "boredom", "gender": "f"}])
    argv = quick_flags(inputs, tmp_path / "run", dataset=None, data_dir=None, test_fold=None)
    argv += ["--train_corpus", "iemocap", "--train_data_dir", inputs["corpus"]]
    argv += ["--test_corpus", "manifest", "--test_data_dir", str(manifest)]
    result = run_script(SCRIPT, argv)
    assert result.returncode == 2, describe(result)
    assert "the corpora share no emotion label" in result.stderr and "['boredom']" in result.stderr
