"""Samplers that make training resumable anywhere and testing shardable without changing a result.

`TrainSampler` is a `DistributedSampler` (shuffle from `seed + epoch`, one shard per rank,
`set_epoch`) whose items also carry their augmentation stream: it yields `(index, stream)` and
the dataset seeds the item's crop, flip and start frame from the pair (see
`VideoPoseDataset.item_rng`). An item's randomness therefore depends on the run's seed, the
epoch and the index only, not on which worker or rank loads it, and `set_start` can skip the
batches a resumed run has already trained on: resuming mid-epoch continues with the next unseen
batch, exactly.

`ShardedBatchSampler` splits the test set's batches, not its items, among the ranks: each batch
holds the same clips as in a single-process run (so every probability is computed exactly as
there), no clip is padded in or left out, and concatenating the ranks' predictions in rank
order gives the single-process order.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from torch.utils.data import DistributedSampler, Sampler

# Epochs fit in this many bits of an item's stream (the seed takes the bits above).
_EPOCH_BITS = 20


def item_stream(seed: int, epoch: int) -> int:
    """The augmentation stream of an epoch: different for every (seed, epoch) pair."""
    return ((int(seed) & 0xFFFFFFFF) << _EPOCH_BITS) | (int(epoch) & ((1 << _EPOCH_BITS) - 1))


class TrainSampler(DistributedSampler):
    """Shuffled training items of one rank, as `(index, stream)` pairs.

    Args:
        dataset: the training set (only its length is used).
        seed: the run's seed (the shuffle of epoch e is `randperm` seeded with `seed + e`).
        rank, world_size: this process's shard (0 and 1: the whole data set).
        shuffle: False keeps the data set's order (for tests).
    """

    def __init__(self, dataset, *, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                         seed=int(seed), drop_last=False)
        self.start = 0
        self.stop: Optional[int] = None

    def set_start(self, start: int) -> None:
        """Skip the first `start` items of this rank's shard in the current epoch (a resumed
        run's batches already trained on); reset to 0 by `set_epoch`."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} outside [0, {self.num_samples}]")
        self.start = int(start)

    def set_stop(self, stop: Optional[int]) -> None:
        """End the current epoch's pass after item `stop` of this rank's shard (None: at its
        end; `--max_iters_per_epoch`), so that the loader's pass ends rather than being left
        with batches on their way; reset by `set_epoch`."""
        if stop is not None and stop < 0:
            raise ValueError(f"stop {stop} is negative")
        self.stop = None if stop is None else min(int(stop), self.num_samples)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.start = 0
        self.stop = None

    def epoch_indices(self) -> List[int]:
        """This rank's items of the current epoch, in order (before `start` and `stop`)."""
        return list(super().__iter__())

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        stream = item_stream(self.seed, self.epoch)
        indices = self.epoch_indices()[self.start:self.stop]
        return iter([(int(i), stream) for i in indices])

    def __len__(self) -> int:
        return max((self.num_samples if self.stop is None else self.stop) - self.start, 0)


class ShardedBatchSampler(Sampler[List[int]]):
    """Consecutive batches of `range(size)`, the `rank`-th contiguous share of them.

    With `world_size` 1 this is a plain sequential batch sampler (`drop_last=False`).
    """

    def __init__(self, size: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad sharding: batch_size {batch_size}, rank {rank}, "
                             f"world_size {world_size}")
        starts = list(range(0, size, batch_size))
        per, extra = divmod(len(starts), world_size)
        first = rank * per + min(rank, extra)
        mine = starts[first:first + per + (1 if rank < extra else 0)]
        self.batch_size = int(batch_size)
        self.batches = [list(range(s, min(s + batch_size, size))) for s in mine]

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
