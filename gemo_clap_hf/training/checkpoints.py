"""Which checkpoint a run resumes from: the transformers example scripts' output-folder rule.

- `--resume_from_checkpoint PATH` resumes from PATH.
- Otherwise, the last `checkpoint-N` in `output_dir` is resumed automatically (an interrupted job restarted with the
  same command continues where it stopped).
- A non-empty `output_dir` without checkpoints is an error, so that a finished run is never overwritten by accident;
  `--overwrite_output_dir` starts from scratch in either case.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from .data_setup import TrainingInputError

logger = logging.getLogger(__name__)


def resolve_checkpoint(training_args) -> str | None:
    """The checkpoint folder to resume from, or None to start from scratch."""
    explicit = training_args.resume_from_checkpoint
    if explicit:
        if not (Path(explicit) / "trainer_state.json").is_file():
            raise TrainingInputError(f"--resume_from_checkpoint {explicit!r} is not a Trainer checkpoint folder (no "
                                     "trainer_state.json); pass a checkpoint-N folder of an earlier run.")
        return str(explicit)
    output_dir = Path(training_args.output_dir)
    if getattr(training_args, "overwrite_output_dir", False) or not output_dir.is_dir():
        return None
    last = get_last_checkpoint(str(output_dir))
    if last is not None:
        logger.info(f"Checkpoint detected, resuming training at {last}. To avoid this behaviour, change "
                    "--output_dir or add --overwrite_output_dir to train from scratch.")
        return last
    if any(output_dir.iterdir()):
        raise TrainingInputError(f"output directory {str(output_dir)!r} already exists and is not empty (and holds no "
                                 "checkpoint to resume). Use --overwrite_output_dir to overwrite it, or choose "
                                 "another --output_dir.")
    return None


__all__ = ["resolve_checkpoint"]
