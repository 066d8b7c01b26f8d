"""COCO-17 keypoints (torchvision's Keypoint R-CNN, most 2D pose estimators) as OpenPose-18.

The project's Kinetics poses are OpenPose-18 (docs/data_format.md): COCO's 17 keypoints plus a
Thorax (neck) joint, in another order. The Thorax is not estimated by COCO models; it is taken as
the midpoint of the two shoulders and scored by the weaker shoulder, so that a Thorax is never
more certain than the two joints it is made from (one missing shoulder gives a missing Thorax).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from data.joint_sets import OPENPOSE_18, JointSet

# COCO's keypoint order and its skeleton (the 19 limbs of the COCO annotation file, 0-based).
COCO_17 = JointSet(
    name="coco17",
    joint_names=(
        "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow",
        "R_Elbow", "L_Wrist", "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle",
        "R_Ankle",
    ),
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

THORAX = OPENPOSE_18.joint_names.index("Thorax")
# The COCO joints the Thorax is made from.
SHOULDERS = (COCO_17.joint_names.index("L_Shoulder"), COCO_17.joint_names.index("R_Shoulder"))
# For each OpenPose-18 joint, its COCO-17 joint (-1: the Thorax, computed). Built from the names,
# so a typo in either table cannot silently mis-map a joint.
OPENPOSE_FROM_COCO: Tuple[int, ...] = tuple(
    -1 if name == "Thorax" else COCO_17.joint_names.index(name)
    for name in OPENPOSE_18.joint_names)


def coco_to_openpose(coords: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Reorder COCO-17 joints into OpenPose-18 and add the Thorax.

    Args:
        coords: `(..., 17, 2)` joint (x, y), any unit (pixels or normalised).
        scores: `(..., 17)` joint confidences.
    Returns:
        `(coords (..., 18, 2), scores (..., 18))` float32: Thorax = the midpoint of the two
        shoulders, its score the smaller of the two shoulder scores.
    """
    coords = np.asarray(coords, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if coords.shape[-2:] != (COCO_17.joint_num, 2) or scores.shape != coords.shape[:-1]:
        raise ValueError(f"expected coords (..., 17, 2) and scores (..., 17), got "
                         f"{coords.shape} and {scores.shape}")
    index = np.array([max(i, 0) for i in OPENPOSE_FROM_COCO])
    out_coords = coords[..., index, :].copy()
    out_scores = scores[..., index].copy()
    left, right = SHOULDERS
    out_coords[..., THORAX, :] = (coords[..., left, :] + coords[..., right, :]) / 2
    out_scores[..., THORAX] = np.minimum(scores[..., left], scores[..., right])
    return out_coords, out_scores
