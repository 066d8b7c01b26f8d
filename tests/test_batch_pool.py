"""Batches in reused shared-memory slots (`data.batch_pool`, `data.clip_loader`): the same
batches as the plain loader, bit for bit; a slot is reused only once nothing reads it; a batch
that finds no free slot, or whose clips were copied, costs a fresh tensor and never a slot."""
from __future__ import annotations

import gc
import os
import os.path as osp
import pickle

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from data.batch_pool import PooledBatchSampler, PooledVideo, SharedBatchPool, SlotBatch, pool_slots
from data.clip_loader import build_clip_loader
from data.collate import collate_clips
from data.Kinetics.Kinetics import Kinetics
from tool.benchmarks.baselines.loading import BASELINE_LOADING
from data.samplers import ShardedBatchSampler, TrainSampler
from tests.fixtures_data import make_cfg, write_kinetics

KEYS = ("video", "pose_coords", "pose_scores", "label", "video_id")


def _plain(ds, batches):
    return list(DataLoader(ds, batch_sampler=batches, num_workers=0, collate_fn=collate_clips))


def _assert_batches_equal(got, want):
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        assert "pool_slot" not in a and not isinstance(a["video"], PooledVideo)
        for key in KEYS:
            assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- the pool alone
def test_slots_are_handed_out_once_and_come_back_when_no_tensor_reads_them():
    pool = SharedBatchPool(slots=2, batch_shape=(3, 2, 3, 4, 4))
    first, second = pool.assign(), pool.assign()
    assert {first, second} == {0, 1} and pool.assign() is None  # all taken: a miss
    assert (pool.hits, pool.misses) == (2, 1)
    pool.buffer[first].fill_(7.0)
    video = pool.claim(PooledVideo(pool.key, slot=first, count=2))
    assert video.shape == (2, 2, 3, 4, 4) and bool((video == 7.0).all())
    frame = video[1, 0]           # a view keeps the slot,
    doubled = video.view(-1)      # and so does a reshaped one;
    del video
    gc.collect()
    assert pool.free_slots == 0
    del frame
    gc.collect()
    assert pool.free_slots == 0
    del doubled
    gc.collect()
    assert pool.free_slots == 1 and pool.assign() == first
    copy = pool.claim(PooledVideo(pool.key, slot=second, count=3)).clone()  # a copy does not
    gc.collect()
    assert pool.free_slots == 1 and copy.shape[0] == 3


def test_take_claims_tokens_and_gives_back_the_slots_of_copied_batches():
    pool = SharedBatchPool(slots=2, batch_shape=(2, 1, 3, 2, 2))
    a, b = pool.assign(), pool.assign()
    pool.buffer[a].fill_(1.0)
    claimed = pool.take({"video": PooledVideo(pool.key, slot=a, count=2), "pool_slot": a, "label": 0})
    assert "pool_slot" not in claimed and bool((claimed["video"] == 1.0).all())
    stacked = pool.take({"video": torch.zeros(1, 1, 3, 2, 2), "pool_slot": b})
    assert stacked["video"].untyped_storage().data_ptr() != pool.buffer.data_ptr()
    assert pool.free_slots == 1  # b at once; a once its batch is dropped
    with pytest.raises(RuntimeError, match="released twice"):
        pool.release(b)
    other = SharedBatchPool(slots=1, batch_shape=(2, 1, 3, 2, 2))
    with pytest.raises(RuntimeError, match="reached pool"):
        other.claim(PooledVideo(pool.key, slot=0, count=1))
    del claimed
    gc.collect()
    assert pool.free_slots == 2
    assert pool.take({"label": 1}) == {"label": 1}  # a plain batch passes through


def test_rows_refuses_a_batch_larger_than_a_slot_and_a_pool_needs_a_slot():
    pool = SharedBatchPool(slots=1, batch_shape=(2, 1, 3, 2, 2))
    assert pool.rows(0, 2).shape == (2, 1, 3, 2, 2)
    with pytest.raises(ValueError, match="does not fit"):
        pool.rows(0, 3)
    with pytest.raises(ValueError, match="at least one slot"):
        SharedBatchPool(slots=0, batch_shape=(1, 1, 3, 2, 2))


def test_a_pickled_pool_shares_the_buffer_and_leaves_the_bookkeeping():
    from multiprocessing.reduction import ForkingPickler
    pool = SharedBatchPool(slots=2, batch_shape=(1, 1, 3, 2, 2))
    pool.assign()
    copy = pickle.loads(ForkingPickler.dumps(pool))  # what a spawned worker receives
    copy.rows(1, 1).fill_(5.0)
    assert bool((pool.buffer[1] == 5.0).all())
    assert copy.free_slots == 0 and copy.hits == 0 and pool.free_slots == 1


