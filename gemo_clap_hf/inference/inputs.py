"""What to classify: audio files, folders and CSV/JSONL manifests turned into one list of files.

A path that does not exist is an error before any model loads (a typo fails in milliseconds); a file listed in a
manifest that is missing is left in the list, so that the engine reports and skips it like a corrupt one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import PredictionError

# What `gemo-clap predict` picks up in a folder: the formats soundfile (libsndfile) decodes without ffmpeg.
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".aifc",
    ".au",
    ".caf",
    ".w64",
    ".rf64",
)
MANIFEST_EXTENSIONS = (".csv", ".jsonl", ".json")


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith("._")  # "._x.wav": macOS debris


def _folder_files(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(path for path in found if path.is_file() and _is_audio(path))
    if not files:
        hint = "" if recursive or not any(p.is_dir() for p in folder.iterdir()) else " (sub-folders: add --recursive)"
        raise PredictionError(
            f"folder {str(folder)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS[:4])}, ...)"
            f"{hint}; pass audio files, a folder of them, or a CSV/JSONL manifest."
        )
    return files


def _manifest_files(manifest: Path) -> list[Path]:
    """The `path` column of a manifest (the training manifest format; other columns are ignored), resolved against
    the manifest's folder."""
    from ..data.readers.tables import read_table

    try:
        rows = read_table(manifest, "manifest", ["path"])
    except ValueError as error:
        raise PredictionError(str(error)) from error
    files = []
    for row in rows:
        path = Path(str(row["path"])).expanduser()
        files.append(path if path.is_absolute() else manifest.parent / path)
    return files


def collect_inputs(paths: Sequence[str | os.PathLike], recursive: bool = False) -> list[str]:
    """Every audio file named by `paths` (files, folders, manifests), in the order given, each once."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise PredictionError(f"audio file(s) not found: {', '.join(missing)}; check the path(s).")
    files: dict[str, None] = {}
    seen: set[str] = set()
    for given in map(Path, paths):
        if given.is_dir():
            found = _folder_files(given, recursive)
        elif given.suffix.lower() in MANIFEST_EXTENSIONS:
            found = _manifest_files(given)
        else:
            found = [given]
        for path in found:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                files[str(path)] = None
    return list(files)


__all__ = ["AUDIO_EXTENSIONS", "MANIFEST_EXTENSIONS", "collect_inputs"]
