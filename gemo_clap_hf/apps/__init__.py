"""Applications built on the model package: the `gemo-clap` CLI, the demo, bulk prediction and its throughput
timing, ONNX export, and the stand-in towers (random weights shaped like the real checkpoints).

Nothing else in the library imports this sub-package (the model card and plots are training outputs, in
`training/reporting/`), and nothing here travels with a saved model: the files that do (`*_gemo_clap.py`) sit flat
in `gemo_clap_hf/` and import only each other.
"""
