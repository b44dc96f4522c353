"""Shared by the training-script tests: tiny towers, a fixture corpus, the quick-run flags, and script runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from transformers import TrainerCallback, TrainingArguments

from gemo_clap_hf.demo.towers import save_random_towers
from tests.helpers.corpus_fixtures import make_iemocap_tree

REPO = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO / "training_scripts" / "train_gemo_clap.py"
CV_SCRIPT = REPO / "training_scripts" / "cross_validate.py"
HARNESS = REPO / "tests" / "helpers" / "script_harness.py"


def make_training_inputs(
    root: Path, sessions=(1, 2), seconds: float = 0.6, audio_overrides: dict | None = None
) -> dict:
    """Tiny random towers and an IEMOCAP-layout corpus (2 speakers × 4 utterances per session) under `root`."""
    audio, text = save_random_towers(Path(root) / "towers", size="tiny", audio_overrides=audio_overrides)
    corpus = make_iemocap_tree(Path(root) / "corpus", sessions=sessions, utterances_per_speaker=4, seconds=seconds)
    return {"audio": str(audio), "text": str(text), "corpus": str(corpus)}


def cpu_training_arguments(output_dir, **overrides) -> TrainingArguments:
    """`TrainingArguments` for in-process Trainer tests: CPU, batch 4, seed 0, nothing saved or reported."""
    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    return TrainingArguments(**{**settings, **overrides})


def quick_flags(inputs: dict, output_dir, **overrides) -> list[str]:
    """The flags of a few-step CPU run; `overrides` replace or add flags (value None drops one)."""
    flags = {
        "dataset": "iemocap",
        "data_dir": inputs["corpus"],
        "audio_encoder": inputs["audio"],
        "text_encoder": inputs["text"],
        "test_fold": "2",
        "output_dir": str(output_dir),
        "projection_dim": "16",
        "max_steps": "2",
        "per_device_train_batch_size": "4",
        "per_device_eval_batch_size": "4",
        "max_duration_s": "0.5",
        "learning_rate": "1e-3",
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": "1",
        "use_cpu": True,
        "seed": "0",
        "disable_tqdm": "True",
    }
    flags.update(overrides)
    argv = []
    for key, value in flags.items():
        if value is None:
            continue
        argv += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    return argv


def script_env(**extra) -> dict:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def start_script(
    script: Path, argv: list[str], log: Path | None = None, harness: bool = False, **env
) -> subprocess.Popen:
    """Start a script as a user runs it, or through `script_harness.py` (its test hooks set by `env`).

    stdout and stderr are captured, or both written to `log` (for runs that are killed rather than awaited, whose
    output must not fill a pipe nobody reads).
    """
    command = [sys.executable, *([str(HARNESS)] if harness else []), str(script), *argv]
    if log is None:
        return subprocess.Popen(
            command, cwd=REPO, env=script_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    with open(log, "w") as handle:
        return subprocess.Popen(command, cwd=REPO, env=script_env(**env), stdout=handle, stderr=subprocess.STDOUT)


def run_script(
    script: Path, argv: list[str], timeout: float = 300, harness: bool = False, **env
) -> subprocess.CompletedProcess:
    process = start_script(script, argv, harness=harness, **env)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def describe(result: subprocess.CompletedProcess) -> str:
    """The end of a run's output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"


class StopAfterStep(TrainerCallback):
    """Simulates an interruption: stop once `step` is done (its checkpoint is saved in the same step)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def multi_process_flags(num_processes: int = 2) -> list[str]:
    """`accelerate launch` flags for N CPU processes: the torchrun launcher (`--multi_gpu`), with the script picking
    gloo on CPU (`accelerate launch --cpu --num_processes N` starts a single process unless mpirun is configured)."""
    return [
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
