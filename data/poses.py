"""A clip's poses as fixed arrays: people stacked per frame, joints made safe to render.

Pose files hold a varying number of people per frame; `stack_people` pads them into
`(F, P, J, 2)` coordinates and `(F, P, J)` scores. `clip_poses` is what a dataset item does with
the poses its loader returns: checks their shapes, turns an unreadable pose file into the
item's problem, and gives every joint a finite coordinate (`sanitize_joints`), reporting the
joints it zeroed. Coordinates are in pixels of the frame resized to `(H, W)`.
"""
from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from common.errors import DataError
from common.report.problems import JOINTS_ZEROED, POSE_ZEROED, SKIPPED, Problem
from data.parsing import strip_path
from data.pose_geometry import PAD_COORD

# `(coords (P, J, 2), scores (P, J))` of one frame, or None: no people.
FramePeople = Optional[Tuple[np.ndarray, np.ndarray]]
Poses = Tuple[np.ndarray, np.ndarray]
# A joint further out of the frame than this many frame sizes is no detection (and its square
# would lose all precision in float32 in the pose-map renderer): score 0, coordinate 0.
FAR_JOINT_FACTOR = 10.0
# Frames named in a problem's detail (the rest are counted).
LISTED_FRAMES = 5


def stack_people(
    per_frame: Sequence[FramePeople], joint_num: int
) -> Poses:
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


def pixel_poses(
    frames: Sequence[FramePeople], frame_indices: Sequence[int], *,
    original_hw: Tuple[int, int], resized_hw: Tuple[int, int], joint_num: int,
) -> Poses:
    """The poses of `frame_indices` from a source holding one entry per 0-based frame in the
    video's original pixels (`original_hw`, the annotation's height and width): picks the
    frames (none past the end of the list), scales `x / width * W`, `y / height * H` to
    `resized_hw = (H, W)`, and stacks them (`(F, P, J, 2)`, `(F, P, J)`)."""
    scale = np.array([resized_hw[1] / original_hw[1], resized_hw[0] / original_hw[0]],
                     dtype=np.float32)
    per_frame: List[FramePeople] = []
    for k in frame_indices:
        entry = frames[k] if 0 <= k < len(frames) else None
        per_frame.append(None if entry is None else (entry[0] * scale, entry[1]))
    return stack_people(per_frame, joint_num)


def normalized_poses(
    table: Mapping[int, Tuple[np.ndarray, np.ndarray]], frame_indices: Sequence[int], *,
    resized_hw: Tuple[int, int], joint_num: int, first_index: int = 1,
) -> Poses:
    """The poses of `frame_indices` from a table keyed by frame number whose coordinates are
    normalised to [0, 1] (the kinetics-skeleton files): 0-based frame k is entry
    k + `first_index` (1: the files count frames from 1, their convention; 0: from 0). Frames
    without an entry have nobody. Scaled `x * W`, `y * H` to `resized_hw = (H, W)` and
    stacked (`(F, P, J, 2)`, `(F, P, J)`)."""
    scale = np.array([resized_hw[1], resized_hw[0]], dtype=np.float32)
    per_frame: List[FramePeople] = []
    for k in frame_indices:
        entry = table.get(k + first_index)
        per_frame.append(None if entry is None else (entry[0] * scale, entry[1]))
    return stack_people(per_frame, joint_num)


