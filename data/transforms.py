"""The geometry of a clip's frames: resize, crop, flip and warp (the joints follow through
`data.pose_geometry`, with the same box, flip and matrix).

Everything here is pure numpy/cv2 and works on one clip at a time. The pipeline for a clip is:

1. `resize_shape` gives the size every frame is resized to (before any crop);
2. `sample_train_crop` (train) or `center_crop_box` (test) picks one crop box and one flip
   decision for the whole clip, in resized-frame pixels;
3. `crop_affine` turns the box (and the flip) into a 2x3 matrix that maps (flipped) resized-frame
   pixels onto the network input;
4. `warp_frames` applies it to the frames; `data.pose_geometry` moves the joints the same way
   (and then onto the heatmap grid), after keeping the best people of each frame.

`input_clip` is steps 1-4 for the image side of a dataset item, from the decoded uint8 frames to
the network input, bit-identical to resize -> flip -> `warp_frames` -> /255 in float32 (the
benchmark's plain loop, tool/benchmarks/baselines/loading.py) and about four times as fast
(decoding aside): it converts to float only the pixels the warp reads, flips only those, copies
instead of warping when the crop is a whole-pixel shift, and warps four channels at a time
(OpenCV's fast path).

Conventions: image shapes are `(height, width)`; boxes are `(xmin, ymin, width, height)`;
coordinates are `(x, y)` with pixel (i, j) at x = j, y = i; a horizontal flip maps x to
`W - 1 - x` where W is the width of the resized frame.
"""
from __future__ import annotations

import random
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

# Multi-scale crop: a crop side is `int(scale * input side)`; 0.66 gives 147 for 224.
CROP_SCALES: Tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
# Width and height scales may differ by at most one step of CROP_SCALES (aspect jitter).
MAX_SCALE_STEP = 1
# Source pixels kept around those a bilinear warp samples, on each side: it reads pixel x and
# x + 1, and its float sample coordinates may round across a pixel edge.
WARP_MARGIN = 2


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


def integer_shift(matrix: np.ndarray) -> Optional[Tuple[int, int]]:
    """`(sx, sy)` when `matrix` maps source pixel `(x + sx, y + sy)` exactly onto output pixel
    `(x, y)` (unit scale, whole-pixel translation: the test centre crop, a training crop of
    scale 1); None otherwise. A bilinear warp by such a matrix copies pixels (0 outside the
    frame): its sample coordinates are whole, so every interpolation weight but one is 0."""
    m = np.asarray(matrix, dtype=np.float64)
    if m[0, 0] != 1.0 or m[1, 1] != 1.0 or m[0, 1] != 0.0 or m[1, 0] != 0.0:
        return None
    shift_x, shift_y = -float(m[0, 2]), -float(m[1, 2])
    if not (shift_x.is_integer() and shift_y.is_integer()):
        return None
    return int(shift_x), int(shift_y)


def warp_source_box(
    matrix: np.ndarray, out_shape: Tuple[int, int], frame_hw: Tuple[int, int],
    margin: int = WARP_MARGIN,
) -> Tuple[int, int, int, int]:
    """The pixels of a `frame_hw` frame that a bilinear `cv2.warpAffine` by `matrix` onto
    `out_shape` can read, as `(x0, y0, x1, y1)`: columns `x0..x1-1`, rows `y0..y1-1`, clipped
    to the frame (`x0 >= x1` or `y0 >= y1`: it reads none), `margin` pixels wider than the
    sample positions on each side."""
    height, width = frame_hw
    out_h, out_w = out_shape
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    corners = np.array([[0, 0, 1], [out_w - 1, 0, 1], [0, out_h - 1, 1],
                        [out_w - 1, out_h - 1, 1]], dtype=np.float64)
    source = corners @ inverse.T
    if not np.isfinite(source).all():
        return 0, 0, width, height
    low = np.floor(source.min(axis=0)).astype(np.int64) - margin
    high = np.floor(source.max(axis=0)).astype(np.int64) + 2 + margin  # reads x and x + 1
    return (max(0, int(low[0])), max(0, int(low[1])),
            min(width, int(high[0])), min(height, int(high[1])))


