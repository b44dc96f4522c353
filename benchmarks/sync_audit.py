"""Record the host-device synchronisations that a block of PyTorch code forces, and which Python line issued each.

A sync (the CPU waiting for the GPU to finish, then reading a value back) stops the CPU from queueing kernels ahead;
one per step is enough to expose every kernel's launch latency. `SyncRecorder` is a `TorchDispatchMode` that sees
every aten op below autograd (backward included) and records those that force a sync on an accelerator:

- reading a value: `_local_scalar_dense` (`.item()`, `bool(t)`, `int(t)`, `if t:`), `equal`, `allclose`,
  `is_nonzero`, and `Tensor.tolist()` (which dispatches no aten op, so it is wrapped while recording);
- a data-dependent output shape: `nonzero` (`torch.where(cond)`, `argwhere`), the `unique` family, `masked_select`,
  boolean-mask indexing and assignment (`index.Tensor` / `index_put_` with a bool index, which call `nonzero`),
  `repeat_interleave` without `output_size`, `bincount`;
- a copy from an accelerator to host memory (`.cpu()`, `.to("cpu")`, `.numpy()` after it).

`_assert_async` is not a sync (on CUDA it raises later, from the device) and is not recorded. On the CPU nothing
really waits, but the same ops are recorded, so that a CPU test catches what would stall a GPU.

Each sync is attributed to the innermost Python frame outside torch, the standard library and this module: a line
of `gemo_clap_hf` (or of a remote-code copy of its `*_gemo_clap.py` files) is a *package* sync; anything else
(transformers' tower code, the caller) is listed in `tower_syncs` with the package line that called into it. Ops
that the autograd engine runs for built-in backward nodes are named by their node (e.g. `IndexPutBackward0`), not
by the line that called `.backward()`; a Python `autograd.Function.backward` is attributed to its own lines.

    with SyncRecorder() as recorder:
        model(**batch, return_loss=True).loss.backward()
    assert not recorder.package_syncs, recorder.format(recorder.package_syncs)
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gemo_clap_hf

aten = torch.ops.aten

PACKAGE_DIR = os.path.dirname(os.path.abspath(gemo_clap_hf.__file__))
_THIS_FILE = os.path.abspath(__file__)
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_STDLIB_DIRS = tuple({os.path.abspath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")})
_SITE_DIRS = tuple({os.path.abspath(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")})

# Ops that always force a sync, with why.
_ALWAYS = {
    aten._local_scalar_dense.default: "reads a value on the host (.item(), bool(), int(), `if tensor:`)",
    aten.equal.default: "reads a value on the host (torch.equal)",
    aten.allclose.default: "reads a value on the host (torch.allclose)",
    aten.is_nonzero.default: "reads a value on the host (bool() of a one-element tensor)",
    aten.nonzero.default: "output shape depends on values (nonzero / torch.where(cond) / argwhere)",
    aten.masked_select.default: "output shape depends on values (masked_select)",
    aten.bincount.default: "output shape depends on values (bincount reads the maximum)",
    aten._unique.default: "output shape depends on values (unique)",
    aten._unique2.default: "output shape depends on values (unique)",
    aten.unique_dim.default: "output shape depends on values (unique with dim)",
    aten.unique_consecutive.default: "output shape depends on values (unique_consecutive)",
    aten.unique_dim_consecutive.default: "output shape depends on values (unique_consecutive with dim)",
}
_INDEXING = {
    aten.index.Tensor: 1,
    aten.index_put_.default: 1,
    aten.index_put.default: 1,
    aten._index_put_impl_.default: 1,
}
_HOST_DEVICES = ("cpu", "meta")


@dataclass(frozen=True)
class Sync:
    """One recorded sync: the aten op, why it syncs, and the Python line that issued it."""

    op: str
    reason: str
    filename: str | None
    lineno: int | None
    function: str | None
    from_package: bool
    via: str | None = None  # for syncs outside the package: the innermost package line on the stack
    backward_node: str | None = None  # the autograd node being run, for syncs in a backward pass

    @property
    def where(self) -> str:
        if self.filename is None:
            return "the autograd engine"
        return f"{_short_path(self.filename)}:{self.lineno} in {self.function}"

    @property
    def location(self) -> str:
        """`op at file:line in function`, with the calling package line for syncs outside the package."""
        via = f" (called from {self.via})" if self.via else ""
        node = f" (backward of {self.backward_node})" if self.backward_node else ""
        return f"{self.op} at {self.where}{via}{node}"

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


def _short_path(filename: str) -> str:
    for root in (*_SITE_DIRS, os.path.dirname(PACKAGE_DIR)):  # site-packages may sit inside the project (.venv)
        if filename.startswith(root + os.sep):
            return os.path.relpath(filename, root)
    return filename


def is_package_file(filename: str) -> bool:
    """A file of gemo_clap_hf, or a remote-code copy of its `*_gemo_clap.py` files (transformers_modules/...)."""
    filename = os.path.abspath(filename)
    return filename.startswith(PACKAGE_DIR + os.sep) or os.path.basename(filename).endswith("_gemo_clap.py")


def _is_skipped(filename: str) -> bool:
    """Frames that do not issue syncs on their own: torch's Python code, the standard library, this module."""
    if filename == _THIS_FILE or filename.startswith(_TORCH_DIR + os.sep) or filename.startswith("<frozen"):
        return True
    return filename.startswith(_STDLIB_DIRS) and not filename.startswith(_SITE_DIRS)


