"""Forwarding for the modules that moved in 0.2 (`gemo_clap_hf.apps.*`, `gemo_clap_hf.trainer`), kept for one release:
each old module's names resolve from their new homes with a `DeprecationWarning` that names the new module."""

from __future__ import annotations

import importlib
import warnings


def forward(old: str, new_modules: tuple[str, ...]):
    """A module `__getattr__` for `old` that finds each name in the first of `new_modules` that defines it."""

    def __getattr__(name: str):
        for module_name in new_modules:
            module = importlib.import_module(module_name)
            if hasattr(module, name):
                warnings.warn(
                    f"{old}.{name} is deprecated and will be removed in 0.3; import it from {module_name}.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        raise AttributeError(
            f"module {old!r} has no attribute {name!r} (its contents moved to {', '.join(new_modules)})"
        )

    return __getattr__
