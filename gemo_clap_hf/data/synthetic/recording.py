"""A long synthetic recording with known emotion changes: the ground truth for segment timelines and the VAD.

Utterances of the embedded synthetic corpus' voices (`synthetic.render_utterance`, same seed rules) are laid end to
end with pauses of near-silence between them, grouped into turns: one emotion per turn, a different one in the next
turn. The function returns the waveform and, per utterance, where it lies and its emotion, so tests and the
benchmark know exactly where speech is and where the emotion changes. Session 5 is the demo's held-out session.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .corpus import Utterance, render_utterance, speaker_voices

EMOTION_CODES = {"neutral": "neu", "happy": "hap", "sad": "sad", "angry": "ang"}
SILENCE_DB = -60.0  # the pauses: a quiet room, not digital zeros


@dataclasses.dataclass(frozen=True)
class Span:
    """One utterance of the recording: [start, end) in seconds and its emotion label."""

    start: float
    end: float
    emotion: str


def synthetic_recording(
    duration_s: float,
    seed: int = 0,
    session: int = 5,
    gender: str = "F",
    turn_s: tuple[float, float] = (20.0, 40.0),
    utterance_s: tuple[float, float] = (2.5, 5.0),
    pause_s: tuple[float, float] = (0.8, 1.5),
    sampling_rate: int = 16000,
) -> tuple[np.ndarray, list[Span]]:
    """(waveform, spans): about `duration_s` seconds of turns of `turn_s` seconds, each one emotion (changing
    every turn), made of utterances of `utterance_s` seconds separated by pauses of `pause_s` seconds."""
    rng = np.random.default_rng([seed, 20, session])
    voices = speaker_voices(seed)
    emotions = list(EMOTION_CODES)
    pieces, spans, samples, index, emotion = [], [], 0, 10_000, None  # utterance indices clear of the corpus'
    while samples < duration_s * sampling_rate:
        emotion = str(rng.choice([e for e in emotions if e != emotion]))
        turn_end = samples + rng.uniform(*turn_s) * sampling_rate
        while samples < min(turn_end, duration_s * sampling_rate):
            pause = _near_silence(rng, rng.uniform(*pause_s), sampling_rate)
            length = round(float(rng.uniform(*utterance_s)), 3)
            audio = render_utterance(
                seed, Utterance(session, gender, index, EMOTION_CODES[emotion], length), voices, sampling_rate
            )
            start = samples + len(pause)
            samples = start + len(audio)
            pieces += [pause, audio]
            spans.append(Span(start / sampling_rate, samples / sampling_rate, emotion))
            index += 1
    pieces.append(_near_silence(rng, pause_s[0], sampling_rate))
    return np.concatenate(pieces).astype(np.float32), spans


def _near_silence(rng: np.random.Generator, seconds: float, sampling_rate: int) -> np.ndarray:
    return (10 ** (SILENCE_DB / 20) * rng.standard_normal(int(round(seconds * sampling_rate)))).astype(np.float32)


def emotion_changes(spans: list[Span]) -> list[float]:
    """Times where the emotion changes: the start of the first utterance of each new turn."""
    return [b.start for a, b in zip(spans, spans[1:]) if a.emotion != b.emotion]


__all__ = ["Span", "emotion_changes", "synthetic_recording"]