def _issuing_frames(frame) -> tuple[object | None, object | None]:
    """(the innermost frame outside torch/stdlib/this module, the innermost package frame), either may be None.

    An op that the autograd engine runs for a C++ backward node has only the `.backward()` caller's frames above
    it; that caller did not issue it, so both are None (the sync is then named by its autograd node).
    """
    issuer = package = None
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if issuer is None and frame.f_code.co_name == "_engine_run_backward" and filename.startswith(_TORCH_DIR):
            return None, None
        if not _is_skipped(filename):
            issuer = issuer or frame
            if is_package_file(filename):
                package = frame
                break
        frame = frame.f_back
    return issuer, package


def _sync_reason(func, args, kwargs) -> str | None:
    """Why this aten call forces a host-device sync, or None when it does not."""
    reason = _ALWAYS.get(func)
    if reason is not None:
        return reason
    if func in _INDEXING:
        indices = args[_INDEXING[func]] if len(args) > _INDEXING[func] else kwargs.get("indices", ())
        if any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ()):
            return "boolean-mask indexing (calls nonzero: the output shape depends on values)"
        return None
    if func is aten.repeat_interleave.Tensor and kwargs.get("output_size", args[1] if len(args) > 1 else None) is None:
        return "repeat_interleave without output_size (output shape depends on values)"
    if func in (aten._to_copy.default, aten.copy_.default):
        return _device_to_host_reason(func, args, kwargs)
    return None


def _device_to_host_reason(func, args, kwargs) -> str | None:
    if func is aten._to_copy.default:
        source, target = args[0], kwargs.get("device")
        target_type = None if target is None else torch.device(target).type
    else:
        target, source = args[0], args[1]
        target_type = target.device.type if isinstance(target, torch.Tensor) else None
    if not isinstance(source, torch.Tensor) or source.device.type in _HOST_DEVICES or target_type != "cpu":
        return None
    if kwargs.get("non_blocking", False) and func is aten.copy_.default and target.is_pinned():
        return None
    return f"copies from {source.device.type} to host memory"


class SyncRecorder(TorchDispatchMode):
    """Record every sync-forcing op run inside the block (forward, loss and backward alike) and who issued it.

    Attributes after the block: `syncs` (all, in order), `package_syncs` (issued by gemo_clap_hf's own lines),
    `tower_syncs` (issued elsewhere: transformers' towers, torch.optim callers, the caller itself).
    """

    def __init__(self):
        super().__init__()
        self.syncs: list[Sync] = []
        self._saved_tolist = None

    # -- recording -----------------------------------------------------------------------------------------------

    def record(self, op: str, reason: str, frame) -> None:
        issuer, package = _issuing_frames(frame)
        node = torch._C._current_autograd_node()
        node = None if node is None else node.name()
        if issuer is None:
            self.syncs.append(Sync(op, reason, None, None, None, False, backward_node=node))
            return
        from_package = package is issuer
        via = None
        if not from_package and package is not None:
            via = f"{_short_path(os.path.abspath(package.f_code.co_filename))}:{package.f_lineno}"
        self.syncs.append(
            Sync(
                op,
                reason,
                os.path.abspath(issuer.f_code.co_filename),
                issuer.f_lineno,
                issuer.f_code.co_name,
                from_package,
                via,
                node,
            )
        )

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        reason = _sync_reason(func, args, kwargs)
        if reason is not None:
            self.record(str(func.overloadpacket.__name__), reason, sys._getframe(1))
        return func(*args, **kwargs)

    def __enter__(self):
        recorder = self
        tolist = torch.Tensor.tolist
        self._saved_tolist = torch.Tensor.__dict__.get("tolist")

        def recorded_tolist(tensor, *args, **kwargs):
            recorder.record("tolist", "reads values on the host (Tensor.tolist)", sys._getframe(1))
            return tolist(tensor, *args, **kwargs)

        torch.Tensor.tolist = recorded_tolist
        return super().__enter__()

    def __exit__(self, *exc_info):
        if self._saved_tolist is None:
            del torch.Tensor.tolist  # falls back to the C implementation on TensorBase
        else:
            torch.Tensor.tolist = self._saved_tolist
        return super().__exit__(*exc_info)

    # -- results -------------------------------------------------------------------------------------------------

    @property
    def package_syncs(self) -> list[Sync]:
        return [sync for sync in self.syncs if sync.from_package]

    @property
    def tower_syncs(self) -> list[Sync]:
        return [sync for sync in self.syncs if not sync.from_package]

    @staticmethod
    def summarize(syncs: list[Sync]) -> dict[str, int]:
        """`{"op at file:line in function (called from ...)": count}`, most frequent first."""
        counts = Counter(sync.location for sync in syncs)
        return dict(counts.most_common())

    @staticmethod
    def format(syncs: list[Sync]) -> str:
        return "\n".join(f"  {count} x {where}" for where, count in SyncRecorder.summarize(syncs).items()) or "  none"


__all__ = ["Sync", "SyncRecorder", "is_package_file", "PACKAGE_DIR"]
