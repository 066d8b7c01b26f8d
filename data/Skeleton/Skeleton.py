"""Videos of an MMAction2 / PYSKL 2D skeleton annotation file (`--dataset Skeleton`).

    --ann_file FILE.pkl --split NAME [--frame_root FOLDER] [--label_map FILE]

The file (`data.Skeleton.skeleton_file`, docs/data_format.md) holds every video's COCO-17
keypoints in pixels of its `img_shape`; `--split` names the videos read (train.py: the training
split, test.py: the test split). Poses become the model's OpenPose-18 with
`data.coco_to_openpose.coco_to_openpose` (the demo's conversion); each video's people are
ordered as the toolboxes order them, by mean `keypoint_score`, best first, and at most
`top_k_pose` kept.

pose_only needs nothing but the file. rgb_only and rgb+pose read JPEG frames from
`<frame_root>/<frame_dir>/%06d.jpg` (`frame_folder`, the one place a video's frames are looked
up); when the frames' size differs from `img_shape` (NTU's videos are often re-encoded at half
size) the keypoints are scaled to the frames.

Classes: `--class_num`, else the file's largest label + 1; names from `--label_map` (one per
line, line i = class i).
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import DataError
from common.report.problems import SKIPPED, Problem
from data.annotations import CocoVideos
from data.coco_to_openpose import coco_to_openpose
from data.joint_sets import OPENPOSE_18
from data.parsing import FieldError, read_file_bytes
from data.poses import FramePeople, pixel_poses
from data.sources.locate import frames_location
from data.Skeleton.skeleton_file import (SkeletonEntry, check_entry, read_skeleton_file,
                                         select_split)
from data.video_list import Record
from data.video_pose_dataset import LoadingOptions, VideoPoseDataset


def people_by_score(keypoint: np.ndarray, score: np.ndarray,
                    keep: int) -> Tuple[np.ndarray, np.ndarray]:
    """A video's people, best first by mean `keypoint_score` over its frames and joints (a
    NaN/inf score counts 0; ties keep file order), at most `keep` of them.

    Args:
        keypoint: `(M, T, V, 2)`; score: `(M, T, V)`.
    Returns:
        `(keypoint (M', T, V, 2), score (M', T, V))`, M' = min(M, keep), dtypes kept.
    """
    if len(score) == 0:
        return keypoint, score
    finite = np.where(np.isfinite(score), score.astype(np.float32), 0.0)
    order = np.argsort(-finite.reshape(len(score), -1).mean(axis=1), kind="stable")[:keep]
    return np.ascontiguousarray(keypoint[order]), np.ascontiguousarray(score[order])


def read_label_map(path: str) -> List[str]:
    """The class names of a label map file (line i = class i; blank lines ignored)."""
    raw = read_file_bytes(path, "label map file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text, so not a label map (one class name per "
                        "line)") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


class Skeleton(VideoPoseDataset):
    """The videos of one split of a skeleton annotation file; see the module docstring.

    Left out at start-up (counted in `skipped`): by the protocol, 'too_short' videos and
    'no_annotation' (a split member without an entry); for bad data, entries that cannot be
    used ('missing_field', 'bad_field', 'no_people' in pose_only, 'duplicate_id': a frame_dir
    given twice) and, where frames are read, 'missing_frame_folder'.
    """

    joint_set = OPENPOSE_18
    pose_key = "pose_entry"

    def __init__(self, cfg: Any, split: str, *, loading: Optional[LoadingOptions] = None) -> None:
        super().__init__(cfg, split, loading=loading)
        self.frame_root = cfg.frame_root
        skeleton = read_skeleton_file(cfg.ann_file)
        self.largest_label = skeleton.largest_label
        self.members = select_split(skeleton, cfg.split)
        # video_id -> (keypoint (M, T, 17, 2), score (M, T, 17)): the kept people, as stored.
        self.people: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self.load_videos(self._split_videos(skeleton.path, skeleton.annotations))
        if cfg.label_map:
            self.class_names = self._class_names(cfg.label_map)

    def own_class_count(self) -> Optional[Tuple[int, str]]:
        if self.largest_label < 0:
            return None
        return (self.largest_label + 1,
                f"the largest label {self.largest_label} in {self.cfg.ann_file} + 1")

    def frame_folder(self, frame_dir: str) -> str:
        """Where the frames of `frame_dir` are: `<frame_root>/<frame_dir>`."""
        return osp.join(self.frame_root, frame_dir)

    def _split_videos(self, path: str, annotations: Sequence[Any]) -> CocoVideos:
        """The split's entries as the videos `load_videos` takes (video id: the entry's index
        in 'annotations'); unusable entries go to `rejected`."""
        wanted = set(self.members)
        coco = CocoVideos(path=path)
        found: Dict[str, int] = {}
        for n, entry in enumerate(annotations):
            frame_dir = entry.get("frame_dir") if isinstance(entry, dict) else None
            if not isinstance(frame_dir, str) or frame_dir not in wanted:
                continue
            if frame_dir in found:
                coco.rejected.append(Problem("duplicate_id", path, f"annotations[{n}]: "
                                             f"frame_dir {frame_dir!r} is already "
                                             f"annotations[{found[frame_dir]}]", SKIPPED))
                continue
            found[frame_dir] = n
            try:
                checked = check_entry(entry, f"annotations[{n}]")
            except FieldError as err:
                coco.rejected.append(Problem(err.reason, path, err.detail, SKIPPED))
                continue
            if len(checked.keypoint) == 0 and not self.with_video:
                coco.rejected.append(Problem("no_people", path, f"annotations[{n}] (frame_dir "
                                             f"{frame_dir!r}): 'keypoint' holds no person "
                                             "(M = 0): nothing for pose_only", SKIPPED))
                continue
            coco.videos.append(self._video(n, checked))
        # Split members without an entry: the toolboxes read only annotated videos.
        coco.videos.extend(({"id": -1}, None) for m in set(self.members) - set(found))
        return coco

    def _video(self, n: int, entry: SkeletonEntry) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """`(image, annotation)` of a usable entry; its people kept in `people`."""
        self.people[n] = people_by_score(entry.keypoint, entry.keypoint_score,
                                         int(self.cfg.top_k_pose))
        image = {"id": n, "frame_num": entry.total_frames, "frame_dir": entry.frame_dir,
                 "height": entry.img_hw[0], "width": entry.img_hw[1]}
        return image, {"image_id": n, "action_label": entry.label}

    def video_fields(self, image: Dict[str, Any], where: str) -> Dict[str, Any]:
        return {"frame_dir": image["frame_dir"], "height": image["height"],
                "width": image["width"]}

    def video_source(self, video_id: int, fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        frame_dir = fields["frame_dir"]
        source = {"frame_dir": frame_dir,
                  "pose_entry": f"{self.cfg.ann_file} [frame_dir {frame_dir}]"}
        if self.with_video:
            # A frame folder, or a video file where the folder would be (data.sources.locate).
            source["frame_dir"] = self.frame_folder(frame_dir)
            if frames_location(source["frame_dir"], self.cfg.frames_from) is None:
                self.reject(Problem("missing_frame_folder", source["frame_dir"],
                                    f"no frames (folder or video file) for frame_dir "
                                    f"{frame_dir!r} under --frame_root"))
                return None
        return source

    def stored_frame_size(self, record: Record, frame_index: int) -> Tuple[int, int]:
        """pose_only: the entry's `img_shape`, no frame read (there may be none)."""
        return int(record["height"]), int(record["width"])

    def load_poses(self, record: Record, frame_indices: Sequence[int],
                   resized_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames in OpenPose-18: `(F, P, 18, 2)` coords scaled from
        `img_shape` pixels to the resized frame (`x / W_img * W`), `(F, P, 18)` scores."""
        keypoint, score = self.people[record["video_id"]]
        frames = keypoint.shape[1]
        kept = [k for k in frame_indices if 0 <= k < frames]
        coords, scores = coco_to_openpose(keypoint[:, kept], score[:, kept])  # (P, F', 18, .)
        by_frame = {k: f for f, k in enumerate(kept)}
        per_frame: List[FramePeople] = [
            (coords[:, by_frame[k]], scores[:, by_frame[k]]) if k in by_frame and len(coords)
            else None for k in frame_indices]
        return pixel_poses(per_frame, range(len(per_frame)),
                           original_hw=(record["height"], record["width"]),
                           resized_hw=resized_hw, joint_num=self.joint_set.joint_num)

    def _class_names(self, path: str) -> Dict[int, str]:
        """Class index -> name from `--label_map`; it must name every class."""
        names = read_label_map(path)
        if len(names) < self.class_num:
            raise DataError(f"{path}: {len(names)} class names, but the data has "
                            f"{self.class_num} classes ({self.class_num_reason}): give one "
                            "name per line for every class")
        return dict(enumerate(names[: self.class_num]))
