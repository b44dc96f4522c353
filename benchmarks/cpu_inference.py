"""CPU inference side by side (`--figures cpu_inference`): how far onnxruntime and int8 get below PyTorch's floor.

On one padded batch of IEMOCAP-like durations, interleaved in one process (so background load hits every side
alike): the bare `WavLMModel` forward in PyTorch float32 (the floor), the GEmo-CLAP classifier in PyTorch, the
exported graph in onnxruntime float32, and the int8 graph (`export-onnx --quantize int8`) with the variants
measured to choose it (per-channel weights; int8 convolutions too). Then `gemo-clap predict`'s whole path on WAV
files with each backend at the same batch size (clips/s, real-time factor), and the int8 graph's agreement with
the float32 graph on the synthetic corpus' held-out session 5, classified by the demo's trained model
(`--demo_model DIR`, the `model` folder that `gemo-clap demo` writes; trained here when not given). Each timing is
reported with its median, slowest and fastest repeat, and an operator profile says where each side's time goes.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gemo_clap_hf.cli.bench import write_test_clips
from gemo_clap_hf.feature_extraction_gemo_clap import GEmoClapFeatureExtractor
from gemo_clap_hf.inference.backends import OnnxScorer
from gemo_clap_hf.inference.engine import predict_files
from gemo_clap_hf.inference.onnx_export import ONNX_FILE, export_onnx
from gemo_clap_hf.inference.onnx_quantize import INT8_FILE, quantize_int8
from gemo_clap_hf.inference.onnx_runtime import make_session

from .measure import interleaved_times
from .settings import SAMPLING_RATE, Settings
from .workload import describe_batch, make_batch, varied_lengths

# The targets: time ÷ the PyTorch tower's; bulk clips/s ÷ the torch backend's; int8 against float32.
TARGETS = {
    "onnx_fp32_max": 1.0,
    "onnx_int8_max": 0.6,
    "bulk_onnx_min": 1.5,
    "int8_agreement_min": 0.99,
    "int8_uar_points_max": 0.5,
}
# The int8 variants measured beside the chosen one (onnx_quantize's defaults): file name -> quantize_int8 options.
INT8_VARIANTS = {
    "onnx_int8_per_channel": ("model.int8pc.onnx", {"per_channel": True}),
    "onnx_int8_with_conv": ("model.int8conv.onnx", {"op_types": ("MatMul", "Gemm", "Conv")}),
}
PROFILE_TOP = 6


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def export_graphs(classifier, folder: Path, quick: bool) -> dict[str, Path]:
    """The float32 graph, the chosen int8 graph and the int8 variants of `classifier`, written to `folder`.

    Random weights make the int8 accuracy check meaningless here (measured on the demo model instead): skipped.
    """
    export_onnx(classifier.cpu(), folder, GEmoClapFeatureExtractor(max_length_s=None), dynamo=True)
    graphs = {"onnx_fp32": folder / ONNX_FILE}
    graphs["onnx_int8"] = quantize_int8(folder, verify=False).path
    for name, (file, options) in INT8_VARIANTS.items():
        if not quick:
            graphs[name] = quantize_int8(folder, target_name=file, verify=False, **options).path
    return graphs


def ort_profile(path: Path, feed: dict, threads: int) -> list[dict]:
    """onnxruntime's own per-node profile of one run, summed by operator type: the largest shares of the time."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_profiling, options.intra_op_num_threads = True, threads
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            totals[op] = totals.get(op, 0.0) + event["dur"] / 1e6
    return _shares(totals)


