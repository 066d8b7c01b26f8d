"""The geometry of a clip's joints: the best people of each frame, then the clip's flip and
crop (the matrix `data.transforms.crop_affine` gives the frames), then the heatmap grid.

Conventions as in `data.transforms`: coordinates are `(x, y)` in resized-frame pixels, and a
horizontal flip maps x to `W - 1 - x`.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

# Coordinates given to people that are padding (no person): same value as the original release.
PAD_COORD = 1.0


def transform_pose(
    coords: np.ndarray,
    scores: np.ndarray,
    *,
    matrix: np.ndarray,
    do_flip: bool,
    resized_width: int,
    flip_pairs: Sequence[Tuple[int, int]],
    input_img_shape: Tuple[int, int],
    input_hm_shape: Tuple[int, int],
) -> Tuple[np.ndarray, np.ndarray]:
    """Move joints through the clip's flip and crop, then onto the heatmap grid.

    Args:
        coords: `(F, P, J, 2)` joint (x, y) in resized-frame pixels.
        scores: `(F, P, J)` joint scores.
        matrix: `(2, 3)` from `crop_affine` (same box and flip as the frames).
        do_flip: mirror x to `resized_width - 1 - x` and swap every left/right pair, for every
            frame and every person (the original swapped only the first person of the first
            frame: a known defect).
        resized_width: W of the resized frames.
        flip_pairs: left/right joint index pairs of the joint set.
        input_img_shape, input_hm_shape: `(h, w)` of the crop and of the heatmap grid.
    Returns:
        `(coords (F, P, J, 2), scores (F, P, J))` float32, coords on the heatmap grid
        (`x * hm_w / in_w`, `y * hm_h / in_h`, no half-pixel offset). Inputs are not modified.
    """
    coords = np.array(coords, dtype=np.float32, copy=True)
    scores = np.array(scores, dtype=np.float32, copy=True)
    if do_flip:
        coords[..., 0] = resized_width - 1 - coords[..., 0]
        for left, right in flip_pairs:
            # Fancy indexing on the joint axis copies, so the swap is safe.
            coords[..., [left, right], :] = coords[..., [right, left], :]
            scores[..., [left, right]] = scores[..., [right, left]]
    m = np.asarray(matrix, dtype=np.float32)
    x = coords[..., 0]
    y = coords[..., 1]
    new_x = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    new_y = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    in_h, in_w = input_img_shape
    hm_h, hm_w = input_hm_shape
    out = np.stack([new_x * (hm_w / in_w), new_y * (hm_h / in_h)], axis=-1).astype(np.float32)
    return out, scores


def select_top_k(
    coords: np.ndarray, scores: np.ndarray, k: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Keep the k people with the highest mean joint score of one frame; pad to exactly k.

    Args:
        coords: `(P, J, 2)`; scores: `(P, J)`; P may be 0 (then J comes from the shapes).
    Returns:
        `(coords (k, J, 2), scores (k, J))` float32, people by mean joint score descending
        (ties keep their input order), missing people padded with coords 1.0 and score 0.
    """
    coords = np.asarray(coords, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    joint_num = scores.shape[-1]
    out_coords = np.full((k, joint_num, 2), PAD_COORD, dtype=np.float32)
    out_scores = np.zeros((k, joint_num), dtype=np.float32)
    if len(scores) == 0 or k == 0:
        return out_coords, out_scores
    order = np.argsort(-scores.mean(axis=1), kind="stable")[:k]
    out_coords[: len(order)] = coords[order]
    out_scores[: len(order)] = scores[order]
    return out_coords, out_scores


def select_top_k_frames(
    coords: np.ndarray, scores: np.ndarray, k: int
) -> Tuple[np.ndarray, np.ndarray]:
    """`select_top_k` of every frame at once (the same people, order and padding).

    Args:
        coords: `(F, P, J, 2)`; scores: `(F, P, J)`; P may be 0.
    Returns:
        `(coords (F, k, J, 2), scores (F, k, J))` float32.
    """
    coords = np.asarray(coords, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    frames, people, joint_num = scores.shape
    out_coords = np.full((frames, k, joint_num, 2), PAD_COORD, dtype=np.float32)
    out_scores = np.zeros((frames, k, joint_num), dtype=np.float32)
    if people == 0 or k == 0 or frames == 0:
        return out_coords, out_scores
    # Per frame as select_top_k: stable sort of the negated mean over the joints.
    order = np.argsort(-scores.mean(axis=2), axis=1, kind="stable")[:, :k]
    kept = order.shape[1]
    out_coords[:, :kept] = np.take_along_axis(coords, order[:, :, None, None], axis=1)
    out_scores[:, :kept] = np.take_along_axis(scores, order[:, :, None], axis=1)
    return out_coords, out_scores
