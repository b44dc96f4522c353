"""The measurement harness: what GEmo-CLAP costs beyond its speech encoder, measured side by side.

Kept outside the `gemo_clap_hf` package (as transformers keeps `benchmark/` outside its own), so a
`pip install gemo-clap-hf` ships no measurement code. Run from a checkout: `make bench`, `python -m benchmarks` or
`python training_scripts/benchmark.py` (flags: `--help`). Modules, one job each: `settings` (flags, targets),
`measure` (interleaved timing, peak memory), `workload` (towers, batches, one training step), `inference`,
`train_step`, `host_syncs` with `sync_audit` (the `TorchDispatchMode` that the tests use too), `padding`,
`end_to_end` (Trainer runs), and `run` (the JSON report).
"""
