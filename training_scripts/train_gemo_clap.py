#!/usr/bin/env python
"""Fine-tune Emo-CLAP / SL-GEmo-CLAP / ML-GEmo-CLAP on one held-out fold of a corpus.

    python training_scripts/train_gemo_clap.py --dataset iemocap --data_dir /data/IEMOCAP_full_release \
        --test_fold 5 --output_dir runs/sl-gemo-clap-s5 [--help for every option]
    python training_scripts/train_gemo_clap.py args.json          # the same keys in one JSON file
    accelerate launch training_scripts/train_gemo_clap.py ...     # one GPU or many

The logic lives in `gemo_clap_hf.training`; see docs/training.md.
"""

import sys

from gemo_clap_hf.training import run_training
from gemo_clap_hf.training.script import script_main


def main(argv=None) -> int:
    return script_main(run_training, "train_gemo_clap.py", argv)


if __name__ == "__main__":
    sys.exit(main())
