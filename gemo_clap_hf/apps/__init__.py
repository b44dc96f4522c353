"""Deprecated (0.2): the applications moved to `gemo_clap_hf.inference` (the engine), `gemo_clap_hf.cli` (the `gemo-
clap` command), `gemo_clap_hf.web` (the Gradio page, the Space export) and `gemo_clap_hf.demo` (the demo and the
stand-in towers). The old module names (`gemo_clap_hf.apps.prediction`, ...) keep working for one release: each name
resolves from its new home with a `DeprecationWarning`. Nothing in the package imports this."""
