"""The shared `main()` of the training scripts: parse the arguments, run, turn input errors into one line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from .arguments import ARGUMENT_CLASSES, parse_arguments
from .errors import TrainingInputError

EXIT_INPUT_ERROR = 2


def script_main(run: Callable, prog: str, argv: Sequence[str] | None = None, classes: tuple = ARGUMENT_CLASSES) -> int:
    """`run(model_args, data_args, training_args)`; a `TrainingInputError` ends as `<prog>: error: ...`, exit 2.

    Input errors name the problem and the fix already, so a traceback would only hide the message. `classes` are the
    argument dataclasses to parse (model, data, training).
    """
    model_args, data_args, training_args = parse_arguments(argv, classes)
    try:
        run(model_args, data_args, training_args)
    except TrainingInputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return 0


__all__ = ["EXIT_INPUT_ERROR", "script_main"]
