"""Timing and peak memory, measured the same way for a case and its baseline; clips per second
through a DataLoader (`measure_loader`) and per item (`time_items`).

Times are medians over repeats after a warm-up, with the device synchronised around each call.
Peak memory is how much one call adds at its peak to what the process held before: on a GPU
`torch.cuda.max_memory_allocated`, on the CPU the resident set's peak (VmHWM), which Linux lets
a process reset just before the call.
"""
from __future__ import annotations

import importlib
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import cv2
import torch
from torch.utils.data import BatchSampler, Dataset

from common.runtime.device import move_batch
from data.clip_loader import build_clip_loader

CPU = torch.device("cpu")


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


@dataclass
class LoaderTiming:
    """What `measure_loader` measured.

    Attributes:
        clips_per_s: clips per wall-clock second after the warm-up batches (the target
            measure; on a shared machine it moves with the other load).
        cpu_s_per_clip: CPU seconds (user + system, this process and its worker processes)
            per clip over the whole run, start-up included: steadier on a loaded machine.
    """

    clips_per_s: float
    cpu_s_per_clip: float


def measure_loader(dataset: Dataset, *, workers: int = 2, batches: int = 20,
                   batch_size: int = 8, warmup: int = 2,
                   opencv_threads: Optional[int] = None) -> LoaderTiming:
    """Iterate a DataLoader over `dataset` (`collate_clips`, `workers` worker processes, no
    model) for `warmup + batches` batches (indices in order, the data set cycled as needed).

    `opencv_threads`: `cv2.setNumThreads` for the run, set in this process before the workers
    are forked (they inherit it) and restored after. Not in a `worker_init_fn`: a forked worker
    that resizes the OpenCV thread pool inherited from a parent that had used it can hang in
    `pthread_cond_destroy`."""
    needed = (warmup + batches) * batch_size
    indices = [i % len(dataset) for i in range(needed)]
    previous = cv2.getNumThreads()
    if opencv_threads is not None:
        cv2.setNumThreads(opencv_threads)
    cpu_before = _cpu_seconds()
    try:
        # The loader of train.py and test.py (reused batch slots where the data set writes
        # its clips into batch tensors; the baseline's plain loop does not).
        loader = build_clip_loader(dataset, BatchSampler(indices, batch_size, False),
                                   num_workers=workers)
        clips = total = 0
        start = 0.0
        for n, batch in enumerate(loader):  # the workers are joined when it ends
            if n == warmup:
                start = time.perf_counter()
            # A clip counts once it is the network's float input (bytes sent by
            # `video_as_bytes` workers are made float here, as `move_batch` does).
            batch = move_batch(batch, CPU)
            count = len(batch.get("label", ()))
            total += count
            if n >= warmup:
                clips += count
        elapsed = time.perf_counter() - start
    finally:
        if opencv_threads is not None:
            cv2.setNumThreads(previous)
    cpu = _cpu_seconds() - cpu_before
    return LoaderTiming(clips / elapsed if elapsed > 0 and clips else float("nan"),
                        cpu / total if total else float("nan"))


def time_loader(dataset: Dataset, *, workers: int = 2, batches: int = 20, batch_size: int = 8,
                warmup: int = 2, opencv_threads: Optional[int] = None) -> float:
    """Clips per second through a `workers`-worker DataLoader over `dataset` (see
    `measure_loader`): the clips of `batches` batches after `warmup` batches (the workers'
    start-up), divided by the wall-clock time they took."""
    return measure_loader(dataset, workers=workers, batches=batches, batch_size=batch_size,
                          warmup=warmup, opencv_threads=opencv_threads).clips_per_s


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its ended, waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_items(dataset: Dataset, items: int = 16, repeats: int = 5) -> float:
    """Median seconds per item of `dataset[i]` for the first `items` items, in this process
    (the item path alone: no workers, no collate)."""
    per_item = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(items):
            dataset[index % len(dataset)]
        per_item.append((time.perf_counter() - start) / items)
    return statistics.median(per_item)
