"""Run a training script exactly as `python SCRIPT ARGS...` does, plus test hooks chosen by environment variables.

    python tests/helpers/script_harness.py training_scripts/train_gemo_clap.py --dataset ... (the script's own flags)

GEMO_TEST_PAUSE_AFTER_SAVE=K  once checkpoint-K is saved, create the file GEMO_TEST_READY_FILE names and sleep, so a
                              test can kill the run at a known point in the middle of an epoch.
GEMO_TEST_HUB_RECORD=PATH     replace the Hub client (unreachable from tests) with a mock, and write the arguments
                              of its create_repo/upload_folder calls to PATH as JSON when the script ends.

The hooks go in from outside (a callback passed to `run_training`, a patched `transformers.trainer.hf_api`), so the
script and the package run unchanged.
"""

from __future__ import annotations

import functools
import json
import os
import runpy
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from transformers import TrainerCallback

import gemo_clap_hf.training


class PauseAfterSave(TrainerCallback):
    """Signal, then sleep, once the checkpoint of step `step` is completely written."""

    def __init__(self, step: int, ready_file: Path):
        self.step, self.ready_file = step, ready_file

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.ready_file.write_text(str(os.getpid()))
            time.sleep(600)  # the test kills the process long before this ends
        return control


def _add_pause_callback() -> None:
    step = os.environ.get("GEMO_TEST_PAUSE_AFTER_SAVE")
    if step:
        pause = PauseAfterSave(int(step), Path(os.environ["GEMO_TEST_READY_FILE"]))
        run_training = gemo_clap_hf.training.run_training
        gemo_clap_hf.training.run_training = functools.partial(run_training, callbacks=[pause])


def _record_hub_calls(hf_api: mock.MagicMock, path: Path) -> None:
    api = hf_api.return_value
    calls = {
        name: [
            {"args": [str(a) for a in call.args], "kwargs": {k: str(v) for k, v in call.kwargs.items()}}
            for call in getattr(api, name).call_args_list
        ]
        for name in ("create_repo", "upload_folder")
    }
    path.write_text(json.dumps(calls))


def main() -> None:
    script, sys.argv = sys.argv[1], sys.argv[1:]
    _add_pause_callback()
    record = os.environ.get("GEMO_TEST_HUB_RECORD")
    if not record:
        runpy.run_path(script, run_name="__main__")
        return
    with mock.patch("transformers.trainer.hf_api") as hf_api:
        hf_api.return_value.create_repo.side_effect = lambda repo_id, **kwargs: SimpleNamespace(repo_id=repo_id)
        try:
            runpy.run_path(script, run_name="__main__")
        finally:
            _record_hub_calls(hf_api, Path(record))


if __name__ == "__main__":
    main()
