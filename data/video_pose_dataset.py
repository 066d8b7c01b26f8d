"""What the Kinetics, Mimetics and NTU loaders share: clip sampling, frame reading and transforms.

A subclass only reads its annotation files into `self.records` (through `keep_length` and
`finish_loading`) and implements `load_poses`; everything a dataset item goes through after
that (frame sampling, resize, crop/flip, top-k people, pose transform) lives here.

Item (a plain dict, so `torch.utils.data.default_collate` batches it):
    'video':       float32 (T, 3, in_h, in_w), RGB in [0, 1] (pixels / 255, no mean/std
                   normalisation: the released checkpoints expect this). Absent in pose_only.
    'pose_coords': float32 (Tp, K, J, 2), joint (x, y) on the heatmap grid.
    'pose_scores': float32 (Tp, K, J); padded people have score 0 (and coords 1.0).
    'label':       int64 scalar.
    'video_id':    int64 scalar, the COCO image id of the video.
with T = frame_per_seg, Tp = (T - 1) * pose_frame_factor + 1, K = top_k_pose, J = joints.

Randomness (train only): each item draws from its own `random.Random`, seeded from
`torch.initial_seed()` (different in every DataLoader worker, fixed by `torch.manual_seed`),
the item index, and one draw from torch's global generator. The draw is what makes a new epoch
see new crops when there are no workers (the main process's initial seed never changes); since
torch seeds that generator per worker as well, a seeded run repeats exactly. Test items use no
randomness at all (fixed start frames, centre crop).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import random
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from common.utils.frames import frame_path, load_frame
from common.utils.transforms import (
    PAD_COORD,
    center_crop_box,
    crop_affine,
    resize_shape,
    sample_train_crop,
    select_top_k,
    transform_pose,
    warp_frames,
)
from data.joint_sets import JointSet

logger = logging.getLogger("integral_action.data")

SPLITS = ("train", "test")
Record = Dict[str, Any]


# --------------------------------------------------------------------------- sampling
def clip_span(frame_per_seg: int, frame_interval: int) -> int:
    """Frames covered by one clip, first to last inclusive: `(T - 1) * interval + 1`."""
    return (frame_per_seg - 1) * frame_interval + 1


def train_start_frame(frame_num: int, span: int, rng: random.Random) -> int:
    """Uniform random start frame in `[0, frame_num - span]` (inclusive)."""
    return rng.randint(0, frame_num - span)


def test_start_frames(frame_num: int, span: int, n: int) -> List[int]:
    """Start frames of the n test clips of a video, evenly spread from the first frame on.

    `int((frame_num - 1 - (span - 1)) * t / (n - 1))` for t = 0..n-1 (the original's formula;
    the last clip ends on the last frame). The formula is undefined for n = 1: a single test
    clip is then taken from the middle of the video, `(frame_num - span) // 2`, for the same
    reason a single crop is the centre crop.
    """
    last_start = frame_num - 1 - (span - 1)
    if n == 1:
        return [last_start // 2]
    return [int(last_start * t / (n - 1)) for t in range(n)]


# The name starts with "test": keep pytest from collecting it when a test module imports it.
test_start_frames.__test__ = False  # type: ignore[attr-defined]


def clip_frame_indices(start: int, frame_per_seg: int, frame_interval: int) -> List[int]:
    """0-based frame numbers of the T image frames of a clip: `start + i * interval`."""
    return [start + i * frame_interval for i in range(frame_per_seg)]


def pose_frame_indices(
    start: int, frame_per_seg: int, frame_interval: int, pose_frame_factor: int
) -> List[int]:
    """0-based frame numbers of the pose frames: every `interval // factor` frames, over the
    same span as the image frames, `(T - 1) * factor + 1` of them (factor 1: the same frames)."""
    step = frame_interval // pose_frame_factor
    return [start + i * step for i in range((frame_per_seg - 1) * pose_frame_factor + 1)]


# --------------------------------------------------------------------------- annotations
def load_coco_videos(path: str) -> Tuple[List[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]],
                                         List[Dict[str, Any]]]:
    """Read a COCO-layout annotation file of videos with pycocotools.

    Returns `([(image, annotation or None), ...] in file order, categories)`; a video's
    annotation is the first one whose `image_id` is the image's id.
    """
    with open(path) as f:
        dataset = json.load(f)
    categories = list(dataset.get("categories") or [])
    indexed = dataset
    if categories and any("category_id" not in a for a in dataset.get("annotations", [])):
        # Our annotations carry `action_label`, not `category_id`; pycocotools' index of
        # categories would raise KeyError, and we do not need it.
        indexed = {k: v for k, v in dataset.items() if k != "categories"}
    coco = COCO()
    coco.dataset = indexed
    # pycocotools prints progress to stdout; keep the log the only channel.
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    videos = []
    for image in coco.dataset.get("images", []):
        anns = coco.imgToAnns.get(image["id"], [])
        videos.append((image, anns[0] if anns else None))
    return videos, categories


def resolve_class_num(
    cfg_class_num: Optional[int], categories: Sequence[Any], labels: Sequence[int]
) -> int:
    """`cfg.class_num` if set, else the number of categories of the annotation file when it has
    any, else the largest label + 1. Raises when a label does not fit the result."""
    if cfg_class_num is not None:
        class_num = int(cfg_class_num)
    elif categories:
        class_num = len(categories)
    elif labels:
        class_num = max(labels) + 1
    else:
        raise ValueError("cannot infer class_num: no categories and no labels")
    if labels and (max(labels) >= class_num or min(labels) < 0):
        raise ValueError(
            f"labels span [{min(labels)}, {max(labels)}] but class_num is {class_num}; "
            "set class_num in the config (--class_num)"
        )
    return class_num


def stack_people(
    per_frame: Sequence[Optional[Tuple[np.ndarray, np.ndarray]]], joint_num: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Stack per-frame people into fixed arrays for `load_poses`.

    Args:
        per_frame: for each frame, None (no people) or `(coords (P_f, J, 2), scores (P_f, J))`.
    Returns:
        `(coords (F, P, J, 2), scores (F, P, J))` float32 with P = max P_f; frames with fewer
        people are padded with coords 1.0 and score 0.
    """
    people = max([0] + [len(p[1]) for p in per_frame if p is not None])
    coords = np.full((len(per_frame), people, joint_num, 2), PAD_COORD, dtype=np.float32)
    scores = np.zeros((len(per_frame), people, joint_num), dtype=np.float32)
    for f, entry in enumerate(per_frame):
        if entry is None or len(entry[1]) == 0:
            continue
        count = len(entry[1])
        coords[f, :count] = entry[0]
        scores[f, :count] = entry[1]
    return coords, scores


