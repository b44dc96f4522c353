"""EmoBox reader: one fold of one EmoBox corpus, read from EmoBox's own data files as they are.

EmoBox (Ma et al., Interspeech 2024; github.com/emo-box/EmoBox) fixes the label sets and train/test folds of ~32
corpora. Its layout, as in the repository (`data/`, `EmoBox/EmoDataset.py`):

    <emobox_root>/data/<ds>/label_map.json                       EmoBox code -> label name ("exc": "Happy")
    <emobox_root>/data/<ds>/fold_<K>/<ds>_train_fold_<K>.jsonl   one JSON object per line
    <emobox_root>/data/<ds>/fold_<K>/<ds>_valid_fold_<K>.jsonl   only for some corpora (MELD, M3ED, MSP-Podcast)
    <emobox_root>/data/<ds>/fold_<K>/<ds>_test_fold_<K>.jsonl
    <emobox_root>/downloads/...                                 the audio, at the lines' `wav` paths

A line holds `key`, `dataset`, `wav` (relative to the EmoBox root), `type`, `sample_rate`, `num_frame`, `task`,
`length`, `emo` (the code that label_map.json maps) and `channel`. The `fold` column is the file's split: "train",
"valid" or "test". Labels are label_map.json's names, lower-cased ("Happy" -> "happy"); "No-agreement" and "Other"
(MSP-Podcast's X and O) are not emotions and are dropped with a count, unless a `label_map` keeps them.

The lines carry no gender or speaker: both come from the key/path by each corpus' own rule, as this package's reader
of that corpus finds them (IEMOCAP: the utterance id's letter; RAVDESS: the actor number's parity; CREMA-D: the actor
id, and gender from VideoDemographics.csv when it is found or given). Other corpora get no gender and no speaker,
never a guess: Emo-CLAP trains on them, SL/ML-GEmo-CLAP refuse.

What a line and label_map.json may hold, and where a line's audio may be, is checked once in `emobox_schema.py`;
this module finds the files, applies the corpus rules and refuses a key or audio file given twice, naming both lines.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..labels import Utterance, normalise_gender
from .base import ReadResult, require_dir
from .crema_d import read_demographics
from .emobox_schema import (
    EmoBoxError,
    EmoBoxFileNotFoundError,
    EmoBoxLine,
    audio_path,
    fold_lines,
    line_error,
    parse_line,
)
from .emobox_schema import read_label_map as read_map_file
from .iemocap import speaker_of as iemocap_speaker
from .ravdess import parse_file_name as parse_ravdess_name

logger = logging.getLogger(__name__)

LAYOUT = """<emobox_root>/                     (the EmoBox repository folder)
  data/<ds>/label_map.json
  data/<ds>/fold_<K>/<ds>_train_fold_<K>.jsonl, <ds>_test_fold_<K>.jsonl   (and <ds>_valid_fold_<K>.jsonl)
  downloads/...                      the audio, at the paths the lines' "wav" field gives"""

SPLITS = ("train", "valid", "test")
REQUIRED_SPLITS = ("train", "test")
NOT_EMOTIONS = ("no-agreement", "other")  # MSP-Podcast's X and O in EmoBox's label map
_SHOWN = 5

SpeakerRule = Callable[[str, Path, "_Context"], tuple[str | None, str]]


class _Context:
    """What a speaker rule may need beyond the line: CREMA-D's demographics, read once."""

    def __init__(self, demographics: str | os.PathLike | None):
        self.demographics = None if demographics is None else Path(demographics).expanduser().resolve()
        self._genders: dict[str, str] | None = None

    def crema_d_genders(self, audio: Path) -> dict[str, str] | None:
        if self._genders is None:
            path = self.demographics or audio.parent.parent / "VideoDemographics.csv"  # downloads/cremad/
            if not path.is_file():
                if self.demographics is not None:
                    raise EmoBoxFileNotFoundError(
                        f"emobox: demographics file {str(path)!r} does not exist; pass CREMA-D's "
                        "VideoDemographics.csv, or leave it unset to look beside the audio (downloads/cremad/)."
                    )
                logger.warning(
                    f"emobox: cremad has no gender labels here: {path} (CREMA-D's VideoDemographics.csv) is "
                    "absent; pass demographics=<path> to use it. Emo-CLAP trains without it; SL/ML cannot."
                )
                self._genders = {}
            else:
                try:
                    self._genders = read_demographics(path)
                except ValueError as error:  # a malformed file, or bytes that are not UTF-8
                    raise EmoBoxError(
                        f"emobox: cremad demographics {path}: {error}; use the VideoDemographics.csv shipped with "
                        "CREMA-D."
                    ) from None
        return self._genders


