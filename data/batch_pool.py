"""Batches of clips in shared-memory slots that a DataLoader reuses from batch to batch.

A DataLoader worker sends each batch in a shared-memory segment of its own, which the main
process maps and unmaps again: every batch's pages are made, zeroed and mapped twice afresh.
For float32 clips at the paper's shapes (38.5 MB a batch of 8) that costs a third of a
training item's time: on this project's 2-core machine, ready-made clips pass at 428 clips/s
that way and 1,720 through reused memory (`python tool/benchmark.py`, the loading case).

So the main process owns a pool of batch slots in shared memory, made before the workers start
(they inherit it, or receive it when spawned):

1. the batch sampler (main process) names a free slot with each batch's keys (`SlotBatch`);
2. the worker writes the batch's clips into that slot (`BatchWriter.__getitems__`) and
   sends back a `PooledVideo` token instead of the tensor (`data.collate.collate_clips`);
3. the main process turns the token into a tensor over the slot (`SharedBatchPool.claim`), and
   the slot is free again once no tensor of the main process uses its memory: every view and
   every tensor made from one keeps the claimed storage alive, and a finalizer on it gives the
   slot back.

A slot is never handed out while a tensor can still read it. When every slot is taken (the
consumer keeps its batches, or an abandoned pass never delivered some), a batch gets a fresh
segment as before: slower, never wrong (`SharedBatchPool.misses` counts them).
"""
from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import Sampler, get_worker_info


