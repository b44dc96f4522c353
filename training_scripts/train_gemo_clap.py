#!/usr/bin/env python
"""Fine-tune Emo-CLAP / SL-GEmo-CLAP / ML-GEmo-CLAP on one held-out fold of a corpus.

    python training_scripts/train_gemo_clap.py --dataset iemocap --data_dir /data/IEMOCAP_full_release \
        --test_fold 5 --output_dir runs/sl-gemo-clap-s5 [--help for every option]
    python training_scripts/train_gemo_clap.py args.json          # the same keys in one JSON file
    accelerate launch training_scripts/train_gemo_clap.py ...     # one GPU or many

The logic lives in `gemo_clap_hf.training`; see docs/training.md.
"""

import sys

from gemo_clap_hf.training import TrainingInputError, parse_arguments, run_training


def main(argv=None) -> int:
    model_args, data_args, training_args = parse_arguments(argv)
    try:
        run_training(model_args, data_args, training_args)
    except TrainingInputError as error:
        print(f"train_gemo_clap.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
