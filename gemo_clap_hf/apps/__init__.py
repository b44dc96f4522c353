"""Applications built on the model package: the `gemo-clap` CLI, the demo, bulk prediction, ONNX export, the
benchmark, stand-in towers, model cards and plots.

Nothing here travels with a saved model: the files that do (`*_gemo_clap.py`) sit flat in `gemo_clap_hf/` and
never import this sub-package.
"""
