"""Run a folder written by `gemo-clap export-onnx` with onnxruntime: the file format and the runner.

The graph (`model.onnx`, or `model.int8.onnx`) is `GEmoClapForAudioClassification.forward` traced with the label
prompts folded in: inputs `input_values` float32 and `audio_attention_mask` int32, outputs `logits` and
`audio_embeds`. Beside it, `gemo_clap_onnx.json` holds the label tables and the audio temperature, so that what the
graph cannot see (a long clip's windows, which the feature extractor splits and `clip_index` maps back, and the
gender table of ML-GEmo-CLAP models) is finished here with the model's own code: `average_windows` and the same
scaled similarity that `label_logits` computes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import PredictionError

ONNX_FILE = "model.onnx"
LABELS_FILE = "gemo_clap_onnx.json"
INPUT_NAMES = ("input_values", "audio_attention_mask")
OUTPUT_NAMES = ("logits", "audio_embeds")
INPUT_DTYPES = (np.float32, np.int32)


def resolve_onnx_model(model: str | os.PathLike) -> tuple[Path, str]:
    """(folder, graph file name) of an export folder (its `model.onnx`) or of one `.onnx` file inside such a folder."""
    path = Path(model).expanduser()
    folder, graph = (path.parent, path.name) if path.suffix == ".onnx" else (path, ONNX_FILE)
    export_hint = "write one with `gemo-clap export-onnx --model MODEL_DIR OUT_DIR` and pass OUT_DIR"
    if not (folder / graph).is_file():
        raise PredictionError(f"--backend onnx: {str(folder / graph)!r} does not exist; {export_hint}.")
    if not (folder / LABELS_FILE).is_file() or not (folder / "config.json").is_file():
        raise PredictionError(
            f"--backend onnx: {str(folder)!r} lacks {LABELS_FILE} or config.json beside the graph (not a folder "
            f"written by export-onnx); {export_hint}."
        )
    return folder, graph


def make_session(path: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None):
    """An onnxruntime session with every graph optimisation on; `threads` intra-op threads (None: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


class OnnxClassifier:
    """Run an exported folder with onnxruntime (no text tower, no tokenizer), long clips included.

    `OnnxClassifier(out_dir)(clips, sampling_rate=16000)` returns (clips, num_labels) emotion logits; clips longer
    than the feature extractor's `max_length_s` are windowed and their window embeddings averaged here, outside
    the graph. `gender_logits` does the same with the gender table (meaningful for ML-GEmo-CLAP models).
    `graph` picks another graph of the folder (`model.int8.onnx`); `threads` sets onnxruntime's intra-op threads.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        providers: list[str] | None = None,
        threads: int | None = None,
        graph: str = ONNX_FILE,
    ):
        from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor

        folder = Path(folder)
        self.session = make_session(folder / graph, threads, providers)
        self.feature_extractor = GEmoClapFeatureExtractor.from_pretrained(folder)
        self.tables = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
        self.labels = self.tables["emotion_labels"]

    def run_features(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """(logits, audio_embeds) of featurised inputs (numpy or torch tensors, as the feature extractor returns)."""
        feed = {name: np.asarray(inputs[name], dtype=dtype) for name, dtype in zip(INPUT_NAMES, INPUT_DTYPES)}
        logits, embeds = self.session.run(list(OUTPUT_NAMES), feed)
        return logits, embeds

    def _table_logits(self, embeds: torch.Tensor, kind: str) -> torch.Tensor:
        """s_a · similarity to the `kind` label table: what `GEmoClapModel.label_logits` computes in the graph."""
        table = torch.tensor(self.tables[f"{kind}_label_embeddings"], dtype=torch.float32)
        return self.tables["logit_scale"] * embeds @ table.t()

    def clip_logits(self, inputs, with_gender: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(emotion, gender or None) logits, one row per clip, of a featurised batch: the graph's emotion logits as
        they are, or for windowed clips (`clip_index`) the window embeddings averaged with the model's
        `average_windows` and scored against the tables."""
        from ..windows_gemo_clap import average_windows

        logits, embeds = (torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in self.run_features(inputs))
        clip_index = inputs.get("clip_index")
        if clip_index is not None:
            lengths = torch.as_tensor(np.asarray(inputs["audio_attention_mask"])).sum(-1)
            embeds = average_windows(embeds, torch.as_tensor(np.asarray(clip_index)), lengths)
            logits = self._table_logits(embeds, "emotion")
        return logits, self._table_logits(embeds, "gender") if with_gender else None

    def _featurise(self, clips, sampling_rate):
        return self.feature_extractor(clips, sampling_rate=sampling_rate, padding=True, return_tensors="np")

    def __call__(self, clips, sampling_rate: int | None = None) -> np.ndarray:
        return self.clip_logits(self._featurise(clips, sampling_rate))[0].numpy()

    def gender_logits(self, clips, sampling_rate: int | None = None) -> np.ndarray:
        return self.clip_logits(self._featurise(clips, sampling_rate), with_gender=True)[1].numpy()


__all__ = [
    "INPUT_DTYPES",
    "INPUT_NAMES",
    "LABELS_FILE",
    "ONNX_FILE",
    "OUTPUT_NAMES",
    "OnnxClassifier",
    "make_session",
    "resolve_onnx_model",
]