def _iemocap(key: str, path: Path, context: _Context) -> tuple[str | None, str]:
    match = re.match(r"^Ses(\d+)", path.stem)
    if not match:
        raise ValueError(f"iemocap: {path.name} is not an IEMOCAP utterance file (Ses<NN>..._<F|M>NNN.wav).")
    return iemocap_speaker(path.stem, int(match.group(1)))


def _ravdess(key: str, path: Path, context: _Context) -> tuple[str | None, str]:
    utterance, why = parse_ravdess_name(path)
    if utterance is None:
        raise ValueError(f"ravdess: cannot read the actor from {path.name} ({why}).")
    return utterance.gender, utterance.speaker


def _crema_d(key: str, path: Path, context: _Context) -> tuple[str | None, str]:
    actor = path.stem.split("_", 1)[0]
    return context.crema_d_genders(path).get(actor), actor


# EmoBox dataset name -> the rule of that corpus' own reader. Corpora not listed have no gender and no speaker.
SPEAKER_RULES: dict[str, SpeakerRule] = {"iemocap": _iemocap, "ravdess": _ravdess, "cremad": _crema_d}


def read_label_map(dataset_dir: Path) -> dict[str, str]:
    """label_map.json of an EmoBox corpus folder as EmoBox code -> package label name (lower-cased)."""
    return read_map_file(dataset_dir / "label_map.json")


def fold_files(dataset_dir: Path, dataset: str, fold: int) -> dict[str, Path]:
    """The fold's split files ({"train": ..., "test": ..., maybe "valid": ...}), or an error naming the missing one."""
    folder = dataset_dir / f"fold_{fold}"
    found = {split: folder / f"{dataset}_{split}_fold_{fold}.jsonl" for split in SPLITS}
    for split in REQUIRED_SPLITS:
        if not found[split].is_file():
            raise EmoBoxFileNotFoundError(
                f"emobox: fold file {found[split]} does not exist; {dataset} has folds {available_folds(dataset_dir)}."
            )
    return {split: path for split, path in found.items() if path.is_file()}


def available_folds(dataset_dir: Path) -> list[int]:
    """The fold numbers of an EmoBox corpus folder (its `fold_<K>` subfolders), in order."""
    return sorted(int(p.name[5:]) for p in dataset_dir.glob("fold_*") if p.is_dir() and p.name[5:].isdigit())


def dataset_dir(data_dir: str | os.PathLike, dataset: str) -> Path:
    root = require_dir(data_dir, "emobox", LAYOUT)
    folder = root / "data" / dataset
    if not folder.is_dir():
        present = sorted(p.name for p in (root / "data").glob("*") if p.is_dir()) if (root / "data").is_dir() else []
        raise EmoBoxFileNotFoundError(
            f"emobox: {folder} does not exist; data_dir must be the EmoBox root (holding data/<dataset>/), and "
            f"dataset one of its corpora {present}. Expected:\n{LAYOUT}"
        )
    return folder


def _check_audio(missing: list[str], skip_bad_files: bool, audio_root: Path) -> None:
    if not missing:
        return
    message = f"{len(missing)} audio files do not exist, e.g. " + "; ".join(missing[:_SHOWN])
    if not skip_bad_files:
        raise EmoBoxFileNotFoundError(
            f"emobox: {message}. Put the audio at those paths under {audio_root} (EmoBox's README: downloads/), "
            "pass audio_root=<folder> (--emobox_audio_root), or skip_bad_files=True to leave them out."
        )
    logger.warning(f"emobox: skipped {len(missing)} lines: {message}.")


