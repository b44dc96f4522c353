"""Audio decoding, corpus readers and evaluation splits for GEmo-CLAP training and evaluation."""

from .audio import AudioInfo, audio_duration, audio_info, load_audio
from .corpora import available_corpora, load_corpus
from .labels import FOUR_CLASS_LABELS
from .splits import assign_speaker_folds, check_speaker_leakage, split_by_fold

__all__ = [
    "FOUR_CLASS_LABELS",
    "AudioInfo",
    "assign_speaker_folds",
    "audio_duration",
    "audio_info",
    "available_corpora",
    "check_speaker_leakage",
    "load_audio",
    "load_corpus",
    "split_by_fold",
]
