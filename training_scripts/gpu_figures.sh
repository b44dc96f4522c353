#!/usr/bin/env bash
# The GPU figures of the performance section in one prepared run: `python -m benchmarks` with bf16 autocast for WavLM
# base-plus and WavLM large shapes at batch 8 and 32 (train step, inference, package syncs), and the end-to-end
# Trainer ratio at base, batch 32, 4 DataLoader workers. One JSON file per run lands in OUTPUT_DIR, with the card's
# name in `environment`.
#
#   training_scripts/gpu_figures.sh OUTPUT_DIR [extra benchmark flags]
#
# Runs from a checkout without installing it (PYTHONPATH), as on a lent device machine. That machine has torch,
# transformers and accelerate but not the data stack the end-to-end figure needs: download these wheels here first
# (see the device tool's README for the pip download flags) and install them there into a --target folder on
# PYTHONPATH: datasets, evaluate, librosa, soundfile, cffi, pycparser, soxr, audioread, pooch, dill, multiprocess
# (and their missing requirements).
#
# DEVICE=cpu with --quick checks the plumbing on a CPU (tiny towers, no bf16): tests/bench/test_gpu_figures_script.py.
set -euo pipefail

out=${1:?usage: training_scripts/gpu_figures.sh OUTPUT_DIR [extra benchmark flags]}
shift
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
precision=(--bf16)
[ "$device" = cpu ] && precision=()  # bf16 autocast is CUDA-only in the benchmark
mkdir -p "$out"

bench() {  # name, then benchmark flags; stdout is the JSON object, logs go to name.log
    local name=$1
    shift
    "$python" -m benchmarks --device "$device" "${precision[@]}" "$@" >"$out/$name.json" 2>"$out/$name.log"
    echo "wrote $out/$name.json"
}

for size in base large; do
    for batch in 8 32; do
        bench "bench_${size}_batch${batch}" --size "$size" --batch_size "$batch" \
            --figures train_step,inference,syncs "$@"
    done
done
bench end_to_end_base_batch32 --size base --batch_size 32 --figures end_to_end --dataloader_num_workers 4 "$@"