class _Repeats:
    """Refuses a key, or an audio file, that a fold's files give twice, naming both lines."""

    def __init__(self):
        self.keys: dict[str, EmoBoxLine] = {}
        self.audio: dict[Path, EmoBoxLine] = {}

    def check(self, line: EmoBoxLine, audio: Path) -> None:
        for what, value, seen in (("key", line.key, self.keys), ("wav", audio, self.audio)):
            first = seen.setdefault(value, line)
            if first is not line:
                raise line_error(
                    line.file,
                    line.number,
                    what,
                    f"{str(value)!r} is also on {first.where}",
                    "an utterance belongs to one line of one split of a fold (a repeat could be trained and tested "
                    "on): remove one of the two lines.",
                )


def _speaker(rule: SpeakerRule | None, line: EmoBoxLine, audio: Path, context: _Context, dataset: str):
    """(gender, speaker) by the corpus' rule; a line the rule cannot read is refused, named."""
    if rule is None:
        gender, speaker = None, ""
    else:
        try:
            gender, speaker = rule(line.key, audio, context)
        except EmoBoxError:
            raise
        except ValueError as error:
            raise line_error(
                line.file,
                line.number,
                "wav",
                str(error).rstrip("."),
                f"EmoBox's {dataset} lines name the audio as the corpus does: fix the line, or check that "
                f"dataset (--emobox_dataset) is the corpus this file belongs to.",
            ) from None
    return (gender if line.gender is None else normalise_gender(line.gender)), speaker


def _fold_number(fold) -> int:
    try:
        return int(fold)
    except (TypeError, ValueError):
        raise EmoBoxError(f"emobox: fold={fold!r} is not a fold number; EmoBox's folds are 1, 2, ...") from None


def read_emobox(
    data_dir: str | os.PathLike,
    dataset: str | None = None,
    fold: int = 1,
    audio_root: str | os.PathLike | None = None,
    demographics: str | os.PathLike | None = None,
    skip_bad_files: bool = False,
) -> ReadResult:
    """Every line of fold `fold`'s train (valid) and test files of EmoBox corpus `dataset`, in file order."""
    if not dataset:
        raise EmoBoxError(
            "emobox: name the EmoBox corpus, e.g. load_corpus('emobox', root, dataset='iemocap', fold=1)."
        )
    folder = dataset_dir(data_dir, dataset)
    audio_base = folder.parent.parent if audio_root is None else Path(audio_root).expanduser().resolve()
    map_path = folder / "label_map.json"
    label_map = read_label_map(folder)
    rule, context, repeats = SPEAKER_RULES.get(dataset), _Context(demographics), _Repeats()
    utterances, missing = [], []
    for split, path in fold_files(folder, dataset, _fold_number(fold)).items():
        for number, text in fold_lines(path):
            line = parse_line(path, number, text, dataset, label_map, map_path)
            audio = audio_path(line, audio_base)
            repeats.check(line, audio)
            if not audio.is_file():
                missing.append(f"{path.name}, line {number}, field 'wav': {audio}")
                continue
            gender, speaker = _speaker(rule, line, audio, context, dataset)
            utterances.append(Utterance(line.key, audio, label_map[line.code], gender, speaker, split, line.code))
    _check_audio(missing, skip_bad_files, audio_base)
    default_map = {name: (None if name in NOT_EMOTIONS else name) for name in label_map.values()}
    return ReadResult(
        utterances,
        source=f"{folder / f'fold_{fold}'}",
        label_map=default_map,
        keep_unknown_gender=True,
    )


__all__ = [
    "NOT_EMOTIONS",
    "SPEAKER_RULES",
    "EmoBoxError",
    "EmoBoxFileNotFoundError",
    "available_folds",
    "dataset_dir",
    "read_emobox",
    "read_label_map",
]
