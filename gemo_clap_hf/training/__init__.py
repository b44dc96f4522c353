"""GEmo-CLAP training runs as a library: the scripts in `training_scripts/` and `gemo-clap demo` call these.

```python
from gemo_clap_hf.training import parse_arguments, run_training, run_cross_validation

model_args, data_args, training_args = parse_arguments(["--dataset", "iemocap", "--data_dir", "...", ...])
results = run_training(model_args, data_args, training_args)      # one held-out fold
table = run_cross_validation(model_args, data_args, training_args)  # every fold, UAR/WAR mean ± std
```
"""

from .arguments import DataArguments, GEmoClapTrainingArguments, ModelArguments, build_parser, parse_arguments
from .checkpoints import resolve_checkpoint
from .cross_validation import cross_validation_folds, run_cross_validation
from .data_setup import prepare_data
from .errors import TrainingInputError
from .run import run_training

__all__ = [
    "DataArguments",
    "GEmoClapTrainingArguments",
    "ModelArguments",
    "TrainingInputError",
    "build_parser",
    "cross_validation_folds",
    "parse_arguments",
    "prepare_data",
    "resolve_checkpoint",
    "run_cross_validation",
    "run_training",
]
