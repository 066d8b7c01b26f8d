"""Timing and peak memory, measured the same way for a case and its baseline.

Times are medians over repeats after a warm-up, with the device synchronised around each call.
Peak memory on a GPU is `torch.cuda.max_memory_allocated` above what was allocated before the
call; on the CPU it is the growth of the process's peak resident set (`ru_maxrss`) while the call
runs, in a fresh process for each measurement (a process's peak never goes down, so it must not
have run anything bigger before).
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import resource
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


def _rss_child(module: str, function: str, kwargs: Dict[str, Any], queue: Any) -> None:
    """In a fresh process: build the call's inputs, then report how far one call raises the
    process's peak resident set above the peak it had with the inputs built."""
    torch.set_num_threads(kwargs.pop("threads", torch.get_num_threads()))
    call = getattr(importlib.import_module(module), function)(**kwargs)  # returns a closure
    # No warm-up call: it would reach the same peak, and a peak never goes down.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    call()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((after - before) / 1024.0)  # KiB -> MiB


def peak_memory_mib(module: str, function: str, *, device: torch.device,
                    kwargs: Optional[Dict[str, Any]] = None) -> float:
    """Peak memory (MiB) of one call of the closure that `module.function(**kwargs)` builds.

    On a GPU, in this process; on the CPU, in a fresh spawned process (see the module note).
    A growth of 0 means the call fitted in memory the process already had at its peak.
    """
    kwargs = dict(kwargs or {})
    if device.type == "cuda":
        call = getattr(importlib.import_module(module), function)(**kwargs)
        call()
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    kwargs.setdefault("threads", torch.get_num_threads())
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_rss_child, args=(module, function, kwargs, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    return float(result)


def ratio(baseline: float, ours: float) -> float:
    """How many times `ours` beats `baseline` (a time or a memory: smaller is better)."""
    return baseline / ours if ours > 0 else float("inf")


def describe_runs(values: Sequence[float]) -> str:
    return ", ".join(f"{v * 1000:.1f}" for v in values) + " ms"
