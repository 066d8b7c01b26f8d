"""Pose files in the kinetics-skeleton format (what the Kinetics loader reads), written from
estimated people: 1-based `frame_index`, coordinates normalised by the frame size.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from common.io.atomic_file import atomic_write
from data.coco_to_openpose import coco_to_openpose
from data.joint_sets import OPENPOSE_18
from data.video_clips import PoseTable


# Decimals kept in the pose files: 1e-4 of the frame size is 0.03 pixel of a 256-pixel frame.
POSE_DECIMALS = 4




# --------------------------------------------------------------------------- poses
def pose_table(people: Sequence[Tuple[np.ndarray, np.ndarray]], frame_indices: Sequence[int],
               frame_hw: Tuple[int, int]) -> PoseTable:
    """COCO-17 people of 0-based frames as the kinetics-skeleton table.

    Args:
        people: per frame, `(coords (P, 17, 2) pixels, scores (P, 17))` (`KeypointEstimator`).
        frame_indices: the 0-based frame of each entry of `people`.
        frame_hw: `(H, W)` of the frames the people were found in.
    Returns:
        `{k + 1: (coords (P, 18, 2) / (W, H), scores (P, 18))}` in OpenPose-18, rounded as the
        pose files store them; frames without people are absent.
    """
    size = np.array([frame_hw[1], frame_hw[0]], dtype=np.float32)
    table: PoseTable = {}
    for k, (coords, scores) in zip(frame_indices, people):
        if len(scores) == 0:
            continue
        coords, scores = coco_to_openpose(coords / size, scores)
        table[int(k) + 1] = (np.round(coords, POSE_DECIMALS).astype(np.float32),
                             np.round(scores, POSE_DECIMALS).astype(np.float32))
    return table



def skeleton_content(table: PoseTable, *, frame_num: int, frame_hw: Tuple[int, int],
                     label: str = "unknown", label_index: int = -1) -> Dict[str, Any]:
    """The kinetics-skeleton file's JSON object: one `data` entry per frame (an empty
    `skeleton` where nobody was found), plus `label`, `label_index` as in the release and
    `frame_num`, `height`, `width` (which the loader ignores; a resumed run reads them)."""
    data = []
    for frame_index in range(1, frame_num + 1):
        coords, scores = table.get(frame_index, (np.zeros((0, OPENPOSE_18.joint_num, 2)),
                                                 np.zeros((0, OPENPOSE_18.joint_num))))
        data.append({"frame_index": frame_index, "skeleton": [
            {"pose": [round(float(v), POSE_DECIMALS) for v in c.reshape(-1)],
             "score": [round(float(v), POSE_DECIMALS) for v in s]}
            for c, s in zip(coords, scores)]})
    return {"data": data, "label": label, "label_index": int(label_index),
            "frame_num": int(frame_num), "height": int(frame_hw[0]), "width": int(frame_hw[1])}



def write_json_atomic(path: str, content: Any) -> None:
    """Write JSON to `path` all at once (`common.io.atomic_file.atomic_write`)."""
    with atomic_write(path) as f:
        json.dump(content, f)

