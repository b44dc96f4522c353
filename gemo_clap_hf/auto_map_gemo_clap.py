"""What a saved folder's `auto_map` may name: only module files the folder holds.

Travels with saved models (`trust_remote_code`): imports only the standard library.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def auto_map_of_folder(saved, save_directory, own_entry: str):
    """Inside the block, `saved.auto_map` (a config's or feature extractor's) keeps only the entries whose module file
    `save_directory` holds, `own_entry` (the saving object's own class: its file is copied by the save) and
    references to other repositories (`repo--module.Class`); the full map is back afterwards.

    A feature extractor taken from a processor's folder carries the processor's `AutoProcessor` entry, and a model's
    config carries the model classes' entries: saved alone, they would name files that only the processor or the
    model copies, and the Auto classes would fail on the folder.
    """
    full = getattr(saved, "auto_map", None)
    if not full:
        yield
        return
    folder = os.fspath(save_directory)
    saved.auto_map = {
        key: reference
        for key, reference in full.items()
        if key == own_entry or "--" in str(reference) or _names_a_file_in(reference, folder)
    }
    try:
        yield
    finally:
        saved.auto_map = {**full, **saved.auto_map}  # entries the save added stay


def _names_a_file_in(reference, folder: str) -> bool:
    references = reference if isinstance(reference, (list, tuple)) else [reference]
    return all(
        item is None or os.path.isfile(os.path.join(folder, str(item).split(".")[0] + ".py")) for item in references
    )


__all__ = ["auto_map_of_folder"]
