"""`gemo-clap serve` (an HTTP endpoint on Ray Serve) and `gemo-clap export-endpoint` (an Inference Endpoints repo)."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ..inference.audio_requests import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS
from ..inference.segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, SegmentOptions
from .predict import add_backend_options, add_model_option


def add_serve_commands(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="an HTTP endpoint on Ray Serve: POST audio, get the emotion scores (dynamic batching)",
        description="Serve the model over HTTP on Ray Serve (the [ray] extra). POST an audio file (Content-Type "
        'audio/*) or JSON {"inputs": <base64 audio>, "parameters": {"top_k": 3}} to /; the answer is '
        '[{"label", "score"}, ...] (plus gender and gender_score for ML models); ?segments=true returns one row per '
        "window. Requests arriving together are scored as one batch. Bad audio gets 400, a body over --max-bytes "
        "413. GET / describes the model.",
    )
    add_model_option(serve, "a folder written by training (or `gemo-clap demo`), or a Hub id (onnx: an export)")
    add_backend_options(serve)
    serve.add_argument("--replicas", type=int, default=1, help="model copies, --threads CPUs each (default 1)")
    serve.add_argument(
        "--max-batch-size", type=int, default=16, help="most requests scored together (default 16; 1: no batching)"
    )
    serve.add_argument(
        "--batch-wait-ms", type=float, default=10.0, help="longest wait for a batch to fill, ms (default 10)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0: all)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help=f"largest body, bytes (default {DEFAULT_MAX_BYTES})"
    )
    serve.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help=f"longest audio, s, read from its header before decoding (default {DEFAULT_MAX_SECONDS:g})",
    )
    serve.add_argument(
        "--window", type=float, default=DEFAULT_WINDOW_S, help=f"segment length, s (default {DEFAULT_WINDOW_S})"
    )
    serve.add_argument(
        "--hop", type=float, default=DEFAULT_HOP_S, help=f"time between segment starts, s (default {DEFAULT_HOP_S})"
    )
    serve.add_argument(
        "--address", default=None, help="join this Ray cluster (auto, HOST:PORT) instead of starting a local one"
    )
    serve.set_defaults(handler=serve_command)

    endpoint = commands.add_parser(
        "export-endpoint",
        help="write a Hugging Face Inference Endpoints repository (model, handler.py, requirements.txt)",
        description="Copy the model into OUT_DIR with a handler.py (EndpointHandler) and a requirements.txt pinned "
        "to this gemo-clap-hf version; push OUT_DIR to a Hub model repository and deploy it as a custom Endpoint.",
    )
    add_model_option(endpoint, "a folder written by training, a Hub id, or (--backend onnx) an export-onnx folder")
    endpoint.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the repository into")
    endpoint.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="torch (default) or onnx")
    endpoint.set_defaults(handler=export_endpoint_command)


def serve_command(args: argparse.Namespace) -> int:
    from ..inference.backends import check_threads
    from ..inference.serving import build_app, start_server

    check_threads(args.threads)
    segment_options = SegmentOptions(args.window, args.hop)
    app = build_app(
        args.model,
        args.backend,
        args.replicas,
        args.threads,
        args.max_batch_size,
        args.batch_wait_ms,
        args.max_bytes,
        segment_options,
        args.max_seconds,
    )
    url = start_server(app, args.host, args.port, args.address)
    where = "this machine only (--host 0.0.0.0 to serve others)" if args.host == "127.0.0.1" else "the network"
    print(
        f"gemo-clap serve: {args.model} on {url}, reachable from {where}; POST audio to it, Ctrl-C to stop.",
        file=sys.stderr,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it as Ctrl-C does: cleanly
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    return 0


def export_endpoint_command(args: argparse.Namespace) -> int:
    from ..inference.endpoint import export_endpoint

    out = export_endpoint(args.model, args.out_dir, args.backend)
    print(
        f"Endpoint repository written to {out} (model, handler.py, requirements.txt): push it to a Hub model "
        "repository and deploy it as a custom Inference Endpoint."
    )
    return 0


__all__ = ["add_serve_commands", "export_endpoint_command", "serve_command"]
