"""What a corpus reader returns, and the small checks every reader starts with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..labels import Utterance


@dataclass
class ReadResult:
    """A reader's utterances (labels as corpus label names) and where it looked.

    The default label set is the corpus' registry entry (`CORPORA[name].label_map`); `label_map_changes` are the
    entries a reader option changes in it (RAVDESS `calm="drop"`: calm -> None). A corpus whose label set comes with
    its data (EmoBox's label_map.json) gives it as `label_map` instead. `keep_unknown_gender` keeps utterances
    whose gender the corpus does not give (gender ""), for corpora that have none at all: Emo-CLAP needs no gender.
    """

    utterances: list[Utterance]
    source: str
    label_map_changes: Mapping[str, str | None] = field(default_factory=dict)
    label_map: Mapping[str, str | None] | None = None
    keep_unknown_gender: bool = False


def require_dir(data_dir: str | os.PathLike, corpus: str, layout: str) -> Path:
    """The data directory as an absolute path, or a `FileNotFoundError` that shows the expected layout."""
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{corpus}: data_dir {str(path)!r} does not exist or is not a directory; "
            f"expected the corpus' public layout:\n{layout}"
        )
    return path


def layout_error(path: Path, corpus: str, layout: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(f"{corpus}: {what} under {str(path)!r}; expected the corpus' public layout:\n{layout}")


def is_debris(path: Path) -> bool:
    """macOS resource-fork files (`._name`) that archives of these corpora often carry."""
    return path.name.startswith("._")


def wav_files(directory: Path) -> list[Path]:
    """Sorted `.wav` files of a directory, without macOS debris."""
    return sorted(p for p in directory.glob("*.wav") if not is_debris(p))
