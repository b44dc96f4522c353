"""Expensive session fixtures built once per test run, also when pytest-xdist runs the suite in several workers.

Each xdist worker is a process with its own session: a plain session fixture would train or export once per worker.
This is pytest-xdist's documented recipe for that ("Making session-scoped fixtures execute only once"): the first
worker builds into a folder beside the workers' temporary folders, under a file lock, and leaves a JSON description;
the others wait for the lock and read it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

DONE = "built.json"


def built_once(name: str, tmp_path_factory, build: Callable[[Path], dict]) -> dict:
    """`build(folder)`'s JSON-able result, computed once per test run: in the worker that comes first (or in the one
    process without xdist), by the others read back."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / f"shared_{name}"
    with FileLock(f"{root}.lock"):
        done = root / DONE
        if not done.is_file():
            root.mkdir(parents=True, exist_ok=True)
            result = build(root)
            done.write_text(json.dumps(result))  # last: a worker that failed half-way leaves no description
            return result
        return json.loads(done.read_text())
