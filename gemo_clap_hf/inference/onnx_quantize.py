"""int8 dynamic quantisation of an exported graph: `gemo-clap export-onnx --quantize int8` writes `model.int8.onnx`
beside `model.onnx`, after checking what it costs in accuracy.

What is quantised, and why (the measurements are in docs/inference.md): onnxruntime's dynamic quantisation
(`quantize_dynamic`: int8 weights, activations quantised per batch at run time, no calibration data) of the
`MatMul`/`Gemm` weights only: the transformer's projections and feed-forward layers, the feature projection and
the head. The CNN feature encoder and the positional convolution stay float32: with int8 `Conv` the graph was
slower (0.96x the PyTorch tower against 0.53x) and agreed with float32 on 98.3 % of held-out clips, not 100 %.
The graph is first run through onnxruntime's quantisation pre-processing (`quant_pre_process`: ONNX shape
inference and graph optimisation); its symbolic shape inference fails on the dynamo exporter's graphs, so it is
skipped (the ONNX shape inference still runs).

The check: the float32 and the int8 graph classify the same clips (synthetic emotional-speech utterances, 10
voices and 4 emotions, rendered here, plus any audio files the user names) and the export reports the argmax
agreement and the largest probability difference. Below `MIN_AGREEMENT` the int8 graph is not written unless
`force` is given.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OnnxExportError
from .onnx_runtime import ONNX_FILE, OnnxClassifier

INT8_FILE = "model.int8.onnx"
QUANTIZED_OP_TYPES = ("MatMul", "Gemm")
PER_CHANNEL = False  # measured: per channel gained neither agreement nor speed on the demo model (docs/inference.md)
MIN_AGREEMENT = 0.95  # argmax agreement with the float32 graph on the check clips, below which nothing is written
CHECK_SEED, CHECK_UTTERANCES_PER_SPEAKER, CHECK_MAX_S = 1234, 4, 6.0
CHECK_BATCH_SIZE = 8


def check_clips(sampling_rate: int, seed: int = CHECK_SEED, max_s: float = CHECK_MAX_S) -> list[np.ndarray]:
    """Synthetic emotional-speech utterances (the embedded corpus' generator, another seed than the demo's),
    4 per speaker of its 10 voices, cut at `max_s` seconds: speech-like clips for the accuracy check."""
    from ..data.synthetic import plan_corpus, render_utterance, speaker_voices

    voices = speaker_voices(seed)
    corpus = plan_corpus(seed, CHECK_UTTERANCES_PER_SPEAKER)
    return [render_utterance(seed, utt, voices, sampling_rate)[: int(max_s * sampling_rate)] for utt in corpus]


def _probabilities(runner: OnnxClassifier, clips: list[np.ndarray], rate: int) -> np.ndarray:
    order = sorted(range(len(clips)), key=lambda i: len(clips[i]))  # length buckets: little padding
    rows = np.zeros((len(clips), len(runner.labels)), dtype=np.float64)
    for start in range(0, len(order), CHECK_BATCH_SIZE):
        chunk = order[start : start + CHECK_BATCH_SIZE]
        logits = runner([clips[i] for i in chunk], sampling_rate=rate).astype(np.float64)
        logits -= logits.max(-1, keepdims=True)
        rows[chunk] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return rows


def compare_graphs(reference: OnnxClassifier, candidate: OnnxClassifier, clips, rate: int) -> dict:
    """Argmax agreement and the largest probability difference of `candidate` against `reference` on `clips`."""
    expected, got = _probabilities(reference, clips, rate), _probabilities(candidate, clips, rate)
    return {
        "clips": len(clips),
        "agreement": float((expected.argmax(-1) == got.argmax(-1)).mean()),
        "max_probability_difference": float(np.abs(expected - got).max()),
    }


@dataclass
class QuantizeReport:
    """Where the int8 graph went (None: refused), what was quantised and what it costs on the check clips."""

    path: Path | None
    clips: int
    agreement: float
    max_probability_difference: float
    min_agreement: float
    forced: bool = False

    def describe(self) -> str:
        cost = (
            f"int8 vs float32 on {self.clips} check clips: argmax agreement {self.agreement:.1%}, max probability "
            f"difference {self.max_probability_difference:.3f} (threshold: agreement >= {self.min_agreement:.0%})"
        )
        if self.path is None:
            return f"did not write the int8 graph: {cost}"
        forced = " despite the threshold (--force)" if self.forced else ""
        return f"wrote {self.path}{forced} ({', '.join(QUANTIZED_OP_TYPES)} weights int8); {cost}"


def _quantize(source: Path, target: Path, per_channel: bool, op_types) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="gemo_clap_quant_") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(
            str(prepared),
            str(target),
            op_types_to_quantize=list(op_types),
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
        )


def read_check_audio(paths, sampling_rate: int) -> list[np.ndarray]:
    """The audio named by `paths` (files, folders, manifests, as `predict` takes them), decoded at the rate."""
    from ..data import load_audio
    from .inputs import collect_inputs

    return [load_audio(path, sampling_rate=sampling_rate) for path in collect_inputs(paths)]


def quantize_int8(
    out_dir: str | os.PathLike,
    extra_clips: list[np.ndarray] | None = None,
    min_agreement: float = MIN_AGREEMENT,
    force: bool = False,
    per_channel: bool = PER_CHANNEL,
    op_types=QUANTIZED_OP_TYPES,
    target_name: str = INT8_FILE,
    verify: bool = True,
) -> QuantizeReport:
    """Quantise `out_dir/model.onnx` into `out_dir/model.int8.onnx` (see the module docstring).

    Raises `OnnxExportError` (and writes nothing) when the agreement with float32 on the check clips (plus
    `extra_clips`, at the feature extractor's rate) is below `min_agreement`, unless `force`. `verify=False`
    skips the check (the benchmark's random-weight graphs, where agreement means nothing): `clips` is then 0.
    """
    out_dir = Path(out_dir)
    if not (out_dir / ONNX_FILE).is_file():
        raise OnnxExportError(f"no {ONNX_FILE} in {str(out_dir)!r} to quantise; export the model first.")
    reference = OnnxClassifier(out_dir)
    rate = reference.feature_extractor.sampling_rate
    clips = check_clips(rate) + list(extra_clips or []) if verify else []
    target = out_dir / target_name
    pending = out_dir / f".{target_name}.partial"
    try:
        _quantize(out_dir / ONNX_FILE, pending, per_channel, op_types)
        figures = {"clips": 0, "agreement": float("nan"), "max_probability_difference": float("nan")}
        if verify:
            figures = compare_graphs(reference, OnnxClassifier(out_dir, graph=pending.name), clips, rate)
        report = QuantizeReport(None, min_agreement=min_agreement, forced=force, **figures)
        if verify and not report.agreement >= min_agreement and not force:
            raise OnnxExportError(
                f"{report.describe()}; the int8 graph loses too much accuracy for this model. Use the float32 "
                "graph, or pass --force to write it anyway."
            )
        pending.replace(target)
        report.path = target
        report.forced = force and report.agreement < min_agreement
        return report
    finally:
        pending.unlink(missing_ok=True)


__all__ = [
    "INT8_FILE",
    "MIN_AGREEMENT",
    "QuantizeReport",
    "check_clips",
    "compare_graphs",
    "quantize_int8",
    "read_check_audio",
]
