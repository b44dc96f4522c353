"""Benchmark GEmo-CLAP against its speech encoder alone; prints one JSON object (same as `gemo-clap bench`).

python training_scripts/benchmark.py                      # WavLM base-plus + RoBERTa base shapes on CPU
python training_scripts/benchmark.py --device cuda --bf16 --size large --batch_size 32
python training_scripts/benchmark.py --figures syncs,end_to_end   # only some figures (see --help)
python training_scripts/benchmark.py --quick              # tiny towers: a smoke test, figures meaningless
"""

from gemo_clap_hf.apps.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
