"""Source-filter synthesis of voiced, syllabic pseudo-speech in pure numpy (plus `scipy.signal`).

One utterance = a glottal pulse train (Rosenberg flow derivative, phase-accumulated so the pitch can
glide) at a time-varying pitch contour, shaped by syllable envelopes with phrase pauses, passed
through a cascade of five time-varying formant resonators, with aspiration noise, consonant-like
noise bursts and a background noise floor.

A `Voice` holds what belongs to the speaker (base pitch, vocal-tract length); a `Style` holds what
the emotion changes relative to that speaker (pitch level and range, tempo, level, voice quality,
spectral tilt). The corpus plan in `synthetic.py` decides which voice and style each utterance gets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, sosfilt

FRAME_SECONDS = 0.01  # control-rate grid for pitch and formant tracks
FILTER_BLOCK = 512  # samples per block of the time-varying formant cascade (32 ms at 16 kHz)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 160.0, 250.0, 300.0])
# Male-speaker (vocal-tract scale 1.0) formant targets F1-F5 in Hz for a few vowels.
VOWEL_FORMANTS = np.array(
    [
        [730, 1090, 2440, 3400, 4500],  # a
        [270, 2290, 3010, 3500, 4500],  # i
        [300, 870, 2240, 3300, 4500],  # u
        [530, 1840, 2480, 3500, 4500],  # e
        [570, 840, 2410, 3300, 4500],  # o
        [660, 1720, 2410, 3400, 4500],  # ae
    ],
    dtype=float,
)


@dataclass(frozen=True)
class Voice:
    """A speaker: base (neutral) pitch in Hz and vocal-tract scale (formant multiplier)."""

    base_f0: float
    formant_scale: float


@dataclass(frozen=True)
class Style:
    """How one utterance is spoken, relative to its speaker's voice."""

    pitch_level: float  # multiplier on the speaker's base f0
    pitch_range: float  # size of syllable accents, in semitones
    syllable_rate: float  # syllables per second
    level_db: float  # speech RMS in dBFS (the noise floor is fixed, so this sets the SNR)
    open_quotient: float  # glottal open phase / period: low = pressed and bright, high = breathy and dark
    tilt: float  # extra one-pole tilt: > 0 darker, < 0 brighter
    jitter: float  # relative random f0 perturbation
    shimmer: float  # relative random per-cycle amplitude perturbation
    subharmonic: float  # alternate-cycle amplitude modulation (roughness, period doubling)
    aspiration: float  # breath noise relative to the voiced source
    f1_scale: float = 1.0  # mouth opening (raised F1 in aroused speech)
    f2_scale: float = 1.0  # lip spreading (raised F2 in smiled speech)


def perturb_style(style: Style, rng: np.random.Generator, spread: float = 1.0) -> Style:
    """Per-utterance variation, so that the emotion classes overlap without merging; `spread` scales every
    standard deviation (1.0: the default corpus; larger: more overlap, a harder corpus)."""

    def n(sd: float) -> float:
        return spread * sd * rng.standard_normal()

    return dataclasses.replace(
        style,
        pitch_level=style.pitch_level * np.exp(n(0.06)),
        pitch_range=style.pitch_range * np.exp(n(0.25)),
        syllable_rate=style.syllable_rate * np.exp(n(0.12)),
        level_db=style.level_db + n(3.0),
        open_quotient=float(np.clip(style.open_quotient + n(0.05), 0.3, 0.9)),
        tilt=float(np.clip(style.tilt + n(0.12), -0.9, 0.9)),
        jitter=style.jitter * np.exp(n(0.3)),
        shimmer=style.shimmer * np.exp(n(0.3)),
        subharmonic=style.subharmonic * np.exp(n(0.3)),
        aspiration=style.aspiration * np.exp(n(0.3)),
    )


def blend_styles(a: Style, b: Style, weight: float) -> Style:
    """A style between two others (used for ambiguous utterances such as `fru`/`xxx`)."""
    mixed = {f.name: (1 - weight) * getattr(a, f.name) + weight * getattr(b, f.name) for f in dataclasses.fields(Style)}
    return Style(**mixed)


@dataclass(frozen=True)
class Syllables:
    """Syllable timing in samples plus per-syllable vowel and accent."""

    starts: np.ndarray
    ends: np.ndarray
    vowels: np.ndarray
    accents: np.ndarray  # in [-0.3, 1]: mostly rising accents, a few dips


