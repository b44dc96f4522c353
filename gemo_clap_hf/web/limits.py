"""The web app's limits and their defaults (`gemo-clap app --max-file-size --max-duration --concurrency`).

Light on purpose (no torch, no gradio): the command line checks its flags with it before anything loads.
"""

from __future__ import annotations

from ..errors import PredictionError
from ..inference.limits import check_seconds

DEFAULT_MAX_FILE_MB = 50.0  # 10 minutes of 16-bit 44.1 kHz stereo WAV; compressed files are far smaller
DEFAULT_MAX_DURATION_S = 600.0  # 10 minutes: about 20 s of analysis on 2 CPU cores, so the queue keeps moving
DEFAULT_CONCURRENCY = 1  # one analysis already uses every core


def check_limits(max_file_mb: float, max_duration_s: float, concurrency: int) -> None:
    """A `PredictionError` naming the flag unless each limit is a positive finite number (concurrency: an int)."""
    for flag, value, unit in (("--max-file-size", max_file_mb, "MB"), ("--max-duration", max_duration_s, "seconds")):
        if check_seconds(flag, value, unit) <= 0:
            raise PredictionError(f"{flag} must be positive, got {value!r}.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise PredictionError(f"--concurrency must be a whole number of at least 1, got {concurrency!r}.")


__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_MAX_DURATION_S", "DEFAULT_MAX_FILE_MB", "check_limits"]
