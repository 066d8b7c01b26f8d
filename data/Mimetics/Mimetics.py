"""Mimetics (test only): mimed actions, labelled in the Kinetics label space.

Layout under `<data_dir>/Mimetics/data/`:
    Mimetics{subset}.json                        COCO layout; images: seq_name, file_name,
                                                 height, width, frame_num; annotations:
                                                 image_id, action_label
    frames/{seq_name}/{file_name}/%06d.jpg
    pose_results/{seq_name}/{file_name}/data.json {"pose": [...], "score": [...]}: pose[i]
        (0-based frame i) is null or (x, y, score) x 18 per person in original pixels, flat over
        all people or nested per person; score[i] one score per person.
"""
from __future__ import annotations

import functools
import json
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from data.joint_sets import OPENPOSE_18
from data.video_pose_dataset import Record, VideoPoseDataset, load_coco_videos

FramePeople = Optional[Tuple[np.ndarray, np.ndarray]]


@functools.lru_cache(maxsize=64)
def read_mimetics_poses(path: str, joint_num: int = OPENPOSE_18.joint_num) -> List[FramePeople]:
    """Parse a Mimetics `data.json` into one entry per frame: None (no people) or
    `(coords (P, J, 2) in original pixels, scores (P, J))`, joint score = joint score x person
    score. Arrays are read-only (the result is cached)."""
    with open(path) as f:
        content = json.load(f)
    poses = content.get("pose", []) or []
    person_scores = content.get("score", []) or []
    frames: List[FramePeople] = []
    for i, pose in enumerate(poses):
        if pose is None or len(pose) == 0:
            frames.append(None)
            continue
        joints = np.asarray(pose, dtype=np.float32)
        if joints.size % (joint_num * 3):
            raise ValueError(f"{path}: frame {i} has {joints.size} pose values, "
                             f"not a multiple of {joint_num} x 3")
        joints = joints.reshape(-1, joint_num, 3)
        people = len(joints)
        frame_scores = person_scores[i] if i < len(person_scores) else None
        if frame_scores is None:
            # No person scores: keep the joint scores as they are.
            person = np.ones(people, dtype=np.float32)
        else:
            person = np.asarray(frame_scores, dtype=np.float32).reshape(-1)
            if len(person) != people:
                raise ValueError(f"{path}: frame {i} has {people} people but "
                                 f"{len(person)} person scores")
        coords = np.ascontiguousarray(joints[..., :2])
        scores = joints[..., 2] * person[:, None]
        coords.setflags(write=False)
        scores.setflags(write=False)
        frames.append((coords, scores))
    return frames


class Mimetics(VideoPoseDataset):
    """Mimetics{cfg.subset}, split 'test' only; see the module docstring.

    Skipped (and counted): 'too_short' videos and 'missing_pose_file'.
    """

    joint_set = OPENPOSE_18

    def __init__(self, cfg: Any, split: str) -> None:
        if split != "test":
            raise ValueError(f"Mimetics is a test-only data set (got split {split!r})")
        super().__init__(cfg, split)
        self.root = osp.join(cfg.data_dir, "Mimetics", "data")
        ann_path = osp.join(self.root, f"Mimetics{cfg.subset}.json")
        videos, categories = load_coco_videos(ann_path)
        labels: List[int] = []
        for image, label, frame_num in self.usable_videos(videos, labels):
            seq_name, file_name = str(image["seq_name"]), str(image["file_name"])
            pose_path = osp.join(self.root, "pose_results", seq_name, file_name, "data.json")
            if not osp.isfile(pose_path):
                self.skip("missing_pose_file")
                continue
            frame_dir = osp.join(self.root, "frames", seq_name, file_name)
            self.add_record(image, label, frame_num, frame_dir, pose_path=pose_path)
        self.finish_loading(ann_path, categories, labels)

    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames (`pose[k]` is frame k; frames past the list have none),
        coords scaled from the annotation's original size to the resized frame
        (`x / width * W`, `y / height * H`)."""
        frames = read_mimetics_poses(record["pose_path"], self.joint_set.joint_num)
        return self.pixel_poses_of_frames(frames, frame_indices, record, resized_hw)
