"""The README's code blocks, run as a reader runs them, top to bottom.

The Hub cannot be reached here, so the one substitution is the model: "org/sl-gemo-clap" becomes a tiny saved
checkpoint (and, in the fine-tuning command, the Hub towers become tiny towers with the same structure and the
IEMOCAP folder becomes an IEMOCAP-layout fixture). Everything else runs as written, in a folder holding the files
the blocks name (`speech.wav`, `calls/`, `my_corpus/manifest.csv`).
"""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.cli.main import build_parser
from gemo_clap_hf.data.synthetic.recording import synthetic_recording
from tests.helpers.tiny_models import random_clip, save_tiny_checkpoint
from tests.helpers.training_helpers import REPO, describe, make_training_inputs, script_env

pytestmark = pytest.mark.slow  # the README's commands, run as written (`make test-fast` skips them)

README = (REPO / "README.md").read_text(encoding="utf-8")
HUB_ID = "org/sl-gemo-clap"
BLOCKS = re.findall(r"```(python|bash)\n(.*?)```", README, re.DOTALL)
CONSOLE_SCRIPT = Path(sys.executable).parent / "gemo-clap"


def blocks(language: str, containing: str = "") -> list[str]:
    return [code for kind, code in BLOCKS if kind == language and containing in code]


def commands(block: str) -> list[list[str]]:
    """Each shell command of a block (continuation lines joined, comments dropped), split as the shell would."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The reader's folder: a model, a speech file, a folder of calls and a manifest."""
    root = tmp_path_factory.mktemp("reader")
    save_tiny_checkpoint(root / "model")
    sf.write(root / "speech.wav", random_clip(1.5, seed=3), 16000)
    for index, seconds in enumerate((0.7, 1.2, 2.0)):
        folder = root / "calls" / ("day1" if index < 2 else "day2")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"call{index}.wav", random_clip(seconds, sampling_rate=8000, seed=index), 8000)
    corpus = root / "my_corpus"
    corpus.mkdir()
    for index in range(3):
        sf.write(corpus / f"u{index}.wav", random_clip(0.5 + index / 4, seed=10 + index), 16000)
    rows = "".join(f"u{i}.wav,{emotion},female\n" for i, emotion in enumerate(("happy", "sad", "angry")))
    (corpus / "manifest.csv").write_text("path,emotion,gender\n" + rows)
    waveform, _ = synthetic_recording(40, utterance_s=(2.5, 3.5))
    sf.write(root / "recording.wav", waveform, 16000)
    return root


def swap_model(workdir: Path, argv: list[str]) -> list[str]:
    """A `gemo-clap ...` command of the README with the console script's path and the tiny checkpoint."""
    assert argv[0] == "gemo-clap" and HUB_ID in argv
    return [str(CONSOLE_SCRIPT), *(str(workdir / "model") if a == HUB_ID else a for a in argv[1:])]


def run_in(workdir: Path, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=workdir, env=script_env(), capture_output=True, text=True, timeout=timeout)


def test_the_two_commands_are_make_targets():
    [block] = blocks("bash", "make demo")
    assert [command[:2] for command in commands(block)] == [["make", "demo"], ["make", "test"]]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo: setup$", makefile, re.M) and re.search(r"^test: setup$", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_python_block_runs_in_order(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    for code in blocks("python"):
        code = code.replace(repr(HUB_ID).replace("'", '"'), repr(str(workdir / "model")))
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code is what is tested
    labels = list(namespace["classifier_model"].config.id2label.values())
    assert namespace["out"].logits_per_audio.shape == (2, 2)
    assert namespace["label_scores"].shape == (2, len(labels)) and namespace["logits"].shape == (2, len(labels))
    assert namespace["gender_logits"].shape == (2, 2)
    row = namespace["predictions"][0].to_row()
    assert row["file"] == "speech.wav" and row["emotion"] in labels
    assert row["score"] == pytest.approx(max(row[label] for label in labels))
    dataset = namespace["dataset"]
    assert len(dataset) == 3 and set(dataset["predicted"]) <= set(labels)
    assert dataset["length"] == sorted(dataset["length"])