def shared_empty(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor in shared memory; its pages are made on first write."""
    numel = 1
    for size in shape:
        numel *= int(size)
    storage = torch.UntypedStorage._new_shared(numel * torch.empty(0, dtype=dtype).element_size())
    return torch.empty(0, dtype=dtype).set_(storage).view(tuple(int(s) for s in shape))


class SlotBatch(list):
    """One batch's dataset keys, or its items, with where their clips go or went.

    Attributes:
        slot: the pool slot the sampler named (None: no pool, or every slot was taken).
        pool_key: the `SharedBatchPool.key` of the pool the slot is in.
        rows: in a worker, the `(B, T, 3, H, W)` batch tensor the items' clips were written
            into, row k the k-th item's (None for keys, and where they were not written).
        in_slot: whether `rows` are the pool slot's rows (else a tensor of their own).
    """

    def __init__(self, values: Iterable[Any], slot: Optional[int], pool_key: Optional[str],
                 rows: Optional[torch.Tensor] = None, in_slot: bool = False) -> None:
        super().__init__(values)
        self.slot = slot
        self.pool_key = pool_key
        self.rows = rows
        self.in_slot = in_slot


@dataclass(frozen=True)
class PooledVideo:
    """What a worker sends instead of the batch's `(B, T, 3, H, W)` clips: they are the first
    `count` rows of slot `slot` of the pool `pool_key` (see `SharedBatchPool.claim`)."""
    pool_key: str
    slot: int
    count: int


class SharedBatchPool:
    """`slots` batch buffers of `batch_shape` `(B, T, 3, H, W)` in shared memory.

    The main process hands slots out (`assign`) and takes batches back (`claim`, `release`);
    the workers only write into the slot they are named (`rows`).
    """

    def __init__(self, *, slots: int, batch_shape: Sequence[int],
                 dtype: torch.dtype = torch.float32) -> None:
        if slots < 1:
            raise ValueError(f"a pool needs at least one slot, not {slots}")
        self.batch_shape = tuple(int(s) for s in batch_shape)
        # Pages are made on first write: a slot costs memory only once a batch has used it.
        self.buffer = shared_empty((slots, *self.batch_shape), dtype)
        # Names this pool in every batch's keys: a worker whose data set holds another pool
        # (the data set given to a second loader since) must not write into this one's slots.
        self.key = uuid.uuid4().hex
        self._free: List[int] = list(range(slots))
        # Re-entrant: a finalizer giving a slot back may run inside `assign` (a garbage
        # collection started by an allocation there).
        self._lock = threading.RLock()
        self._array: Any = None  # the buffer as a numpy array, made on the first claim
        self.hits = 0
        self.misses = 0

    @property
    def slots(self) -> int:
        return int(self.buffer.shape[0])

    @property
    def nbytes(self) -> int:
        return self.buffer.untyped_storage().nbytes()

    @property
    def free_slots(self) -> int:
        with self._lock:
            return len(self._free)

    def __getstate__(self) -> Dict[str, Any]:
        # What a spawned worker needs: the buffer (sent as a shared-memory handle). The main
        # process's bookkeeping stays in the main process.
        return {"batch_shape": self.batch_shape, "buffer": self.buffer, "key": self.key}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.batch_shape, self.buffer, self.key = state["batch_shape"], state["buffer"], state["key"]
        self._free, self._lock, self._array = [], threading.RLock(), None
        self.hits = self.misses = 0

    # ---- worker side
    def rows(self, slot: int, count: int) -> torch.Tensor:
        """The first `count` rows of slot `slot`, `(count, T, 3, H, W)`, to write a batch into."""
        if not 0 < count <= self.batch_shape[0]:
            raise ValueError(f"a batch of {count} clips does not fit a slot of "
                             f"{self.batch_shape[0]}")
        return self.buffer[slot, :count]

    # ---- main process
    def assign(self) -> Optional[int]:
        """A free slot, now taken; None when every slot is taken (the batch then gets a fresh
        tensor)."""
        with self._lock:
            if self._free:
                self.hits += 1
                return self._free.pop()
            self.misses += 1
            return None

    def release(self, slot: int) -> None:
        """Give `slot` back: nothing reads it any more (its batch was copied or never made)."""
        with self._lock:
            if slot in self._free:
                raise RuntimeError(f"pool slot {slot} released twice")
            self._free.append(slot)

    def claim(self, token: PooledVideo) -> torch.Tensor:
        """The `(count, T, 3, H, W)` clips of `token` as a tensor over the slot's memory.

        The tensor gets a storage of its own (numpy's view of the slot), which every tensor
        made from it shares; the slot goes back to the pool when that storage is freed.
        """
        if token.pool_key != self.key:
            raise RuntimeError(f"a batch of pool {token.pool_key} reached pool {self.key}")
        if self._array is None:
            self._array = self.buffer.numpy()
        view = self._array[token.slot, :token.count]
        weakref.finalize(view, self.release, token.slot)
        return torch.from_numpy(view)

    def take(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """A collated batch as the consumer sees it: its `PooledVideo` made a tensor, the slot
        of a batch whose clips were copied (or that has none) given back."""
        slot = batch.pop("pool_slot", None)
        if slot is None:
            return batch
        video = batch.get("video")
        if isinstance(video, PooledVideo):
            batch["video"] = self.claim(video)
        else:
            self.release(slot)
        return batch


def new_batch_tensor(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor for a whole batch; in a DataLoader worker, in shared memory, as
    `default_collate` allocates its batches, so that it reaches the main process without a
    copy."""
    if get_worker_info() is None:
        return torch.empty(tuple(shape), dtype=dtype)
    return shared_empty(shape, dtype)


def items_into_batch(keys: Sequence[Any], make_item: Callable[[Any, torch.Tensor], Any], *,
                     batch_shape: Sequence[int], pool: Optional[SharedBatchPool]) -> SlotBatch:
    """A batch's items, each made by `make_item(key, out)` with its clip written into `out`,
    row k of one `batch_shape` `(B, T, 3, H, W)` tensor: the pool slot that `keys` names (a
    `SlotBatch`), else a new one (`new_batch_tensor`).

    Returns the items as a `SlotBatch` that says where the clips are (`rows`, `in_slot`), so
    that `collate_clips` passes that tensor on, or only the slot's number, instead of stacking
    the clips, and names the slot (if any) for the main process to give back.
    """
    slot, pool_key = getattr(keys, "slot", None), getattr(keys, "pool_key", None)
    in_slot = slot is not None and pool is not None and pool.key == pool_key
    rows = pool.rows(slot, len(keys)) if in_slot else new_batch_tensor(batch_shape)
    items = [make_item(key, rows[k]) for k, key in enumerate(keys)]
    return SlotBatch(items, slot, pool_key, rows, in_slot)


class BatchWriter:
    """Mixin of a dataset whose items each hold one clip: `__getitems__` makes a batch's items
    with their clips written into one `(B, T, 3, H, W)` batch tensor.

    The class says whether it writes (`writes_batches`), the batch shape (`batch_clip_shape`)
    and how an item is made (`_item(key, video_out)`: with `video_out`, a row of the batch
    tensor, the item's clip is written there and is its 'video'). `batch_pool` is the pool of
    the loader built last over the dataset (`data.clip_loader.build_clip_loader` sets it).
    """

    batch_pool: Optional[SharedBatchPool] = None
    writes_batches: bool = False

    def batch_clip_shape(self, batch_size: int) -> Tuple[int, ...]:
        """`(B, T, 3, H, W)` of a batch of `batch_size` clips."""
        raise NotImplementedError

    def _item(self, key: Any, video_out: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        raise NotImplementedError

    def __getitems__(self, keys: Sequence[Any]) -> List[Dict[str, Any]]:
        """The items of one DataLoader batch (the DataLoader calls this rather than
        `__getitem__` per key), equal to `[self[key] for key in keys]`.

        With `writes_batches`, their clips are written straight into the rows of one batch
        tensor, which `collate_clips` then passes on as the batch: no clip is copied into a
        stacked batch, and no per-clip array is allocated. The tensor is the pool slot that
        `keys` names (a `SlotBatch` from a `PooledBatchSampler`), else a new one, in shared
        memory inside a worker (`items_into_batch`).
        """
        if self.writes_batches:
            return items_into_batch(keys, lambda key, out: self._item(key, video_out=out),
                                    batch_shape=self.batch_clip_shape(len(keys)),
                                    pool=self.batch_pool)
        items = [self._item(key) for key in keys]
        if isinstance(keys, SlotBatch):
            # A slot named for a batch not written into it: the main process gives it back.
            return SlotBatch(items, keys.slot, keys.pool_key)
        return items


class PooledBatchSampler(Sampler[List[Any]]):
    """`batches` (any batch sampler), each batch's keys with a pool slot (`SlotBatch`).

    The DataLoader draws from it in the main process when it sends a batch to a worker, so a
    slot is taken only for as long as its batch is on its way or in use.
    """

    def __init__(self, batches: Iterable[List[Any]], pool: SharedBatchPool) -> None:
        self.batches = batches
        self.pool = pool

    def __iter__(self) -> Iterator[SlotBatch]:
        for keys in self.batches:
            yield SlotBatch(keys, self.pool.assign(), self.pool.key)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def pool_slots(num_workers: int, prefetch_factor: int) -> int:
    """Slots a loader needs so that no batch misses: those on their way (`prefetch_factor`
    per worker), the one in use, and the one it replaces while the next arrives."""
    return num_workers * prefetch_factor + 2
