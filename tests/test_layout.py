"""Where code lives: the library never imports `apps/` (only the CLI entry point and apps itself do), and an
installed wheel carries no measurement harness (`benchmarks/` stays in the checkout)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).parents[1]
PACKAGE = REPO / "gemo_clap_hf"


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules that `path` imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
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


def test_no_library_module_imports_apps():
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imported_modules(path) if n.startswith("gemo_clap_hf.apps"))
        for path in PACKAGE.rglob("*.py")
        if "apps" not in path.relative_to(PACKAGE).parts
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_the_import_check_sees_relative_imports():
    """The check above resolves `from ..apps import x` (it would pass vacuously otherwise)."""
    probe = PACKAGE / "training" / "reporting" / "model_card.py"
    names = _imported_modules(probe)
    assert "huggingface_hub" in names
    fake = REPO / "gemo_clap_hf" / "training" / "_probe_layout.py"
    try:
        fake.write_text("from ..apps.prediction import predict_files\nfrom . import reporting\n")
        assert {"gemo_clap_hf.apps.prediction", "gemo_clap_hf.training.reporting"} <= _imported_modules(fake)
    finally:
        fake.unlink()


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
    assert "gemo_clap_hf/apps/throughput.py" in names and "gemo_clap_hf/metrics/ser_metrics/ser_metrics.py" in names
