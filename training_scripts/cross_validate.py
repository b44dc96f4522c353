#!/usr/bin/env python
"""Cross-validate a GEmo-CLAP variant: train and test every fold, then the UAR/WAR table with mean ± std.

    python training_scripts/cross_validate.py --dataset iemocap --data_dir /data/IEMOCAP_full_release \
        --output_dir runs/sl-gemo-clap-cv [same options as train_gemo_clap.py, without --test_fold]

Leave-one-session-out on IEMOCAP and the synthetic corpus; speaker-grouped k-fold (--num_folds, default 5) on
corpora without sessions. Writes output_dir/fold_<k>/ per fold and output_dir/cv_results.{md,json}.
"""

import sys

from gemo_clap_hf.training import run_cross_validation
from gemo_clap_hf.training.script import script_main


def main(argv=None) -> int:
    return script_main(run_cross_validation, "cross_validate.py", argv)


if __name__ == "__main__":
    sys.exit(main())