def torch_profile(call) -> list[dict]:
    """torch.profiler's self CPU time of one call, by operator: the largest shares of the time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        call()
    return _shares({event.key: event.self_cpu_time_total / 1e6 for event in profiler.key_averages()})


def _shares(totals: dict[str, float]) -> list[dict]:
    whole = sum(totals.values()) or 1.0
    top = sorted(totals.items(), key=lambda item: -item[1])[:PROFILE_TOP]
    return [{"op": op, "s": round(seconds, 4), "share": round(seconds / whole, 3)} for op, seconds in top]


def measure_forward(settings: Settings, classifier, graphs: dict[str, Path]) -> dict:
    """Seconds per forward of every side on one padded batch of IEMOCAP-like durations, and ratios to the tower."""
    batch = make_batch(
        settings, varied_lengths(settings.batch_size, settings.seed + 3, settings.varied_scale), settings.seed + 3
    )
    inputs = {"input_values": batch["input_values"].cpu(), "audio_attention_mask": batch["audio_attention_mask"].cpu()}
    feed = {
        "input_values": inputs["input_values"].numpy(),
        "audio_attention_mask": inputs["audio_attention_mask"].numpy().astype(np.int32),
    }
    threads = torch.get_num_threads()
    # The int8 variants are timed after, each against the tower alone: every onnxruntime session keeps its memory
    # arena at its peak (gigabytes at base size on long batches), so only two are alive at a time.
    sessions = {name: make_session(graphs[name], threads) for name in ("onnx_fp32", "onnx_int8")}
    tower, model = classifier.gemo_clap.audio_model.eval(), classifier.eval()

    def torch_call(module, **kwargs):
        with torch.no_grad():
            return module(inputs["input_values"], **kwargs)

    calls = {
        "pytorch_tower": lambda: torch_call(tower, attention_mask=inputs["audio_attention_mask"]),
        "pytorch_classifier": lambda: torch_call(model, audio_attention_mask=inputs["audio_attention_mask"]),
        **{name: (lambda session=session: session.run(None, feed)) for name, session in sessions.items()},
    }
    interleaved_times(calls, 1, torch.device("cpu"))  # warm-up: buffers grown, graphs' kernels chosen
    times = interleaved_times(calls, settings.repeats, torch.device("cpu"))
    floor = statistics.median(times["pytorch_tower"])
    expected = calls["pytorch_classifier"]().logits.numpy()
    fp32 = sessions["onnx_fp32"].run(["logits"], feed)[0]
    profile = {
        "pytorch_tower": torch_profile(calls["pytorch_tower"]),
        **{name: ort_profile(graphs[name], feed, threads) for name in sessions},
    }
    for name in list(sessions):  # the calls hold the sessions too
        calls.pop(name)
    sessions.clear()
    variants = {}
    for name in sorted(set(graphs) - {"onnx_fp32", "onnx_int8"}):
        session = make_session(graphs[name], threads)
        pair = {"pytorch_tower": calls["pytorch_tower"], name: lambda session=session: session.run(None, feed)}
        interleaved_times(pair, 1, torch.device("cpu"))
        paired = interleaved_times(pair, settings.repeats, torch.device("cpu"))
        ratio = statistics.median(paired[name]) / statistics.median(paired["pytorch_tower"])
        variants[name] = {"seconds": spread(paired[name]), "ratio_to_pytorch_tower": round(ratio, 3)}
        del session, pair
    return {
        "batch": describe_batch(batch),
        "threads": threads,
        "repeats": settings.repeats,
        "seconds": {name: spread(values) for name, values in times.items()},
        "ratio_to_pytorch_tower": {name: round(statistics.median(v) / floor, 3) for name, v in times.items()},
        "ratio_range": {
            name: [round(min(v) / max(times["pytorch_tower"]), 3), round(max(v) / min(times["pytorch_tower"]), 3)]
            for name, v in times.items()
        },
        "onnx_fp32_max_abs_logit_difference": float(np.abs(fp32 - expected).max()),
        "int8_variants": variants,
        "profile": profile,
    }


def measure_bulk(settings: Settings, classifier, graphs: dict[str, Path]) -> dict:
    """`predict_files` (decoding, length buckets, the model) on WAV files with each backend at the same batch size,
    interleaved; clips/s with the slowest and fastest run, the real-time factor, and the ratio to torch."""
    threads = torch.get_num_threads()
    backends = {"torch": classifier.eval()}
    for name in ("onnx_fp32", "onnx_int8"):
        backends[name] = OnnxScorer(graphs[name], threads=threads)
    quick = settings.size == "tiny"
    options = {"num_clips": 2 * settings.batch_size, "min_s": 0.3, "max_s": 0.6} if quick else {}
    options = {"num_clips": 4 * settings.batch_size, "min_s": 1.0, "max_s": 8.0, **options}
    extractor = GEmoClapFeatureExtractor()
    times: dict[str, list[float]] = {name: [] for name in backends}
    with tempfile.TemporaryDirectory(prefix="gemo_clap_cpu_bench_") as folder:
        files = write_test_clips(
            Path(folder), options["num_clips"], options["min_s"], options["max_s"], SAMPLING_RATE, 0
        )
        for backend in backends.values():  # warm-up
            predict_files(backend, extractor, files[: settings.batch_size], settings.batch_size, num_workers=0)
        audio_s = 0.0
        for repeat in range(settings.repeats):
            order = list(backends.items())
            for name, backend in order if repeat % 2 == 0 else reversed(order):
                start = time.perf_counter()
                predictions = predict_files(backend, extractor, files, settings.batch_size)
                times[name].append(time.perf_counter() - start)
                audio_s = sum(p.duration for p in predictions)
    clips = options["num_clips"]
    torch_median = statistics.median(times["torch"])
    return {
        "clips": clips,
        "audio_s": round(audio_s, 1),
        "batch_size": settings.batch_size,
        "threads": threads,
        "repeats": settings.repeats,
        "clips_per_s": {name: spread([clips / t for t in values]) for name, values in times.items()},
        "real_time_factor": {name: round(statistics.median(values) / audio_s, 4) for name, values in times.items()},
        "speedup_over_torch": {name: round(torch_median / statistics.median(v), 3) for name, v in times.items()},
    }


def _demo_model(settings: Settings, scratch: Path) -> tuple[Path, Path]:
    """(model folder, corpus folder) of the demo: `--demo_model` (its corpus beside it, as the demo writes them),
    else the demo trained here (`--quick`: its fast smoke settings)."""
    if settings.demo_model is not None:
        model = Path(settings.demo_model)
        corpus = model.parent / "corpus"
        if not (model / "config.json").is_file() or not corpus.is_dir():
            raise SystemExit(
                f"--demo_model {model}: expected the `model` folder of `gemo-clap demo`, its corpus beside it."
            )
        return model, corpus
    from gemo_clap_hf.demo.run import run_demo

    result = run_demo(scratch / "demo", fast=settings.size == "tiny", report=False)
    return result.model_dir, scratch / "demo" / "corpus"


def held_out_agreement(model_dir: Path, folder: Path, corpus: Path, batch_size: int, variants=()) -> dict:
    """Session 5 of `corpus` classified by `predict_files` with torch (`model_dir`), onnxruntime float32 and int8
    (`folder`, its export; plus the int8 `variants` written there): argmax agreement of each int8 graph with
    float32 (and of float32 with torch), each backend's UAR."""
    from sklearn.metrics import balanced_accuracy_score  # UAR is balanced accuracy

    from gemo_clap_hf.data import load_corpus
    from gemo_clap_hf.demo.run import TEST_SESSION
    from gemo_clap_hf.inference.backends import load_classifier

    rows = load_corpus("synthetic", corpus, sessions=(int(TEST_SESSION),))
    files, truth = list(rows["audio"]), list(rows["emotion"])
    classifier, extractor = load_classifier(str(model_dir), "cpu")
    backends = {"torch": classifier, "onnx_fp32": OnnxScorer(folder), "onnx_int8": OnnxScorer(folder / INT8_FILE)}
    backends.update({name: OnnxScorer(folder / INT8_VARIANTS[name][0]) for name in variants})
    predicted = {}
    for name, backend in backends.items():
        predicted[name] = [p.emotions[0]["label"] for p in predict_files(backend, extractor, files, batch_size)]

    def agreement(a: str, b: str) -> float:
        return round(float(np.mean([x == y for x, y in zip(predicted[a], predicted[b])])), 4)

    uar = {name: round(100 * balanced_accuracy_score(truth, labels), 2) for name, labels in predicted.items()}
    return {
        "held_out_clips": len(files),
        "int8_vs_fp32_agreement": agreement("onnx_int8", "onnx_fp32"),
        "onnx_fp32_vs_torch_agreement": agreement("onnx_fp32", "torch"),
        "variants_vs_fp32_agreement": {name: agreement(name, "onnx_fp32") for name in variants},
        "uar_percent": uar,
        "int8_uar_points_below_fp32": round(uar["onnx_fp32"] - uar["onnx_int8"], 2),
    }


