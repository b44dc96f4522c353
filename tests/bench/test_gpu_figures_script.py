"""`training_scripts/gpu_figures.sh`, the prepared run for a lent GPU, checked on the CPU with tiny towers: every
run it makes writes one JSON object with the figures it asked for (a wrong flag or figure name would only show on
the device, where time is scarce)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the prepared GPU run, end to end on the CPU (`make test-fast` skips them)

SCRIPT = Path(__file__).parents[2] / "training_scripts" / "gpu_figures.sh"
RUNS = {
    **{
        f"bench_{size}_batch{batch}": {"train_step_overhead", "inference_overhead", "host_syncs_per_step"}
        for size in ("base", "large")
        for batch in (8, 32)
    },
    "end_to_end_base_batch32": {"end_to_end"},
}


def test_the_prepared_gpu_run_writes_every_figure(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), "--quick", "--repeats", "1", "--varied_repeats", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    for name, figures in RUNS.items():
        result = json.loads((tmp_path / f"{name}.json").read_text())
        assert figures <= set(result), (name, sorted(result))
        assert result["environment"]["device"] == "cpu"
    end_to_end = json.loads((tmp_path / "end_to_end_base_batch32.json").read_text())["end_to_end"]
    assert end_to_end["batch_size"] == 32 and end_to_end["dataloader_num_workers"] == 4
