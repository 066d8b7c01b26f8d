"""Opt-in case: a soak test, whether a long training run's memory stays flat.

train.py's training pieces (its loader, `main.train.build_training_data`: DataLoader workers,
persistent across epochs, writing the clips into the reused shared-memory batch slots of
`data.batch_pool`; and its loop, `common.train.epoch.train_one_epoch`, over many epochs) run
for a few thousand iterations on a small synthetic data set at tiny shapes, so that the run
takes minutes, not hours, while every batch still makes the whole trip. Every `sample_every`
iterations it records, from /proc (no psutil needed):

- the resident set (VmRSS) of the main process and of the workers, the part of it that is
  shared memory (RssShmem), and the pages each process wrote and holds alone (Private_Dirty);
- torch's shared-memory segments the processes have mapped (distinct /dev/shm/torch_* files
  in /proc/<pid>/maps; torch unlinks them at once, so /dev/shm itself shows no names) and the
  used bytes of /dev/shm (the whole machine's, other programs' included);
- the batch pool's slots: hits, misses (batches that found every slot taken) and free slots.

A leak shows as growth after the warm-up: `growth` compares the median of the last quarter of
the samples with the median of the second quarter, in MiB and per 1000 iterations.
"""
from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import time
from typing import Any, Dict, List, Optional, Set

import torch

from common.model import build_model
from common.report.problems import ProblemTally
from common.runtime.distributed import DistInfo
from common.train.engine import make_optimizer
from common.train.epoch import EpochProgress, LoopOptions, train_one_epoch
from main.config import build_config
from main.train import build_training_data
from tool.make_synthetic_dataset import generate_dataset

# Growth of the memory after warm-up that still counts as flat, MiB per 1000 iterations (main
# process plus workers): three times the largest the allocator's noise gave over a
# 3000-iteration soak, two thirds of one tiny batch leaked per iteration (docs/performance.md).
FLAT_MIB_PER_1000 = 8.0
# The segments a batch brings besides its clips (which are in the pool): pose_coords,
# pose_scores, label, video_id.
BATCH_SEGMENTS = 4
# Iterations of the full soak (--soak_iters) and of its smoke run.
SOAK_ITERS, SMOKE_ITERS = 3000, 60


def soak_data(folder: str, *, per_class: int = 32) -> str:
    """A small synthetic training set (2 classes of `per_class` clips of 12 frames, 32 x 42):
    `per_class` iterations per epoch at batch 2, so that a soak crosses many epochs."""
    generate_dataset(folder, seed=0, num_classes=2, train_per_class=per_class, test_per_class=1,
                     frames=12, height=32, width=42)
    return folder


def soak_config(data_dir: str, *, workers: int) -> Any:
    """train.py's configuration at tiny shapes: the fused stage, batch 2, `workers` workers."""
    return build_config(dict(
        dataset="Kinetics", subset="Synth", data_dir=data_dir, pretrained="none", mode="rgb+pose",
        frame_per_seg=2, frame_interval=2, video_shape=(24,), input_img_shape=(16, 16),
        input_hm_shape=(8, 8), train_batch_size=2, num_thread=workers, progress_bar=False,
        log_interval=0))


def _proc_bytes(pid: int, field: str, table: str = "status") -> int:
    """A field (kB) of /proc/<pid>/<table> in bytes; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/{table}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_pids(loader: Any) -> List[int]:
    """The process ids of `loader`'s live DataLoader workers (a `ClipLoader` or a DataLoader).

    Taken from the loader's own iterator, not from the process's children: in a test run the
    process may also hold other loaders' workers or other subprocesses, which are not this
    loader's memory. (`_iterator` is where a DataLoader keeps its persistent workers.)
    """
    inner = getattr(loader, "loader", loader)
    iterator = getattr(inner, "_iterator", None)
    return sorted(w.pid for w in getattr(iterator, "_workers", []) if w.is_alive())


def shm_segments(pid: int) -> Set[str]:
    """torch's shared-memory segments `pid` has mapped (deleted or not)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return {line.split(None, 5)[5].split(" (deleted)")[0].strip() for line in f
                    if "/dev/shm/torch_" in line}
    except OSError:
        return set()


def sample(iteration: int, *, loader: Any, pool: Any, started: float) -> Dict[str, Any]:
    """One sample of the main process's and `loader`'s workers' memory and of the batch pool."""
    main, workers = os.getpid(), worker_pids(loader)
    segments: Set[str] = set()
    for pid in [main] + workers:
        segments |= shm_segments(pid)
    mib = 2.0 ** 20
    return {
        "iteration": iteration, "seconds": time.perf_counter() - started,
        "main_rss_mib": _proc_bytes(main, "VmRSS") / mib,
        "main_anon_mib": _proc_bytes(main, "RssAnon") / mib,
        "workers_rss_mib": sum(_proc_bytes(p, "VmRSS") for p in workers) / mib,
        # The pages each process has written and holds alone: a worker's copy-on-write copies
        # of its parent's pages count here, where RSS cannot see them. (PSS and clean private
        # pages move with the other programs that map the same libraries.)
        "total_private_mib": sum(_proc_bytes(p, "Private_Dirty", "smaps_rollup")
                                 for p in [main] + workers) / mib,
        "shmem_rss_mib": sum(_proc_bytes(p, "RssShmem") for p in [main] + workers) / mib,
        "workers": len(workers), "shm_segments": len(segments),
        "dev_shm_used_mib": shutil.disk_usage("/dev/shm").used / mib,
        "pool_hits": pool.hits if pool else 0, "pool_misses": pool.misses if pool else 0,
        "pool_free_slots": pool.free_slots if pool else 0,
        "pool_slots": pool.slots if pool else 0}


