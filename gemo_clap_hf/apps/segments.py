"""Deprecated (0.2): moved to `gemo_clap_hf.inference.segments`, `gemo_clap_hf.inference.engine`,
`gemo_clap_hf.inference.predictions`, `gemo_clap_hf.errors`; removed in 0.3."""

from .._deprecation import forward

__getattr__ = forward(
    __name__,
    (
        "gemo_clap_hf.inference.segments",
        "gemo_clap_hf.inference.engine",
        "gemo_clap_hf.inference.predictions",
        "gemo_clap_hf.errors",
    ),
)
