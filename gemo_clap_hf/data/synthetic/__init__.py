"""The embedded default corpus and long recordings, generated in pure numpy: the signal (`speech`), the
IEMOCAP-layout corpus (`corpus`) and long multi-turn recordings for the segment timeline (`recording`)."""

from .corpus import (
    CORPUS_CARD,
    DROPPED_PER_KEPT,
    DURATION_BOUNDS,
    MANIFEST_NAME,
    RELEASE_DIR,
    SETTINGS,
    CorpusOptions,
    Utterance,
    describe_corpus,
    generate_corpus,
    plan_corpus,
    render_utterance,
    speaker_codes,
    speaker_voices,
)
from .recording import Span, emotion_changes, synthetic_recording

__all__ = [
    "CORPUS_CARD",
    "SETTINGS",
    "CorpusOptions",
    "DROPPED_PER_KEPT",
    "DURATION_BOUNDS",
    "MANIFEST_NAME",
    "RELEASE_DIR",
    "Span",
    "Utterance",
    "describe_corpus",
    "emotion_changes",
    "generate_corpus",
    "plan_corpus",
    "render_utterance",
    "speaker_codes",
    "speaker_voices",
    "synthetic_recording",
]
