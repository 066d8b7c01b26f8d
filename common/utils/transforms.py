"""Geometric transforms shared by the image and the pose path of a clip.

Everything here is pure numpy/cv2 and works on one clip at a time. The pipeline for a clip is:

1. `resize_shape` gives the size every frame is resized to (before any crop);
2. `sample_train_crop` (train) or `center_crop_box` (test) picks one crop box and one flip
   decision for the whole clip, in resized-frame pixels;
3. `crop_affine` turns the box (and the flip) into a 2x3 matrix that maps (flipped) resized-frame
   pixels onto the network input;
4. `warp_frames` applies it to the frames, `transform_pose` to the joints (and then scales the
   joints onto the heatmap grid), after `select_top_k` has kept the best people of a frame.

Conventions: image shapes are `(height, width)`; boxes are `(xmin, ymin, width, height)`;
coordinates are `(x, y)` with pixel (i, j) at x = j, y = i; a horizontal flip maps x to
`W - 1 - x` where W is the width of the resized frame.
"""
from __future__ import annotations

import random
from typing import List, Sequence, Tuple

import cv2
import numpy as np

# Multi-scale crop: a crop side is `int(scale * input side)`; 0.66 gives 147 for 224.
CROP_SCALES: Tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
# Width and height scales may differ by at most one step of CROP_SCALES (aspect jitter).
MAX_SCALE_STEP = 1
# Coordinates given to people that are padding (no person): same value as the original release.
PAD_COORD = 1.0


def resize_shape(height: int, width: int, video_shape: Sequence[int]) -> Tuple[int, int]:
    """Size a `height x width` frame is resized to, as `(new_h, new_w)`.

    `video_shape = (S,)`: the shorter side becomes S, the longer side `int(long / short * S)`
    (truncated, like the original). `video_shape = (h, w)`: every frame becomes h x w.
    """
    if len(video_shape) == 1:
        side = int(video_shape[0])
        if height <= width:
            return side, int(width / height * side)
        return int(height / width * side), side
    if len(video_shape) == 2:
        return int(video_shape[0]), int(video_shape[1])
    raise ValueError(f"video_shape must be (S,) or (h, w), got {tuple(video_shape)!r}")


def crop_scale_pairs() -> List[Tuple[float, float]]:
    """The 10 `(width scale, height scale)` pairs of the multi-scale crop."""
    return [
        (sw, sh)
        for i, sw in enumerate(CROP_SCALES)
        for j, sh in enumerate(CROP_SCALES)
        if abs(i - j) <= MAX_SCALE_STEP
    ]


def sample_train_crop(
    resized_hw: Tuple[int, int], input_img_shape: Tuple[int, int], rng: random.Random
) -> Tuple[Tuple[int, int, int, int], bool]:
    """Random multi-scale crop box and flip decision for one training clip.

    Args:
        resized_hw: `(H, W)` of the resized frames.
        input_img_shape: `(in_h, in_w)` of the network input.
        rng: the item's random generator (the only source of randomness).
    Returns:
        `((xmin, ymin, w, h), do_flip)`: the box in resized-frame pixels (before the flip) with
        `w = int(sw * in_w)`, `h = int(sh * in_h)` for a uniformly drawn scale pair; xmin in
        `[0, W - w]` and ymin in `[0, H - h]` (inclusive); `do_flip` with probability 0.5.
        A frame smaller than the crop gets offset 0 (the warp then pads with black).
    """
    height, width = resized_hw
    in_h, in_w = input_img_shape
    scale_w, scale_h = rng.choice(crop_scale_pairs())
    crop_w = int(scale_w * in_w)
    crop_h = int(scale_h * in_h)
    xmin = rng.randint(0, max(0, width - crop_w))
    ymin = rng.randint(0, max(0, height - crop_h))
    do_flip = rng.random() <= 0.5
    return (xmin, ymin, crop_w, crop_h), do_flip


def center_crop_box(
    resized_hw: Tuple[int, int], input_img_shape: Tuple[int, int]
) -> Tuple[int, int, int, int]:
    """Centre crop of the input size, `(W//2 - in_w//2, H//2 - in_h//2, in_w, in_h)`."""
    height, width = resized_hw
    in_h, in_w = input_img_shape
    return width // 2 - in_w // 2, height // 2 - in_h // 2, in_w, in_h


def crop_affine(
    box: Tuple[float, float, float, float],
    do_flip: bool,
    resized_width: int,
    out_shape: Tuple[int, int],
) -> np.ndarray:
    """2x3 float32 matrix mapping (flipped) resized-frame pixels onto the `out_shape` crop.

    With box centre `c = (xmin + w/2, ymin + h/2)` (mirrored to `W - 1 - cx` when flipping, so
    the box covers the same content as in the unflipped frame):
    `x' = (x - (cx - w/2)) * out_w / w`, `y' = (y - (cy - h/2)) * out_h / h`.
    Apply it to an image already flipped horizontally (and to joints whose x is already
    `W - 1 - x`) when `do_flip` is true.
    """
    xmin, ymin, box_w, box_h = (float(v) for v in box)
    out_h, out_w = out_shape
    center_x = xmin + box_w / 2.0
    center_y = ymin + box_h / 2.0
    if do_flip:
        center_x = resized_width - 1 - center_x
    scale_x = out_w / box_w
    scale_y = out_h / box_h
    return np.array(
        [
            [scale_x, 0.0, -(center_x - box_w / 2.0) * scale_x],
            [0.0, scale_y, -(center_y - box_h / 2.0) * scale_y],
        ],
        dtype=np.float32,
    )


def warp_frames(
    frames: np.ndarray, matrix: np.ndarray, do_flip: bool, out_shape: Tuple[int, int]
) -> np.ndarray:
    """Flip (optionally) and warp every frame of a clip with the same crop matrix.

    Args:
        frames: `(T, H, W, 3)` float32 resized frames.
        matrix: `(2, 3)` from `crop_affine`.
        do_flip: mirror each frame horizontally before the warp.
        out_shape: `(out_h, out_w)`.
    Returns:
        `(T, out_h, out_w, 3)` float32; pixels from outside the frame are 0 (bilinear warp).
    """
    out_h, out_w = out_shape
    out = np.empty((len(frames), out_h, out_w, frames.shape[-1]), dtype=np.float32)
    for t, frame in enumerate(frames):
        if do_flip:
            frame = cv2.flip(frame, 1)  # x -> W - 1 - x, as for the joints
        out[t] = cv2.warpAffine(
            np.ascontiguousarray(frame, dtype=np.float32),
            matrix.astype(np.float64),
            (out_w, out_h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return out


def transform_pose(
    coords: np.ndarray,
    scores: np.ndarray,
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