def soak(cfg: Any, *, iters: int, sample_every: int) -> List[Dict[str, Any]]:
    """Train `cfg`'s stage on train.py's loader and loop for `iters` iterations over as many
    epochs as that takes; returns a memory sample every `sample_every` iterations."""
    torch.manual_seed(0)
    dataset, data = build_training_data(cfg, seed=0, info=DistInfo(), device=torch.device("cpu"),
                                        gpu_ids=[])
    joints = dataset.joint_set
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    model.init_weights(None)
    model.freeze_for_stage()
    optimizer = make_optimizer(model, cfg)
    samples: List[Dict[str, Any]] = []
    started, done = time.perf_counter(), [0]
    pool = data.loader.pool

    def on_step(epoch: int, progress: EpochProgress) -> None:
        done[0] += 1
        if done[0] % sample_every == 0:
            samples.append(sample(done[0], loader=data.loader, pool=pool, started=started))

    loop = LoopOptions.from_config(cfg, device=torch.device("cpu"), on_step=on_step,
                                   iters_per_epoch=data.iters_per_epoch,
                                   tally=ProblemTally(strict=True))
    epoch = 0
    while done[0] < iters:
        data.sampler.set_epoch(epoch)
        left = min(data.iters_per_epoch, iters - done[0])
        # The last epoch's pass ends where the soak does, as train.py's --max_iters_per_epoch.
        data.sampler.set_stop(left * data.batch_size)
        train_one_epoch(model, data.loader, optimizer, cfg, epoch=epoch, options=loop)
        epoch += 1
    return samples


def growth(samples: List[Dict[str, Any]], key: str) -> Dict[str, float]:
    """How far `key` grew after the warm-up: the median of the last quarter of the samples
    minus that of the second quarter, in MiB and per 1000 iterations."""
    quarter = max(len(samples) // 4, 1)
    second, last = samples[quarter:2 * quarter], samples[-quarter:]
    mib = statistics.median(s[key] for s in last) - statistics.median(s[key] for s in second)
    span = (statistics.median(s["iteration"] for s in last)
            - statistics.median(s["iteration"] for s in second))
    return {"mib": mib, "mib_per_1000_iters": mib / span * 1000 if span > 0 else math.nan}


def segment_bound(slots: int) -> int:
    """The most torch segments a loader with `slots` pool slots can have mapped at once: the
    pool, and every batch that can exist at once (one per slot) with its own segments."""
    return 1 + slots * BATCH_SEGMENTS


def summarize(samples: List[Dict[str, Any]], *, iters: int, workers: int,
              seconds: float) -> Dict[str, Any]:
    """The soak's figures: the values at the end of the warm-up (the first 10 % of the
    iterations) and at the end, the growth in between, the pool's misses, and the targets."""
    for s in samples:
        s["total_rss_mib"] = s["main_rss_mib"] + s["workers_rss_mib"]
    warm = next(s for s in samples if s["iteration"] >= iters // 10)
    after = [s for s in samples if s["iteration"] >= warm["iteration"]]
    keys = ("main_rss_mib", "main_anon_mib", "workers_rss_mib", "total_rss_mib",
            "total_private_mib", "shmem_rss_mib", "shm_segments", "dev_shm_used_mib")
    grown = {k: growth(samples, k) for k in keys}
    worst = max(grown[k]["mib_per_1000_iters"] for k in ("total_rss_mib", "total_private_mib"))
    most = max(s["shm_segments"] for s in after)
    bound = segment_bound(samples[-1]["pool_slots"])
    return {
        "case": "soak", "iters": iters, "workers": workers, "seconds": seconds,
        "warm": {k: warm[k] for k in keys}, "end": {k: samples[-1][k] for k in keys},
        "growth": grown, "max_shm_segments": most, "shm_segment_bound": bound,
        "pool_misses_after_warmup": samples[-1]["pool_misses"] - warm["pool_misses"],
        "pool": {k: samples[-1][k] for k in ("pool_slots", "pool_hits", "pool_misses")},
        "samples": samples,
        "targets": {
            f"RSS and private memory growth < {FLAT_MIB_PER_1000:g} MiB / 1000 iterations":
                worst < FLAT_MIB_PER_1000,
            f"shared-memory segments <= {bound}": most <= bound,
            "no batch missed a pool slot after warm-up":
                samples[-1]["pool_misses"] == warm["pool_misses"]}}


def run(*, device: torch.device, repeats: int, smoke: bool, workers: int,
        soak_iters: Optional[int] = None) -> Dict[str, Any]:
    """The soak on the CPU for `soak_iters` iterations (None: 3000; 60 in smoke mode), with
    `workers` workers (at least 1). `device` and `repeats` do not apply: loading runs on the
    CPU wherever the model runs, and one long run is the measurement."""
    iters = soak_iters or (SMOKE_ITERS if smoke else SOAK_ITERS)
    workers = max(workers, 1)  # the workers and their shared memory are what is soaked
    with tempfile.TemporaryDirectory(prefix="soak_") as folder:
        cfg = soak_config(soak_data(folder, per_class=4 if smoke else 32), workers=workers)
        start = time.perf_counter()
        # Some 300 samples: the main process's RSS moves by several MiB from step to step (the
        # allocator), and the quarters' medians need enough samples to see through that.
        samples = soak(cfg, iters=iters, sample_every=max(iters // 300, 1))
        return summarize(samples, iters=iters, workers=workers,
                         seconds=time.perf_counter() - start)
