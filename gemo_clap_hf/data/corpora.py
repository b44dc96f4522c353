"""The corpus registry, `CORPORA`, and `load_corpus`: one entry point for every corpus, the same columns for each.

Each corpus' facts live in its `CorpusSpec` and nowhere else: the reader of its layout, the title a model card
shows, its language, how its folds are formed (which the evaluation protocol in `protocol.py` reads), its default
label set and its class counts. A reader finds the utterances of its layout; `build_dataset` does the rest (labels,
file checks, schema; see `building.py` for the column types).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import datasets

from .audio import TARGET_SAMPLING_RATE
from .building import build_dataset
from .labels import FOUR_CLASS_MAP
from .readers import read_crema_d, read_emobox, read_iemocap, read_manifest, read_msp_podcast, read_ravdess
from .readers.base import ReadResult

FoldScheme = Literal["session", "split", "speaker", "column"]


@dataclass(frozen=True)
class CorpusSpec:
    """What the package knows about one corpus.

    Attributes:
        reader: reads the corpus' public layout into `Utterance` records (`readers/`).
        title: the corpus' name in logs and model cards.
        language: ISO 639-1 code of its speech, None when unknown (a manifest, the synthetic corpus).
        folds: what its `fold` column holds: "session" (recording sessions: leave-one-session-out), "split" (the
            release's own split names, e.g. MSP-Podcast "Train"/"Development"/"Test1"), "speaker" (nothing: folds
            are formed by speaker with `assign_speaker_folds`), "column" (whatever a manifest's fold/split column
            holds, if anything).
        label_map: the default label set, as source label -> target label (None drops); None keeps labels as written.
        class_counts: utterances per target label of the default label set on the full release, where known.
    """

    reader: Callable[..., ReadResult]
    title: str
    language: str | None
    folds: FoldScheme
    label_map: Mapping[str, str | None] | None
    class_counts: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        # Read-only views: callers (the synthetic corpus, the benchmark) share these facts and must not change them.
        for name in ("label_map", "class_counts"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, MappingProxyType(dict(value)))


IEMOCAP_LABEL_MAP = {**FOUR_CLASS_MAP, "excited": "happy"}

CORPORA: Mapping[str, CorpusSpec] = MappingProxyType(
    {
        # The paper's 4 classes with excited merged into happy (5531 utterances).
        "iemocap": CorpusSpec(
            read_iemocap,
            "IEMOCAP",
            "en",
            "session",
            IEMOCAP_LABEL_MAP,
            {"neutral": 1708, "happy": 1636, "sad": 1084, "angry": 1103},
        ),
        # Calm merged into neutral, so neutral has 96 + 192 clips (`calm="drop"` or a label_map without calm drops it).
        "ravdess": CorpusSpec(
            read_ravdess,
            "RAVDESS",
            "en",
            "speaker",
            {**FOUR_CLASS_MAP, "calm": "neutral"},
            {"neutral": 288, "happy": 192, "sad": 192, "angry": 192},
        ),
        # Disgust and fear dropped; neutral is only recorded at the unspecified intensity.
        "crema_d": CorpusSpec(
            read_crema_d,
            "CREMA-D",
            "en",
            "speaker",
            FOUR_CLASS_MAP,
            {"neutral": 1087, "happy": 1271, "sad": 1271, "angry": 1271},
        ),
        # Counts change with every release, so none are recorded.
        "msp_podcast": CorpusSpec(read_msp_podcast, "MSP-Podcast", "en", "split", FOUR_CLASS_MAP),
        "manifest": CorpusSpec(read_manifest, "custom manifest", None, "column", None),
        # One fold of an EmoBox corpus (`dataset=`, `fold=`): its label set is the corpus' label_map.json, its folds
        # EmoBox's train/valid/test files (`readers/emobox.py`); the language depends on the corpus.
        "emobox": CorpusSpec(read_emobox, "EmoBox", None, "split", None),
        # The embedded corpus is written in the IEMOCAP layout, so the IEMOCAP reader, label set and protocol run on it;
        # its class shares follow IEMOCAP's counts (`synthetic.py`), its size is a generation setting.
        "synthetic": CorpusSpec(read_iemocap, "synthetic gender-confounded speech", None, "session", IEMOCAP_LABEL_MAP),
    }
)


def available_corpora() -> list[str]:
    return sorted(CORPORA)


def corpus_spec(name: str) -> CorpusSpec:
    """The registry entry of `name` ("crema-d" and "CREMA_D" name "crema_d"), or a ValueError listing the names."""
    key = name.lower().replace("-", "_")
    if key not in CORPORA:
        raise ValueError(
            f"unknown corpus {name!r}; choose one of {available_corpora()} "
            "(any other corpus can be read through a 'manifest')."
        )
    return CORPORA[key]


def _check_options(name: str, reader: Callable[..., ReadResult], options: Mapping[str, object]) -> None:
    accepted = [p for p in inspect.signature(reader).parameters if p not in ("data_dir", "skip_bad_files")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"load_corpus({name!r}) got unknown options {unknown}; {name} accepts {accepted} besides "
            "label_map, labels, skip_bad_files and sampling_rate."
        )


def load_corpus(
    name: str,
    data_dir: str | os.PathLike,
    label_map: Mapping[str, str | None] | None = None,
    skip_bad_files: bool = False,
    labels: Iterable[str] | None = None,
    sampling_rate: int = TARGET_SAMPLING_RATE,
    all_labels: bool = False,
    **options,
) -> datasets.Dataset:
    """Read a corpus into a Dataset with columns id, audio, emotion, gender, speaker, fold, duration, length.

    Args:
        name: "iemocap", "ravdess", "crema_d", "msp_podcast", "manifest", "emobox" or "synthetic" (IEMOCAP
            layout).
        data_dir: the corpus folder in its public layout (for "manifest": the CSV/JSONL file).
        label_map: source label (name such as "excited", or raw code such as "exc") -> target label, None to
            drop; labels it does not list are dropped. Replaces the corpus' default (`CORPORA[name].label_map`:
            4 classes; IEMOCAP merges excited into happy, RAVDESS calm into neutral). Kept and dropped counts are
            logged.
        skip_bad_files: skip missing or unreadable audio files (with a count) instead of raising.
        labels: keep only these target labels.
        sampling_rate: the rate `length` is counted at (the feature extractor's, 16 kHz).
        all_labels: keep every label the corpus has, as its reader names them, instead of the default label set
            (cross-corpus evaluation counts the labels one corpus has and the other lacks).
        **options: reader options: IEMOCAP `sessions=(1, 2)`; RAVDESS `calm="neutral"|"drop"`; EmoBox
            `dataset="iemocap"`, `fold=1`, `audio_root=`, `demographics=` (CREMA-D's VideoDemographics.csv).

    `speaker` is "" where the corpus does not know the speaker (MSP-Podcast's "Unknown", a manifest without the
    column): such utterances are never taken for one shared speaker.
    """
    spec = corpus_spec(name)
    _check_options(name, spec.reader, options)
    if "skip_bad_files" in inspect.signature(spec.reader).parameters:
        options["skip_bad_files"] = skip_bad_files  # a reader that checks files itself names each file's line
    result = spec.reader(data_dir, **options)
    default_map = None if all_labels else result.label_map
    if default_map is None and spec.label_map is not None and not all_labels:
        default_map = {**spec.label_map, **result.label_map_changes}
    return build_dataset(
        result.utterances,
        name,
        source=result.source,
        default_label_map=default_map,
        label_map=label_map,
        labels=labels,
        skip_bad_files=skip_bad_files,
        sampling_rate=sampling_rate,
        keep_unknown_gender=result.keep_unknown_gender,
    )


__all__ = ["CORPORA", "CorpusSpec", "FoldScheme", "available_corpora", "corpus_spec", "load_corpus"]
