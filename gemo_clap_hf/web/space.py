"""`gemo-clap app --export-space DIR`: the web app as a Hugging Face Space folder (app.py, requirements.txt,
README.md with the Space's YAML front matter), ready to `git push` to a Space with the Gradio SDK.

A Hub id is referenced from app.py (the Space downloads the model); a local model folder is copied into
DIR/model (training checkpoints left out), since the Space cannot see this machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import PredictionError
from ..inference.backends import check_model_source

APP_PY = '''"""GEmo-CLAP speech emotion recognition as a Hub Space (written by `gemo-clap app --export-space`)."""

import os

from gemo_clap_hf.web.app import build_app

demo = build_app(os.environ.get("GEMO_CLAP_MODEL", {model!r}))

if __name__ == "__main__":
    demo.launch()
'''

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
the emotion over time. Model: `{model}`. Made with `gemo-clap app --export-space`; run it locally with
`pip install -r requirements.txt && python app.py`.
"""


def export_space(model: str, out_dir: str | Path) -> Path:
    """Write the Space folder for `model` into `out_dir` (created; existing files of the same names replaced)."""
    import gradio

    from .. import __version__

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
        reference, models = "model", ""
    else:
        reference, models = model, f"models:\n  - {model}\n"
    from ..configuration_gemo_clap import GEmoClapConfig

    config = GEmoClapConfig.from_pretrained(model)
    gender = " (and the speaker's gender)" if config.loss_type == "ml" else ""
    (out / "app.py").write_text(APP_PY.format(model=reference), encoding="utf-8")
    (out / "requirements.txt").write_text(f"gemo-clap-hf[app]=={__version__}\n", encoding="utf-8")
    readme = README.format(gradio_version=gradio.__version__, models=models, model=model, gender=gender)
    (out / "README.md").write_text(readme, encoding="utf-8")
    return out


__all__ = ["export_space"]