def plan_syllables(rng: np.random.Generator, n_samples: int, sr: int, rate: float) -> Syllables:
    """Lay syllables over the clip in phrases of 2-7, separated by short pauses."""
    t = rng.uniform(0.05, 0.2)
    end_time = n_samples / sr - rng.uniform(0.05, 0.15)
    starts, ends, left_in_phrase = [], [], rng.integers(2, 8)
    while True:
        length = rng.uniform(0.7, 1.3) / rate
        if t + length > end_time:
            break
        starts.append(t)
        ends.append(t + length)
        t += length
        left_in_phrase -= 1
        if left_in_phrase == 0:
            t += rng.uniform(0.08, 0.3)
            left_in_phrase = rng.integers(2, 8)
    if not starts:  # a clip shorter than one syllable: one syllable filling it
        starts, ends = [0.05 * n_samples / sr], [0.95 * n_samples / sr]
    count = len(starts)
    return Syllables(
        starts=(np.asarray(starts) * sr).astype(int),
        ends=(np.asarray(ends) * sr).astype(int),
        vowels=rng.integers(0, len(VOWEL_FORMANTS), count),
        accents=rng.uniform(-0.3, 1.0, count),
    )


def syllable_envelope(syllables: Syllables, n_samples: int, sr: int) -> np.ndarray:
    """Amplitude envelope: raised-cosine attack and release per syllable, zero in pauses."""
    envelope = np.zeros(n_samples)
    for start, end in zip(syllables.starts, syllables.ends):
        length = end - start
        ramp = min(int(0.03 * sr), length // 3)
        shape = np.ones(length)
        edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        shape[:ramp], shape[length - ramp :] = edge, edge[::-1]
        envelope[start:end] = shape
    return envelope


def frame_times(n_samples: int, sr: int) -> np.ndarray:
    """Centres of the control-rate frames, in samples."""
    return np.arange(0, n_samples + FRAME_SECONDS * sr, FRAME_SECONDS * sr)


def pitch_contour(rng, voice: Voice, style: Style, syllables: Syllables, n_samples: int, sr: int) -> np.ndarray:
    """Per-sample f0: speaker base x emotion level, declination, syllable accents, drift and jitter."""
    frames = frame_times(n_samples, sr)
    progress = frames / n_samples
    semitones = -1.5 * progress + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * progress + rng.uniform(0, 6.3))
    centres = 0.5 * (syllables.starts + syllables.ends)
    widths = 0.35 * (syllables.ends - syllables.starts)
    bumps = np.exp(-0.5 * ((frames[:, None] - centres[None, :]) / widths[None, :]) ** 2)
    semitones = semitones + style.pitch_range * bumps @ syllables.accents
    f0 = voice.base_f0 * style.pitch_level * 2.0 ** (semitones / 12)
    f0 = np.interp(np.arange(n_samples), frames, f0)
    return f0 * (1 + style.jitter * smooth_noise(rng, n_samples, sr, rate=200.0))


def smooth_noise(rng, n_samples: int, sr: int, rate: float) -> np.ndarray:
    """Unit-variance random values at `rate` Hz, linearly interpolated to the sample grid."""
    knots = np.arange(0, n_samples + sr / rate, sr / rate)
    return np.interp(np.arange(n_samples), knots, rng.standard_normal(len(knots)))


