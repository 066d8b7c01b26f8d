"""Writing skeleton annotation files (the format `data.Skeleton.skeleton_file` reads) from the
COCO-17 people a pose estimator found, as `tool/extract_poses.py --format pyskl` does."""
from __future__ import annotations

import pickle
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from common.io.atomic_file import atomic_write
from data.Skeleton.skeleton_file import COCO_JOINTS

# The toolboxes' files store keypoints and scores as float16 (0.5 pixel at 1024 pixels).
STORED_DTYPE = np.float16
# Protocol 4: read by every Python 3.8+ and by numpy 1 and 2 alike.
PICKLE_PROTOCOL = 4


def skeleton_entry(frame_dir: str, label: int, people: Sequence[Tuple[np.ndarray, np.ndarray]],
                   frame_hw: Tuple[int, int]) -> Dict[str, Any]:
    """One video's annotation entry.

    Args:
        frame_dir: the video's identifier (its frame folder under `--frame_root`).
        label: the action class.
        people: per frame, the estimator's `(coords (P, 17, 2) pixels, scores (P, 17))`.
        frame_hw: `(H, W)` of the frames the people were found in.
    Returns:
        the entry: `keypoint (M, T, 17, 2)`, `keypoint_score (M, T, 17)` float16 with M the
        most people of any frame; person slot i of a frame is the estimator's i-th person
        there (no tracking across frames); an empty slot has coordinates 0 and score 0.
    """
    frames = len(people)
    persons = max([0] + [len(scores) for _, scores in people])
    keypoint = np.zeros((persons, frames, COCO_JOINTS, 2), STORED_DTYPE)
    score = np.zeros((persons, frames, COCO_JOINTS), STORED_DTYPE)
    for t, (coords, scores) in enumerate(people):
        count = len(scores)
        keypoint[:count, t] = coords
        score[:count, t] = scores
    shape = (int(frame_hw[0]), int(frame_hw[1]))
    return {"frame_dir": frame_dir, "label": int(label), "img_shape": shape,
            "original_shape": shape, "total_frames": frames, "keypoint": keypoint,
            "keypoint_score": score}


def write_skeleton_file(path: str, annotations: List[Dict[str, Any]],
                        splits: Dict[str, List[str]]) -> None:
    """Write `{'split': splits, 'annotations': annotations}` to `path` all at once."""
    with atomic_write(path, "wb") as f:
        pickle.dump({"split": splits, "annotations": annotations}, f, protocol=PICKLE_PROTOCOL)
