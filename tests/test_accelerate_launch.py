"""`accelerate launch` with 2 CPU processes (gloo): the script trains on the global batch and saves one model.

accelerate 1.x's `--cpu` launcher starts several CPU processes only through `mpirun` (`--mpirun_hostfile`); without MPI,
`--num_processes 2 --cpu` silently runs a single process. The torchrun launcher (`--multi_gpu`) starts the 2
processes, and the script's `--use_cpu` makes them pick gloo on CPU. That is what this test (and docs/training.md)
uses on machines without GPUs.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from transformers import pipeline

import gemo_clap_hf  # noqa: F401
from tiny_models import random_clip
from training_helpers import REPO, TRAIN_SCRIPT, make_training_inputs, quick_flags, script_env

ACCELERATE = shutil.which("accelerate") or os.path.join(os.path.dirname(sys.executable), "accelerate")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not os.path.exists(ACCELERATE), reason="the accelerate command is not installed")
def test_two_process_cpu_launch_trains_and_saves_one_model(tmp_path):
    inputs = make_training_inputs(tmp_path / "data")
    output_dir = tmp_path / "out"
    launcher = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    # Batch 2 per process = global batch 4 over the 8 training clips.
    argv = quick_flags(inputs, output_dir, per_device_train_batch_size="2", per_device_eval_batch_size="2")
    result = subprocess.run([*launcher, str(TRAIN_SCRIPT), *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=400, env=script_env(OMP_NUM_THREADS="1", ACCELERATE_DISABLE_RICH="1"))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "Process rank 0 of 2" in log and "Process rank 1 of 2" in log
    assert "Total train batch size (w. parallel, distributed & accumulation) = 4" in log

    # One set of outputs, written by the main process only: no per-rank copies, no leftovers.
    names = sorted(path.name for path in output_dir.iterdir())
    for name in ("model.safetensors", "config.json", "all_results.json", "confusion_matrix.png", "README.md"):
        assert names.count(name) == 1, names
    assert not [name for name in names if "rank" in name or name.endswith(".tmp")], names
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["eval_samples"] == 8 and 0.0 <= results["eval_uar"] <= 1.0

    classifier = pipeline("audio-classification", model=str(output_dir))
    assert len(classifier(random_clip(0.7))) == 4
