"""Mimetics (test only): mimed actions, labelled in the Kinetics label space.

Layout under `<data_dir>/Mimetics/data/`:
    Mimetics{subset}.json                        COCO layout; images: id, seq_name, file_name,
                                                 height, width, frame_num; annotations:
                                                 image_id, action_label
    frames/{seq_name}/{file_name}/%06d.jpg
    pose_results/{seq_name}/{file_name}/data.json {"pose": [...], "score": [...]}: pose[i]
        (0-based frame i) is null or (x, y, score) x 18 per person in original pixels, flat over
        all people or nested per person; score[i] one score per person.
Classes: those of Kinetics{subset} (50 or 400), else `--class_num` or the largest label + 1.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import DataError, UsageError
from common.report.problems import Problem
from data.file_cache import cached_per_file
from data.joint_sets import OPENPOSE_18
from data.Kinetics.Kinetics import KINETICS_CLASS_NUMS
from data.parsing import (int_field, name_field, number_array, read_json_file,
                          require_list_field, type_name)
from data.annotations import load_coco_videos
from data.poses import FramePeople, pixel_poses
from data.sources.jpeg_folder import require_folder
from data.video_list import Record
from data.video_pose_dataset import LoadingOptions, VideoPoseDataset


@cached_per_file(maxsize=64)
def read_mimetics_poses(path: str, joint_num: int = OPENPOSE_18.joint_num) -> List[FramePeople]:
    """Parse a Mimetics `data.json` into one entry per frame: None (no people) or
    `(coords (P, J, 2) in original pixels, scores (P, J))`, joint score = joint score x person
    score (NaN/inf as the file has them: the dataset zeroes such joints and reports them).
    Arrays are read-only (the result is cached).

    Raises:
        DataError: `<path>: ...` for a missing, empty or malformed file: no 'pose' list, a
            frame whose values are not numbers or not a multiple of `joint_num` x 3, person
            scores that do not match the people.
    """
    content = read_json_file(path, "Mimetics pose file")
    require_list_field(content, "pose", path, "Mimetics pose file")
    person_scores = content.get("score")
    if person_scores is None:
        person_scores = []
    if not isinstance(person_scores, list):
        raise DataError(f"{path}: 'score' is {type_name(person_scores)}, not a list")
    frames: List[FramePeople] = []
    for i, pose in enumerate(content["pose"]):
        if pose is None or pose == []:
            frames.append(None)
            continue
        joints = number_array(pose, path, f"pose[{i}]")
        if joints.size % (joint_num * 3):
            raise DataError(f"{path}: pose[{i}] has {joints.size} values, not a multiple of "
                            f"{joint_num} joints x 3 (x, y, score)")
        joints = joints.reshape(-1, joint_num, 3)
        people = len(joints)
        frame_scores = person_scores[i] if i < len(person_scores) else None
        if frame_scores is None:
            # No person scores: keep the joint scores as they are.
            person = np.ones(people, dtype=np.float32)
        else:
            person = number_array(frame_scores if isinstance(frame_scores, list)
                                  else [frame_scores], path, f"score[{i}]")
            if len(person) != people:
                raise DataError(f"{path}: pose[{i}] has {people} people but score[{i}] has "
                                f"{len(person)} person scores")
        coords = np.ascontiguousarray(joints[..., :2])
        with np.errstate(over="ignore", invalid="ignore"):
            scores = joints[..., 2] * person[:, None]
        coords.setflags(write=False)
        scores.setflags(write=False)
        frames.append((coords, scores))
    return frames


class Mimetics(VideoPoseDataset):
    """Mimetics{cfg.subset}, split 'test' only; see the module docstring.

    Left out at start-up (counted in `skipped`): by the protocol, 'too_short' videos; for bad
    data, 'missing_pose_file' and bad entries ('missing_field', 'bad_field': `height` and
    `width` are needed, the poses are in those pixels).
    """

    joint_set = OPENPOSE_18
    pose_key = "pose_path"

    def __init__(self, cfg: Any, split: str, *, loading: Optional[LoadingOptions] = None) -> None:
        if split != "test":
            raise UsageError(f"Mimetics is a test-only data set (got split {split!r}); train "
                             "on Kinetics and test on Mimetics")
        super().__init__(cfg, split, loading=loading)
        self.root = osp.join(cfg.data_dir, "Mimetics", "data")
        coco = load_coco_videos(osp.join(self.root, f"Mimetics{cfg.subset}.json"))
        require_folder(osp.join(self.root, "frames"), "frame folder")
        self.load_videos(coco)

    def own_class_count(self) -> Optional[Tuple[int, str]]:
        count = KINETICS_CLASS_NUMS.get(str(self.cfg.subset))
        if count is None:
            return None
        subset = self.cfg.subset
        return count, f"the Mimetics{subset} data set's own count, Kinetics{subset}'s classes"

    def video_fields(self, image: Dict[str, Any], where: str) -> Dict[str, Any]:
        return {"seq_name": name_field(image, "seq_name", where),
                "file_name": name_field(image, "file_name", where),
                "height": int_field(image, "height", where, minimum=1),
                "width": int_field(image, "width", where, minimum=1)}

    def video_source(self, video_id: int, fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        seq_name, file_name = fields["seq_name"], fields["file_name"]
        pose_path = osp.join(self.root, "pose_results", seq_name, file_name, "data.json")
        if not osp.isfile(pose_path):
            self.reject(Problem("missing_pose_file", pose_path,
                                f"video {video_id} has no pose file"))
            return None
        return {"frame_dir": osp.join(self.root, "frames", seq_name, file_name),
                "pose_path": pose_path}

    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames (`pose[k]` is frame k; frames past the list have none),
        coords scaled from the annotation's original size to the resized frame
        (`x / width * W`, `y / height * H`)."""
        frames = read_mimetics_poses(record["pose_path"], self.joint_set.joint_num)
        return pixel_poses(frames, frame_indices, original_hw=(record["height"], record["width"]),
                           resized_hw=resized_hw, joint_num=self.joint_set.joint_num)
