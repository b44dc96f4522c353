"""A long synthetic recording with known emotion changes: the ground truth for segment timelines and the VAD.

Utterances of the embedded synthetic corpus' voices (`synthetic.render_utterance`, same seed rules) are laid end to
end with pauses of near-silence between them, grouped into turns: one emotion per turn, a different one in the next
turn. The function returns the waveform and, per utterance, where it lies and its emotion, so tests and the
benchmark know exactly where speech is and where the emotion changes. `synthetic_conversation` does the same for two
speakers taking turns (the truth for speaker turns: who speaks when, with which emotion). Session 5 is the demo's
held-out session.
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


@dataclasses.dataclass(frozen=True)
class SpeakerTurn:
    """One speaker turn of a conversation: [start, end) in seconds, who speaks, and the turn's one emotion."""

    start: float
    end: float
    speaker: str
    emotion: str


def synthetic_conversation(
    turns: int,
    seed: int = 0,
    session: int = 5,
    utterances_per_turn: tuple[int, int] = (1, 2),
    utterance_s: tuple[float, float] = (2.5, 4.0),
    pause_s: tuple[float, float] = (0.3, 0.6),
    sampling_rate: int = 16000,
) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """(waveform, turns): `turns` alternating turns of the session's female ("A") and male ("B") speaker, each of one
    emotion (a speaker's next turn takes another), made of utterances separated by pauses; a turn runs from its
    first utterance's start to its last one's end, so the diarization (the returned turns) is exact."""
    rng = np.random.default_rng([seed, 21, session])
    voices = speaker_voices(seed)
    emotions = list(EMOTION_CODES)
    last = {"A": None, "B": None}
    pieces, result, samples, index = [], [], 0, 30_000
    for number in range(turns):
        speaker, gender = ("A", "F") if number % 2 == 0 else ("B", "M")
        emotion = last[speaker] = str(rng.choice([e for e in emotions if e != last[speaker]]))
        start = None
        for _ in range(int(rng.integers(utterances_per_turn[0], utterances_per_turn[1] + 1))):
            pause = _near_silence(rng, rng.uniform(*pause_s), sampling_rate)
            length = round(float(rng.uniform(*utterance_s)), 3)
            code = EMOTION_CODES[emotion]
            audio = render_utterance(seed, Utterance(session, gender, index, code, length), voices, sampling_rate)
            pieces += [pause, audio]
            samples += len(pause)
            start = samples if start is None else start
            samples += len(audio)
            index += 1
        result.append(SpeakerTurn(start / sampling_rate, samples / sampling_rate, speaker, emotion))
    pieces.append(_near_silence(rng, pause_s[0], sampling_rate))
    return np.concatenate(pieces).astype(np.float32), result


def _near_silence(rng: np.random.Generator, seconds: float, sampling_rate: int) -> np.ndarray:
    return (10 ** (SILENCE_DB / 20) * rng.standard_normal(int(round(seconds * sampling_rate)))).astype(np.float32)


def emotion_changes(spans: list[Span]) -> list[float]:
    """Times where the emotion changes: the start of the first utterance of each new turn."""
    return [b.start for a, b in zip(spans, spans[1:]) if a.emotion != b.emotion]


__all__ = ["Span", "SpeakerTurn", "emotion_changes", "synthetic_conversation", "synthetic_recording"]
