"""2 processes × B give the loss and gradients of 1 process × 2B (gloo on CPU, through `accelerate launch`).

`tests/helpers/distributed_loss_check.py` does the work in the launched processes; this file launches it once and
asserts on the JSON it writes. Note: `accelerate launch --cpu --num_processes 2` starts a single process unless
mpirun is configured, so the check is launched with `--multi_gpu` (accelerate's torchrun launcher) and the script asks
`PartialState(cpu=True)` for a gloo process group on CPU, GPUs or not.
"""

import json

import pytest

pytest.importorskip("accelerate")

from tests.helpers.distributed_loss_check import launch  # noqa: E402
from tests.helpers.tiny_models import save_tiny_towers  # noqa: E402

pytestmark = pytest.mark.slow  # 2-process gloo runs of every tower pair (`make test-fast` skips them)

NUM_PROCESSES = 2
TOLERANCE = 1e-5
CASES = [(loss, split) for loss in ("emo", "sl", "ml") for split in ("equal", "unequal")]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Launch the check once for all loss types and splits on the default towers (wavlm-base-plus + roberta-base
    shapes; about 20 s on 2 CPU cores)."""
    root = tmp_path_factory.mktemp("distributed")
    towers = root / "wavlm-base-plus+roberta-base"
    save_tiny_towers(towers)
    output = root / "results.json"
    done = launch(output, [towers], NUM_PROCESSES)
    if done.returncode != 0 or not output.exists():
        log = f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        pytest.fail(f"the distributed check failed (exit {done.returncode}):\n{log}")
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
        assert measured["parameters_agree"], where
        assert measured["loss_abs_diff"] <= TOLERANCE, where
        assert measured["max_grad_scaled_diff"] <= TOLERANCE, (where, measured["worst_parameter"])
        # Not vacuous: real gradients reached every trainable parameter (the towers hold no unused module).
        assert measured["max_grad_abs"] > 1e-3, where
        assert measured["zero_gradient_parameters"] == [], where
        # No host-device sync from the package in a distributed step either: batch sizes are exchanged in host
        # memory (under an NCCL default group, through a gloo side group, which the unequal split takes).
        assert measured["package_syncs"] == [], (where, measured["package_syncs"])
        assert measured["host_side_groups"] >= (split == "unequal"), where
