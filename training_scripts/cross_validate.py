#!/usr/bin/env python
"""Cross-validate a GEmo-CLAP variant: train and test every fold, then the UAR/WAR table with mean ± std.

    python training_scripts/cross_validate.py --dataset iemocap --data_dir /data/IEMOCAP_full_release \
        --output_dir runs/sl-gemo-clap-cv [same options as train_gemo_clap.py, without --test_fold]

Leave-one-session-out on IEMOCAP and the synthetic corpus; speaker-grouped k-fold (--num_folds, default 5) on
corpora without sessions. Writes output_dir/fold_<k>/ per fold and output_dir/cv_results.{md,json}.
"""

import sys

from gemo_clap_hf.training import TrainingInputError, parse_arguments, run_cross_validation


def main(argv=None) -> int:
    model_args, data_args, training_args = parse_arguments(argv)
    try:
        run_cross_validation(model_args, data_args, training_args)
    except TrainingInputError as error:
        print(f"cross_validate.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
