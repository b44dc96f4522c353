"""Audio decoding, the corpus registry and readers, and the evaluation protocol of GEmo-CLAP training."""

from .audio import AudioInfo, audio_duration, audio_info, load_audio
from .corpora import CORPORA, CorpusSpec, available_corpora, corpus_spec, load_corpus
from .labels import FOUR_CLASS_LABELS
from .protocol import assign_speaker_folds, check_speaker_leakage, protocol_sentence, split_by_fold

__all__ = [
    "CORPORA",
    "FOUR_CLASS_LABELS",
    "AudioInfo",
    "CorpusSpec",
    "assign_speaker_folds",
    "audio_duration",
    "audio_info",
    "available_corpora",
    "check_speaker_leakage",
    "corpus_spec",
    "load_audio",
    "load_corpus",
    "protocol_sentence",
    "split_by_fold",
]
