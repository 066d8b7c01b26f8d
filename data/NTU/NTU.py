"""NTU RGB+D 60 frames with the Kinect skeletons of the official release.

Layout under `<data_dir>/NTU/data/`:
    NTU_{train,test}.json                         COCO layout; images: setup_idx, file_name,
                                                  skeleton_file_name, height, width, frame_num;
                                                  annotations: image_id, action_label
    frames/nturgb+d_rgb_s{setup_idx}/{file_name}/%06d.jpg   setup_idx: an int is written as
                                                  %03d (s001), a string is used as it is
    nturgb+d_skeletons/{skeleton_file_name}       the official .skeleton text format

`.skeleton` format: frame count; per frame a body count; per body an info line (10 numbers),
a joint-count line, then per joint `x y z depthX depthY colorX colorY oW oX oY oZ state`.
The colour-camera coordinates (fields 5, 6) are in the original RGB frame's pixels.
"""
from __future__ import annotations

import functools
import math
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from data.joint_sets import NTU_25
from data.video_pose_dataset import Record, VideoPoseDataset, load_coco_videos

FramePeople = Optional[Tuple[np.ndarray, np.ndarray]]
COLOR_X_FIELD, COLOR_Y_FIELD = 5, 6


def setup_folder(setup_idx: Any) -> str:
    """Frame folder of a setup: `nturgb+d_rgb_s%03d` for an int, the string as-is otherwise."""
    if isinstance(setup_idx, (int, np.integer)) and not isinstance(setup_idx, bool):
        return f"nturgb+d_rgb_s{int(setup_idx):03d}"
    return f"nturgb+d_rgb_s{setup_idx}"


def _number(token: str) -> float:
    # Kinect exports write NaN in several spellings ("NaN", "-nan(ind)", "1.#QNAN").
    try:
        return float(token)
    except ValueError:
        if "nan" in token.lower():
            return math.nan
        raise


@functools.lru_cache(maxsize=64)
def read_ntu_skeleton(path: str, joint_num: int = NTU_25.joint_num) -> List[FramePeople]:
    """Parse a `.skeleton` file into one entry per frame it holds: None (no body) or
    `(coords (P, J, 2) colour pixels, scores (P, J))`; NaN joints get coords 0 and score 0,
    valid ones score 1. A file that ends early (fewer frames than its header, or than the RGB
    video) just yields fewer frames: the caller gives the missing frames no people.
    Arrays are read-only (the result is cached)."""
    with open(path) as f:
        lines = [line.split() for line in f]
    lines = [tokens for tokens in lines if tokens]  # tolerate blank lines
    frames: List[FramePeople] = []
    if not lines:
        return frames
    pos = 1
    frame_count = int(lines[0][0])
    for _ in range(frame_count):
        if pos >= len(lines):
            break
        body_count = int(lines[pos][0])
        pos += 1
        bodies = []
        complete = True
        for _ in range(body_count):
            # info line, joint-count line, then the joints
            if pos + 1 >= len(lines):
                complete = False
                break
            count = int(lines[pos + 1][0])
            if count != joint_num:
                raise ValueError(f"{path}: line {pos + 2}: {count} joints, expected {joint_num}")
            joint_lines = lines[pos + 2: pos + 2 + count]
            if len(joint_lines) < count:
                complete = False
                break
            pos += 2 + count
            coords = np.zeros((count, 2), dtype=np.float32)
            scores = np.zeros(count, dtype=np.float32)
            for j, tokens in enumerate(joint_lines):
                if len(tokens) <= COLOR_Y_FIELD:
                    raise ValueError(f"{path}: a joint line has {len(tokens)} fields")
                x, y = _number(tokens[COLOR_X_FIELD]), _number(tokens[COLOR_Y_FIELD])
                if math.isfinite(x) and math.isfinite(y):
                    coords[j] = (x, y)
                    scores[j] = 1.0
            bodies.append((coords, scores))
        if not complete:
            break  # truncated in the middle of a frame: drop that frame and stop
        if bodies:
            coords = np.stack([c for c, _ in bodies])
            scores = np.stack([s for _, s in bodies])
            coords.setflags(write=False)
            scores.setflags(write=False)
            frames.append((coords, scores))
        else:
            frames.append(None)
    return frames


class NTU(VideoPoseDataset):
    """NTU RGB+D 'train' or 'test'; see the module docstring.

    Skipped (and counted): 'too_short' videos and 'missing_skeleton_file'.
    """

    joint_set = NTU_25

    def __init__(self, cfg: Any, split: str) -> None:
        super().__init__(cfg, split)
        self.root = osp.join(cfg.data_dir, "NTU", "data")
        ann_path = osp.join(self.root, f"NTU_{split}.json")
        videos, categories = load_coco_videos(ann_path)
        labels: List[int] = []
        for image, label, frame_num in self.usable_videos(videos, labels):
            skeleton_path = osp.join(self.root, "nturgb+d_skeletons",
                                     str(image["skeleton_file_name"]))
            if not osp.isfile(skeleton_path):
                self.skip("missing_skeleton_file")
                continue
            frame_dir = osp.join(self.root, "frames", setup_folder(image["setup_idx"]),
                                 str(image["file_name"]))
            self.add_record(image, label, frame_num, frame_dir, skeleton_path=skeleton_path)
        self.finish_loading(ann_path, categories, labels)

    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames (skeleton frame k is RGB frame k; frames past the end of the
        skeleton file have no people: the original raised IndexError), coords scaled from the
        annotation's original size to the resized frame (`x / width * W`, `y / height * H`)."""
        frames = read_ntu_skeleton(record["skeleton_path"], self.joint_set.joint_num)
        return self.pixel_poses_of_frames(frames, frame_indices, record, resized_hw)
