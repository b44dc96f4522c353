"""`gemo-clap export-onnx`: write a trained classifier as an ONNX graph (and, with --quantize int8, its int8 graph)."""

from __future__ import annotations

import argparse

from .predict import add_model_option


def add_export_command(commands) -> None:
    export = commands.add_parser(
        "export-onnx",
        help="export a trained classifier to ONNX (label prompts folded in: no text tower needed)",
        description="Write OUT_DIR/model.onnx (inputs input_values and audio_attention_mask, batch and time axes "
        "dynamic; outputs logits and audio_embeds) with the config, the feature extractor's settings "
        "and the label tables beside it. Needs the [onnx] extra: pip install 'gemo-clap-hf[onnx]'.",
    )
    add_model_option(export, "a folder written by training (or `gemo-clap demo`), or a Hub id")
    export.add_argument("out_dir", metavar="OUT_DIR", help="folder to write model.onnx and its JSON files into")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    export.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime check against PyTorch on a padded batch"
    )
    export.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="also write model.int8.onnx (onnxruntime dynamic int8 quantisation of the MatMul/Gemm weights), after "
        "checking its argmax agreement with the float32 graph (refused below 95%% unless --force)",
    )
    export.add_argument("--force", action="store_true", help="write the int8 graph even below the agreement threshold")
    export.add_argument(
        "--check-audio",
        nargs="+",
        default=None,
        metavar="PATH",
        help="audio files, folders or manifests to add to the int8 check clips (default: synthetic speech only)",
    )
    export.set_defaults(handler=export_onnx_command)


def export_onnx_command(args: argparse.Namespace) -> int:
    from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor
    from ..inference.onnx_export import export_onnx

    report = export_onnx(args.model, args.out_dir, opset=args.opset, verify=not args.no_verify)
    print(report.describe())
    if args.quantize == "int8":
        from ..inference.onnx_quantize import quantize_int8, read_check_audio

        rate = GEmoClapFeatureExtractor.from_pretrained(args.out_dir).sampling_rate
        extra = read_check_audio(args.check_audio, rate) if args.check_audio else None
        print(quantize_int8(args.out_dir, extra, force=args.force).describe())
    return 0


__all__ = ["add_export_command", "export_onnx_command"]