# --------------------------------------------------------------------------- dataset
class VideoPoseDataset(Dataset):
    """Base of the three loaders. Subclasses set `joint_set`, fill `records`, call
    `finish_loading`, and implement `load_poses`.

    Attributes:
        records: one plain dict per usable video: video_id (int), frame_dir (str),
            frame_num (int), label (int), height, width (int, the annotation's original frame
            size) and whatever the subclass needs to find the poses.
        joint_set: the joint set of the poses (OpenPose-18 or NTU-25).
        class_num: number of classes (see `resolve_class_num`).
        split: 'train' or 'test'.
        skipped: reason -> number of videos left out.
    """

    joint_set: JointSet

    def __init__(self, cfg: Any, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.cfg = cfg
        self.split = split
        self.records: List[Record] = []
        self.skipped: Dict[str, int] = {}
        self.class_num: int = 0
        self.frame_per_seg = int(cfg.frame_per_seg)
        self.frame_interval = int(cfg.frame_interval)
        self.pose_frame_factor = int(cfg.pose_frame_factor)
        self.span = clip_span(self.frame_per_seg, self.frame_interval)
        self.test_infer_num = int(cfg.test_infer_num)
        self.with_video = cfg.mode != "pose_only"
        self.use_train_aug = split == "train" and bool(cfg.train_aug)

    # ---- loading helpers for subclasses
    def skip(self, reason: str) -> None:
        """Count one video left out for `reason`."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def keep_length(self, frame_num: int) -> bool:
        """False (and counted as 'too_short') when a clip does not fit in the video, i.e.
        `frame_num <= (frame_per_seg - 1) * frame_interval`."""
        if frame_num < self.span:
            self.skip("too_short")
            return False
        return True

    def usable_videos(self, videos: Sequence[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]],
                      labels: List[int]) -> Iterator[Tuple[Dict[str, Any], int, int]]:
        """Walk `load_coco_videos` output: yield `(image, label, frame_num)` of every annotated
        video long enough for a clip, counting the others as skipped. Every annotated label is
        appended to `labels` (they decide `class_num`, even for skipped videos)."""
        for image, ann in videos:
            if ann is None:
                self.skip("no_annotation")
                continue
            label = int(ann["action_label"])
            labels.append(label)
            frame_num = int(image["frame_num"])
            if self.keep_length(frame_num):
                yield image, label, frame_num

    def add_record(self, image: Dict[str, Any], label: int, frame_num: int, frame_dir: str,
                   **pose_source: Any) -> None:
        """Keep one video: the fields every loader shares plus where its poses are."""
        self.records.append({
            "video_id": int(image["id"]),
            "frame_dir": frame_dir,
            "frame_num": frame_num,
            "label": label,
            "height": int(image.get("height", 0)),
            "width": int(image.get("width", 0)),
            **pose_source,
        })

    def finish_loading(self, source: str, categories: Sequence[Any], labels: Sequence[int]) -> None:
        """Set `class_num` from the annotation file's categories/labels and log what was kept."""
        self.class_num = resolve_class_num(self.cfg.class_num, categories, labels)
        kept = len(self.records)
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        logger.info("%s (%s): %d videos, %d classes; skipped %s",
                    type(self).__name__, source, kept, self.class_num, skipped)
        if not kept:
            raise RuntimeError(f"{type(self).__name__}: no usable video in {source} "
                               f"(skipped: {skipped})")

    def pixel_poses_of_frames(self, frames: Sequence[Optional[Tuple[np.ndarray, np.ndarray]]],
                              frame_indices: Sequence[int], record: Record,
                              resized_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        """`load_poses` for sources holding one `(coords (P, J, 2), scores (P, J))` or None per
        0-based frame in the annotation's original pixels: picks the frames (none past the end
        of the list), scales `x / width * W`, `y / height * H`, and stacks them."""
        scale = np.array([resized_hw[1] / record["width"], resized_hw[0] / record["height"]],
                         dtype=np.float32)
        per_frame = []
        for k in frame_indices:
            entry = frames[k] if 0 <= k < len(frames) else None
            per_frame.append(None if entry is None else (entry[0] * scale, entry[1]))
        return stack_people(per_frame, self.joint_set.joint_num)

    # ---- to implement
    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of the given 0-based frames of a video.

        Returns `(coords (F, P, J, 2), scores (F, P, J))` with coords in pixels of the frame
        resized to `resized_hw = (H, W)`; P may differ between calls (see `stack_people`).
        """
        raise NotImplementedError

    # ---- items
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

    def item_rng(self, index: int) -> random.Random:
        """The item's random generator (see the module docstring)."""
        draw = int(torch.randint(0, 2**31 - 1, ()).item()) if self.split == "train" else 0
        # Bit-disjoint fields, so different (seed, draw, index) never give the same seed.
        return random.Random((torch.initial_seed() << 96) | (draw << 64) | index)

    def clip_start(self, record: Record, clip_index: int, rng: random.Random) -> int:
        """First frame of the item's clip: random for train, `test_start_frames` for test."""
        if self.split == "train":
            return train_start_frame(record["frame_num"], self.span, rng)
        return test_start_frames(record["frame_num"], self.span, self.test_infer_num)[clip_index]

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        cfg = self.cfg
        video_index, clip_index = self.locate(index)
        record = self.records[video_index]
        rng = self.item_rng(index)
        start = self.clip_start(record, clip_index, rng)
        image_frames = clip_frame_indices(start, self.frame_per_seg, self.frame_interval)
        pose_frames = pose_frame_indices(start, self.frame_per_seg, self.frame_interval,
                                         self.pose_frame_factor)

        if self.with_video:
            raw = [load_frame(frame_path(record["frame_dir"], k)) for k in image_frames]
        else:
            # pose_only: one frame tells the frame size; the pixels are not needed.
            raw = [load_frame(frame_path(record["frame_dir"], image_frames[0]))]
        # The frames of a video share one size; the first read one sets the resize target
        # (the annotation's height/width may describe the original video, not the JPEGs).
        resized_hw = resize_shape(raw[0].shape[0], raw[0].shape[1], cfg.video_shape)

        if self.use_train_aug:
            box, do_flip = sample_train_crop(resized_hw, cfg.input_img_shape, rng)
        else:
            box, do_flip = center_crop_box(resized_hw, cfg.input_img_shape), False
        matrix = crop_affine(box, do_flip, resized_hw[1], cfg.input_img_shape)

        item: Dict[str, torch.Tensor] = {}
        if self.with_video:
            resized = np.stack([
                cv2.resize(frame, (resized_hw[1], resized_hw[0]), interpolation=cv2.INTER_LINEAR)
                for frame in raw
            ])
            clip = warp_frames(resized, matrix, do_flip, cfg.input_img_shape)
            clip = clip.transpose(0, 3, 1, 2) / np.float32(255.0)
            item["video"] = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))

        coords, scores = self.load_poses(record, pose_frames, resized_hw)
        joint_num = self.joint_set.joint_num
        if coords.shape[0] != len(pose_frames) or coords.shape[2:] != (joint_num, 2) \
                or scores.shape != coords.shape[:3]:
            raise ValueError(f"{type(self).__name__}.load_poses returned shapes {coords.shape}, "
                             f"{scores.shape} for {len(pose_frames)} frames of {joint_num} joints")
        top = [select_top_k(coords[f], scores[f], int(cfg.top_k_pose)) for f in range(len(coords))]
        coords = np.stack([c for c, _ in top])
        scores = np.stack([s for _, s in top])
        coords, scores = transform_pose(
            coords, scores, matrix, do_flip, resized_hw[1], self.joint_set.flip_pairs,
            cfg.input_img_shape, cfg.input_hm_shape,
        )
        item["pose_coords"] = torch.from_numpy(coords)
        item["pose_scores"] = torch.from_numpy(scores)
        item["label"] = torch.tensor(int(record["label"]), dtype=torch.int64)
        item["video_id"] = torch.tensor(int(record["video_id"]), dtype=torch.int64)
        return item
