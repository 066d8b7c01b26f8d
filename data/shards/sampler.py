"""Training items of one rank drawn from that rank's own shards.

Shard s belongs to rank `s % world_size`: a rank reads (and, from a URL, fetches) only its
shards. Every rank takes the same number of items per epoch, the largest rank's sample count,
so that every rank runs the same number of steps and DDP's collectives never wait for a rank
that has finished: a rank with fewer samples goes round its own shuffled samples again for the
rest. Every sample is seen at least once per epoch; nothing is left out.

The order of an epoch is a function of (seed, epoch, rank, world size) alone, and the items
still carry the epoch's augmentation stream: `set_start`/`set_stop` and so an exact mid-epoch
resume work as with `data.samplers.TrainSampler` (with the same number of processes).
"""
from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np

from common.errors import UsageError
from data.samplers import TrainSampler


def rank_shards(shard_count: int, rank: int, world_size: int) -> List[int]:
    """The shards of `rank`: every `world_size`-th, from shard `rank`."""
    return list(range(rank, shard_count, world_size))


class ShardTrainSampler(TrainSampler):
    """`(index, stream)` pairs of this rank's shards' items, shuffled per epoch.

    Args:
        dataset: the training set (a `ShardVideos`; its length only, beside `item_shards`).
        item_shards: the shard of each item.
        shard_count: shards in the set.
        seed, rank, world_size, shuffle: as `TrainSampler`.
    Raises:
        UsageError: fewer shards than processes (a rank would have no data).
    """

    def __init__(self, dataset: Any, *, item_shards: Sequence[int], shard_count: int,
                 seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        super().__init__(dataset, seed=seed, rank=rank, world_size=world_size, shuffle=shuffle)
        if shard_count < world_size:
            raise UsageError(f"{shard_count} shard(s) for {world_size} processes: every process "
                             "needs a shard of its own; make more, smaller shards "
                             "(tool/make_shards.py --shard_size / --shard_samples)")
        counts = np.bincount(np.asarray(item_shards, np.int64) % world_size,
                             minlength=world_size)
        self.shards = rank_shards(shard_count, rank, world_size)
        mine = set(self.shards)
        self.items = [i for i, s in enumerate(item_shards) if s in mine]
        self.num_samples = int(counts.max())
        self.total_size = self.num_samples * world_size

    def epoch_indices(self) -> List[int]:
        order = np.arange(len(self.items))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, self.rank]).permutation(
                len(self.items))
        repeats = -(-self.num_samples // len(self.items))
        return [self.items[i] for i in np.tile(order, repeats)[:self.num_samples]]


def shard_train_sampler(dataset: Any, *, seed: int, rank: int, world_size: int
                        ) -> ShardTrainSampler:
    """The sampler of a `ShardVideos` training set, its rank's shards fetched and checked."""
    index = dataset.store.index
    sampler = ShardTrainSampler(dataset, item_shards=[s["shard"] for s in index.samples],
                                shard_count=len(index.shards), seed=seed, rank=rank,
                                world_size=world_size)
    dataset.prepare(sampler.shards, rank=rank)
    return sampler