def _source_region(
    frame: np.ndarray, resized_hw: Tuple[int, int], box: Tuple[int, int, int, int],
    do_flip: bool,
) -> np.ndarray:
    """Pixels `box = (x0, y0, x1, y1)` of the frame resized to `resized_hw` (float32 bilinear,
    as the reference; a frame already of that size is used as it is: `cv2.resize` to the same
    size is a copy) and then flipped when `do_flip`: `(y1 - y0, x1 - x0, 3)`, the frame's dtype
    when no resize was needed (float32 otherwise). A flip mirrors only the region."""
    height, width = resized_hw
    if frame.shape[:2] != (height, width):
        frame = cv2.resize(np.asarray(frame, dtype=np.float32), (width, height),
                           interpolation=cv2.INTER_LINEAR)
    x0, y0, x1, y1 = box
    if do_flip:
        # Column x of the flipped frame is column W - 1 - x of the frame.
        return cv2.flip(frame[y0:y1, width - x1:width - x0], 1)
    return frame[y0:y1, x0:x1]


def _shifted_clip(
    frames: Sequence[np.ndarray], resized_hw: Tuple[int, int], shift: Tuple[int, int],
    do_flip: bool, out_shape: Tuple[int, int], *, as_bytes: bool = False,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """`input_clip` for a whole-pixel crop (`integer_shift`): a copy, 0 outside the frame.

    With `as_bytes` (uint8 frames of size `resized_hw` only) the clip stays uint8, the
    frames' own values: the float clip is exactly these bytes divided by 255. `out`: the
    float32 array to write the clip into (see `input_clip`)."""
    height, width = resized_hw
    out_h, out_w = out_shape
    shift_x, shift_y = shift
    # Output pixels whose source pixel lies in the frame.
    dx0, dx1 = max(0, -shift_x), min(out_w, width - shift_x)
    dy0, dy1 = max(0, -shift_y), min(out_h, height - shift_y)
    inside = dx0 < dx1 and dy0 < dy1
    padded = not (dx0 == 0 and dy0 == 0 and dx1 == out_w and dy1 == out_h)
    dtype = np.uint8 if as_bytes else np.float32
    if out is None:
        out = (np.zeros if padded else np.empty)((len(frames), 3, out_h, out_w), dtype)
    elif padded:
        out.fill(0)
    if not inside:
        return out
    box = (dx0 + shift_x, dy0 + shift_y, dx1 + shift_x, dy1 + shift_y)
    planes = np.empty((3, dy1 - dy0, dx1 - dx0), dtype=np.uint8)
    for t, frame in enumerate(frames):
        region = _source_region(frame, resized_hw, box, do_flip)
        target = out[t, :, dy0:dy1, dx0:dx1]
        if region.dtype == np.uint8:
            # Channel planes first (uint8: a third of the bytes), then float32(v) / 255.
            cv2.mixChannels([region], [planes[0], planes[1], planes[2]], [0, 0, 1, 1, 2, 2])
            if as_bytes:
                np.copyto(target, planes)
            else:
                np.divide(planes, np.float32(255.0), out=target)
        elif as_bytes:
            raise ValueError("as_bytes needs uint8 frames of the resized size (no resize)")
        else:
            np.divide(region.transpose(2, 0, 1), np.float32(255.0), out=target)
    return out


def input_clip_bytes(
    frames: Sequence[np.ndarray], resized_hw: Tuple[int, int], matrix: np.ndarray,
    do_flip: bool, out_shape: Tuple[int, int],
) -> Optional[np.ndarray]:
    """The clip of `input_clip` as its uint8 pixel values, where it is made of them; else None.

    A whole-pixel crop (`integer_shift`) of uint8 frames that need no resize (the test centre
    crop of frames stored at the test size, as Kinetics' released frames are) copies pixels:
    `input_clip(...)` is then exactly `input_clip_bytes(...) / float32(255)`
    (`common.runtime.clip_pixels.video_as_float`). A quarter of the bytes to pass from a loader
    worker to the main process or the GPU.

    Returns:
        `(T, 3, out_h, out_w)` uint8, C-contiguous, or None (a warp, a resize or float frames:
        the values are not whole numbers).
    """
    shift = integer_shift(matrix)
    if shift is None:
        return None
    if any(frame.dtype != np.uint8 or tuple(frame.shape[:2]) != tuple(resized_hw)
           for frame in frames):
        return None
    return _shifted_clip(frames, resized_hw, shift, do_flip, out_shape, as_bytes=True)


def input_clip(
    frames: Sequence[np.ndarray], resized_hw: Tuple[int, int], matrix: np.ndarray,
    do_flip: bool, out_shape: Tuple[int, int], *, out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The network input of a clip from its decoded frames.

    Bit-identical to the reference (the benchmark's plain loop): each frame
    converted to float32, resized to `resized_hw` (`cv2.resize`, bilinear), flipped when
    `do_flip`, `warp_frames`, divided by 255. tests/test_loading_fast.py checks this over random
    frame sizes, crops, flips and shapes. It is faster because, each step exact:
    - a frame already of size `resized_hw` is not resized (`cv2.resize` to the same size copies);
    - only the pixels the warp reads (`warp_source_box`) are converted to float, flipped, in
      place in a zeroed full-size canvas (a smaller source image would shift OpenCV's float32
      sample coordinates and change the pixels);
    - the warps run on four channels (OpenCV's fast vector path; per channel the same
      arithmetic as on three), the clip's 3T channels packed four to a warp;
    - a whole-pixel crop (`integer_shift`) is a copy, no warp at all.

    Args:
        frames: T frames `(H_t, W_t, 3)`, RGB, uint8 (or float32 in [0, 255]).
        resized_hw: `(H, W)` every frame is resized to before the crop.
        matrix: `(2, 3)` from `crop_affine` (for the flipped frame when `do_flip`).
        do_flip: mirror the resized frames horizontally before the warp.
        out_shape: `(out_h, out_w)`.
        out: where to write the clip, e.g. its slot of a batch
            (`data.pipeline.ClipPreset.video`): a C-contiguous float32 `(T, 3, out_h, out_w)`
            array, every element of which is written. None: a new one.
    Returns:
        `(T, 3, out_h, out_w)` float32 RGB in [0, 1], C-contiguous (`out` when given); 0 where
        the crop leaves the frame.
    """
    count = len(frames)
    if out is not None and (out.shape != (count, 3) + tuple(out_shape)
                            or out.dtype != np.float32 or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float32 {(count, 3) + tuple(out_shape)} "
                         f"array, got {out.dtype} {out.shape}")
    shift = integer_shift(matrix)
    if shift is not None:
        return _shifted_clip(frames, resized_hw, shift, do_flip, out_shape, out=out)
    out_h, out_w = out_shape
    if out is None:
        out = np.empty((count, 3, out_h, out_w), dtype=np.float32)
    box = warp_source_box(matrix, out_shape, resized_hw)
    x0, y0, x1, y1 = box
    if x0 >= x1 or y0 >= y1:  # the crop lies outside the frame: all 0, as the warp gives
        out.fill(0.0)
        return out
    regions = [_source_region(frame, resized_hw, box, do_flip) for frame in frames]
    if len({region.dtype for region in regions}) > 1:  # mixChannels needs one depth
        regions = [region.astype(np.float32) for region in regions]
    _warp_regions(regions, box=box, resized_hw=resized_hw, matrix=matrix, out=out)
    return out


def _warp_regions(regions: Sequence[np.ndarray], *, box: Tuple[int, int, int, int],
                  resized_hw: Tuple[int, int], matrix: np.ndarray, out: np.ndarray) -> None:
    """Warp the source regions (`(y1 - y0, x1 - x0, 3)` each, box `(x0, y0, x1, y1)` of the
    resized frame) of a clip's T frames by `matrix` into `out (T, 3, out_h, out_w)`, / 255.
    """
    x0, y0, x1, y1 = box
    height, width = resized_hw
    count, _, out_h, out_w = out.shape
    # The 3T channels of the clip, four at a time, through one 4-channel warp each: every
    # channel is warped with the same sample positions and weights, so which channels share a
    # warp does not matter, and 3T/4 warps do the work of T.
    channels = 3 * count
    packed = np.empty((y1 - y0, x1 - x0, 4), dtype=regions[0].dtype)
    canvas = np.zeros((height, width, 4), dtype=np.float32)
    warped = np.empty((out_h, out_w, 4), dtype=np.float32)
    planes = out.reshape(channels, out_h, out_w)
    matrix64 = np.asarray(matrix).astype(np.float64)  # as warp_frames
    for first in range(0, channels, 4):
        used = min(4, channels - first)
        # Channel c of the clip is channel c % 3 of frame c // 3, i.e. channel c of `regions`.
        cv2.mixChannels(regions, [packed], [v for j in range(used) for v in (first + j, j)])
        np.copyto(canvas[y0:y1, x0:x1], packed, casting="unsafe")
        warped = cv2.warpAffine(canvas, matrix64, (out_w, out_h), dst=warped,
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=0)
        np.divide(warped[..., :used].transpose(2, 0, 1), np.float32(255.0),
                  out=planes[first:first + used])
