"""Deprecated (0.2): moved to `gemo_clap_hf.training.trainer`; removed in 0.3. (`from gemo_clap_hf import
GEmoClapTrainer` is the public way in.)"""

from ._deprecation import forward

__getattr__ = forward(__name__, ("gemo_clap_hf.training.trainer",))
