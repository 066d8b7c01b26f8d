"""Kinetics (Kinetics50 / Kinetics400) frames with the kinetics-skeleton OpenPose poses.

Layout under `<data_dir>/Kinetics/data/`:
    Kinetics{subset}_{train,val}.json            COCO layout; images: id, seq_name, file_name,
                                                 frame_num (height, width unused); annotations:
                                                 image_id, action_label, action_name
    frames/{train_256,val_256}/{seq_name}/{file_name}/%06d.jpg
    kinetics-skeleton/kinetics_{train,val}_label.json   {video: {has_skeleton, label, label_index}}
    kinetics-skeleton/kinetics_{train,val}/{video}.json {"data": [{"frame_index": n (from 1;
                                                 from 0 also accepted: decided at start-up),
                                                 "skeleton": [{"pose": [x0, y0, ...] in [0, 1],
                                                               "score": [s0, ...]}]}]}
The 'test' split reads the 'val' files. Classes: 50 for subset '50', 400 for '400', else
`--class_num` or the largest label + 1.
"""
from __future__ import annotations

import logging
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from common.errors import DataError
from common.report.problems import Problem
from data.file_cache import cached_per_file
from data.joint_sets import OPENPOSE_18
from data.parsing import (FieldError, int_value, name_field, number_array, read_json_file,
                          require_list_field, short_repr, type_name)
from data.annotations import load_coco_videos
from data.poses import normalized_poses
from data.sources.jpeg_folder import require_folder
from data.video_list import Record
from data.video_pose_dataset import LoadingOptions, VideoPoseDataset

logger = logging.getLogger("integral_action.data")

# The Kinetics subsets' own class counts.
KINETICS_CLASS_NUMS = {"50": 50, "400": 400}
# Pose files read at start-up to decide whether the data set counts frame_index from 0 or 1.
FRAME_BASE_SAMPLE = 8


class PeopleTable(dict):
    """`{frame_index (int): (coords (P, J, 2), scores (P, J))}` of the frames with people in a
    kinetics-skeleton file, and `first_index`: the smallest `frame_index` of its entries, with
    people or not (None for a file without entries); 0 marks a file counting frames from 0."""

    first_index: Optional[int] = None


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


def read_kinetics_labels(path: str) -> Dict[str, Any]:
    """The kinetics-skeleton label file: `{video: {has_skeleton, label, label_index}}`.

    The entries are checked where they are used (`Kinetics.video_source`).

    Raises:
        DataError: `<path>: ...` when the file is missing, not JSON or not an object.
    """
    content = read_json_file(path, "kinetics-skeleton label file")
    if not isinstance(content, dict):
        raise DataError(f"{path}: the kinetics-skeleton label file is {type_name(content)}, "
                        "not an object {video: {has_skeleton, label, label_index}}")
    return content


