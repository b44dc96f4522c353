"""The errors the package raises on purpose: each names the problem (clip, file, line, field or flag) and the fix.

Every one derives from `GEmoClapError`, so a caller (the command line, the training scripts, a service) catches them
all with one `except GEmoClapError` and shows the message without a traceback, while anything else (a bug) still
surfaces with its traceback. Each also derives from the built-in type that describes it (`ValueError` for bad input,
`RuntimeError` for a missing optional dependency or a failed export), so code that caught those keeps working.

This file imports nothing: it travels with saved models beside the `*_gemo_clap.py` files (their audio errors derive
from `GEmoClapError`), so `trust_remote_code` checkpoints raise the same types.
"""

from __future__ import annotations


class GEmoClapError(Exception):
    """Base of every error gemo-clap-hf raises on purpose; its message names the problem and the fix."""


class GEmoClapAudioError(GEmoClapError, ValueError):
    """A clip or audio file that cannot be classified as given (missing, unreadable, empty, NaN, too short, ...)."""


class PredictionError(GEmoClapError, ValueError):
    """A problem with the model, files or options given to inference (`predict`, segments, the app, the bench)."""


class OnnxExportError(GEmoClapError, RuntimeError):
    """An ONNX export or int8 quantisation that could not be done or checked."""


class VadUnavailableError(GEmoClapError, RuntimeError):
    """Voice-activity detection was asked for but silero-vad is not installed."""


class TrainingInputError(GEmoClapError, ValueError):
    """A problem with the training arguments or data that the user can fix.

    The training scripts print it as one line (`<prog>: error: <message>`, exit 2) instead of a traceback.
    """


class CommandError(GEmoClapError):
    """A command-line usage problem found by the `gemo-clap` command itself (conflicting flags, ...)."""


__all__ = [
    "CommandError",
    "GEmoClapAudioError",
    "GEmoClapError",
    "OnnxExportError",
    "PredictionError",
    "TrainingInputError",
    "VadUnavailableError",
]
