"""Test-time clips of one video held in memory, made exactly as the test set makes them.

`main/test.py` reads a video's frames from JPEG files and its poses from a pose file, one clip
per item (`data.video_pose_dataset.VideoPoseDataset`). The demo has the frames already
decoded and the poses in a table; `sample_test_clips` takes them through the data layer's own
functions, in the same order (`data.sampling`: start frames, frame and pose indices;
`data.poses`: joint clean-up; `data.pipeline`'s eval preset: resize, centre crop, top-k people,
pose transform), so that the same frames and poses give the same tensors as a test-set item. `tests/test_demo.py` checks that against the Kinetics loader.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from common.errors import DataError
from data.sources.jpeg_folder import frame_path, load_frame
from data.pipeline import ClipCrop, eval_preset
from data.transforms import center_crop_box, crop_affine, resize_shape
from data.joint_sets import OPENPOSE_18, JointSet
from data.poses import normalized_poses, sanitize_joints
from data.sampling import clip_frame_indices, clip_span, pose_frame_indices, test_start_frames

# frame_index (1-based) -> (coords (P, J, 2) normalised to [0, 1], scores (P, J)): what
# `data.Kinetics.Kinetics.read_kinetics_skeleton` returns for a kinetics-skeleton file.
PoseTable = Mapping[int, Tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ClipPlan:
    """Which frames one test clip uses (0-based frame numbers).

    Attributes:
        index: the clip's number among the video's test clips.
        start: its first frame.
        image_frames: the T frames of the RGB stream.
        pose_frames: the Tp frames of the pose stream.
    """

    index: int
    start: int
    image_frames: Tuple[int, ...]
    pose_frames: Tuple[int, ...]


@dataclass(frozen=True)
class ClipGeometry:
    """Where a video's clips come from in its frames (the same for every test clip).

    Attributes:
        frame_hw: `(H, W)` of the frames given.
        resized_hw: `(H, W)` they are resized to (`cfg.video_shape`).
        box: the centre crop `(xmin, ymin, w, h)` in resized-frame pixels.
        matrix: `(2, 3)` float32 map from resized-frame pixels to the network input.
    """

    frame_hw: Tuple[int, int]
    resized_hw: Tuple[int, int]
    box: Tuple[int, int, int, int]
    matrix: np.ndarray

    def box_in_frame(self) -> Tuple[float, float, float, float]:
        """The crop box in pixels of the frames given, `(xmin, ymin, w, h)` (for drawing)."""
        sy = self.frame_hw[0] / self.resized_hw[0]
        sx = self.frame_hw[1] / self.resized_hw[1]
        xmin, ymin, w, h = self.box
        return xmin * sx, ymin * sy, w * sx, h * sy


def plan_test_clips(frame_num: int, cfg: Any) -> List[ClipPlan]:
    """The `cfg.test_infer_num` test clips of a video of `frame_num` frames.

    Raises:
        DataError: the video is shorter than one clip (`(frame_per_seg - 1) * frame_interval
            + 1` frames); the test set leaves such videos out ('too_short').
    """
    span = clip_span(int(cfg.frame_per_seg), int(cfg.frame_interval))
    if frame_num < span:
        raise DataError(f"the video has {frame_num} frames, fewer than one clip needs ({span}: "
                        f"{cfg.frame_per_seg} frames every {cfg.frame_interval}th, the "
                        "snapshot's frame_per_seg and frame_interval); the test set leaves such "
                        "videos out")
    plans = []
    for index, start in enumerate(test_start_frames(frame_num, span, int(cfg.test_infer_num))):
        plans.append(ClipPlan(
            index=index, start=start,
            image_frames=tuple(clip_frame_indices(start, int(cfg.frame_per_seg),
                                                  int(cfg.frame_interval))),
            pose_frames=tuple(pose_frame_indices(start, int(cfg.frame_per_seg),
                                                 int(cfg.frame_interval),
                                                 int(cfg.pose_frame_factor)))))
    return plans


def centre_crop_geometry(frame_hw: Tuple[int, int], cfg: Any) -> ClipGeometry:
    """Resize and centre crop of a test clip whose frames are `frame_hw = (H, W)`."""
    resized_hw = resize_shape(int(frame_hw[0]), int(frame_hw[1]), cfg.video_shape)
    box = center_crop_box(resized_hw, cfg.input_img_shape)
    matrix = crop_affine(box, False, resized_hw[1], cfg.input_img_shape)
    return ClipGeometry(frame_hw=(int(frame_hw[0]), int(frame_hw[1])), resized_hw=resized_hw,
                        box=tuple(int(v) for v in box), matrix=matrix)


def make_test_clip(frames: Sequence[np.ndarray], table: PoseTable, plan: ClipPlan,
                   geometry: ClipGeometry, cfg: Any, *, joint_set: JointSet = OPENPOSE_18,
                   with_video: bool = True) -> Dict[str, torch.Tensor]:
    """One test clip, as a test-set item holds it.

    Args:
        frames: the video's frames, `(H, W, 3)` RGB, uint8 or float32 in [0, 255].
        table: its poses (see `PoseTable`); frames without an entry have nobody.
        plan, geometry: from `plan_test_clips` and `centre_crop_geometry`.
        with_video: add 'video' (False for pose_only, which never looks at the pixels).
    Returns:
        'video' (T, 3, in_h, in_w) in [0, 1] (with `with_video`), 'pose_coords'
        (Tp, K, J, 2) on the heatmap grid, 'pose_scores' (Tp, K, J).
    """
    preset = eval_preset(cfg, flip_pairs=joint_set.flip_pairs)
    crop = ClipCrop(geometry.resized_hw, geometry.box, False, geometry.matrix)
    # As `Kinetics.load_poses` reads them, then made safe as a dataset item makes them.
    coords, scores = normalized_poses(table, plan.pose_frames, resized_hw=crop.resized_hw,
                                      joint_num=joint_set.joint_num)
    coords, scores, _, _ = sanitize_joints(coords, scores, crop.resized_hw)
    item: Dict[str, torch.Tensor] = {}
    if with_video:
        item["video"] = preset.video([frames[k] for k in plan.image_frames], crop)
    item["pose_coords"], item["pose_scores"] = preset.poses(coords, scores, crop)
    return item


def sample_test_clips(frames: Sequence[np.ndarray], table: PoseTable, cfg: Any, *,
                      joint_set: JointSet = OPENPOSE_18, with_video: bool = True
                      ) -> Tuple[List[Dict[str, torch.Tensor]], List[ClipPlan], ClipGeometry]:
    """All test clips of a video: `(items, plans, geometry)` (see `make_test_clip`)."""
    plans = plan_test_clips(len(frames), cfg)
    geometry = centre_crop_geometry(np.asarray(frames[0]).shape[:2], cfg)
    items = [make_test_clip(frames, table, plan, geometry, cfg, joint_set=joint_set,
                            with_video=with_video) for plan in plans]
    return items, plans, geometry


def read_frame_folder(frame_dir: str) -> np.ndarray:
    """The frames of an extracted video (`000001.jpg, 000002.jpg, ...`, as
    `tool/video2image.py` writes them and the loaders read them), `(N, H, W, 3)` uint8 RGB.

    Raises:
        DataError: no `000001.jpg` in the folder, or a frame that cannot be read.
    """
    if not osp.isfile(frame_path(frame_dir, 0)):
        raise DataError(f"{frame_dir}: no frames ({osp.basename(frame_path(frame_dir, 0))} "
                        "not found); extract them with tool/video2image.py")
    frames = []
    while osp.isfile(frame_path(frame_dir, len(frames))):
        # load_frame decodes as the loaders do; a JPEG's pixels are integers, so uint8 keeps
        # them exactly (and takes a quarter of the memory).
        frames.append(load_frame(frame_path(frame_dir, len(frames))).astype(np.uint8))
    return np.stack(frames)