def test_slot_batch_keys_survive_pickling_and_the_sampler_names_a_slot_per_batch():
    keys = pickle.loads(pickle.dumps(SlotBatch([(3, 9), (4, 9)], slot=5, pool_key="k")))
    assert keys == [(3, 9), (4, 9)] and (keys.slot, keys.pool_key, keys.rows) == (5, "k", None)
    pool = SharedBatchPool(slots=2, batch_shape=(2, 1, 3, 2, 2))
    batches = PooledBatchSampler([[0, 1], [2, 3], [4]], pool)
    drawn = list(batches)
    assert len(batches) == 3 and [list(k) for k in drawn] == [[0, 1], [2, 3], [4]]
    assert sorted(k.slot for k in drawn[:2]) == [0, 1] and drawn[2].slot is None
    assert {k.pool_key for k in drawn} == {pool.key}


def test_a_loader_has_a_slot_for_each_batch_on_its_way_and_two_more():
    assert pool_slots(2, 2) == 6 and pool_slots(0, 2) == 2 and pool_slots(8, 4) == 34


# --------------------------------------------------------------------------- the real loader
@pytest.mark.parametrize("split", ["test", "train"])
def test_pooled_loader_gives_the_plain_loaders_batches(tmp_path, split):
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=3)
    cfg = make_cfg(tmp_path)
    ds = Kinetics(cfg, split)
    sampler = TrainSampler(ds, seed=3) if split == "train" else range(len(ds))
    loader = build_clip_loader(ds, BatchSampler(sampler, 4, False), num_workers=2)
    assert loader.pool is not None and loader.pool.slots == 6
    got = []
    for batch in loader:  # each batch is dropped at the next: the slots come back
        assert batch["video"].untyped_storage().data_ptr() != 0
        got.append({k: batch[k].clone() for k in KEYS})
    _assert_batches_equal(got, _plain(Kinetics(cfg, split), BatchSampler(sampler, 4, False)))
    assert loader.pool.free_slots == loader.pool.slots - 1  # the last batch is still held
    del batch
    gc.collect()
    assert loader.pool.misses == 0 and loader.pool.free_slots == loader.pool.slots
    assert loader.pool.hits == len(got)


def test_pooled_batches_are_the_slots_memory_not_a_copy(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(24, 36), videos_per_class=3)
    ds = Kinetics(make_cfg(tmp_path), "test")
    loader = build_clip_loader(ds, ShardedBatchSampler(len(ds), 5), num_workers=2)
    buffer = loader.pool.buffer
    start, end = buffer.data_ptr(), buffer.data_ptr() + loader.pool.nbytes
    slot_bytes = loader.pool.nbytes // loader.pool.slots
    for batch in loader:
        offset = batch["video"].data_ptr() - start
        assert 0 <= offset < end - start and offset % slot_bytes == 0


def test_kept_batches_are_never_overwritten(tmp_path, caplog):
    # The consumer keeps every batch: after the pool's slots are taken, batches come in fresh
    # tensors (misses), and every kept batch still holds its own clips at the end.
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=6)
    cfg = make_cfg(tmp_path)
    ds = Kinetics(cfg, "test")
    loader = build_clip_loader(ds, ShardedBatchSampler(len(ds), 4), num_workers=2)
    with caplog.at_level("INFO", logger="integral_action.data"):
        kept = list(loader)
    assert len(kept) > loader.pool.slots
    assert f"{loader.pool.misses} of {len(kept)} batches found every slot taken" in caplog.text
    _assert_batches_equal(kept, _plain(Kinetics(cfg, "test"), ShardedBatchSampler(len(ds), 4)))
    assert loader.pool.misses > 0 and loader.pool.free_slots == 0
    del kept
    gc.collect()
    assert loader.pool.free_slots == loader.pool.slots


def test_an_unusable_clip_makes_a_copied_batch_and_frees_the_slot(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(24, 36))
    cfg = make_cfg(tmp_path)
    ds = Kinetics(cfg, "test")
    broken = ds.records[0]["frame_dir"]
    for name in os.listdir(broken):
        os.remove(osp.join(broken, name))  # every clip of video 0 is unusable
    batches = ShardedBatchSampler(len(ds), 4)
    loader = build_clip_loader(ds, batches, num_workers=2)
    got = list(loader)
    want = _plain(Kinetics(cfg, "test"), batches)
    assert [len(b["skipped"]) for b in got] == [len(b["skipped"]) for b in want]
    assert any(b["skipped"] for b in got)
    for a, b in zip(got, want):
        if "label" in b:
            for key in KEYS:
                assert torch.equal(a[key], b[key]), key
        else:
            assert "video" not in a
    pooled = sum(1 for b in got if "label" in b and not b["skipped"])
    del got
    gc.collect()
    assert loader.pool.free_slots == loader.pool.slots and loader.pool.hits >= pooled