def test_the_bulk_commands_run_as_written(workdir):
    [block] = blocks("bash", "gemo-clap bench")
    predict, bench = commands(block)
    done = run_in(workdir, swap_model(workdir, predict))
    assert done.returncode == 0, describe(done)
    with open(workdir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(Path(row["file"]).name for row in rows) == ["call0.wav", "call1.wav", "call2.wav"]
    done = run_in(workdir, swap_model(workdir, bench))
    assert done.returncode == 0, describe(done)
    assert "3 of 3 files" in done.stdout and "batch   1:" in done.stdout and "batch  16:" in done.stdout


def test_the_onnx_block_exports_and_predicts_with_onnxruntime(workdir, group_export):
    """The export itself runs once per session (tests/helpers/onnx_fixtures.py, through the same CLI with
    `--quantize int8`); the README's export folder `onnx/` is that export, and both predict commands run on it as
    written."""
    [block] = blocks("bash", "export-onnx")
    install, export, *predicts = commands(block)
    assert install == ["pip", "install", "gemo-clap-hf[onnx]"]
    assert re.search(r"^onnx = \[", (REPO / "pyproject.toml").read_text(), re.M)
    args = build_parser().parse_args(export[1:])
    assert (args.command, args.model, args.out_dir, args.quantize) == ("export-onnx", HUB_ID, "onnx/", "int8")
    _, out_dir, printed = group_export
    assert "agreement" in printed and (out_dir / "model.int8.onnx").is_file()
    assert len(predicts) == 2
    for argv in predicts:
        argv = [
            str(CONSOLE_SCRIPT),
            *(a.replace("onnx/", f"{out_dir}/", 1) if a.startswith("onnx/") else a for a in argv[1:]),
        ]
        done = run_in(workdir, argv)
        assert done.returncode == 0, describe(done)
        output = workdir / argv[argv.index("--output") + 1]
        with open(output, newline="") as handle:
            assert sorted(Path(row["file"]).name for row in csv.DictReader(handle)) == [
                "call0.wav",
                "call1.wav",
                "call2.wav",
            ]


def test_the_fine_tuning_command_trains_and_the_folder_loads_in_a_pipeline(tmp_path):
    from transformers import pipeline

    [block] = blocks("bash", "train_gemo_clap.py")
    [argv] = commands(block)
    inputs = make_training_inputs(tmp_path, sessions=(4, 5))
    swaps = {
        "/data/IEMOCAP_full_release": inputs["corpus"],
        "microsoft/wavlm-base-plus": inputs["audio"],
        "roberta-base": inputs["text"],
    }
    # A short run of the same command from the checkout root: the later flags override the README's epochs, crop
    # length and (to keep the checkout clean) output folder.
    output_dir = tmp_path / "runs" / "sl-gemo-clap-iemocap-s5"
    argv = [sys.executable, *(swaps.get(a, a) for a in argv[1:]), "--output_dir", str(output_dir)]
    argv += [
        "--max_steps",
        "2",
        "--max_duration_s",
        "0.5",
        "--projection_dim",
        "16",
        "--use_cpu",
        "--save_strategy",
        "no",
    ]
    done = run_in(REPO, argv, timeout=600)
    assert done.returncode == 0, describe(done)
    for name in ("model.safetensors", "config.json", "README.md", "confusion_matrix.png", "all_results.json"):
        assert (output_dir / name).is_file(), name
    classifier = pipeline("audio-classification", model=str(output_dir))
    scores = classifier(random_clip(1.0, seed=5))
    assert {s["label"] for s in scores} == {"neutral", "happy", "sad", "angry"}
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite([s["score"] for s in scores]).all()


def test_the_long_recording_command_writes_segments_and_a_timeline(workdir):
    [block] = blocks("bash", "--segments")
    install, segments = commands(block)
    assert install == ["pip", "install", "gemo-clap-hf[app]"]
    assert re.search(r"^app = \[", (REPO / "pyproject.toml").read_text(), re.M)
    done = run_in(workdir, swap_model(workdir, segments))
    assert done.returncode == 0, describe(done)
    with open(workdir / "segments.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    starts = [float(row["start"]) for row in rows]
    duration = sf.info(str(workdir / "recording.wav")).duration
    assert len(rows) > 10 and starts == sorted(starts) and float(rows[-1]["end"]) <= duration + 1e-3
    assert all(float(row["end"]) - float(row["start"]) <= 3.0 + 1e-6 for row in rows)  # the 3 s default window
    png = (workdir / "timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_the_web_app_commands(workdir):
    [block] = blocks("bash", "gemo-clap app")
    serve, export = commands(block)
    args = build_parser().parse_args(serve[1:])  # serving is driven through gradio_client in tests/web/test_web_app.py
    assert args.command == "app" and args.model == HUB_ID and args.export_space is None
    done = run_in(workdir, swap_model(workdir, export))
    assert done.returncode == 0, describe(done)
    space = workdir / "my_space"
    assert {"app.py", "requirements.txt", "README.md"} <= {path.name for path in space.iterdir()}
    assert "sdk: gradio" in (space / "README.md").read_text()
