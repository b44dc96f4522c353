"""`gemo-clap app`: launch the web page (`web.app`) or write it out as a Hub Space (`web.space`)."""

from __future__ import annotations

import argparse

from ..inference.segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, check_window
from ..web.limits import DEFAULT_CONCURRENCY, DEFAULT_MAX_DURATION_S, DEFAULT_MAX_FILE_MB, check_limits
from .predict import add_model_option


def add_app_command(commands) -> None:
    app = commands.add_parser(
        "app",
        help="a web page (Gradio) to try a model on uploaded or recorded audio; or write it as a Hub Space",
        description="Launch a Gradio page: upload or record audio, see the emotion scores (gender for ML models), "
        "and for recordings longer than a window the timeline and the segment table. With --export-space, write "
        "app.py, requirements.txt and README.md (Space metadata) to run the same page as a Hub Space. Needs the "
        "[app] extra: pip install 'gemo-clap-hf[app]'.",
    )
    add_model_option(app)
    app.add_argument("--export-space", metavar="DIR", default=None, help="write the Space folder here and exit")
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1; 0.0.0.0: all)")
    app.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    app.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    app.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    app.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, help="timeline window, s (default 3)")
    app.add_argument("--hop", type=float, default=DEFAULT_HOP_S, help="timeline hop, s (default 1)")
    app.add_argument("--no-vad", action="store_true", help="timeline over all audio, pauses included")
    app.add_argument(
        "--max-file-size",
        type=float,
        default=DEFAULT_MAX_FILE_MB,
        metavar="MB",
        help=f"largest upload, MB (default {DEFAULT_MAX_FILE_MB:g}); shown on the page",
    )
    app.add_argument(
        "--max-duration",
        type=float,
        default=DEFAULT_MAX_DURATION_S,
        metavar="S",
        help=f"longest recording, s (default {DEFAULT_MAX_DURATION_S:g}), read from its header; shown on the page",
    )
    app.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"recordings analysed at a time; the others wait in the queue (default {DEFAULT_CONCURRENCY})",
    )
    app.set_defaults(handler=app_command)


def app_command(args: argparse.Namespace) -> int:
    if args.export_space is not None:
        from ..web.space import export_space

        out = export_space(args.model, args.export_space)
        print(f"Space written to {out} (app.py, requirements.txt, README.md): push it to a Gradio Hub Space")
        return 0
    check_window(args.window, args.hop)
    check_limits(args.max_file_size, args.max_duration, args.concurrency)
    from ..web.app import build_app

    page = build_app(
        args.model,
        args.device,
        args.concurrency,
        window=args.window,
        hop=args.hop,
        vad=False if args.no_vad else None,
        max_file_mb=args.max_file_size,
        max_duration_s=args.max_duration,
    )
    page.launch(server_name=args.host, server_port=args.port, share=args.share, **page.launch_options)
    return 0


__all__ = ["add_app_command", "app_command"]
