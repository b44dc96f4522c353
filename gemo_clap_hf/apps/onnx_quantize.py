"""Deprecated (0.2): moved to `gemo_clap_hf.inference.onnx_quantize`; removed in 0.3."""

from .._deprecation import forward

__getattr__ = forward(
    __name__,
    ("gemo_clap_hf.inference.onnx_quantize",),
)
