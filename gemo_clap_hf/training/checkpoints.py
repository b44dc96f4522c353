"""Which checkpoint a run resumes from: the transformers example scripts' output-folder rule, made crash-safe.

- `--resume_from_checkpoint PATH` resumes from PATH (refused, with the reason, if PATH is not a complete checkpoint).
- Otherwise, the last complete `checkpoint-N` in `output_dir` is resumed automatically (an interrupted job restarted
  with the same command continues where it stopped).
- A non-empty `output_dir` without checkpoints is an error, so that a finished run is never overwritten by accident;
  `--overwrite_output_dir` starts from scratch in either case.

`transformers.trainer_utils.get_last_checkpoint` returns the highest-numbered `checkpoint-N` folder whatever it holds.
A process killed while saving leaves a folder without `trainer_state.json` (the Trainer writes it last) or, after a
crash of the machine or a full disk, with truncated files; loading it would fail, or silently restore half a state.
Such folders are skipped here with a warning, and the previous complete checkpoint is resumed.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from pathlib import Path

from safetensors import SafetensorError, safe_open
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .errors import TrainingInputError

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")  # the pattern get_last_checkpoint matches


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why `folder` is not a complete Trainer checkpoint, or None if it is.

    Checks what a resume loads: the trainer state (written last, so its absence means the save was cut short), every
    safetensors file (header and size must agree) and every torch file (optimizer, scheduler, RNG state: zip archives
    whose directory sits at the end, so a truncated one is not a valid zip). Files it does not find are not required:
    what a checkpoint holds depends on the setup (FSDP, PEFT, --save_only_model).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return "it is not a folder"
    try:
        json.loads((folder / TRAINER_STATE).read_text())
    except FileNotFoundError:
        return f"it has no {TRAINER_STATE} (the save was interrupted)"
    except (OSError, ValueError) as error:
        return f"its {TRAINER_STATE} is unreadable ({error})"
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            return f"its {path.name} is truncated or corrupt ({error})"
    for path in sorted([*folder.glob("*.pt"), *folder.glob("*.pth")]):
        if not zipfile.is_zipfile(path):
            return f"its {path.name} is truncated or corrupt"
    return None


def _checkpoints_newest_first(output_dir: Path) -> list[Path]:
    found = [
        (int(match.group(1)), path)
        for path in output_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT_NAME.match(path.name))
    ]
    return [path for _, path in sorted(found, reverse=True)]


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The highest-numbered complete `checkpoint-N` of `output_dir` (incomplete ones skipped with a warning)."""
    for path in _checkpoints_newest_first(Path(output_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning(
            f"Skipping {path}: {problem}. Resuming from an earlier checkpoint instead; delete the folder "
            "if it is not needed."
        )
    return None


def resolve_checkpoint(training_args) -> str | None:
    """The checkpoint folder to resume from, or None to start from scratch."""
    explicit = training_args.resume_from_checkpoint
    if explicit:
        problem = checkpoint_problem(explicit)
        if problem is not None:
            raise TrainingInputError(
                f"--resume_from_checkpoint {explicit!r} is not a complete Trainer checkpoint: "
                f"{problem}; pass a complete checkpoint-N folder of an earlier run."
            )
        return str(explicit)
    output_dir = Path(training_args.output_dir)
    if getattr(training_args, "overwrite_output_dir", False) or not output_dir.is_dir():
        return None
    last = last_complete_checkpoint(output_dir)
    if last is not None:
        logger.info(
            f"Checkpoint detected, resuming training at {last}. To avoid this behaviour, change "
            "--output_dir or add --overwrite_output_dir to train from scratch."
        )
        return last
    if _checkpoints_newest_first(output_dir):
        logger.warning(
            f"{output_dir} holds only incomplete checkpoints (the earlier run stopped while saving its "
            "first one); training starts from scratch."
        )
        return None
    if any(output_dir.iterdir()):
        raise TrainingInputError(
            f"output directory {str(output_dir)!r} already exists and is not empty (and holds no "
            "checkpoint to resume). Use --overwrite_output_dir to overwrite it, or choose "
            "another --output_dir."
        )
    return None


__all__ = ["checkpoint_problem", "last_complete_checkpoint", "resolve_checkpoint"]
