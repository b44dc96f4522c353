"""`load_corpus`: one entry point for every corpus layout, returning the same columns for each.

A reader finds the utterances of its layout; `build_dataset` does the rest (labels, file checks, schema). See
`building.py` for the column types.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping

import datasets

from .audio import TARGET_SAMPLING_RATE
from .building import build_dataset
from .readers import read_crema_d, read_iemocap, read_manifest, read_msp_podcast, read_ravdess
from .readers.base import ReadResult

READERS: dict[str, Callable[..., ReadResult]] = {
    "iemocap": read_iemocap,
    "ravdess": read_ravdess,
    "crema_d": read_crema_d,
    "msp_podcast": read_msp_podcast,
    "manifest": read_manifest,
    # The embedded synthetic corpus is written in the IEMOCAP layout, so the IEMOCAP reader and protocol run on it.
    "synthetic": read_iemocap,
}


def available_corpora() -> list[str]:
    return sorted(READERS)


def _reader(name: str) -> Callable[..., ReadResult]:
    key = name.lower().replace("-", "_")
    if key not in READERS:
        raise ValueError(f"unknown corpus {name!r}; choose one of {available_corpora()} "
                         "(any other corpus can be read through a 'manifest').")
    return READERS[key]


def _check_options(name: str, reader: Callable[..., ReadResult], options: Mapping[str, object]) -> None:
    accepted = [p for p in inspect.signature(reader).parameters if p != "data_dir"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"load_corpus({name!r}) got unknown options {unknown}; {name} accepts {accepted} besides "
                        "label_map, labels, skip_bad_files and sampling_rate.")


def load_corpus(
    name: str,
    data_dir: str | os.PathLike,
    label_map: Mapping[str, str | None] | None = None,
    skip_bad_files: bool = False,
    labels: Iterable[str] | None = None,
    sampling_rate: int = TARGET_SAMPLING_RATE,
    **options,
) -> datasets.Dataset:
    """Read a corpus into a Dataset with columns id, audio, emotion, gender, speaker, fold, duration, length.

    Args:
        name: "iemocap", "ravdess", "crema_d", "msp_podcast", "manifest" or "synthetic" (IEMOCAP layout).
        data_dir: the corpus folder in its public layout (for "manifest": the CSV/JSONL file).
        label_map: source label (name such as "excited", or raw code such as "exc") -> target label, None to
            drop; labels it does not list are dropped. Replaces the reader's default (4 classes; IEMOCAP merges
            excited, RAVDESS calm, into their neighbours). Kept and dropped counts are logged.
        skip_bad_files: skip missing or unreadable audio files (with a count) instead of raising.
        labels: keep only these target labels.
        sampling_rate: the rate `length` is counted at (the feature extractor's, 16 kHz).
        **options: reader options: IEMOCAP `sessions=(1, 2)`; RAVDESS `calm="neutral"|"drop"`.
    """
    reader = _reader(name)
    _check_options(name, reader, options)
    result = reader(data_dir, **options)
    return build_dataset(result.utterances, name, source=result.source, default_label_map=result.default_label_map,
                         label_map=label_map, labels=labels, skip_bad_files=skip_bad_files,
                         sampling_rate=sampling_rate)


__all__ = ["READERS", "available_corpora", "load_corpus"]
