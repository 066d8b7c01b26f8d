"""The data set of a shard set: the items of the folder data set it was packed from.

`ShardVideos` is a `VideoPoseDataset` whose records come from the shard index, whose frames
come from the shards (`ShardFrames`, a `FrameSource` over the JPEG bytes in the tars) and whose
poses come from the packed pose tables (`data.shards.poses`): sampling, crops, flips, pose
maps and the handling of bad data are the base class's, so an item equals the folder's item of
the same index (same seed, same stream).
"""
from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from typing import Any, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from common.errors import DataError, UsageError
from data.NTU.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from data.shards.layout import INDEX_NAME, ShardError, frame_member, poses_member, sample_key
from data.shards.poses import PoseTable
from data.shards.store import ShardStore
from data.sources.base import FrameError, FrameSource
from data.sources.jpeg_folder import check_frame_bytes, decode_frame, load_clip_frames
from data.video_list import Record
from data.video_pose_dataset import LoadingOptions, VideoPoseDataset

logger = logging.getLogger("integral_action.data")

# Pose tables kept per process (a worker meets the same video again in the next epoch).
POSE_CACHE = 64


class ShardFrames(FrameSource):
    """Frames from the shards; a video is named by its sample key (the record's
    'frame_dir'). A frame's name in problems is `<shard path>:<member>`."""

    def __init__(self, store: ShardStore) -> None:
        self.store = store

    def _name(self, key: str, frame_index: int) -> str:
        shard = self.store.index.samples[int(key)]["shard"]
        return f"{self.store.path(shard)}:{frame_member(key, frame_index)}"

    def _bytes(self, name: str) -> bytes:
        """The checked bytes of a frame named by `_name`; a frame the source folder lacked
        is 'missing_frame', as it was there."""
        member = name.rsplit(":", 1)[1]
        key, number = member.split(".")[:2]
        sample = self.store.index.samples[int(key)]
        if int(number) - 1 in sample["missing_frames"]:
            raise FrameError(name, "missing_frame", "frame file not found (it was missing when "
                                                    "the shards were made)")
        return check_frame_bytes(self.store.read(sample["shard"], member), name)

    def read(self, video: str, indices: Sequence[int], *,
             fast_decode_shape: Optional[Sequence[int]] = None
             ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
        return load_clip_frames([self._name(video, k) for k in indices], fast_decode_shape,
                                read=self._bytes)

    def frame_size(self, video: str, index: int) -> Tuple[int, int]:
        name = self._name(video, index)
        height, width = decode_frame(self._bytes(name), name).shape[:2]
        return int(height), int(width)


class ShardVideos(VideoPoseDataset):
    """The `split` of a shard set (`store`), as the `loader` class (the registry's class of
    the packed data set) would give it from the folder.

    Raises:
        UsageError: the shards hold another split, data set, subset (Kinetics, Mimetics) or
            protocol (NTU, NTU120) than asked, or were packed for clips of another span or
            another class count.
    """

    def __init__(self, cfg: Any, split: str, *, store: ShardStore, loader: type,
                 loading: Optional[LoadingOptions] = None) -> None:
        index = store.index
        _check_matches(cfg, split, index, store.location)
        self.joint_set = loader.joint_set
        self.pose_key = "pose_path"
        self.store = store
        loading = dataclasses.replace(loading or LoadingOptions(), frames=ShardFrames(store))
        super().__init__(cfg, split, loading=loading)
        if self.span != index.span:
            raise UsageError(
                f"--shards {store.location}: packed for clips spanning {index.span} frames, "
                f"this run's span {self.span} (--frame_per_seg, --frame_interval); make the "
                "shards with this run's options")
        self.class_num = int(cfg.class_num) if cfg.class_num is not None else index.class_num
        self.class_num_reason = index.class_num_reason
        self.class_names = dict(index.class_names)
        self.annotated, self.annotation_path = index.annotated, index.annotation_path
        self.skipped = dict(index.skipped)
        self.records = [self._record(position, s) for position, s in enumerate(index.samples)]
        self._pose_cache: "OrderedDict[str, PoseTable]" = OrderedDict()
        logger.info("%s %s from %d shard(s) at %s: %d videos of %d annotated in %s; %d "
                    "classes", index.dataset, split, len(index.shards), store.location,
                    len(self.records), self.annotated, self.annotation_path, self.class_num)

    def _record(self, position: int, sample: dict) -> Record:
        if not 0 <= sample["label"] < self.class_num:
            raise UsageError(f"--shards {self.store.location}: video {sample['video_id']} has "
                             f"label {sample['label']}, outside this run's {self.class_num} "
                             "classes; make the shards with the same --class_num")
        record = {k: sample[k] for k in ("video_id", "frame_num", "label", "height", "width",
                                         "pose_path")}
        record["frame_dir"] = sample_key(position)
        return record

    def poses(self, key: str) -> PoseTable:
        """The pose table of sample `key` (the last `POSE_CACHE` kept)."""
        if key in self._pose_cache:
            self._pose_cache.move_to_end(key)
            return self._pose_cache[key]
        table = self._read_poses(key)
        self._pose_cache[key] = table
        if len(self._pose_cache) > POSE_CACHE:
            self._pose_cache.popitem(last=False)
        return table

    def _read_poses(self, key: str) -> PoseTable:
        sample = self.store.index.samples[int(key)]
        if sample["pose_error"] is not None:
            raise DataError(sample["pose_error"])
        raw = self.store.read(sample["shard"], poses_member(key))
        try:
            return PoseTable.from_bytes(raw)
        except (ValueError, OSError, KeyError) as err:
            raise ShardError(f"{self.store.path(sample['shard'])}: damaged member "
                             f"{poses_member(key)} ({err}); fetch or make it again") from None

    def load_poses(self, record: Record, frame_indices: Sequence[int],
                   resized_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        return self.poses(record["frame_dir"]).clip(
            frame_indices, resized_hw=resized_hw, original_hw=(record["height"], record["width"]),
            joint_num=self.joint_set.joint_num)

    def shards_of_items(self, items: Iterable[int]) -> Set[int]:
        """The shards the given item indices read."""
        samples = self.store.index.samples
        return {samples[self.locate(int(i))[0]]["shard"] for i in items}

    def prepare(self, shards: Iterable[int], *, rank: int = 0) -> None:
        """Fetch and check the shards this process reads (see `ShardStore.prepare`)."""
        shards = sorted(set(shards))
        size = self.store.prepare(shards)
        logger.info("rank %d reads %d of %d shard(s) (%.1f MiB) from %s", rank, len(shards),
                    len(self.store.index.shards), size / 2**20, self.store.folder)


def _check_matches(cfg: Any, split: str, index: Any, location: str) -> None:
    if index.split != split:
        raise UsageError(f"--shards {location} holds the {index.split} split, this run needs "
                         f"the {split} split: make it with tool/make_shards.py --split {split}")
    if index.dataset != cfg.dataset:
        raise UsageError(f"--shards {location} holds {index.dataset}, not --dataset "
                         f"{cfg.dataset}: add --dataset {index.dataset}")
    where = f"{location}/{INDEX_NAME}"
    if cfg.dataset in PROTOCOLS:  # NTU's split is its protocol; --subset is not read
        packed = _packed_protocol(index, where)
        wanted = cfg.get("protocol") or DEFAULT_PROTOCOL
        if packed != wanted:
            raise UsageError(f"{where}: protocol {packed}, this run's --protocol {wanted}; use "
                             f"--protocol {packed}, or make the shards with --protocol {wanted}")
    elif index.subset != str(cfg.subset):
        raise UsageError(f"{where}: subset {index.subset}, this run's --subset {cfg.subset}; use "
                         f"--subset {index.subset}, or make the shards with --subset {cfg.subset}")


def _packed_protocol(index: Any, where: str) -> str:
    """The NTU protocol the shards were packed with; an index written before the protocol was
    recorded holds none, and such shards were packed with the default (logged)."""
    if index.protocol is not None:
        return index.protocol
    logger.info("%s records no protocol (an older index): taken as %s, the default", where,
                DEFAULT_PROTOCOL)
    return DEFAULT_PROTOCOL
