"""The DataLoader of train.py and test.py, with its batches in reused shared memory where that
applies (`data.batch_pool`)."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional

import torch
from torch.utils.data import DataLoader

from common.errors import quiet_loader_worker
from data.batch_pool import PooledBatchSampler, SharedBatchPool, pool_slots
from data.collate import collate_clips

logger = logging.getLogger("integral_action.data")


class ClipLoader:
    """A DataLoader of `collate_clips` batches, with its clips in a `SharedBatchPool` when it
    has one (`pool`); iterates the batches as the DataLoader would give them."""

    def __init__(self, loader: DataLoader, pool: Optional[SharedBatchPool]) -> None:
        self.loader = loader
        self.pool = pool

    @property
    def dataset(self) -> Any:
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        if self.pool is None:
            yield from self.loader
            return
        hits, misses = self.pool.hits, self.pool.misses
        for batch in self.loader:
            yield self.pool.take(batch)
        missed = self.pool.misses - misses
        if missed:
            # Not an error (the clips are right), but the cost the pool exists to save.
            logger.info("loader: %d of %d batches found every slot taken (the consumer kept "
                        "earlier batches, or an earlier pass was left before its end) and came "
                        "in fresh shared memory", missed, missed + self.pool.hits - hits)


def _shared_memory_free() -> Optional[int]:
    """Free bytes of /dev/shm (where Linux keeps shared memory); None where unknown."""
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def build_clip_loader(dataset: Any, batches: Iterable[List[Any]], *, num_workers: int,
                      pin_memory: bool = False, persistent_workers: bool = False,
                      prefetch_factor: int = 2, generator: Optional[torch.Generator] = None,
                      pool: Optional[bool] = None) -> ClipLoader:
    """The loader of train.py and test.py: `batches` (a batch sampler) of `dataset`'s items,
    collated by `collate_clips`, read by `num_workers` workers.

    Args:
        pool: clips in a `SharedBatchPool` (None: where it applies, i.e. workers that write
            float32 clips into batch tensors (`dataset.writes_batches`), and no `pin_memory`:
            the pinning thread copies every batch anyway, so a GPU run keeps the plain loader).
    Returns:
        A `ClipLoader`; what was decided is logged once.
    """
    applies = num_workers > 0 and not pin_memory and bool(getattr(dataset, "writes_batches",
                                                                  False))
    use = applies if pool is None else bool(pool)
    if use and not applies:
        raise ValueError("a batch pool needs workers, no pin_memory and a data set that writes "
                         "float32 clips into batch tensors")
    shared: Optional[SharedBatchPool] = None
    if use:
        shared = SharedBatchPool(slots=pool_slots(num_workers, prefetch_factor),
                                 batch_shape=dataset.batch_clip_shape(_batch_size(batches)))
        batches = PooledBatchSampler(batches, shared)
        free = _shared_memory_free()
        logger.info("loader: %d workers write the clips into %d reused shared-memory batch slots "
                    "(%.0f MiB)", num_workers, shared.slots, shared.nbytes / 2**20)
        if free is not None and shared.nbytes > free:
            logger.warning("the loader's batch slots need %.0f MiB of shared memory and "
                           "/dev/shm has %.0f MiB free: workers may die with a bus error. Give "
                           "the container more (docker run --shm-size=...) or lower "
                           "--num_thread", shared.nbytes / 2**20, free / 2**20)
    elif num_workers > 0:
        logger.info("loader: %d workers send each batch in fresh shared memory%s", num_workers,
                    " (pinned for the GPU)" if pin_memory else "")
    if shared is not None or hasattr(dataset, "batch_pool"):
        dataset.batch_pool = shared
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=num_workers,
                        pin_memory=pin_memory, collate_fn=collate_clips,
                        persistent_workers=persistent_workers and num_workers > 0,
                        prefetch_factor=prefetch_factor if num_workers > 0 else None,
                        generator=generator,
                        # A signal to the process group (Ctrl-C, a scheduler's SIGTERM) ends
                        # the workers without a word: the main process says it.
                        worker_init_fn=quiet_loader_worker if num_workers > 0 else None)
    return ClipLoader(loader, shared)


def _batch_size(batches: Iterable[List[Any]]) -> int:
    """The largest batch `batches` gives: its `batch_size` (torch's `BatchSampler`,
    `ShardedBatchSampler`), else its largest batch, counted."""
    size = getattr(batches, "batch_size", None)
    if size is not None:
        return int(size)
    return max((len(keys) for keys in batches), default=1)
