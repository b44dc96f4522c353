"""Tiny EmoBox trees in EmoBox's exact file format (github.com/emo-box/EmoBox, `data/<ds>/`), audio generated here.

Lines are written with EmoBox's field names and order (key, dataset, wav, type, sample_rate, num_frame, task, length,
emo, channel), keys and `wav` paths shaped as in its iemocap / ravdess / cremad files, and the label maps are those
corpora's `label_map.json` as published.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.helpers.corpus_fixtures import write_wav

LABEL_MAPS = {
    "iemocap": {"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad", "exc": "Happy"},
    "ravdess": {
        "Angry": "Angry",
        "Surprised": "Surprise",
        "Sad": "Sad",
        "Disgust": "Disgust",
        "Happy": "Happy",
        "Calm": "Calm",
        "Neutral": "Neutral",
        "Fearful": "Fear",
    },
    "cremad": {"ANG": "Angry", "DIS": "Disgust", "FEA": "Fear", "HAP": "Happy", "NEU": "Neutral", "SAD": "Sad"},
}
_PITCH = {"neu": 150.0, "Neutral": 150.0, "NEU": 150.0, "ang": 260.0, "Angry": 260.0, "ANG": 260.0}


def emobox_line(dataset: str, key: str, wav: str, emo: str, sampling_rate: int, frames: int) -> dict:
    """One line of an EmoBox fold file, fields in EmoBox's order."""
    return {
        "key": key,
        "dataset": dataset,
        "wav": wav,
        "type": "raw",
        "sample_rate": sampling_rate,
        "num_frame": float(frames),
        "task": "category",
        "length": frames / sampling_rate,
        "emo": emo,
        "channel": 1,
    }


def iemocap_entry(session: int, speaker: str, index: int, emo: str) -> tuple[str, str, str]:
    uid = f"Ses{session:02d}F_impro04_{speaker}{index:03d}"
    return (
        f"iemocap-{uid}",
        f"downloads/iemocap/Session{session}/sentences/wav/Ses{session:02d}F_impro04/{uid}.wav",
        emo,
    )


def ravdess_entry(actor: int, emotion_code: str, emo: str, statement: int = 1) -> tuple[str, str, str]:
    name = f"03-01-{emotion_code}-01-0{statement}-01-{actor:02d}"
    return (
        f"ravdess-{name}",
        f"downloads/ravdess/audio/Audio_Speech_Actors_01-24/Actor_{actor:02d}/{name}.wav",
        emo,
    )


def cremad_entry(actor: str, sentence: str, emo: str) -> tuple[str, str, str]:
    return f"cremad-{actor}-{sentence}-{emo}-XX", f"downloads/cremad/AudioWAV/{actor}_{sentence}_{emo}_XX.wav", emo


def write_emobox(
    root: Path,
    dataset: str,
    folds: dict[int, dict[str, list[tuple[str, str, str]]]],
    sampling_rate: int = 16000,
    seconds: float = 0.3,
    write_audio: bool = True,
    label_map: dict | None = None,
) -> Path:
    """Write `root/data/<dataset>/` (label_map.json, fold files) and the audio under `root/`; return `root`."""
    root = Path(root)
    folder = root / "data" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "label_map.json").write_text(json.dumps(label_map or LABEL_MAPS[dataset], indent=4))
    frames = int(round(seconds * sampling_rate))
    for fold, splits in folds.items():
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        for split, entries in splits.items():
            lines = []
            for number, (key, wav, emo) in enumerate(entries):
                if write_audio and not (root / wav).is_file():
                    female = Path(wav).stem.rsplit("_", 1)[-1].startswith("F") or Path(wav).stem[-2:] in ("02", "04")
                    pitch = _PITCH.get(emo, 200.0) * (1.6 if female else 1.0)
                    write_wav(root / wav, seconds, sampling_rate, pitch, seed=number)
                lines.append(json.dumps(emobox_line(dataset, key, wav, emo, sampling_rate, frames)))
            (folder / f"fold_{fold}" / f"{dataset}_{split}_fold_{fold}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def iemocap_folds(sessions=(1, 2), per_speaker=4) -> dict:
    """Leave-one-session-out folds as EmoBox's iemocap files: fold K tests session K, trains on the others."""
    codes = ("neu", "exc", "sad", "ang", "hap")
    by_session = {
        session: [
            iemocap_entry(session, speaker, index, codes[index % len(codes)])
            for index in range(per_speaker)
            for speaker in "FM"
        ]
        for session in sessions
    }
    return {
        fold: {
            "train": [entry for session in sessions if session != fold for entry in by_session[session]],
            "test": by_session[fold],
        }
        for fold in sessions
    }


def ravdess_folds() -> dict:
    """Two speaker folds of two actors each (odd male, even female), with Calm, Surprised and Fearful lines."""
    emotions = (("01", "Neutral"), ("02", "Calm"), ("05", "Angry"), ("08", "Surprised"), ("06", "Fearful"))
    actors = {1: (1, 2), 2: (3, 4)}
    lines = {
        fold: [ravdess_entry(a, code, emo) for a in pair for code, emo in emotions] for fold, pair in actors.items()
    }
    return {1: {"train": lines[2], "test": lines[1]}, 2: {"train": lines[1], "test": lines[2]}}


def cremad_folds() -> dict:
    """EmoBox's single CREMA-D fold: the same actors on both sides (its split shares speakers)."""
    train = [cremad_entry(a, "IEO", e) for a in ("1001", "1002") for e in ("ANG", "NEU", "SAD", "HAP")]
    test = [cremad_entry(a, "TIE", e) for a in ("1001", "1002") for e in ("ANG", "NEU", "FEA")]
    return {1: {"train": train, "test": test}}


def write_crema_d_demographics(root: Path, sexes: dict[str, str]) -> Path:
    path = Path(root) / "downloads" / "cremad" / "VideoDemographics.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        writer.writerows([actor, 30, sex, "Caucasian", "Not Hispanic"] for actor, sex in sexes.items())
    return path
