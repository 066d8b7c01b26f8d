"""Timing and peak memory, measured the same way for a case and its baseline.

Times are medians over repeats after a warm-up, with the device synchronised around each call.
Peak memory is how much one call adds at its peak to what the process held before: on a GPU
`torch.cuda.max_memory_allocated`, on the CPU the resident set's peak (VmHWM), which Linux lets
a process reset just before the call.
"""
from __future__ import annotations

import importlib
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch


@dataclass
class Timing:
    """Seconds per call: the median and every repeat."""

    median: float
    runs: List[float]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], *, device: torch.device, repeats: int, warmup: int = 1
              ) -> Timing:
    """Median wall time of `fn()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        runs.append(time.perf_counter() - start)
    return Timing(statistics.median(runs), runs)


def time_pair(ours: Callable[[], Any], baseline: Callable[[], Any], *, device: torch.device,
              repeats: int, warmup: int = 1) -> Dict[str, Timing]:
    """Both sides timed alternately (ours, baseline, ours, ...), so that a machine that slows
    down or speeds up during the measurement affects both alike."""
    for _ in range(warmup):
        ours(), baseline()
    sync(device)
    runs: Dict[str, List[float]] = {"ours": [], "baseline": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("baseline", baseline)):
            start = time.perf_counter()
            fn()
            sync(device)
            runs[name].append(time.perf_counter() - start)
    return {name: Timing(statistics.median(values), values) for name, values in runs.items()}


def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: the peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _rss_peak_bytes(call: Callable[[], Any]) -> Optional[float]:
    """How far one `call()` raises the resident set above where it was: Linux resets the peak
    (VmHWM) to the current size when "5" is written to /proc/self/clear_refs. None where that
    is not possible (not Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
        call()
        return (_status_kib("VmHWM") - before) * 1024.0
    except OSError:
        return None


def peak_memory_mib(module: str, function: str, *, device: torch.device,
                    kwargs: Optional[Dict[str, Any]] = None) -> float:
    """Peak memory (MiB) of one call of the closure that `module.function(**kwargs)` builds,
    above what was allocated before it (the returned output included).

    On a GPU, `torch.cuda.max_memory_allocated`; on the CPU, the growth of the resident set
    during the call (Linux; NaN elsewhere).
    """
    kwargs = dict(kwargs or {})
    call = getattr(importlib.import_module(module), function)(**kwargs)
    call()  # warm-up: lazy initialisation is not the call's memory
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    # The largest growth of a few calls (the allocator may serve a call from memory it kept).
    peaks = [_rss_peak_bytes(call) for _ in range(3)]
    if any(p is None for p in peaks):
        return float("nan")
    return max(max(peaks), 0.0) / 2**20


def ratio(baseline: float, ours: float) -> float:
    """How many times `ours` beats `baseline` (a time or a memory: smaller is better)."""
    return baseline / ours if ours > 0 else float("inf")


def describe_runs(values: Sequence[float]) -> str:
    return ", ".join(f"{v * 1000:.1f}" for v in values) + " ms"
