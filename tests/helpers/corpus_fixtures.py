"""Tiny corpora in the exact public layouts (IEMOCAP, RAVDESS, CREMA-D, MSP-Podcast, manifests) for tests.

Shared by the reader tests and the training tests (which train on a tiny IEMOCAP-layout tree). Every clip is a
short deterministic tone plus noise whose pitch depends on emotion and gender, so a model can learn something.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

# The kept IEMOCAP codes, cycled per speaker: any 4 utterances cover the 4 classes (exc merges into happy).
IEMOCAP_CODE_CYCLE = ("neu", "exc", "sad", "ang", "hap")
IEMOCAP_CODE_TO_LABEL = {"neu": "neutral", "exc": "happy", "hap": "happy", "sad": "sad", "ang": "angry"}
_PITCH = {"neutral": 150.0, "happy": 220.0, "sad": 120.0, "angry": 260.0}


def write_wav(
    path: Path,
    seconds: float = 0.3,
    sampling_rate: int = 16000,
    frequency: float = 200.0,
    channels: int = 1,
    subtype: str = "PCM_16",
    seed: int = 0,
) -> int:
    """Write a tone-plus-noise clip and return its number of frames."""
    frames = int(round(seconds * sampling_rate))
    time = np.arange(frames) / sampling_rate
    noise = np.random.default_rng(seed).normal(0.0, 0.02, size=(frames, channels))
    tone = 0.3 * np.sin(2 * np.pi * frequency * time)[:, None] * np.linspace(1.0, 0.5, channels)[None, :]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (tone + noise).squeeze(1) if channels == 1 else tone + noise, sampling_rate, subtype=subtype)
    return frames


def _tone(label: str, female: bool) -> float:
    return _PITCH.get(label, 180.0) * (1.6 if female else 1.0)


def iemocap_utterance_ids(session: int, utterances_per_speaker: int) -> list[tuple[str, str]]:
    """(utterance id, code) of the kept lines `make_iemocap_tree` writes for one session, in file order."""
    dialog = f"Ses{session:02d}F_impro01"
    pairs = []
    for index in range(utterances_per_speaker):
        code = IEMOCAP_CODE_CYCLE[index % len(IEMOCAP_CODE_CYCLE)]
        pairs += [(f"{dialog}_F{index:03d}", code), (f"{dialog}_M{index:03d}", code)]
    return pairs


def make_iemocap_tree(
    root: Path,
    sessions: Sequence[int] = (1, 2),
    utterances_per_speaker: int = 4,
    seconds: float = 0.5,
    extras: bool = True,
) -> Path:
    """Write `root/IEMOCAP_full_release` and return it.

    Each session has one dialog `Ses0NF_impro01` whose turns come from a female (`_F000`) and a male (`_M000`)
    speaker: the `F` of `Ses0NF` is not the speaker's gender. With `extras`, each label file also carries the
    header, evaluator lines and blank lines of the real files, one `fru` and one `xxx` utterance (dropped by the
    4-class default), and each session gets `._` macOS debris (a label file and a wav) that must be ignored.
    """
    release = Path(root) / "IEMOCAP_full_release"
    for session in sessions:
        dialog = f"Ses{session:02d}F_impro01"
        wav_dir = release / f"Session{session}" / "sentences" / "wav" / dialog
        label_dir = release / f"Session{session}" / "dialog" / "EmoEvaluation"
        label_dir.mkdir(parents=True, exist_ok=True)
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        pairs = iemocap_utterance_ids(session, utterances_per_speaker)
        if extras:
            pairs += [(f"{dialog}_F100", "fru"), (f"{dialog}_M101", "xxx")]
        for number, (uid, code) in enumerate(pairs):
            female = uid.rsplit("_", 1)[1].startswith("F")
            write_wav(
                wav_dir / f"{uid}.wav",
                seconds,
                16000,
                _tone(IEMOCAP_CODE_TO_LABEL.get(code, ""), female),
                seed=session * 1000 + number,
            )
            start = 2.0 * number
            lines.append(f"[{start:.4f} - {start + seconds:.4f}]\t{uid}\t{code}\t[2.5000, 2.5000, 2.5000]")
            if extras:
                lines += ["C-E2:\tNeutral;\t()", "A-E3:\tval 3; act 2; dom  2;\t()", ""]
        (label_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
        if extras:
            (label_dir / f"._{dialog}.txt").write_bytes(
                b"\x00\x05\x16\x07 [0.0 - 1.0]\tSes09F_x_F999\tneu\t[1, 1, 1]\n"
            )
            (wav_dir / f"._{dialog}_F000.wav").write_bytes(b"\x00\x05\x16\x07Mac OS X        ")
    return release


def make_ravdess_tree(
    root: Path,
    actors: Iterable[int] = (1, 2),
    emotions: Iterable[str] = ("01", "02", "03", "04", "05", "06"),
    seconds: float = 0.3,
    sampling_rate: int = 48000,
) -> Path:
    """Write `root/Audio_Speech_Actors_01-24/Actor_NN/03-01-EE-01-01-01-NN.wav` and return the speech folder."""
    speech = Path(root) / "Audio_Speech_Actors_01-24"
    for actor in actors:
        for number, emotion in enumerate(emotions):
            name = f"03-01-{emotion}-01-01-01-{actor:02d}.wav"
            write_wav(speech / f"Actor_{actor:02d}" / name, seconds, sampling_rate, 150.0 + 20 * number, seed=actor)
    return speech


def ravdess_actor_speech_names(actor: int) -> list[str]:
    """The 60 speech file names one RAVDESS actor has: 8 emotions x 2 statements x 2 repetitions, at normal and
    strong intensity, except neutral, which has normal intensity only (4 + 7 x 8 = 60)."""
    return [
        f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"
        for emotion in range(1, 9)
        for intensity in ((1,) if emotion == 1 else (1, 2))
        for statement in (1, 2)
        for repetition in (1, 2)
    ]


def make_full_ravdess_actors(root: Path, actors: Iterable[int], seconds: float = 0.05) -> Path:
    """Every speech file of each actor (as in the release, at 16 kHz to keep it small); return the speech folder."""
    speech = Path(root) / "Audio_Speech_Actors_01-24"
    for actor in actors:
        for name in ravdess_actor_speech_names(actor):
            write_wav(speech / f"Actor_{actor:02d}" / name, seconds, 16000, 200.0, seed=actor)
    return speech


def make_crema_d_tree(
    root: Path,
    actors: dict[str, str] | None = None,
    emotions: Iterable[str] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"),
    seconds: float = 0.3,
) -> Path:
    """Write `root/AudioWAV/<actor>_IEO_<EMO>_HI.wav` and `root/VideoDemographics.csv`; return `root`."""
    actors = actors if actors is not None else {"1001": "Male", "1002": "Female"}
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "VideoDemographics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        for actor, sex in actors.items():
            writer.writerow([actor, 30, sex, "Caucasian", "Not Hispanic"])
    for actor in actors:
        for number, emotion in enumerate(emotions):
            write_wav(root / "AudioWAV" / f"{actor}_IEO_{emotion}_HI.wav", seconds, 16000, 150.0 + 20 * number)
    return root


def make_msp_podcast_tree(root: Path, rows: Sequence[dict], seconds: float = 0.3) -> Path:
    """Write `root/Labels/labels_consensus.csv` from `rows` (FileName, EmoClass, SpkrID, Gender, Split_Set; the
    dimensional columns are filled in) and a clip in `root/Audios/` for each; return `root`."""
    root = Path(root)
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    columns = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
    with (root / "Labels" / "labels_consensus.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for number, row in enumerate(rows):
            writer.writerow({"EmoAct": 4.0, "EmoVal": 4.0, "EmoDom": 4.0, **row})
            write_wav(root / "Audios" / row["FileName"], seconds, 16000, 150.0 + 10 * number)
    return root


def make_manifest(path: Path, rows: Sequence[dict], write_audio: bool = True, seconds: float = 0.3) -> Path:
    """Write a CSV or JSONL manifest (by `path`'s suffix) and, for relative paths, the clips it names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if write_audio:
        for number, row in enumerate(rows):
            target = Path(row["path"])
            write_wav(target if target.is_absolute() else path.parent / target, seconds, 16000, 150.0 + 10 * number)
    if path.suffix == ".csv":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def varied_length_dataset(folder: Path, seed: int = 0, count: int = 12, rate: int = 16000):
    """`count` wav clips of 0.3..1.4 s in shuffled order, as `load_corpus` columns (audio path, id, length, labels):
    for length grouping, cropping and resume tests."""
    import datasets

    emotions = ("neutral", "happy", "sad", "angry")
    seconds = np.random.default_rng(seed).permutation(np.linspace(0.3, 1.4, count))
    rows = {"audio": [], "id": [], "length": [], "emotion": [], "gender": []}
    for number, duration in enumerate(seconds):
        path = Path(folder) / f"clip{number}.wav"
        rows["length"].append(write_wav(path, float(duration), rate, 150 + 10 * number, seed=number))
        rows["audio"].append(str(path))
        rows["id"].append(f"clip{number}")
        rows["emotion"].append(emotions[number % 4])
        rows["gender"].append("female" if number % 3 else "male")
    return datasets.Dataset.from_dict(rows)
