"""A Hugging Face Inference Endpoints custom handler, and `gemo-clap export-endpoint`, which writes its repository.

Inference Endpoints run a model repository's `handler.py`: `EndpointHandler(path)` once (`path`: the repository's
folder), then `handler(data)` per request, where `data["inputs"]` is the body's bytes for `audio/*` requests, or the
JSON body's `inputs` (here: base64 audio) with its `parameters` (`top_k`, `function_to_apply`, `segments`). The
handler scores through the same engine as `predict` and `serve` (`audio_requests.score_requests`) and answers the
pipeline's `[{"label", "score"}, ...]` (with the gender for ML models), or the segment rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import PredictionError
from .audio_requests import parse_payload, score_requests
from .backends import check_model_source, load_backend

HANDLER_PY = '''"""GEmo-CLAP speech emotion recognition as an Inference Endpoint (from `gemo-clap export-endpoint`).

POST audio (Content-Type audio/*) or JSON {"inputs": <base64 audio>, "parameters": {"top_k": 3}}; the answer is
[{"label", "score"}, ...], best first. Scoring is gemo_clap_hf's engine (see requirements.txt).
"""

from gemo_clap_hf.inference.endpoint import EndpointHandler as _GEmoClapHandler


class EndpointHandler(_GEmoClapHandler):
    def __init__(self, path=""):
        super().__init__(path or ".", backend=BACKEND)
'''
CHECKPOINT_FILES = ("checkpoint-*", "runs", "*.pt", "handler.py", "requirements.txt")


class EndpointHandler:
    """`EndpointHandler(path)(data)` as Inference Endpoints call it; `path` holds the model (or its ONNX export)."""

    def __init__(self, path: str = ".", backend: str = "torch"):
        self.scorer = load_backend(path, backend)

    def __call__(self, data: dict) -> list[dict]:
        """The answer for one request (a `RequestError`, a `ValueError`, for audio or parameters it cannot take)."""
        [answer] = score_requests(self.scorer, [parse_payload(data)])
        if isinstance(answer, Exception):
            raise answer
        return answer


def export_endpoint(model: str, out_dir: str | Path, backend: str = "torch") -> Path:
    """Write the Endpoint repository for `model` into `out_dir`: the model's files, handler.py, requirements.txt."""
    from .. import __version__

    source = Path(model).expanduser()
    if backend == "onnx" or source.is_file():
        if not source.is_dir():
            raise PredictionError(f"--model {model!r}: for --backend onnx, pass the export-onnx folder.")
    else:
        check_model_source(model)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PredictionError(f"{str(out)!r} is a file; name a folder for the Endpoint repository.")
    if out.resolve() == source.resolve():
        raise PredictionError(f"{str(out)!r} is the model folder itself; name a new folder.")
    if source.is_dir():
        shutil.copytree(source, out, ignore=shutil.ignore_patterns(*CHECKPOINT_FILES), dirs_exist_ok=True)
    else:
        from huggingface_hub import snapshot_download

        snapshot_download(model, local_dir=out)
    (out / "handler.py").write_text(HANDLER_PY.replace("BACKEND", repr(backend)), encoding="utf-8")
    extras = "onnx" if backend == "onnx" else None
    requirement = f"gemo-clap-hf{f'[{extras}]' if extras else ''}=={__version__}"
    (out / "requirements.txt").write_text(requirement + "\n", encoding="utf-8")
    EndpointHandler(str(out), backend)  # the folder loads as the Endpoint will load it
    return out


__all__ = ["EndpointHandler", "export_endpoint"]
