"""The error training raises for problems the user can fix (arguments, data, output folder, checkpoints).

Defined in `gemo_clap_hf.errors` with the package's other errors; imported from here by the training modules.
"""

from __future__ import annotations

from ..errors import TrainingInputError

__all__ = ["TrainingInputError"]