@cached_per_file(maxsize=64)
def read_kinetics_skeleton(path: str, joint_num: int = OPENPOSE_18.joint_num) -> PeopleTable:
    """Parse a kinetics-skeleton file into `{frame_index: (coords, scores)}` (a `PeopleTable`).

    coords `(P, J, 2)` are (x, y) normalised to [0, 1], scores `(P, J)`, as the file has them
    (NaN/inf included: the dataset zeroes such joints and reports them); both read-only
    because the result is cached (workers re-read the same video across epochs).

    Raises:
        DataError: `<path>: ...` for a missing, empty or malformed file (naming the entry:
            `data[i]`, its frame_index and the person), or a person without `joint_num` joints.
    """
    what = "kinetics-skeleton pose file"
    entries = require_list_field(read_json_file(path, what), "data", path, what)
    people: Dict[int, list] = {}
    table = PeopleTable()
    for i, entry in enumerate(entries):
        where = f"data[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"{path}: {where} is {type_name(entry)}, not an object")
        frame_index = int_value(entry.get("frame_index"))
        if frame_index is None:
            raise DataError(f"{path}: {where}: 'frame_index' is "
                            f"{short_repr(entry.get('frame_index'))}, not an integer")
        where += f" (frame_index {frame_index})"
        if table.first_index is None or frame_index < table.first_index:
            table.first_index = frame_index
        skeleton = entry.get("skeleton")
        if skeleton is None:
            continue  # no people in this frame
        if not isinstance(skeleton, list):
            raise DataError(f"{path}: {where}: 'skeleton' is {type_name(skeleton)}, not a list")
        for p, person in enumerate(skeleton):
            who = f"{where}, person {p}"
            if not isinstance(person, dict):
                raise DataError(f"{path}: {who} is {type_name(person)}, not an object")
            pose = number_array(person.get("pose"), path, f"{who}: 'pose'")
            score = number_array(person.get("score"), path, f"{who}: 'score'")
            if len(pose) != 2 * joint_num or len(score) != joint_num:
                raise DataError(f"{path}: {who} has {len(pose)} pose values and {len(score)} "
                                f"scores, expected {2 * joint_num} and {joint_num} "
                                f"({joint_num} joints)")
            people.setdefault(frame_index, []).append((pose.reshape(joint_num, 2), score))
    for frame_index, persons in people.items():
        coords = np.stack([p for p, _ in persons])
        scores = np.stack([s for _, s in persons])
        coords.setflags(write=False)
        scores.setflags(write=False)
        table[frame_index] = (coords, scores)
    return table


def decide_frame_base(paths: Sequence[str], joint_num: int = OPENPOSE_18.joint_num,
                      sample: int = FRAME_BASE_SAMPLE) -> Tuple[int, str]:
    """Whether a data set's kinetics-skeleton files count `frame_index` from 0 or from 1 (the
    format's convention), decided from the first `sample` of its pose files `paths` that can
    be read: 0 when any of them has a frame_index 0, else 1.

    The files are read uncached (an item reads its own file again when it needs it); an
    unreadable one is passed over here and reported by the item that reads it.
    Returns:
        `(0 or 1, the decision and the files it was made from, one line)`.
    """
    read, zero = [], []
    for path in paths[: 2 * sample]:
        try:
            table = read_kinetics_skeleton.__wrapped__(path, joint_num)
        except DataError:
            continue
        read.append(path)
        if table.first_index == 0:
            zero.append(path)
        if len(read) == sample:
            break
    if zero:
        listed = ", ".join(zero[:3]) + (f" and {len(zero) - 3} more" if len(zero) > 3 else "")
        return 0, (f"frame_index counts from 0: frame k is frame_index k (frame_index 0 "
                   f"in {len(zero)} of the {len(read)} pose files read at start-up: {listed})")
    if not read:
        return 1, ("frame_index counts from 1 (the kinetics-skeleton convention; none "
                   f"of the {min(len(paths), 2 * sample)} pose files tried at start-up could be "
                   "read)")
    files = read[0] if len(read) == 1 else f"{read[0]} ... {read[-1]}"
    return 1, (f"frame_index counts from 1 (the kinetics-skeleton convention): frame k "
               f"is frame_index k + 1 (no frame_index 0 in the {len(read)} pose files read at "
               f"start-up: {files})")