def measure_int8_agreement(settings: Settings) -> dict:
    """The demo model exported and quantised as `export-onnx --quantize int8` does (its check-clip figures kept
    beside), then `held_out_agreement` on the demo corpus' session 5."""
    with tempfile.TemporaryDirectory(prefix="gemo_clap_int8_") as scratch:
        model_dir, corpus = _demo_model(settings, Path(scratch))
        folder = Path(scratch) / "onnx"
        export_onnx(str(model_dir), folder)
        check = quantize_int8(folder, force=True)
        variants = () if settings.size == "tiny" else tuple(INT8_VARIANTS)
        for name in variants:
            quantize_int8(folder, target_name=INT8_VARIANTS[name][0], verify=False, **INT8_VARIANTS[name][1])
        figure = held_out_agreement(model_dir, folder, corpus, settings.batch_size, variants)
    return {
        "model": str(settings.demo_model or "trained here (gemo-clap demo settings)"),
        **figure,
        "export_check": {
            "clips": check.clips,
            "agreement": check.agreement,
            "max_probability_difference": round(check.max_probability_difference, 4),
        },
    }


def verdicts(figure: dict) -> dict:
    """Each target against its measured median (None where the figure was not measured)."""
    forward, bulk, agreement = figure.get("forward"), figure.get("bulk_predict"), figure.get("int8_agreement")
    ratio = forward["ratio_to_pytorch_tower"] if forward else {}
    return {
        "onnx_fp32_le_1.0x_tower": ratio.get("onnx_fp32", 99) <= TARGETS["onnx_fp32_max"] if forward else None,
        "onnx_int8_le_0.6x_tower": ratio.get("onnx_int8", 99) <= TARGETS["onnx_int8_max"] if forward else None,
        "bulk_onnx_ge_1.5x_torch": (
            max(bulk["speedup_over_torch"]["onnx_fp32"], bulk["speedup_over_torch"]["onnx_int8"])
            >= TARGETS["bulk_onnx_min"]
            if bulk
            else None
        ),
        "int8_agreement_ge_99": (
            agreement["int8_vs_fp32_agreement"] >= TARGETS["int8_agreement_min"]
            and agreement["int8_uar_points_below_fp32"] <= TARGETS["int8_uar_points_max"]
            if agreement
            else None
        ),
    }


def measure_cpu_inference(settings: Settings, classifier) -> dict:
    """The whole figure (see the module docstring); the classifier is the harness' random-weight SL classifier."""
    if settings.device.type != "cpu":
        return {"skipped": "cpu_inference measures the CPU: run it with --device cpu"}
    figure: dict = {"targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="gemo_clap_cpu_onnx_") as folder:
        graphs = export_graphs(classifier, Path(folder), settings.size == "tiny")
        figure["forward"] = measure_forward(settings, classifier, graphs)
        figure["bulk_predict"] = measure_bulk(settings, classifier, graphs)
    figure["int8_agreement"] = measure_int8_agreement(settings)
    figure["met"] = verdicts(figure)
    return figure
