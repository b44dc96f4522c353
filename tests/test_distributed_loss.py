"""2 processes × B give the loss and gradients of 1 process × 2B (gloo on CPU, through `accelerate launch`).

`tests/distributed_loss_check.py` does the work in the launched processes; this file launches it once and asserts
on the JSON it writes. Note: `accelerate launch --cpu --num_processes 2` starts a single process unless mpirun is
configured, so the check is launched with `--multi_gpu` (accelerate's torchrun launcher) and the script asks
`PartialState(cpu=True)` for a gloo process group on CPU, GPUs or not.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

CHECK_SCRIPT = Path(__file__).with_name("distributed_loss_check.py")
NUM_PROCESSES = 2
TOLERANCE = 1e-5
CASES = [(loss, split) for loss in ("emo", "sl", "ml") for split in ("equal", "unequal")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(output: Path) -> list[str]:
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(NUM_PROCESSES), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(CHECK_SCRIPT), "--output", str(output),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Launch the check once for all loss types and splits (about 20 s on 2 CPU cores)."""
    output = tmp_path_factory.mktemp("distributed") / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECK_SCRIPT.parent), env.get("PYTHONPATH")]))
    done = subprocess.run(launch_command(output), env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not output.exists():
        pytest.fail(f"the distributed check failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return json.loads(output.read_text())


def case(results: dict, loss_type: str, split: str) -> dict:
    return next(c for c in results["cases"] if c["loss_type"] == loss_type and c["split"] == split)


def test_the_check_ran_on_two_gloo_processes(results):
    assert results["world_size"] == NUM_PROCESSES
    assert results["backend"] == "gloo"
    assert {(c["loss_type"], c["split"]) for c in results["cases"]} == set(CASES)


@pytest.mark.parametrize("loss_type, split", CASES)
def test_two_processes_give_the_global_batch_loss_and_gradients(results, loss_type, split):
    found = case(results, loss_type, split)
    sizes = found["sizes"]
    assert len(sizes) == NUM_PROCESSES and (len(set(sizes)) == 1) == (split == "equal")
    for rank, measured in enumerate(found["per_rank"]):
        where = f"{loss_type}/{split} rank {rank}"
        assert measured["loss_abs_diff"] <= TOLERANCE, where
        assert measured["max_grad_scaled_diff"] <= TOLERANCE, (where, measured["worst_parameter"])
        # Not vacuous: real gradients reached (nearly) every parameter and differ from zero.
        assert measured["max_grad_abs"] > 1e-3, where
        assert measured["num_nonzero_gradients"] >= measured["num_parameters"] - 4, where