class Kinetics(VideoPoseDataset):
    """Kinetics{cfg.subset} 'train' or 'test' (= the val files); see the module docstring.

    Left out at start-up (counted in `skipped`): by the protocol, 'too_short' videos,
    'no_skeleton_label' (not in the label file) and 'has_skeleton_false'; for bad data,
    'missing_skeleton_file' and bad entries of either file ('missing_field', 'bad_field').

    Raises:
        DataError: the annotation file or the label file cannot be used, or no video can.
    """

    joint_set = OPENPOSE_18
    pose_key = "skeleton_path"
    # frame_index of 0-based frame 0 in the pose files (`decide_frame_base`, at start-up),
    # and how many pose files that decision reads.
    frame_base = 1
    frame_base_sample = FRAME_BASE_SAMPLE

    def __init__(self, cfg: Any, split: str, *, loading: Optional[LoadingOptions] = None) -> None:
        super().__init__(cfg, split, loading=loading)
        part = "train" if split == "train" else "val"
        self.root = osp.join(cfg.data_dir, "Kinetics", "data")
        ann_path = osp.join(self.root, f"Kinetics{cfg.subset}_{part}.json")
        self.frame_root = osp.join(self.root, "frames", f"{part}_256")
        skeleton_root = osp.join(self.root, "kinetics-skeleton")
        self.label_path = osp.join(skeleton_root, f"kinetics_{part}_label.json")
        self.skeleton_dir = osp.join(skeleton_root, f"kinetics_{part}")
        coco = load_coco_videos(ann_path)
        self.skeleton_labels = read_kinetics_labels(self.label_path)
        require_folder(self.frame_root, "frame folder")
        self.load_videos(coco)

    def own_class_count(self) -> Optional[Tuple[int, str]]:
        count = KINETICS_CLASS_NUMS.get(str(self.cfg.subset))
        if count is None:
            return None
        return count, f"the Kinetics{self.cfg.subset} data set's own count"

    def inspect_records(self) -> None:
        """Decide, once, how the pose files count frames (`decide_frame_base`), and log it."""
        self.frame_base, decision = decide_frame_base(
            [r["skeleton_path"] for r in self.records], self.joint_set.joint_num,
            self.frame_base_sample)
        logger.info("%s pose files (%s): %s", type(self).__name__, self.split, decision)

    def video_fields(self, image: Dict[str, Any], where: str) -> Dict[str, Any]:
        fields = {"seq_name": name_field(image, "seq_name", where),
                  "file_name": name_field(image, "file_name", where)}
        # Unused (the poses are normalised); kept in the record when present.
        for key in ("height", "width"):
            value = int_value(image.get(key))
            fields[key] = value if value is not None and value > 0 else 0
        return fields

    def video_source(self, video_id: int, fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        key = skeleton_key(fields["file_name"], self.skeleton_labels)
        if key is None:
            self.exclude("no_skeleton_label")
            return None
        entry = self.skeleton_labels[key]
        where = f"video {video_id}: entry {key!r}"
        if not isinstance(entry, dict):
            raise FieldError("bad_field", f"{where} is {type_name(entry)}, not an object",
                             self.label_path)
        if entry.get("has_skeleton") is None:
            raise FieldError("missing_field", f"{where} has no 'has_skeleton'", self.label_path)
        has_skeleton = entry["has_skeleton"]
        if not isinstance(has_skeleton, bool) and has_skeleton not in (0, 1):
            raise FieldError("bad_field", f"{where}: 'has_skeleton' is "
                                          f"{short_repr(has_skeleton)}, not true/false",
                             self.label_path)
        if not has_skeleton:
            self.exclude("has_skeleton_false")
            return None
        skeleton_path = osp.join(self.skeleton_dir, f"{key}.json")
        if not osp.isfile(skeleton_path):
            self.reject(Problem("missing_skeleton_file", skeleton_path,
                                f"video {video_id}: the label file says has_skeleton but there "
                                "is no pose file"))
            return None
        frame_dir = osp.join(self.frame_root, fields["seq_name"], fields["file_name"])
        return {"frame_dir": frame_dir, "skeleton_path": skeleton_path}

    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames; frame k is `frame_index == k + frame_base` in the skeleton
        file (1 by the format; the original looked up k itself: a known defect). Returns
        `(F, P, J, 2)` coords in resized pixels (`x * W`, `y * H`) and `(F, P, J)` scores.

        Raises:
            DataError: the file is unreadable, or has a frame_index 0 although the data set's
                pose files were found to count from 1 (its poses would be one frame off).
        """
        path = record["skeleton_path"]
        table = read_kinetics_skeleton(path, self.joint_set.joint_num)
        if table.first_index == 0 and self.frame_base == 1:
            raise DataError(f"{path}: frame_index 0, but this data set's pose files count "
                            "frames from 1 (decided at start-up, see the log): its poses would "
                            "be one frame off; number its frames like the others")
        return normalized_poses(table, frame_indices, resized_hw=resized_hw,
                                joint_num=self.joint_set.joint_num, first_index=self.frame_base)
