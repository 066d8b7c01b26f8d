"""The dataset items of the loaders (Kinetics, Mimetics, NTU, Skeleton): one clip of a video each.

`VideoPoseDataset` composes the data layer: the usable videos (`data.video_list.VideoList`,
from the annotation file), the frames a clip takes (`data.sampling`), where the frames are read
from (a `data.sources.FrameSource`), the poses (the subclass's `load_poses`, made safe by
`data.poses.clip_poses`) and the clip's pixel and joint steps (a `data.pipeline.ClipPreset`);
`data.batch_pool.BatchWriter` writes a batch's clips into one batch tensor.
How items are made, never what they hold, is set once at construction by `LoadingOptions`.

Usable item (a plain dict; batch it with `data.collate.collate_clips`):
    'video':       float32 (T, 3, in_h, in_w), RGB in [0, 1] (pixels / 255, no mean/std
                   normalisation: the released checkpoints expect this). Absent in pose_only.
                   With `LoadingOptions.video_as_bytes`, a clip made only of whole pixels comes
                   as its uint8 values instead (`common.runtime.clip_pixels.video_as_float`
                   gives the same float32 clip; the collate and `move_batch` apply it).
    'pose_coords': float32 (Tp, K, J, 2), joint (x, y) on the heatmap grid, always finite.
    'pose_scores': float32 (Tp, K, J); padded people have score 0 (and coords 1.0).
    'label':       int64 scalar.
    'video_id':    int64 scalar, the COCO image id of the video.
    'problems':    list of `common.report.problems.Problem` (usually empty): a zeroed pose
                   (POSE_ZEROED) or zeroed joints (JOINTS_ZEROED) of this clip.
with T = frame_per_seg, Tp = (T - 1) * pose_frame_factor + 1, K = top_k_pose, J = joints.

Unusable item (bad data: a missing or corrupt frame; an unreadable pose file in pose_only):
    {'video_id': int64 scalar, 'clip_index': int, 'problems': [Problem(action=SKIPPED), ...]}
without 'label'. The dataset neither logs nor raises for bad data met in an item: the training
and test loops hand `batch['problems']` to a `common.report.problems.ProblemTally`, which warns,
counts and, with `--strict`, stops.

Randomness (train only) comes from each item's own generator (`data.sampling.item_rng`); test
items use none (fixed start frames, centre crop).
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from common.report.problems import SKIPPED, Problem
from common.stages import get_stage
from data.batch_pool import BatchWriter
from data.joint_sets import JointSet
from data.pipeline import ClipMaker, preset_for
from data.poses import clip_poses
from data.sampling import (clip_frame_indices, item_rng, pose_frame_indices, test_start_frames,
                           train_start_frame)
from data.sources import FrameError, FrameSource, JpegFolder
from data.sources.locate import detect_frames_from
from data.sources.video_file import VideoFile
from data.transforms import input_clip
from data.video_list import Record, VideoList

logger = logging.getLogger("integral_action.data")

Item = Dict[str, Any]
Key = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class LoadingOptions:
    """How a dataset makes its items; the clips' values never depend on it (with
    `video_as_bytes`, once made float).

    Attributes:
        frames: how JPEG frame folders are read (`JpegFolder`); used unless the data set's
            frames are video files (`cfg.frames_from`, see `VideoPoseDataset.frames`).
        make_clip: frames -> network input (`data.transforms.input_clip`).
        write_batches: `__getitems__` writes a batch's float32 clips straight into one batch
            tensor (off: each clip its own array, stacked by the collate).
        video_as_bytes: whole-pixel clips as uint8 (a consumer that makes them float itself,
            e.g. test.py's workers for a GPU: a quarter of the bytes cross from the worker).
    """

    frames: FrameSource = field(default_factory=JpegFolder)
    make_clip: ClipMaker = input_clip
    write_batches: bool = True
    video_as_bytes: bool = False


class VideoPoseDataset(VideoList, BatchWriter, Dataset):
    """Base of the loaders. Subclasses set `joint_set` and `pose_key`, implement
    `video_fields`, `video_source` (see `VideoList`) and `load_poses`, and end `__init__` with
    `load_videos(load_coco_videos(path))` (the annotation file read first, so that its absence
    is the first thing reported).

    Attributes (besides `VideoList`'s):
        joint_set: the joint set of the poses (OpenPose-18 or NTU-25).
        stage: the `common.stages.Stage` of `cfg.mode` (what the items must hold).
        loading: the `LoadingOptions`; `preset`: the split's `ClipPreset`.
        frames: the `FrameSource` the frames are read through: `loading.frames` for JPEG
            folders, a `VideoFile` for video files (`cfg.frames_from`; 'auto' decided at
            start-up by `choose_frame_source`).
    """

    joint_set: JointSet
    pose_key: str = "pose_path"

    def __init__(self, cfg: Any, split: str, *, loading: Optional[LoadingOptions] = None) -> None:
        super().__init__(cfg, split)
        self.loading = loading if loading is not None else LoadingOptions()
        self.stage = get_stage(cfg.mode)
        self.with_video = self.stage.needs_video
        self.frame_per_seg = int(cfg.frame_per_seg)
        self.frame_interval = int(cfg.frame_interval)
        self.pose_frame_factor = int(cfg.pose_frame_factor)
        self.test_infer_num = int(cfg.test_infer_num)
        self.frames: FrameSource = self.loading.frames
        self.preset = preset_for(cfg, split, flip_pairs=self.joint_set.flip_pairs,
                                 make_clip=self.loading.make_clip,
                                 video_as_bytes=self.loading.video_as_bytes)

    def choose_frame_source(self) -> None:
        """Read the frames from video files or JPEG folders, as `cfg.frames_from` says
        ('auto': `detect_frames_from` on the records' frame folders); one log line says which,
        and why."""
        frames_from = self.cfg.get("frames_from", "auto")
        if frames_from == "auto":
            frames_from, note = detect_frames_from([r["frame_dir"] for r in self.records])
        else:
            note = f"frames from {'video files' if frames_from == 'video' else 'JPEG folders'} " \
                   f"(--frames_from {frames_from})"
        if frames_from == "video":
            self.frames = VideoFile(short_side=int(self.cfg.get("video_short_side", 256)),
                                    cache_size=int(self.cfg.get("video_cache_size", 8)))
        logger.info("%s frames (%s): %s", type(self).__name__, self.split, note)

    def load_poses(self, record: Record, frame_indices: Sequence[int],
                   resized_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of the given 0-based frames of a video.

        Returns `(coords (F, P, J, 2), scores (F, P, J))` with coords in pixels of the frame
        resized to `resized_hw = (H, W)` (NaN/inf as the file has them: the item zeroes them);
        P may differ between calls (see `data.poses.stack_people`). Raises `DataError` naming
        the pose file when it cannot be parsed.
        """
        raise NotImplementedError

    def stored_frame_size(self, record: Record, frame_index: int) -> Tuple[int, int]:
        """`(H, W)` of a video's stored frames where the pixels are not read (pose_only):
        one frame of the video decoded, through the chosen source (`self.frames`: a video
        file's frames are not in a JPEG folder). A loader whose pose file says the size
        overrides it."""
        return self.frames.frame_size(record["frame_dir"], frame_index)

    def __len__(self) -> int:
        if self.split == "test":
            return len(self.records) * self.test_infer_num
        return len(self.records)

    def locate(self, index: int) -> Tuple[int, int]:
        """Item index -> (video index, clip index); test item i is clip i % n of video i // n."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        if self.split == "test":
            return divmod(index, self.test_infer_num)
        return index, 0

    def item_rng(self, index: int, stream: Optional[int] = None) -> random.Random:
        """The item's random generator (`data.sampling.item_rng`)."""
        return item_rng(index, stream=stream, train=self.split == "train")

    def clip_start(self, record: Record, clip_index: int, rng: random.Random) -> int:
        """First frame of the item's clip: random for train, `test_start_frames` for test."""
        if self.split == "train":
            return train_start_frame(record["frame_num"], self.span, rng)
        return test_start_frames(record["frame_num"], self.span, self.test_infer_num)[clip_index]

    @property
    def writes_batches(self) -> bool:
        """Whether `__getitems__` writes a batch's clips into one batch tensor (`BatchWriter`):
        float32 clips (not with `video_as_bytes`, not in pose_only), unless `write_batches` is
        off."""
        return self.loading.write_batches and self.with_video and not self.loading.video_as_bytes

    def batch_clip_shape(self, batch_size: int) -> Tuple[int, int, int, int, int]:
        """`(B, T, 3, h, w)` of a batch of `batch_size` clips."""
        height, width = self.cfg.input_img_shape
        return (int(batch_size), self.frame_per_seg, 3, int(height), int(width))

    def __getitem__(self, key: Key) -> Item:
        """Item `key`: an index, or `(index, stream)` from `data.samplers.TrainSampler`."""
        return self._item(key)

    def _item(self, key: Key, video_out: Optional[torch.Tensor] = None) -> Item:
        """Item `key`; its clip written into `video_out` when given (`BatchWriter`)."""
        index, stream = key if isinstance(key, tuple) else (key, None)
        video_index, clip_index = self.locate(index)
        record = self.records[video_index]
        problems: List[Problem] = []
        try:
            item = self._clip(record, self.item_rng(index, stream), clip_index, problems,
                              video_out)
        except FrameError as err:
            problems.append(Problem(err.reason, err.path, err.detail, SKIPPED))
            item = None
        if item is None:
            return {"video_id": torch.tensor(int(record["video_id"]), dtype=torch.int64),
                    "clip_index": clip_index, "problems": problems}
        item["problems"] = problems
        return item

    def _clip(self, record: Record, rng: random.Random, clip_index: int,
              problems: List[Problem], video_out: Optional[torch.Tensor]) -> Optional[Item]:
        """The usable item, or None when its problems (appended) leave it out."""
        start = self.clip_start(record, clip_index, rng)
        image_frames = clip_frame_indices(start, self.frame_per_seg, self.frame_interval)
        pose_frames = pose_frame_indices(start, self.frame_per_seg, self.frame_interval,
                                         self.pose_frame_factor)
        source = self.frames
        if self.with_video:
            # Decoded in order, before the poses: the first bad frame is the item's problem.
            # `fast_decode` (off by default) lets the decoder shrink large frames: other pixels.
            frames, stored_hw = source.read(record["frame_dir"], image_frames, fast_decode_shape=(
                self.cfg.video_shape if self.cfg.fast_decode else None))
        else:  # pose_only: the frame size is enough; the pixels are not needed
            stored_hw = self.stored_frame_size(record, image_frames[0])
        # The frames of a video share one size; the first read one sets the resize target
        # (the annotation's height/width may describe the original video, not the JPEGs).
        resized_hw = self.preset.resize(stored_hw)
        poses = clip_poses(lambda: self.load_poses(record, pose_frames, resized_hw),
                           path=record[self.pose_key], frame_indices=pose_frames,
                           resized_hw=resized_hw, joint_num=self.joint_set.joint_num,
                           required=not self.with_video, report=self.stage.needs_pose,
                           problems=problems, loader_name=type(self).__name__)
        if poses is None:
            return None
        crop = self.preset.clip_crop(resized_hw, rng)
        item: Item = {}
        if self.with_video:
            item["video"] = self.preset.video(frames, crop, out=video_out)
        item["pose_coords"], item["pose_scores"] = self.preset.poses(*poses, crop)
        item["label"] = torch.tensor(int(record["label"]), dtype=torch.int64)
        item["video_id"] = torch.tensor(int(record["video_id"]), dtype=torch.int64)
        return item
