"""Kinetics (Kinetics50 / Kinetics400) frames with the kinetics-skeleton OpenPose poses.

Layout under `<data_dir>/Kinetics/data/`:
    Kinetics{subset}_{train,val}.json            COCO layout; images: seq_name, file_name,
                                                 height, width, frame_num; annotations:
                                                 image_id, action_label, action_name
    frames/{train_256,val_256}/{seq_name}/{file_name}/%06d.jpg
    kinetics-skeleton/kinetics_{train,val}_label.json   {video: {has_skeleton, label, label_index}}
    kinetics-skeleton/kinetics_{train,val}/{video}.json {"data": [{"frame_index": n (from 1),
                                                 "skeleton": [{"pose": [x0, y0, ...] in [0, 1],
                                                               "score": [s0, ...]}]}]}
The 'test' split reads the 'val' files.
"""
from __future__ import annotations

import functools
import json
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from data.joint_sets import OPENPOSE_18
from data.video_pose_dataset import Record, VideoPoseDataset, load_coco_videos, stack_people

PeopleTable = Dict[int, Tuple[np.ndarray, np.ndarray]]


def skeleton_key(file_name: str, skeleton_labels: Mapping[str, Any]) -> Optional[str]:
    """Key of a video in the kinetics-skeleton label file.

    Train frame folders carry a `_<start>_<end>` suffix (`abc_def_000010_000020`) that the
    skeleton release does not; the name is tried as-is first, then without its last two
    `_`-separated parts (YouTube ids may themselves contain `_`). None when neither is there.
    """
    if file_name in skeleton_labels:
        return file_name
    parts = file_name.rsplit("_", 2)
    if len(parts) == 3 and parts[0] in skeleton_labels:
        return parts[0]
    return None


@functools.lru_cache(maxsize=64)
def read_kinetics_skeleton(path: str, joint_num: int = OPENPOSE_18.joint_num) -> PeopleTable:
    """Parse a kinetics-skeleton file into `{frame_index (1-based): (coords, scores)}`.

    coords `(P, J, 2)` are (x, y) normalised to [0, 1], scores `(P, J)`; both read-only because
    the result is cached (workers re-read the same video across epochs).
    """
    with open(path) as f:
        content = json.load(f)
    people: Dict[int, list] = {}
    for entry in content.get("data", []):
        frame_index = int(entry["frame_index"])
        for person in entry.get("skeleton", []) or []:
            pose = np.asarray(person["pose"], dtype=np.float32).reshape(-1, 2)
            score = np.asarray(person["score"], dtype=np.float32).reshape(-1)
            if len(pose) != joint_num or len(score) != joint_num:
                raise ValueError(f"{path}: frame_index {frame_index} has a person with "
                                 f"{len(pose)} joints / {len(score)} scores, expected {joint_num}")
            people.setdefault(frame_index, []).append((pose, score))
    table: PeopleTable = {}
    for frame_index, persons in people.items():
        coords = np.stack([p for p, _ in persons])
        scores = np.stack([s for _, s in persons])
        coords.setflags(write=False)
        scores.setflags(write=False)
        table[frame_index] = (coords, scores)
    return table


class Kinetics(VideoPoseDataset):
    """Kinetics{cfg.subset} 'train' or 'test' (= the val files); see the module docstring.

    Skipped (and counted in `skipped`): 'too_short' videos, 'no_skeleton_label' (not in the
    label file), 'has_skeleton_false', 'missing_skeleton_file'.
    """

    joint_set = OPENPOSE_18

    def __init__(self, cfg: Any, split: str) -> None:
        super().__init__(cfg, split)
        part = "train" if split == "train" else "val"
        self.root = osp.join(cfg.data_dir, "Kinetics", "data")
        ann_path = osp.join(self.root, f"Kinetics{cfg.subset}_{part}.json")
        frame_root = osp.join(self.root, "frames", f"{part}_256")
        skeleton_root = osp.join(self.root, "kinetics-skeleton")
        with open(osp.join(skeleton_root, f"kinetics_{part}_label.json")) as f:
            skeleton_labels = json.load(f)
        skeleton_dir = osp.join(skeleton_root, f"kinetics_{part}")

        videos, categories = load_coco_videos(ann_path)
        labels: List[int] = []
        for image, label, frame_num in self.usable_videos(videos, labels):
            key = skeleton_key(str(image["file_name"]), skeleton_labels)
            if key is None:
                self.skip("no_skeleton_label")
                continue
            if not skeleton_labels[key].get("has_skeleton", False):
                self.skip("has_skeleton_false")
                continue
            skeleton_path = osp.join(skeleton_dir, f"{key}.json")
            if not osp.isfile(skeleton_path):
                self.skip("missing_skeleton_file")
                continue
            frame_dir = osp.join(frame_root, str(image["seq_name"]), str(image["file_name"]))
            self.add_record(image, label, frame_num, frame_dir, skeleton_path=skeleton_path)
        self.finish_loading(ann_path, categories, labels)

    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames; frame k is `frame_index == k + 1` in the skeleton file
        (the original looked up k itself: a known defect). Returns `(F, P, J, 2)` coords in
        resized pixels (`x * W`, `y * H`) and `(F, P, J)` scores."""
        table = read_kinetics_skeleton(record["skeleton_path"], self.joint_set.joint_num)
        scale = np.array([resized_hw[1], resized_hw[0]], dtype=np.float32)
        per_frame = []
        for k in frame_indices:
            entry = table.get(k + 1)
            per_frame.append(None if entry is None else (entry[0] * scale, entry[1]))
        return stack_people(per_frame, self.joint_set.joint_num)
