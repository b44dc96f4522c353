"""Benchmark GEmo-CLAP against its speech encoder alone; prints one JSON object (`make bench` runs this).

python training_scripts/benchmark.py                      # WavLM base-plus + RoBERTa base shapes on CPU
python training_scripts/benchmark.py --device cuda --bf16 --size large --batch_size 32
python training_scripts/benchmark.py --figures syncs,end_to_end   # only some figures (see --help)
python training_scripts/benchmark.py --quick              # tiny towers: a smoke test, figures meaningless

The harness lives in the checkout's top-level `benchmarks/` (not shipped in the wheel).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout root, which holds benchmarks/

from benchmarks.run import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
