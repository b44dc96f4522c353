"""Mutation testing (`make mutants`): mutmut mutates one module at a time and runs the fast tests that cover it.

Each module runs in its own scratch copy of the checkout (mutmut writes a `mutants/` tree beside the code it
mutates, and its settings live in `pyproject.toml`'s `[tool.mutmut]`, one module per copy), under a wall-clock
budget: mutmut tries the mutants whose tests are fastest first, and what the budget leaves untried is reported as
such, not counted. The score is killed / (killed + survived + timeout-free suspicious) over the mutants tried.

    python -m benchmarks.mutation [--budget-s 400] [--only segments,emobox] [--workdir /tmp/gemo-mutants]

Writes `<workdir>/summary.json` and prints one line per module and every surviving mutant (`mutmut show NAME`
in `<workdir>/<module>` prints its diff). Not part of `make test`: it is CPU heavy (minutes per module).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).parents[1]

# module -> (file mutated, the fast tests that cover it). Slow end-to-end tests are left out on purpose: they
# cover the same code through a longer path and would multiply the run time by the number of mutants.
MODULES: dict[str, tuple[str, list[str]]] = {
    "emobox": (
        "gemo_clap_hf/metrics/emobox.py",
        ["tests/training/test_emobox_metrics.py", "-k", "not trainer_metrics"],
    ),
    "segments": (
        "gemo_clap_hf/inference/segments.py",
        ["tests/inference/test_segments.py", "-k", "windows_cover or merge"],
    ),
    "loss": ("gemo_clap_hf/loss_gemo_clap.py", ["tests/model/test_losses.py"]),
    "padding": (
        "gemo_clap_hf/padding_gemo_clap.py",
        ["tests/model/test_padding_invariance.py", "-k", "masked_group_norm"],
    ),
    # The extractor's messages and its saved folder are tested outside test_long_audio.py: with that file alone, 22 of
    # the first 48 mutants survived (the clip's name in errors, save_pretrained's auto_map). test_remote_code.py cannot
    # run under mutmut: the saved folder's copied code would carry mutmut's trampolines.
    "feature_extraction": (
        "gemo_clap_hf/feature_extraction_gemo_clap.py",
        [
            "tests/model/test_long_audio.py",
            "tests/model/test_bad_input.py",
            "tests/model/test_saved_folder.py",
            "-k",
            "not pipelines and not predict_files",
        ],
    ),
    # test_conventions.py holds the HF-convention checks (the attention_mask alias, return_dict=False, ...): with
    # test_model.py alone, 16 mutants of the alias check survived. Its 2-process run and ONNX export are left out.
    "modeling": (
        "gemo_clap_hf/modeling_gemo_clap.py",
        [
            "tests/model/test_model.py",
            "tests/model/test_conventions.py",
            "tests/model/test_saved_folder.py",
            "-k",
            "not two_process and not exports and not pipelines",
        ],
    ),
    # Its tests need an ONNX export per mutant (about a minute each on an idle 2-core CPU): run it on its own.
    "onnx_quantize": (
        "gemo_clap_hf/inference/onnx_quantize.py",
        ["tests/inference/test_onnx_backend.py", "-k", "int8"],
    ),
}
DEFAULT = [name for name in MODULES if name != "onnx_quantize"]

KILLED = {1, 3, 36, -24, 24, 152, 255}  # a failing test, a pytest error, or a timeout (mutmut's exit codes)
SURVIVED = {0}
NOT_TRIED = {None}
NO_TESTS = {5, 33}


def _mutmut_settings(target: str, tests: list[str], also_copy: list[str]) -> str:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["gemo_clap_hf"]\n'
        f"only_mutate = {toml_list([target])}\n"
        f"also_copy = {toml_list(also_copy)}\n"  # the docs, README and scripts some tests read
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly"]\n'
        # torch is not fork-safe after it has run: fork each mutant from a clean server process
        'process_isolation = "forkserver"\n'
        "use_git_change_detection = false\n"
    )


def _prepare(scratch: Path, target: str, tests: list[str]) -> None:
    """A copy of the checkout's files (tracked or not ignored by git) in `scratch`, with mutmut's settings."""
    if scratch.exists():
        shutil.rmtree(scratch)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, scratch / name)
    also_copy = sorted({Path(name).parts[0] for name in os.listdir(scratch)} - {"gemo_clap_hf", "pyproject.toml"})
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    settings = _mutmut_settings(target, tests, also_copy)
    (scratch / "pyproject.toml").write_text(pyproject + settings, encoding="utf-8")


def _run_with_budget(scratch: Path, budget_s: float) -> float:
    """Run mutmut in `scratch`; past `budget_s` interrupt it (SIGINT: it stops its workers and keeps what it has).
    mutmut runs in a process group of its own, ended whole afterwards (its fork server would outlive it)."""
    mutmut = Path(sys.executable).with_name("mutmut")
    start = time.monotonic()
    with open(scratch / "mutmut.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [str(mutmut), "run", "--max-children", "1"],
            cwd=scratch,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return time.monotonic() - start


def _tally(scratch: Path, target: str) -> dict:
    meta = scratch / "mutants" / (target + ".meta")
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"] if meta.exists() else {}
    killed = sorted(name for name, code in codes.items() if code in KILLED)
    survived = sorted(name for name, code in codes.items() if code in SURVIVED)
    untried = sorted(name for name, code in codes.items() if code in NOT_TRIED)
    no_tests = sorted(name for name, code in codes.items() if code in NO_TESTS)
    other = sorted(name for name in codes if name not in {*killed, *survived, *untried, *no_tests})
    tried = len(killed) + len(survived)
    return {
        "mutants": len(codes),
        "tried": tried,
        "killed": len(killed),
        "survived": survived,
        "not_covered": no_tests,
        "untried": len(untried),
        "other": {name: codes[name] for name in other},
        "score": round(len(killed) / tried, 3) if tried else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=400.0, help="wall-clock seconds per module")
    choices = f"comma-separated modules out of {', '.join(MODULES)} (default: all but onnx_quantize)"
    parser.add_argument("--only", default="", help=choices)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gemo-mutants"))
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name] or DEFAULT
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        parser.error(f"--only: unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    summary_path = args.workdir / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    for name in names:
        target, tests = MODULES[name]
        scratch = args.workdir / name
        _prepare(scratch, target, tests)
        seconds = _run_with_budget(scratch, args.budget_s)
        result = {"file": target, "tests": tests, "seconds": round(seconds), **_tally(scratch, target)}
        summary[name] = result
        summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        score = "n/a" if result["score"] is None else f"{100 * result['score']:.0f}%"
        print(
            f"{name}: {result['killed']}/{result['tried']} killed ({score}), {len(result['survived'])} survived, "
            f"{result['untried']} untried in {result['seconds']} s, {len(result['not_covered'])} not covered "
            f"(of {result['mutants']})",
            flush=True,
        )
        for mutant in result["survived"]:
            print(f"    survived: {mutant}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
