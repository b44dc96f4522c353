"""`gemo-clap app --export-space DIR`: the web app as a Hugging Face Space folder (app.py, requirements.txt,
README.md with the Space's YAML front matter, .gitattributes), ready to `git push` to a Space with the Gradio SDK.

A Hub id is referenced from app.py (the Space downloads the model); a local model folder is copied into
DIR/model (training checkpoints left out), since the Space cannot see this machine, and app.py finds it next to
itself (not in the current directory). The Space installs what it needs from its own folder and the package index
alone: a wheel of this package is built into the folder and named in requirements.txt (with the [app] extra), since
no index serves gemo-clap-hf. Every binary file gets a Git LFS rule in .gitattributes (the Hub refuses binaries
pushed without LFS).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import PredictionError
from ..inference.backends import check_model_source

APP_PY = '''"""GEmo-CLAP speech emotion recognition as a Hub Space (written by `gemo-clap app --export-space`)."""

import os
from pathlib import Path

from gemo_clap_hf.web.app import build_app

HERE = Path(__file__).resolve().parent
demo = build_app(os.environ.get("GEMO_CLAP_MODEL") or {model})

if __name__ == "__main__":
    demo.launch(**demo.launch_options)
'''
# Binary types a Space may hold; any other file with a NUL byte in its first 8 kB also gets a rule of its own.
LFS_PATTERNS = (
    "*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.onnx", "*.npy", "*.npz", "*.h5", "*.msgpack", "*.model",
    "*.whl", "*.zip", "*.gz", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.wav", "*.flac", "*.mp3", "*.ogg",
)  # fmt: skip
LFS_RULE = "{} filter=lfs diff=lfs merge=lfs -text"

README = """---
title: GEmo-CLAP speech emotion recognition
emoji: 🎙️
colorFrom: indigo
colorTo: red
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
license: apache-2.0
tags:
  - audio-classification
  - speech-emotion-recognition
{models}---

# GEmo-CLAP speech emotion recognition

Upload or record speech to see its emotion{gender}; recordings longer than a few seconds also get a timeline of
the emotion over time. Model: {model}. Made with `gemo-clap app --export-space`; run it locally with
`pip install -r requirements.txt && python app.py` (from this folder: requirements.txt names the package's wheel here).
"""


def is_binary(path: Path) -> bool:
    with open(path, "rb") as handle:
        return b"\0" in handle.read(8192)


def write_gitattributes(out: Path) -> Path:
    """.gitattributes with an LFS rule for every binary type, and one per binary file no pattern covers."""
    import fnmatch

    rules = list(LFS_PATTERNS)
    for path in sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.relative_to(out).parts):
        if is_binary(path) and not any(fnmatch.fnmatch(path.name, pattern) for pattern in rules):
            rules.append(path.relative_to(out).as_posix().replace(" ", "[[:space:]]"))
    target = out / ".gitattributes"
    target.write_text("".join(LFS_RULE.format(rule) + "\n" for rule in rules), encoding="utf-8")
    return target


def source_tree() -> Path | None:
    """The checkout this package runs from (it holds pyproject.toml), or None for an installed package."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    return root if pyproject.is_file() and 'name = "gemo-clap-hf"' in pyproject.read_text("utf-8") else None


def build_wheel(out: Path) -> str:
    """Build this package's wheel into `out` (offline, from the checkout) and return its file name."""
    root = source_tree()
    if root is None:
        raise PredictionError(
            "--export-space builds a wheel of gemo-clap-hf for the Space, which needs its source: run the export "
            "from a checkout (pip install -e .), not from an installed wheel."
        )
    with tempfile.TemporaryDirectory() as build:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
        done = subprocess.run([*command, "-w", build, str(root)], capture_output=True, text=True)
        wheels = list(Path(build).glob("gemo_clap_hf-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise PredictionError(f"could not build the gemo-clap-hf wheel for the Space: {done.stderr[-800:]}")
        for old in out.glob("gemo_clap_hf-*.whl"):
            old.unlink()
        shutil.move(str(wheels[0]), out / wheels[0].name)
        return wheels[0].name


def export_space(model: str, out_dir: str | Path) -> Path:
    """Write the Space folder for `model` into `out_dir` (created; existing files of the same names replaced)."""
    import gradio

    from .app import model_display_name

    check_model_source(model)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PredictionError(f"--export-space {str(out)!r} is a file; name a folder for the Space.")
    out.mkdir(parents=True, exist_ok=True)
    source = Path(model).expanduser()
    if source.is_dir():
        target = out / "model"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoint-*", "runs", "*.pt"))
        reference, models = 'str(HERE / "model")', ""
        shown = f"{model_display_name(model)} (in `model/`)"
    else:
        reference, models = repr(model), f"models:\n  - {model}\n"
        shown = f"`{model}`"
    from ..configuration_gemo_clap import GEmoClapConfig

    config = GEmoClapConfig.from_pretrained(model)
    gender = " (and the speaker's gender)" if config.loss_type == "ml" else ""
    (out / "app.py").write_text(APP_PY.format(model=reference), encoding="utf-8")
    (out / "requirements.txt").write_text(f"./{build_wheel(out)}[app]\n", encoding="utf-8")
    readme = README.format(gradio_version=gradio.__version__, models=models, model=shown, gender=gender)
    (out / "README.md").write_text(readme, encoding="utf-8")
    write_gitattributes(out)
    return out


__all__ = ["LFS_PATTERNS", "build_wheel", "export_space", "is_binary", "write_gitattributes"]
