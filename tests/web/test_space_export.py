"""The exported Space folder passes the checks the Hub applies that can be reproduced offline (issue 26.17).

- LFS: every binary file in the folder (weights, the confusion-matrix picture, the Trainer's arguments, the wheel)
  is matched by an LFS rule, as git itself reads .gitattributes (`git check-attr`).
- Installable from the folder and the package index alone. There is no index here, so the check is split in two
  reproducible halves: (1) requirements.txt, as the Space runs it (`pip install -r requirements.txt` from the folder),
  installs into a fresh, empty venv with `--no-index` (nothing from outside the folder) and `--no-deps`: the line
  names the wheel in the folder, which must exist and carry the [app] extra; (2) every dependency the installed
  wheel declares (base and [app]) is a published name at a satisfying version: we take "published" to mean
  installed in this project's venv, which was itself built from the package index. A venv with
  `--system-site-packages` would hide a missing requirement, so the fresh venv has none.
- No absolute exporter path in README.md, and app.py finds the model next to itself when run from elsewhere.
"""

from __future__ import annotations

import importlib.metadata
import json
import runpy
import shutil
import subprocess
import sys
import venv

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow
gradio = pytest.importorskip("gradio", reason="the Space export needs the [app] extra (gradio)")


@pytest.fixture(scope="module")
def space(tiny_checkpoint, tmp_path_factory):
    from gemo_clap_hf.web.space import export_space

    root = tmp_path_factory.mktemp("export")
    model = root / "trained"
    shutil.copytree(tiny_checkpoint, model)
    (model / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))  # what training writes too
    (model / "training_args.bin").write_bytes(b"PK\x03\x04" + bytes(64))
    (model / "odd.dat").write_bytes(b"\x00\x01binary without a known extension")
    return root, model, export_space(str(model), root / "space")


def test_every_binary_in_the_space_has_an_lfs_rule(space):
    from gemo_clap_hf.web.space import is_binary

    _, _, folder = space
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts]
    binaries = [f for f in files if is_binary(folder / f)]
    assert {"model/model.safetensors", "model/confusion_matrix.png", "model/training_args.bin"} <= set(binaries)
    assert any(f.endswith(".whl") for f in binaries) and "model/odd.dat" in binaries
    found = subprocess.run(
        ["git", "-C", str(folder), "check-attr", "filter", "--", *files], capture_output=True, text=True, check=True
    ).stdout
    lfs = {line.split(": ")[0] for line in found.splitlines() if line.endswith(": lfs")}
    assert set(binaries) <= lfs and "app.py" not in lfs and "requirements.txt" not in lfs


def test_requirements_install_offline_from_the_folder_and_name_only_published_packages(space, tmp_path):
    root, model, folder = space
    [line] = (folder / "requirements.txt").read_text().splitlines()
    assert line.startswith("./gemo_clap_hf-") and line.endswith(".whl[app]") and (folder / line[2:-5]).is_file()
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)  # empty: no site packages of this venv
    python = str(fresh / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", "--no-deps"]
    done = subprocess.run([*pip, "-r", "requirements.txt"], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    script = "import importlib.metadata as m, json; d = m.distribution('gemo-clap-hf'); print(json.dumps(d.requires))"
    requires = json.loads(subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout)
    needed = [r for r in map(Requirement, requires) if r.marker is None or r.marker.evaluate({"extra": "app"})]
    assert {r.name for r in needed} >= {"torch", "transformers", "gradio", "silero-vad"}
    for requirement in needed:
        version = importlib.metadata.version(requirement.name)  # PackageNotFoundError: not a published name
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_readme_has_no_exporter_path_and_app_py_finds_its_model_from_anywhere(space, tmp_path, monkeypatch):
    root, model, folder = space
    from gemo_clap_hf.web.app import model_display_name

    readme = (folder / "README.md").read_text()
    assert str(root) not in readme and str(model) not in readme and model_display_name(str(model)) in readme
    monkeypatch.chdir(tmp_path)  # elsewhere: a cwd-relative "model" would be taken for a Hub id
    monkeypatch.delenv("GEMO_CLAP_MODEL", raising=False)
    page = runpy.run_path(str(folder / "app.py"))["demo"]
    assert list(page.analyser.scorer.config.emotion_labels) == ["neutral", "happy", "sad", "angry"]
    assert page.launch_options["max_file_size"] > 0
