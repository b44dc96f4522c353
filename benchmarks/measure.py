"""Timing and memory primitives: interleaved medians (so background load hits both sides alike) and peak memory."""

from __future__ import annotations

import ctypes
import os
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch

from .settings import TARGETS


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(calls: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list]:
    """Seconds per call, interleaved so that background load affects every side alike.

    The order flips every repeat (A B, B A, A B, ...): whichever call runs first after another one pays for growing
    the allocator's buffers, which would otherwise always bill the same side.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    for repeat in range(repeats):
        order = list(calls.items())
        for name, call in order if repeat % 2 == 0 else reversed(order):
            _synchronize(device)
            start = time.perf_counter()
            call()
            _synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def _resident_bytes() -> Callable[[], int]:
    try:
        import psutil

        process = psutil.Process()
        return lambda: process.memory_info().rss
    except ImportError:
        page = os.sysconf("SC_PAGE_SIZE")
        return lambda: int(open("/proc/self/statm").read().split()[1]) * page


def pin_allocator_for_rss() -> bool:
    """Make glibc return freed large blocks to the OS (fixed 1 MiB mmap threshold), so RSS follows live tensors.

    Without this, glibc raises its mmap threshold after the first frees and keeps freed activations in the heap,
    and the next step's RSS would not grow. Done only before the memory figures: it slows allocation slightly.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 20))


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (VmHWM), Linux >= 4.0; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


@contextmanager
def peak_memory(device: torch.device):
    """Yield a dict that holds, on exit, the peak memory above the starting level in MiB, and how it was measured.

    CUDA: `torch.cuda.max_memory_allocated`. CPU: the kernel's exact RSS high-water mark (VmHWM), reset on entry
    (torch's CPU allocations are invisible to `tracemalloc`); where that cannot be reset, the RSS sampled every
    millisecond by a thread, which can miss short peaks.
    """
    result: dict[str, float | str] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        yield result
        torch.cuda.synchronize(device)
        result["mib"] = (torch.cuda.max_memory_allocated(device) - start) / 2**20
        result["method"] = "torch.cuda.max_memory_allocated"
        return
    rss = _resident_bytes()
    start = rss()
    if _reset_peak_rss():
        yield result
        result["mib"] = (_peak_rss_bytes() - start) / 2**20
        result["method"] = "process RSS high-water mark (VmHWM, reset per step)"
        return
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result["mib"] = (max(peak[0], rss()) - start) / 2**20
        result["method"] = "process RSS sampled every 1 ms"


def ratio_figure(times: dict[str, list[float]], numerator: str, denominator: str, target: str) -> dict:
    medians = {f"{name}_s": statistics.median(values) for name, values in times.items()}
    ratio = medians[f"{numerator}_s"] / medians[f"{denominator}_s"]
    return {
        "ratio": round(ratio, 4),
        **{k: round(v, 4) for k, v in medians.items()},
        "target_max": TARGETS[target],
        "met": ratio <= TARGETS[target],
        "repeats": len(times[numerator]),
    }
