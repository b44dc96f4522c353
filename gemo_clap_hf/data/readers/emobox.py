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
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..labels import Utterance, normalise_gender
from .base import ReadResult, require_dir
from .crema_d import read_demographics
from .iemocap import speaker_of as iemocap_speaker
from .ravdess import parse_file_name as parse_ravdess_name

logger = logging.getLogger(__name__)

LAYOUT = """<emobox_root>/                     (the EmoBox repository folder)
  data/<ds>/label_map.json
  data/<ds>/fold_<K>/<ds>_train_fold_<K>.jsonl, <ds>_test_fold_<K>.jsonl   (and <ds>_valid_fold_<K>.jsonl)
  downloads/...                      the audio, at the paths the lines' "wav" field gives"""

SPLITS = ("train", "valid", "test")
REQUIRED_SPLITS = ("train", "test")
REQUIRED_FIELDS = ("key", "wav", "emo")
NOT_EMOTIONS = ("no-agreement", "other")  # MSP-Podcast's X and O in EmoBox's label map
_SHOWN = 5

SpeakerRule = Callable[[str, Path, "_Context"], tuple[str | None, str]]


class _Context:
    """What a speaker rule may need beyond the line: CREMA-D's demographics, read once."""

    def __init__(self, demographics: str | os.PathLike | None):
        self.demographics = None if demographics is None else Path(demographics).expanduser().resolve()
        self._genders: dict[str, str] | None = None

    def crema_d_genders(self, audio_path: Path) -> dict[str, str] | None:
        if self._genders is None:
            path = self.demographics or audio_path.parent.parent / "VideoDemographics.csv"
            if not path.is_file():
                if self.demographics is not None:
                    raise FileNotFoundError(f"emobox: demographics file {str(path)!r} does not exist.")
                logger.warning(
                    f"emobox: cremad has no gender labels here: {path} (CREMA-D's VideoDemographics.csv) is "
                    "absent; pass demographics=<path> to use it. Emo-CLAP trains without it; SL/ML cannot."
                )
                self._genders = {}
            else:
                self._genders = read_demographics(path)
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


def _line_error(path: Path, number: int, field: str, problem: str, fix: str) -> ValueError:
    return ValueError(f"emobox: {path}, line {number}, field {field!r}: {problem}; {fix}")


def read_label_map(dataset_dir: Path) -> dict[str, str]:
    """label_map.json as EmoBox code -> package label name (lower-cased)."""
    path = dataset_dir / "label_map.json"
    if not path.is_file():
        raise FileNotFoundError(f"emobox: {path} does not exist; every EmoBox corpus folder has a label_map.json.")
    mapping = json.loads(path.read_text(encoding="utf-8"))
    return {str(code): str(name).strip().lower() for code, name in mapping.items()}


def fold_files(dataset_dir: Path, dataset: str, fold: int) -> dict[str, Path]:
    """The fold's split files ({"train": ..., "test": ..., maybe "valid": ...}), or an error naming the missing one."""
    folder = dataset_dir / f"fold_{fold}"
    found = {split: folder / f"{dataset}_{split}_fold_{fold}.jsonl" for split in SPLITS}
    for split in REQUIRED_SPLITS:
        if not found[split].is_file():
            raise FileNotFoundError(
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
        raise FileNotFoundError(
            f"emobox: {folder} does not exist; data_dir must be the EmoBox root (holding data/<dataset>/), and "
            f"dataset one of its corpora {present}. Expected:\n{LAYOUT}"
        )
    return folder


def _parse_line(path: Path, number: int, text: str, label_map: dict[str, str], map_path: Path) -> dict:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"emobox: {path}, line {number} is not valid JSON ({error}).") from error
    if not isinstance(row, dict):
        raise ValueError(f"emobox: {path}, line {number} is a {type(row).__name__}, not a JSON object.")
    for field in REQUIRED_FIELDS:
        if row.get(field) in (None, ""):
            raise _line_error(path, number, field, "missing", f"every EmoBox line needs {list(REQUIRED_FIELDS)}.")
    if str(row["emo"]) not in label_map:
        raise _line_error(
            path, number, "emo", f"{row['emo']!r} is not in {map_path}", f"its codes are {sorted(label_map)}."
        )
    if row.get("start_time") is not None or row.get("end_time") is not None:
        raise _line_error(
            path,
            number,
            "start_time",
            "the line is a segment of a longer recording",
            "segments are not supported: cut them into files and write a manifest.",
        )
    return row


def _check_audio(missing: list[str], skip_bad_files: bool, audio_root: Path) -> None:
    if not missing:
        return
    message = f"{len(missing)} audio files do not exist, e.g. " + "; ".join(missing[:_SHOWN])
    if not skip_bad_files:
        raise FileNotFoundError(
            f"emobox: {message}. Put the audio at those paths under {audio_root} (EmoBox's README: downloads/), "
            "pass audio_root=<folder> (--emobox_audio_root), or skip_bad_files=True to leave them out."
        )
    logger.warning(f"emobox: skipped {len(missing)} lines: {message}.")


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
        raise ValueError("emobox: name the EmoBox corpus, e.g. load_corpus('emobox', root, dataset='iemocap', fold=1).")
    folder = dataset_dir(data_dir, dataset)
    root = folder.parent.parent
    audio_base = root if audio_root is None else Path(audio_root).expanduser().resolve()
    label_map = read_label_map(folder)
    rule, context = SPEAKER_RULES.get(dataset), _Context(demographics)
    utterances, missing = [], []
    for split, path in fold_files(folder, dataset, int(fold)).items():
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            row = _parse_line(path, number, text, label_map, folder / "label_map.json")
            audio = audio_base / str(row["wav"])
            if not audio.is_file():
                missing.append(f"{path.name}, line {number}, field 'wav': {audio}")
                continue
            gender, speaker = rule(str(row["key"]), audio, context) if rule else (None, "")
            written = row.get("gender", row.get("Gender"))
            gender = normalise_gender(written) if written is not None else gender
            code = str(row["emo"])
            utterances.append(Utterance(str(row["key"]), audio, label_map[code], gender, speaker, split, code))
    _check_audio(missing, skip_bad_files, audio_base)
    default_map = {name: (None if name in NOT_EMOTIONS else name) for name in label_map.values()}
    return ReadResult(
        utterances,
        source=f"{folder / f'fold_{fold}'}",
        label_map=default_map,
        keep_unknown_gender=True,
    )


__all__ = ["NOT_EMOTIONS", "SPEAKER_RULES", "available_folds", "dataset_dir", "read_emobox", "read_label_map"]
