#!/usr/bin/env python
"""Cross-corpus evaluation: train GEmo-CLAP on all of one corpus, test it zero-shot on all of another.

    python training_scripts/cross_corpus.py --train_corpus iemocap --train_data_dir /data/IEMOCAP_full_release \
        --test_corpus crema_d --test_data_dir /data/CREMA-D --output_dir runs/iemocap-to-cremad \
        [--zero_shot_labels] [model and training options as train_gemo_clap.py; --help for all]

The classes are the labels both corpora share after the cross-corpus label map; labels only the test corpus has are
counted in output_dir/cross_corpus_report.{md,json}. The logic lives in `gemo_clap_hf.training.cross_corpus`; see
docs/training.md, "Cross-corpus".
"""

import sys

from gemo_clap_hf.training.cross_corpus import CROSS_CORPUS_ARGUMENT_CLASSES, run_cross_corpus
from gemo_clap_hf.training.script import script_main


def main(argv=None) -> int:
    return script_main(run_cross_corpus, "cross_corpus.py", argv, CROSS_CORPUS_ARGUMENT_CLASSES)


if __name__ == "__main__":
    sys.exit(main())
