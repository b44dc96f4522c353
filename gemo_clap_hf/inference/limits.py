"""The limits of what inference accepts, in one place: the shortest clip worth a label, and the range of segment
windows and hops. The command line, the library and the web app check against these same numbers.

Why 0.25 s: the audio encoder's receptive field is 400 samples (25 ms at 16 kHz), so it gives an embedding for any
clip of one frame or more, and the feature extractor zero-pads shorter clips to it. But an emotion label describes
prosody (pitch contour, energy, rate) over at least a syllable, about a quarter of a second; a 10 ms click or the
tail of a cut gets an answer as confident as a sentence's (a 0.01 s clip scored "happy 0.85"), and that answer
means nothing. silero's voice-activity detector uses the same floor (`min_speech_s` 0.25): no speech region is
shorter. IEMOCAP's shortest utterances are longer still (about 0.6 s).
"""

from __future__ import annotations

import math
from numbers import Real

from ..errors import PredictionError

MIN_CLIP_S = 0.25  # shorter clips get a Failure (predict), are left out (segments) or an error message (the app)
MAX_WINDOW_S = 3600.0  # a segment window of an hour or more is no timeline: use predict without --segments
MIN_HOP_S = 0.01  # the encoder's frame rate is 20 ms: hops under 10 ms only repeat windows


def min_clip_samples(rate: int) -> int:
    return int(math.ceil(MIN_CLIP_S * rate))


def too_short(num_samples: int, rate: int) -> str | None:
    """Why a clip of `num_samples` at `rate` gets no label, or None when it is long enough."""
    if num_samples >= min_clip_samples(rate):
        return None
    return (
        f"it is {num_samples / rate:.3f} s long, shorter than the {MIN_CLIP_S:g} s minimum: too little speech for an "
        "emotion label to mean anything (the model would still answer, and confidently). Classify a longer clip, "
        "e.g. with the speech around it."
    )


def check_seconds(flag: str, value, unit: str = "seconds") -> float:
    """`value` as a float, or a `PredictionError` naming `flag` when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise PredictionError(f"{flag} must be a finite number of {unit}, got {value!r}.")
    return float(value)


__all__ = ["MAX_WINDOW_S", "MIN_CLIP_S", "MIN_HOP_S", "check_seconds", "min_clip_samples", "too_short"]
