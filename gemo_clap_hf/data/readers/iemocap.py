"""IEMOCAP reader: utterance labels from `EmoEvaluation/<dialog>.txt`, audio from `sentences/wav/<dialog>/`.

Labels come out as names (`exc` -> "excited"); the default label set (the paper's 4 classes, "excited" merged into
"happy") and the class counts are in the corpus registry, `CORPORA["iemocap"]`. The fold is the session ("1".."5")
for leave-one-session-out.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..labels import Utterance, normalise_gender
from .base import ReadResult, is_debris, layout_error, require_dir

logger = logging.getLogger(__name__)

LAYOUT = """IEMOCAP_full_release/            (pass this folder or its parent)
  Session1/ ... Session5/
    sentences/wav/<dialog>/<utterance>.wav
    dialog/EmoEvaluation/<dialog>.txt   lines like '[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[...]'"""

CODES = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "fea": "fear",
    "sur": "surprise",
    "dis": "disgust",
    "oth": "other",
    "xxx": "no_agreement",
}

# `[start - end]<TAB>utterance id<TAB>code<TAB>[v, a, d]`; evaluator lines (`C-E2:`, `A-E3:`), the `%` header and
# blank lines do not match.
_LABEL_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\t(\S+)\t(\S+)\t\[.*\]\s*$")
_SESSION = re.compile(r"^Session(\d+)$")


def _find_root(data_dir: Path) -> Path:
    for candidate in (data_dir, data_dir / "IEMOCAP_full_release"):
        if any(_SESSION.match(p.name) for p in candidate.glob("Session*") if p.is_dir()):
            return candidate
    raise layout_error(data_dir, "iemocap", LAYOUT, "found no Session<N> folders")


def parse_label_file(path: Path) -> list[tuple[str, str]]:
    """(utterance id, code) for each utterance line of an EmoEvaluation file, in file order."""
    pairs = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _LABEL_LINE.match(line)
        if match:
            pairs.append((match.group(1), match.group(2).lower()))
    return pairs


def speaker_of(uid: str, session: int) -> tuple[str, str]:
    """(gender, speaker) of an utterance id such as 'Ses01F_impro01_M003' (also used for EmoBox's IEMOCAP lines).

    The speaker is the letter opening the id's last part (`_F000`, `_M012`); `Ses01F` names the session's
    recording, not the speaker of each turn.
    """
    letter = uid.rsplit("_", 1)[-1][:1]
    gender = normalise_gender(letter)
    if gender is None:
        raise ValueError(
            f"iemocap: cannot read the speaker gender from utterance id {uid!r} (expected its last "
            "part to start with F or M, as in 'Ses01F_impro01_F000'); fix or remove that label line."
        )
    return gender, f"Ses{session:02d}_{letter.upper()}"


def _utterance(uid: str, code: str, session: int, wav_dir: Path) -> Utterance:
    gender, speaker = speaker_of(uid, session)
    return Utterance(
        id=uid,
        path=wav_dir / f"{uid}.wav",
        label=CODES.get(code, code),
        code=code,
        gender=gender,
        speaker=speaker,
        fold=str(session),
    )


def read_iemocap(data_dir: str | os.PathLike, sessions: Iterable[int] | None = None) -> ReadResult:
    """All labelled utterances of the sessions present (or of `sessions`), labels as names (`exc` -> "excited")."""
    root = _find_root(require_dir(data_dir, "iemocap", LAYOUT))
    found = {int(_SESSION.match(p.name).group(1)): p for p in root.glob("Session*") if _SESSION.match(p.name)}
    wanted = sorted(found) if sessions is None else sorted({int(s) for s in sessions})
    absent = [s for s in wanted if s not in found]
    if absent:
        raise layout_error(
            root, "iemocap", LAYOUT, f"sessions {absent} were asked for but not found (present: {sorted(found)})"
        )
    utterances = []
    for session in wanted:
        label_dir = found[session] / "dialog" / "EmoEvaluation"
        for label_file in sorted(p for p in label_dir.glob("*.txt") if not is_debris(p)):
            wav_dir = found[session] / "sentences" / "wav" / label_file.stem
            utterances.extend(_utterance(uid, code, session, wav_dir) for uid, code in parse_label_file(label_file))
    return ReadResult(utterances, source=f"{root} (sessions {wanted})")