def test_persistent_workers_over_epochs_with_a_stop_leave_no_slot_taken(tmp_path):
    # train.py's loader: persistent workers, TrainSampler cut short by --max_iters_per_epoch.
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=6)
    cfg = make_cfg(tmp_path)
    ds = Kinetics(cfg, "train")
    sampler = TrainSampler(ds, seed=1)
    loader = build_clip_loader(ds, BatchSampler(sampler, 2, True), num_workers=2,
                               persistent_workers=True)
    reference = Kinetics(cfg, "train")
    for epoch in range(3):
        sampler.set_epoch(epoch)
        sampler.set_stop(3 * 2)
        got = [{k: b[k].clone() for k in KEYS} for b in loader]
        assert len(got) == 3
        _assert_batches_equal(got, _plain(reference, BatchSampler(sampler, 2, True)))
        gc.collect()
        assert loader.pool.free_slots == loader.pool.slots
    assert loader.pool.misses == 0


def test_an_abandoned_pass_costs_slots_never_clips(tmp_path):
    # Breaking out leaves batches on their way; their slots stay taken (never reused while a
    # worker may write them), later batches miss and are still right.
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=6)
    cfg = make_cfg(tmp_path)
    ds = Kinetics(cfg, "test")
    batches = ShardedBatchSampler(len(ds), 2)
    loader = build_clip_loader(ds, batches, num_workers=2, persistent_workers=True)
    for n, _ in enumerate(loader):
        if n == 1:
            break
    got = [{k: b[k].clone() for k in KEYS} for b in loader]
    _assert_batches_equal(got, _plain(Kinetics(cfg, "test"), batches))


def test_a_data_set_given_to_a_second_loader_never_writes_into_the_firsts_slots(tmp_path):
    # The data set holds the pool of the last loader built with it; the first loader's
    # workers then see a pool that is not theirs, and make fresh batches.
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=3)
    cfg = make_cfg(tmp_path)
    ds = Kinetics(cfg, "test")
    batches = ShardedBatchSampler(len(ds), 4)
    first = build_clip_loader(ds, batches, num_workers=2)
    second = build_clip_loader(ds, batches, num_workers=2)
    assert ds.batch_pool is second.pool
    got = [{k: b[k].clone() for k in KEYS} for b in first]
    _assert_batches_equal(got, _plain(Kinetics(cfg, "test"), batches))
    gc.collect()
    assert first.pool.free_slots == first.pool.slots and first.pool.hits == len(got)
    assert second.pool.hits == 0 and not bool(second.pool.buffer.abs().sum() > 0)


def test_the_pool_is_used_only_where_it_applies(tmp_path, caplog):
    write_kinetics(str(tmp_path), frame_size=(24, 36))
    cfg = make_cfg(tmp_path)
    batches = ShardedBatchSampler(4, 2)
    with caplog.at_level("INFO", logger="integral_action.data"):
        assert build_clip_loader(Kinetics(cfg, "test"), batches, num_workers=2).pool is not None
    assert "reused shared-memory batch slots" in caplog.text
    for ds, kwargs in [
        (Kinetics(cfg, "test"), dict(num_workers=0)),                    # no workers
        (Kinetics(cfg, "test"), dict(num_workers=2, pin_memory=True)),   # pinned for a GPU
        (Kinetics(cfg, "test", loading=BASELINE_LOADING), dict(num_workers=2)),  # one array a clip
        (Kinetics(make_cfg(tmp_path, mode="pose_only"), "test"), dict(num_workers=2)),  # no video
    ]:
        loader = build_clip_loader(ds, batches, **kwargs)
        assert loader.pool is None and ds.batch_pool is None
    with pytest.raises(ValueError, match="needs workers"):
        build_clip_loader(Kinetics(cfg, "test"), batches, num_workers=0, pool=True)


def test_a_batch_sampler_without_batch_size_is_measured(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(24, 36))
    ds = Kinetics(make_cfg(tmp_path), "test")
    loader = build_clip_loader(ds, [[0, 1, 2], [3]], num_workers=1)
    assert loader.pool.batch_shape[0] == 3 and len(loader) == 2
    assert [b["video"].shape[0] for b in loader] == [3, 1]


class _Spawned(Dataset):
    """Writes `index + 1` into its slot rows, as `VideoPoseDataset.__getitems__` would."""

    writes_batches = True

    def __init__(self) -> None:
        self.batch_pool = None

    def __len__(self) -> int:
        return 6

    def batch_clip_shape(self, batch_size: int):
        return (batch_size, 1, 3, 2, 2)

    def __getitems__(self, keys):
        rows = self.batch_pool.rows(keys.slot, len(keys))
        items = []
        for k, key in enumerate(keys):
            rows[k].fill_(key + 1)
            items.append({"video": rows[k], "label": torch.tensor(key), "problems": []})
        return SlotBatch(items, keys.slot, keys.pool_key, rows, in_slot=True)


def test_spawned_workers_write_into_the_same_slots():
    loader = build_clip_loader(_Spawned(), ShardedBatchSampler(6, 2), num_workers=1)
    loader.loader.multiprocessing_context = "spawn"
    for batch in loader:
        for clip, label in zip(batch["video"], batch["label"]):
            assert bool((clip == label + 1).all())
    assert loader.pool.misses == 0
