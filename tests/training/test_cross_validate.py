"""`training_scripts/cross_validate.py`: every fold trained and tested, the UAR/WAR table with mean ± std."""

import json

import numpy as np
import pytest

from gemo_clap_hf.training import TrainingInputError, cross_validation_folds, parse_arguments, run_cross_validation
from gemo_clap_hf.training.cross_validation import format_table, summarize_folds
from tests.helpers.corpus_fixtures import make_manifest
from tests.helpers.training_helpers import CV_SCRIPT, describe, make_training_inputs, quick_flags, run_script


def test_cross_validate_runs_every_session_and_writes_the_table(tmp_path):
    inputs = make_training_inputs(tmp_path / "data", sessions=(1, 2, 3, 4, 5))
    output_dir = tmp_path / "cv"
    result = run_script(CV_SCRIPT, quick_flags(inputs, output_dir, test_fold=None, max_steps="1"))
    assert result.returncode == 0, describe(result)

    summary = json.loads((output_dir / "cv_results.json").read_text())
    assert [row["fold"] for row in summary["folds"]] == ["1", "2", "3", "4", "5"]
    assert all(row["test_samples"] == 8 for row in summary["folds"])
    for metric in ("uar", "war"):
        values = [row[metric] for row in summary["folds"]]
        assert summary[f"{metric}_mean"] == pytest.approx(np.mean(values))
        assert summary[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1))
    for fold in "12345":
        fold_results = json.loads((output_dir / f"fold_{fold}" / "all_results.json").read_text())
        assert summary["folds"][int(fold) - 1]["uar"] == fold_results["eval_uar"]
        assert (output_dir / f"fold_{fold}" / "confusion_matrix.png").is_file()
        assert (output_dir / f"fold_{fold}" / "model.safetensors").is_file()

    table = (output_dir / "cv_results.md").read_text()
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| fold") and not line.startswith("| ---")
    ]
    assert len(rows) == 6 and rows[-1].startswith("| mean ± std |")
    assert f"{100 * summary['uar_mean']:.2f} ± {100 * summary['uar_std']:.2f}" in rows[-1]
    assert table in result.stdout  # printed too


def test_finished_folds_are_read_not_retrained(tmp_path, monkeypatch):
    """A restarted cross-validation reads the folds that already hold all_results.json."""
    for fold in ("1", "2"):
        (tmp_path / "cv" / f"fold_{fold}").mkdir(parents=True)
        (tmp_path / "cv" / f"fold_{fold}" / "all_results.json").write_text(
            json.dumps({"eval_uar": 0.25 * int(fold), "eval_war": 0.5, "eval_samples": 8})
        )
    inputs = make_training_inputs(tmp_path / "data")
    monkeypatch.setattr(
        "gemo_clap_hf.training.cross_validation.run_training",
        lambda *args: pytest.fail("a finished fold was trained again"),
    )
    summary = run_cross_validation(*parse_arguments(quick_flags(inputs, tmp_path / "cv", test_fold=None)))
    assert [row["uar"] for row in summary["folds"]] == [0.25, 0.5]


def test_corpora_without_sessions_get_speaker_grouped_folds(tmp_path):
    rows = [
        {
            "path": f"s{speaker}_{i}.wav",
            "emotion": ("sad", "angry")[i % 2],
            "gender": ("female", "male")[speaker % 2],
            "speaker": f"spk{speaker}",
        }
        for speaker in range(6)
        for i in range(2)
    ]
    manifest = make_manifest(tmp_path / "manifest.csv", rows)
    data_args = parse_arguments(["--dataset", "manifest", "--data_dir", str(manifest), "--output_dir", str(tmp_path)])[
        1
    ]
    shared, folds = cross_validation_folds(data_args)
    assert shared.num_folds == 5 and folds == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--test_fold", "1"], "drop --test_fold"),
        (["--eval_fold", "2"], "drop --test_fold/--eval_fold"),
        (["--push_to_hub"], "drop --push_to_hub"),
    ],
)
def test_single_run_flags_are_refused(tmp_path, flags, message):
    model_args, data_args, training_args = parse_arguments([*flags, "--output_dir", str(tmp_path)])
    with pytest.raises(TrainingInputError, match=message):
        run_cross_validation(model_args, data_args, training_args)


def test_table_mean_and_std_of_known_folds():
    results = {
        "1": {"eval_uar": 0.5, "eval_war": 0.6, "eval_samples": 10},
        "2": {"eval_uar": 0.7, "eval_war": 0.8, "eval_samples": 12},
    }
    data_args = parse_arguments(["--output_dir", "unused"])[1]
    summary = summarize_folds(results, data_args, "sl")
    assert summary["uar_mean"] == pytest.approx(0.6) and summary["uar_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert "| mean ± std | 60.00 ± 14.14 | 70.00 ± 14.14 | |" in format_table(summary)