def glottal_source(rng, f0: np.ndarray, style: Style, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg flow-derivative pulses (and the flow itself, to gate aspiration) at a gliding f0."""
    cycles = np.cumsum(f0 / sr)
    phase = cycles % 1.0
    opening = 0.65 * style.open_quotient
    closing = 0.35 * style.open_quotient
    in_opening = phase < opening
    in_closing = ~in_opening & (phase < opening + closing)
    derivative = np.zeros_like(phase)
    derivative[in_opening] = np.pi / (2 * opening) * np.sin(np.pi * phase[in_opening] / opening)
    closing_phase = np.pi * (phase[in_closing] - opening) / (2 * closing)
    derivative[in_closing] = -np.pi / (2 * closing) * np.sin(closing_phase)
    flow = np.zeros_like(phase)
    flow[in_opening] = 0.5 - 0.5 * np.cos(np.pi * phase[in_opening] / opening)
    flow[in_closing] = np.cos(closing_phase)
    return derivative * cycle_gains(rng, cycles, style), flow


def cycle_gains(rng, cycles: np.ndarray, style: Style) -> np.ndarray:
    """Per-cycle amplitude: random shimmer plus alternating-cycle (subharmonic) roughness."""
    index = cycles.astype(int)
    per_cycle = 1 + style.shimmer * rng.standard_normal(index[-1] + 1)
    per_cycle *= 1 + style.subharmonic * np.where(np.arange(index[-1] + 1) % 2 == 0, 1.0, -1.0)
    return per_cycle[index]


def apply_tilt(signal: np.ndarray, tilt: float) -> np.ndarray:
    """One-pole low-pass (tilt > 0, darker) or first-difference pre-emphasis (tilt < 0, brighter)."""
    if tilt >= 0:
        return lfilter([1 - tilt], [1, -tilt], signal)
    return lfilter([1, tilt], [1 + tilt], signal)


def formant_tracks(voice: Voice, style: Style, syllables: Syllables, n_samples: int, sr: int) -> np.ndarray:
    """F1-F5 per control frame, gliding between the syllables' vowel targets (coarticulation)."""
    centres = 0.5 * (syllables.starts + syllables.ends)
    targets = VOWEL_FORMANTS[syllables.vowels] * voice.formant_scale
    targets[:, :2] *= [style.f1_scale, style.f2_scale]
    frames = frame_times(n_samples, sr)
    return np.stack([np.interp(frames, centres, column) for column in targets.T], axis=1)


def resonator_sos(formants: np.ndarray, sr: int) -> np.ndarray:
    """Second-order sections of cascades of unit-DC-gain (Klatt) resonators, one cascade per row."""
    radius = np.exp(-np.pi * FORMANT_BANDWIDTHS / sr)
    b1 = 2 * radius * np.cos(2 * np.pi * np.minimum(formants, 0.45 * sr) / sr)
    b2 = np.broadcast_to(-(radius**2), b1.shape)
    zeros, ones = np.zeros_like(b1), np.ones_like(b1)
    return np.stack([1 - b1 - b2, zeros, zeros, ones, -b1, -b2], axis=-1)


def vocal_tract(excitation: np.ndarray, tracks: np.ndarray, sr: int) -> np.ndarray:
    """Filter block by block through the formant cascade, carrying the filter state across blocks."""
    out = np.empty_like(excitation)
    sections = resonator_sos(tracks, sr)
    state = np.zeros((tracks.shape[1], 2))
    for start in range(0, len(excitation), FILTER_BLOCK):
        frame = min(int((start + FILTER_BLOCK / 2) / (FRAME_SECONDS * sr)), len(tracks) - 1)
        piece = slice(start, start + FILTER_BLOCK)
        out[piece], state = sosfilt(sections[frame], excitation[piece], zi=state)
    return out


def consonant_bursts(rng, syllables: Syllables, voice: Voice, n_samples: int, sr: int) -> np.ndarray:
    """Short fricative-like noise bursts at about half of the syllable onsets."""
    envelope = np.zeros(n_samples)
    for start in syllables.starts[rng.random(len(syllables.starts)) < 0.5]:
        length = int(rng.uniform(0.02, 0.06) * sr)
        begin = max(0, start - length // 2)
        envelope[begin : begin + length] = np.hanning(length)[: n_samples - begin]
    centre = min(4500.0 * voice.formant_scale, 0.4 * sr)
    radius = np.exp(-np.pi * 1500.0 / sr)
    resonator = [1.0], [1.0, -2 * radius * np.cos(2 * np.pi * centre / sr), radius**2]
    return lfilter(*resonator, rng.standard_normal(n_samples) * envelope)


def background_noise(rng, n_samples: int) -> np.ndarray:
    """Unit-RMS room-like noise: pinkish (one-pole low-passed) plus a little white."""
    white = rng.standard_normal(n_samples)
    noise = lfilter([1.0], [1.0, -0.95], white) * 0.3 + 0.3 * white
    return noise / np.sqrt(np.mean(noise**2))


def rms(signal: np.ndarray) -> float:
    """Root mean square, guarded against silence."""
    return float(np.sqrt(np.mean(signal**2)) + 1e-12)


def synthesize_utterance(
    rng: np.random.Generator, voice: Voice, style: Style, duration: float, sr: int, noise_db: float
) -> np.ndarray:
    """One float32 clip in [-1, 1]: voiced syllabic speech at `style.level_db` over noise at `noise_db`."""
    n_samples = int(round(duration * sr))
    syllables = plan_syllables(rng, n_samples, sr, style.syllable_rate)
    envelope = syllable_envelope(syllables, n_samples, sr)
    pulses, flow = glottal_source(rng, pitch_contour(rng, voice, style, syllables, n_samples, sr), style, sr)
    breath = style.aspiration * rms(pulses) * (0.4 + flow) * rng.standard_normal(n_samples)
    excitation = apply_tilt(pulses + breath, style.tilt) * envelope
    speech = vocal_tract(excitation, formant_tracks(voice, style, syllables, n_samples, sr), sr)
    speech += 0.3 * rms(speech) * consonant_bursts(rng, syllables, voice, n_samples, sr)
    active = envelope > 0.5
    speech *= 10 ** (style.level_db / 20) / rms(speech[active] if active.any() else speech)
    clip = speech + 10 ** (noise_db / 20) * background_noise(rng, n_samples)
    peak = np.max(np.abs(clip))
    return (clip / peak * 0.95 if peak > 0.95 else clip).astype(np.float32)
