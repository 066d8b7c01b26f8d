"""Poses estimated on video frames, as the kinetics-skeleton pose table (`data.skeleton_files`):
the one path from a pose estimator's people to a pose file, shared by `main/demo.py` (the frames
its clips use) and `tool/extract_poses.py` (every frame of a folder of videos)."""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from data.skeleton_files import PoseTable, pose_table, skeleton_content, write_json_atomic
from data.video_clips import ClipPlan
from data.video_decode import iter_video_frames

# A pose estimator: frames `(H, W, 3)` uint8 RGB -> per frame, the COCO-17 people
# `(coords (P, 17, 2) pixels, scores (P, 17))` (`common.pose_estimation.KeypointEstimator`).
People = Tuple[np.ndarray, np.ndarray]
Estimator = Callable[[Sequence[np.ndarray]], List[People]]


def estimate_frame_poses(estimator: Estimator, frames: Sequence[np.ndarray],
                         frame_indices: Sequence[int], frame_hw: Tuple[int, int]) -> PoseTable:
    """The OpenPose-18 pose table of some frames of a video.

    Args:
        estimator: finds the people of each frame.
        frames: the frames to estimate, each `(H, W, 3)` uint8 RGB.
        frame_indices: the 0-based frame number of each of `frames` in its video.
        frame_hw: `(H, W)` of the frames.
    Returns:
        `{k + 1: (coords (P, 18, 2) normalised, scores (P, 18))}`; frames without people absent.
    """
    return pose_table(estimator(list(frames)), frame_indices, frame_hw)


def estimate_video_people(video: str, estimator: Estimator, *, short_side: int = 256,
                          fps: Optional[float] = None, batch_frames: int = 16
                          ) -> Tuple[List[People], Tuple[int, int]]:
    """The COCO-17 people of every frame of a video, as the estimator gives them, decoded
    `batch_frames` frames at a time (the frames are not kept).

    Returns:
        `(people, (H, W) of the frames)`: per frame, `(coords (P, 17, 2) pixels,
        scores (P, 17))`; the video's frame count is `len(people)`.
    """
    people: List[People] = []
    pending: List[np.ndarray] = []
    frame_hw = (0, 0)
    for frame in iter_video_frames(video, short_side=short_side, fps=fps):
        frame_hw = frame.shape[:2]
        pending.append(frame)
        if len(pending) == batch_frames:
            people.extend(estimator(pending))
            pending = []
    if pending:
        people.extend(estimator(pending))
    return people, frame_hw


def frames_to_estimate(plans: Sequence[ClipPlan], frame_num: int, *,
                       every_frame: bool) -> List[int]:
    """The 0-based frames whose poses the test clips `plans` use (all `frame_num` frames with
    `every_frame`), sorted."""
    if every_frame:
        return list(range(frame_num))
    return sorted({k for plan in plans for k in plan.pose_frames})


def write_pose_file(path: str, table: PoseTable, *, frame_num: int, frame_hw: Tuple[int, int],
                    label: str = "unknown", label_index: int = -1) -> None:
    """Write a video's pose table as its kinetics-skeleton file (`skeleton_content`), all at
    once."""
    write_json_atomic(path, skeleton_content(table, frame_num=frame_num, frame_hw=frame_hw,
                                             label=label, label_index=label_index))
