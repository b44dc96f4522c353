"""The inference engine, a library (no argument parsing, no printing): what `gemo-clap predict`, the web app, the
bench and any Python caller classify with.

- `inputs`: files, folders and manifests -> paths.
- `backends`: the `Scorer` seam; `TorchScorer` (the classifier's forward) and `OnnxScorer` (its ONNX export);
  `load_backend` checks the model source, device and threads once.
- `engine`: `iter_predictions` / `predict_files` (one result per file) and `iter_segmented_files` /
  `predict_segments` (one per window), length-bucketed and decoded in the background.
- `predictions`: the result records; `segments`: window planning and merging; `vad`: silero speech regions;
  `timeline_plot`: the timeline picture; `onnx_export`, `onnx_runtime`, `onnx_quantize`: the ONNX graph.
- Past one machine (the [ray] extra; imported only when used): `audio_requests` (audio over the wire -> the engine),
  `ray_batch` (`RayPredictor` for Ray Data, `predict --ray`), `serving` (`gemo-clap serve` on Ray Serve), `endpoint`
  (the Inference Endpoints handler, `export-endpoint`).
"""

from .backends import OnnxScorer, Scorer, TorchScorer, load_backend, load_classifier
from .engine import iter_predictions, iter_segmented_files, predict_files, predict_segments
from .inputs import collect_inputs
from .predictions import Failure, Prediction, Predictions, Segment, SegmentedFile, SegmentedFiles
from .segments import SegmentOptions, merge_segments

__all__ = [
    "Failure",
    "OnnxScorer",
    "Prediction",
    "Predictions",
    "Scorer",
    "Segment",
    "SegmentOptions",
    "SegmentedFile",
    "SegmentedFiles",
    "TorchScorer",
    "collect_inputs",
    "iter_predictions",
    "iter_segmented_files",
    "load_backend",
    "load_classifier",
    "merge_segments",
    "predict_files",
    "predict_segments",
]
