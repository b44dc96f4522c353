"""Where code lives: no import cycle between the package's modules; the library never imports the command line,
the web page or the demo (`cli/`, `web/`, `demo/`; `apps/` holds only deprecated forwards); an installed wheel
carries no measurement harness (`benchmarks/` stays in the checkout)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
PACKAGE = REPO / "gemo_clap_hf"
APPLICATIONS = ("cli", "web", "demo")
DEPRECATED = ("apps", "trainer.py", "_deprecation.py")  # forwards for one release, resolved at run time


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules that `path` imports, anywhere in it (lazy imports in functions too), relative
    imports resolved against its package; `from a import b` counts as importing `a` and `a.b`."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _package_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (names that are attributes, not modules, are dropped)."""
    return {name: {m for m in _imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _is_library(path: Path) -> bool:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] not in APPLICATIONS + DEPRECATED


def test_no_import_cycle_between_the_package_modules():
    assert _find_cycle(_import_graph(_package_modules())) is None


def test_the_cycle_check_finds_a_planted_cycle():
    graph = _import_graph(_package_modules())
    graph["gemo_clap_hf.inference.predictions"].add("gemo_clap_hf.inference.engine")  # engine imports predictions
    cycle = _find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"gemo_clap_hf.inference.predictions", "gemo_clap_hf.inference.engine"} <= set(cycle)


@pytest.mark.parametrize("application", APPLICATIONS + ("apps",))
def test_no_library_module_imports_the_applications(application):
    offenders = {
        str(path.relative_to(REPO)): sorted(
            n for n in _imported_modules(path) if n.startswith(f"gemo_clap_hf.{application}")
        )
        for path in PACKAGE.rglob("*.py")
        if _is_library(path)
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_the_import_check_sees_relative_and_lazy_imports(tmp_path):
    """The checks above resolve `from ..cli import x` inside a function (they would pass vacuously otherwise)."""
    assert "huggingface_hub" in _imported_modules(PACKAGE / "training" / "reporting" / "model_card.py")
    fake = PACKAGE / "training" / "_probe_layout.py"
    try:
        fake.write_text("def f():\n    from ..cli.main import main\nfrom . import reporting\n")
        assert {"gemo_clap_hf.cli.main", "gemo_clap_hf.training.reporting"} <= _imported_modules(fake)
        assert _is_library(fake)
    finally:
        fake.unlink()


@pytest.mark.slow
def test_the_wheel_ships_no_benchmark_code(tmp_path):
    """`pip install .` installs what the wheel holds: the package, its templates and metric, no harness."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = tmp_path.glob("gemo_clap_hf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("benchmarks/") or "benchmark" in n or "sync_audit" in n]
    assert "gemo_clap_hf/training/reporting/templates/MODEL_CARD.md" in names
    assert "gemo_clap_hf/demo/roberta_prompt_merges.txt" in names
    assert {"gemo_clap_hf/cli/bench.py", "gemo_clap_hf/inference/engine.py", "gemo_clap_hf/errors.py"} <= set(names)
    assert "gemo_clap_hf/metrics/ser_metrics/ser_metrics.py" in names
