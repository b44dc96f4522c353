"""What every corpus reader produces (`Utterance` records) and the label step they all share.

Readers only turn their corpus' codes into label names (IEMOCAP `exc` -> "excited"); choosing the label set,
merging ("excited" -> "happy"), dropping and counting happen here, once, for every corpus.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

logger = logging.getLogger(__name__)

FOUR_CLASS_LABELS = ("neutral", "happy", "sad", "angry")
# The default label set of the paper: the 4 classes, each name mapped to itself.
FOUR_CLASS_MAP: dict[str, str | None] = {label: label for label in FOUR_CLASS_LABELS}

# How corpora write "speaker not known" (MSP-Podcast: SpkrID "Unknown"). Such utterances get speaker "", so that
# they are never taken for one speaker who talks in every fold (false leakage, one giant speaker fold).
_UNKNOWN_SPEAKERS = {"", "unknown", "none", "nan", "n/a", "na", "null"}

_GENDERS = {
    "f": "female",
    "female": "female",
    "w": "female",
    "woman": "female",
    "m": "male",
    "male": "male",
    "man": "male",
}


@dataclass(frozen=True)
class Utterance:
    """One utterance as a reader found it. `label` is the corpus' label name, `code` the raw code it came from."""

    id: str
    path: Path
    label: str
    gender: str | None  # "female", "male", or None when the corpus does not know (dropped with a count)
    speaker: str  # "" when the corpus does not know it (see `normalise_speaker`)
    fold: str = ""
    code: str | None = None


def normalise_gender(value: object) -> str | None:
    """ "female"/"male" from the spellings corpora use (F, Female, m, ...); None when unknown."""
    return _GENDERS.get(str(value).strip().lower())


def normalise_speaker(value: object) -> str:
    """The speaker id as a string, or "" when the corpus says it is unknown (None, "Unknown", "n/a", ...)."""
    text = "" if value is None else str(value).strip()
    return "" if text.lower() in _UNKNOWN_SPEAKERS else text


def format_counts(counts: Mapping[str, int]) -> str:
    """`a 3, b 1` in descending count order, for log and error messages."""
    return ", ".join(f"{key} {count}" for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def describe_speakers(speakers: Iterable[str], genders: Iterable[str]) -> str:
    """`12 speakers (utterances per gender: female 40, male 38, unknown 2)`, for logs and model cards.

    An empty speaker or gender ("", the corpus gives none) is called unknown instead of being counted as a name.
    """
    speakers, genders = list(speakers), list(genders)
    known = {speaker for speaker in speakers if speaker}
    who = f"{len(known)} speakers" if known else "speakers unknown"
    if known and len(known) < len(set(speakers)):
        who += f" and {speakers.count('')} utterances of unknown speaker"
    counts = Counter(gender or "unknown" for gender in genders)
    if set(counts) == {"unknown"}:
        return f"{who} (gender unknown for all {len(genders)} utterances)"
    return f"{who} (utterances per gender: {format_counts(counts)})"


def _source_name(utterance: Utterance) -> str:
    code = utterance.code
    return utterance.label if code is None or code == utterance.label else f"{utterance.label} [{code}]"


def _check_label_map(label_map: object) -> None:
    if not isinstance(label_map, Mapping):
        raise TypeError(
            f"label_map must be a dict of source label -> target label (or None to drop), "
            f"not {type(label_map).__name__}."
        )
    bad = {
        key: value
        for key, value in label_map.items()
        if not isinstance(key, str) or not (value is None or isinstance(value, str))
    }
    if bad:
        raise TypeError(f"label_map entries must map a label string to a label string or None; bad entries: {bad}.")


def _target(utterance: Utterance, mapping: Mapping[str, str | None] | None) -> str | None:
    if mapping is None:
        return utterance.label
    if utterance.label in mapping:
        return mapping[utterance.label]
    return mapping.get(utterance.code) if utterance.code is not None else None


RARE_LABEL_SHARE = 0.01


def _warn_rare_labels(counts: Mapping[str, int], corpus: str) -> None:
    """A label under 1% of the utterances is often a typo or a mislabeled row (`angy`), which would become a class."""
    total = sum(counts.values())
    rare = {label: count for label, count in counts.items() if count < RARE_LABEL_SHARE * total}
    if rare:
        logger.warning(
            f"{corpus}: labels with under {RARE_LABEL_SHARE:.0%} of the utterances: {format_counts(rare)}. "
            "If they are typos or mislabeled rows, fix the rows, or map them with label_map (None drops "
            "them); otherwise the model learns them as classes of their own."
        )


def apply_label_map(
    utterances: Iterable[Utterance],
    corpus: str,
    label_map: Mapping[str, str | None] | None,
    default_map: Mapping[str, str | None] | None,
    labels: Iterable[str] | None = None,
) -> list[Utterance]:
    """Map each utterance's label to the target set and drop the rest, logging kept and dropped counts per label.

    `label_map` (or the reader's `default_map` when not given) maps a label name, or a raw corpus code, to a target
    label; a target of None, or a label the map does not list, drops the utterance. A `None` map keeps labels as
    they are. `labels` then restricts the targets to a set.
    """
    if label_map is not None:
        _check_label_map(label_map)
    mapping = label_map if label_map is not None else default_map
    allowed = None if labels is None else {str(label) for label in ([labels] if isinstance(labels, str) else labels)}
    kept: list[Utterance] = []
    kept_counts: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    for utterance in utterances:
        target = _target(utterance, mapping)
        if target is None or (allowed is not None and target not in allowed):
            dropped[_source_name(utterance)] += 1
            continue
        kept_counts[target] += 1
        kept.append(replace(utterance, label=target))
    message = f"{corpus}: kept {len(kept)} utterances ({format_counts(kept_counts) or 'none'})"
    if dropped:
        message += f"; dropped {sum(dropped.values())} outside the label set ({format_counts(dropped)})"
    logger.info(message)
    _warn_rare_labels(kept_counts, corpus)
    if not kept:
        raise ValueError(
            f"{corpus}: no utterance is left after the label step (labels found: {format_counts(dropped)}; "
            f"label set: {sorted(allowed) if allowed is not None else mapping}); pass a label_map (or labels=) "
            "that covers the corpus' labels."
        )
    return kept


def drop_unknown_gender(utterances: list[Utterance], corpus: str) -> list[Utterance]:
    """Utterances whose speaker's gender the corpus does not give cannot train GEmo-CLAP: drop them, with a count."""
    kept = [utterance for utterance in utterances if utterance.gender is not None]
    if len(kept) < len(utterances):
        logger.warning(f"{corpus}: dropped {len(utterances) - len(kept)} utterances whose speaker gender is unknown.")
    return kept


__all__ = [
    "describe_speakers",
    "FOUR_CLASS_LABELS",
    "FOUR_CLASS_MAP",
    "Utterance",
    "apply_label_map",
    "drop_unknown_gender",
    "format_counts",
    "normalise_gender",
    "normalise_speaker",
]