def sanitize_joints(
    coords: np.ndarray, scores: np.ndarray, resized_hw: Tuple[int, int],
    far_factor: float = FAR_JOINT_FACTOR,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Give every joint a finite coordinate the pose-map renderer can square in float32.

    A joint whose coordinate or score is NaN/inf, or whose coordinate lies more than
    `far_factor` frame sizes from the origin (`|x| > far_factor * W` or `|y| > far_factor * H`),
    gets score 0 and coordinate (0, 0): a NaN joint of score 0 would still turn its heatmap
    channel into NaN (NaN x 0), and a huge one its limbs' part affinity fields.

    Args:
        coords: `(F, P, J, 2)` in pixels of the frame resized to `resized_hw = (H, W)`.
        scores: `(F, P, J)`.
    Returns:
        `(coords, scores, nonfinite (F, P, J) bool, far (F, P, J) bool)`, new arrays.
    """
    coords = np.array(coords, dtype=np.float32, copy=True)
    scores = np.array(scores, dtype=np.float32, copy=True)
    nonfinite = ~np.isfinite(coords).all(axis=-1) | ~np.isfinite(scores)
    limit = far_factor * np.array([resized_hw[1], resized_hw[0]], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        far = ~nonfinite & (np.abs(coords) > limit).any(axis=-1)
    zeroed = nonfinite | far
    coords[zeroed] = 0.0
    scores[zeroed] = 0.0
    return coords, scores, nonfinite, far


def clip_poses(
    load: Callable[[], Poses], *, path: str, frame_indices: Sequence[int],
    resized_hw: Tuple[int, int], joint_num: int, required: bool, report: bool,
    problems: List[Problem], loader_name: str,
) -> Optional[Poses]:
    """The clip's poses, all finite, in resized-frame pixels.

    Args:
        load: returns `(coords (F, P, J, 2), scores (F, P, J))` for the clip's F pose frames
            (NaN/inf as the file has them), or raises `DataError` for an unreadable pose file.
        path: the pose file, named in the problems.
        frame_indices: the F 0-based pose frames (named in the problems).
        resized_hw: `(H, W)` the coordinates are in.
        joint_num: J.
        required: the item is nothing without its poses (pose_only): an unreadable file
            leaves the item out (None). Else the clip gets no people (P = 0).
        report: append the zeroed poses and joints to `problems` (only where the stage uses
            poses: rgb_only reads them, so that the item keys stay the same, but never looks).
        problems: the item's problems, appended to.
        loader_name: the dataset class, named when `load` returns the wrong shapes.
    Returns:
        `(coords (F, P, J, 2), scores (F, P, J))` float32, or None (see `required`).
    """
    try:
        # A huge coordinate may overflow to inf when scaled: handled below, not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            coords, scores = load()
    except DataError as err:
        detail = strip_path(str(err), path)
        if required:
            problems.append(Problem("bad_pose_file", path, detail, SKIPPED))
            return None
        if report:
            problems.append(Problem("bad_pose_file", path, detail, POSE_ZEROED))
        return (np.full((len(frame_indices), 0, joint_num, 2), PAD_COORD, np.float32),
                np.zeros((len(frame_indices), 0, joint_num), np.float32))
    if coords.shape[0] != len(frame_indices) or coords.shape[2:] != (joint_num, 2) \
            or scores.shape != coords.shape[:3]:
        raise ValueError(f"{loader_name}.load_poses returned shapes {coords.shape}, "
                         f"{scores.shape} for {len(frame_indices)} frames of {joint_num} joints")
    coords, scores, nonfinite, far = sanitize_joints(coords, scores, resized_hw)
    if report:
        problems.extend(_zeroed_joint_problems(path, frame_indices, nonfinite, far))
    return coords, scores


def _zeroed_joint_problems(path: str, frame_indices: Sequence[int], nonfinite: np.ndarray,
                           far: np.ndarray) -> List[Problem]:
    """The JOINTS_ZEROED problems of `sanitize_joints`' masks (none where nothing was zeroed)."""
    out = []
    if nonfinite.any():
        out.append(Problem(
            "nonfinite_joint", path,
            f"{int(nonfinite.sum())} joint(s) with NaN/inf coordinates or scores in "
            f"{_frames_text(nonfinite, frame_indices)}: score 0, coordinate (0, 0)",
            JOINTS_ZEROED))
    if far.any():
        out.append(Problem(
            "far_joint", path,
            f"{int(far.sum())} joint(s) more than {FAR_JOINT_FACTOR:g} frame sizes out of "
            f"the frame in {_frames_text(far, frame_indices)}: score 0, coordinate (0, 0)",
            JOINTS_ZEROED))
    return out


def _frames_text(mask: np.ndarray, frame_indices: Sequence[int]) -> str:
    """'frames 3, 11 (0-based)' for the frames where `mask (F, P, J)` has a joint."""
    frames = [frame_indices[f] for f in np.flatnonzero(mask.any(axis=(1, 2)))]
    listed = ", ".join(str(k) for k in frames[:LISTED_FRAMES])
    more = f" and {len(frames) - LISTED_FRAMES} more" if len(frames) > LISTED_FRAMES else ""
    return f"frame{'s' if len(frames) > 1 else ''} {listed}{more} (0-based)"
