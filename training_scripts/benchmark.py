"""Benchmark GEmo-CLAP against its speech encoder alone; prints one JSON object (same as `gemo-clap bench`).

    python training_scripts/benchmark.py            # base-size towers on CPU (< 10 min on 2 cores)
    python training_scripts/benchmark.py --device cuda
    python training_scripts/benchmark.py --quick    # tiny towers: a smoke test, figures meaningless
"""

from gemo_clap_hf.apps.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
