"""Turn a reader's `Utterance` records into the `datasets.Dataset` every corpus shares.

The steps every corpus needs live here once: duplicate id and file checks, unknown-gender drop, the label step,
reading each file's header (duration, rate; missing or corrupt files fail or are skipped with a count), one log line
about resampling, and the fixed column schema.

Column types (the same for every corpus):
- `audio` is a plain string path, not a `datasets.Audio` feature: `datasets` 4+ decodes `Audio` through
  torchcodec, which is not usable everywhere, and the trainer decodes with `load_audio` anyway.
- `fold` is a string for every corpus: IEMOCAP sessions "1".."5", a corpus' split name (MSP-Podcast "Train", a
  manifest's `fold`/`split`), or "" when the corpus has neither (see `assign_speaker_folds`).
- `length` is the number of samples at the target rate (16 kHz), which `group_by_length` sorts on.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import datasets

from ..feature_extraction_gemo_clap import GEmoClapAudioError
from .audio import TARGET_SAMPLING_RATE, AudioInfo, audio_info
from .labels import Utterance, apply_label_map, describe_speakers, drop_unknown_gender

logger = logging.getLogger(__name__)

CORPUS_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "audio": datasets.Value("string"),
        "emotion": datasets.Value("string"),
        "gender": datasets.Value("string"),
        "speaker": datasets.Value("string"),
        "fold": datasets.Value("string"),
        "duration": datasets.Value("float64"),
        "length": datasets.Value("int64"),
    }
)

UNKNOWN_GENDER = ""  # the gender column's value where the corpus gives none (kept only with keep_unknown_gender)
_SHOWN = 5  # how many offending paths/ids an error message lists


def _refuse_repeats(utterances: list[Utterance], corpus: str, key, shown_with, what: str, fix: str) -> None:
    """Raise if two utterances share `key`; the message lists a few, each with `shown_with` of its rows."""
    rows = defaultdict(list)
    for utterance in utterances:
        rows[key(utterance)].append(shown_with(utterance))
    repeated = {value: where for value, where in rows.items() if len(where) > 1}
    if repeated:
        shown = "; ".join(f"{value!r} ({', '.join(where)})" for value, where in list(repeated.items())[:_SHOWN])
        raise ValueError(
            f"{corpus}: {len(repeated)} {what} more than once, e.g. {shown}; each utterance must appear once ({fix})."
        )


def _check_unique(utterances: list[Utterance], corpus: str) -> None:
    """Each utterance id, and each audio file, once: a repeated row could land in both the training and the test set."""
    _refuse_repeats(
        utterances,
        corpus,
        lambda u: u.id,
        lambda u: str(u.path),
        "utterance ids occur",
        "remove the duplicate rows or give them distinct ids",
    )
    _refuse_repeats(
        utterances,
        corpus,
        lambda u: str(u.path.resolve()),
        lambda u: repr(u.id),
        "audio files are listed",
        "remove the duplicate rows",
    )


def _read_headers(utterances: list[Utterance], corpus: str, skip_bad_files: bool) -> list[tuple[Utterance, AudioInfo]]:
    """Header of every file; missing/corrupt files raise (naming the first few) or are skipped with a count."""
    good, missing, broken = [], [], []
    for utterance in utterances:
        if not utterance.path.is_file():
            missing.append(str(utterance.path))
            continue
        try:
            good.append((utterance, audio_info(utterance.path)))
        except GEmoClapAudioError as error:
            broken.append(f"{utterance.path} ({error})")
    problems = []
    if missing:
        problems.append(f"{len(missing)} audio files are missing, e.g. {', '.join(missing[:_SHOWN])}")
    if broken:
        problems.append(f"{len(broken)} audio files cannot be read, e.g. {'; '.join(broken[:_SHOWN])}")
    if problems and not skip_bad_files:
        raise GEmoClapAudioError(
            f"{corpus}: {' and '.join(problems)}. Restore or re-export them, or pass skip_bad_files=True to skip them."
        )
    if problems:
        logger.warning(f"{corpus}: skipped {len(missing) + len(broken)} bad files: {' and '.join(problems)}.")
    return good


def _log_resampling(infos: Iterable[AudioInfo], corpus: str, target_rate: int) -> None:
    rates = Counter(info.sampling_rate for info in infos if info.sampling_rate != target_rate)
    if rates:
        shown = ", ".join(f"{count} at {rate} Hz" for rate, count in sorted(rates.items()))
        logger.info(
            f"{corpus}: {sum(rates.values())} files ({shown}) will be resampled to {target_rate} Hz when decoded."
        )


def build_dataset(
    utterances: list[Utterance],
    corpus: str,
    *,
    source: str,
    default_label_map: Mapping[str, str | None] | None,
    label_map: Mapping[str, str | None] | None = None,
    labels: Iterable[str] | None = None,
    skip_bad_files: bool = False,
    sampling_rate: int = TARGET_SAMPLING_RATE,
    keep_unknown_gender: bool = False,
) -> datasets.Dataset:
    """The shared corpus pipeline; `source` describes where the utterances were looked for (for the 0-found error).

    `keep_unknown_gender` keeps utterances without a gender (gender "") instead of dropping them.
    """
    if not utterances:
        raise ValueError(f"{corpus}: found 0 utterances in {source}; check that data_dir points at the corpus.")
    _check_unique(utterances, corpus)
    if not keep_unknown_gender:
        utterances = drop_unknown_gender(utterances, corpus)
    utterances = apply_label_map(utterances, corpus, label_map, default_label_map, labels)
    rows = _read_headers(utterances, corpus, skip_bad_files)
    if not rows:
        raise ValueError(f"{corpus}: every audio file was skipped as bad; no utterance is left.")
    _log_resampling((info for _, info in rows), corpus, sampling_rate)
    columns = {
        "id": [u.id for u, _ in rows],
        "audio": [str(u.path.resolve()) for u, _ in rows],
        "emotion": [u.label for u, _ in rows],
        "gender": [u.gender or UNKNOWN_GENDER for u, _ in rows],
        "speaker": [u.speaker for u, _ in rows],
        "fold": [u.fold for u, _ in rows],
        "duration": [info.duration for _, info in rows],
        "length": [info.num_samples(sampling_rate) for _, info in rows],
    }
    unknown = columns["gender"].count(UNKNOWN_GENDER)
    if unknown:
        logger.warning(
            f"{corpus}: {unknown} utterances have no gender label (the corpus gives none): Emo-CLAP trains on them, "
            "SL/ML-GEmo-CLAP cannot."
        )
    logger.info(
        f"{corpus}: {len(rows)} utterances, {describe_speakers(columns['speaker'], columns['gender'])}, "
        f"{sum(columns['duration']) / 3600:.2f} h ({sum(columns['duration']):.1f} s)."
    )
    return datasets.Dataset.from_dict(columns, features=CORPUS_FEATURES)


__all__ = ["CORPUS_FEATURES", "UNKNOWN_GENDER", "build_dataset"]
