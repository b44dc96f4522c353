"""The error training raises for problems the user can fix (arguments, data, output folder, checkpoints)."""

from __future__ import annotations


class TrainingInputError(ValueError):
    """A problem with the arguments or the data that the user can fix; the message says how.

    The training scripts print it as one line (`<prog>: error: <message>`, exit 2) instead of a traceback.
    """


__all__ = ["TrainingInputError"]
