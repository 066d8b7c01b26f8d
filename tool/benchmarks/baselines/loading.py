"""The plain loading loop that the fast item path is tested and measured against.

`baseline_clip` is the straightforward reading of the input format (docs/data_format.md), frame
by frame in float32: read the JPEG with OpenCV, BGR -> RGB, float32, bilinear resize, flip,
bilinear warp, / 255; it is what the item path did before it was made faster
(`data.transforms.input_clip`, which gives the same clip bit for bit). `BASELINE_LOADING` puts
the same loop into a dataset through its constructor (`Kinetics(cfg, split,
loading=BASELINE_LOADING)`, `build_dataset(..., loading=BASELINE_LOADING)`), so that a
DataLoader over it measures the baseline through the real item path (poses, collate, workers).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from data.sources import FrameError, JpegFolder
from data.sources.jpeg_folder import frame_path, read_frame_bytes
from data.transforms import warp_frames
from data.video_pose_dataset import LoadingOptions


def baseline_clip(frame_paths: Sequence[str], resized_hw: Tuple[int, int], matrix: np.ndarray,
                  do_flip: bool, out_shape: Tuple[int, int]) -> np.ndarray:
    """One clip the straightforward way: per frame `cv2.imread` -> RGB -> float32 ->
    `cv2.resize` to `resized_hw` (bilinear) -> flip (when `do_flip`) -> `cv2.warpAffine` by
    `matrix` (bilinear, float32, 0 outside); then `/ 255`.

    Args:
        frame_paths: the clip's JPEGs, in order.
        resized_hw: `(H, W)` the frames are resized to.
        matrix: `(2, 3)` from `data.transforms.crop_affine`.
        do_flip: mirror the resized frames horizontally before the warp.
        out_shape: `(out_h, out_w)`.
    Returns:
        `(T, 3, out_h, out_w)` float32 RGB in [0, 1]: what an item's 'video' holds.
    """
    height, width = resized_hw
    out_h, out_w = out_shape
    warped = []
    for path in frame_paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise OSError(f"{path}: cannot read the frame")
        frame = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
        if do_flip:
            frame = cv2.flip(frame, 1)
        warped.append(cv2.warpAffine(frame, matrix.astype(np.float64), (out_w, out_h),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=0))
    clip = np.stack(warped).transpose(0, 3, 1, 2) / np.float32(255.0)
    return np.ascontiguousarray(clip, dtype=np.float32)


def baseline_read_frames(paths: Sequence[str], fast_decode_shape: Optional[Sequence[int]] = None
                         ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
    """`data.sources.jpeg_folder.load_clip_frames` of the baseline: every frame decoded as
    BGR, turned to RGB, float32 (as `load_frame` did; the same checks and errors as the fast
    path), `(H, W)` of the first. `fast_decode_shape` is ignored (the baseline decodes at full
    size)."""
    frames = []
    for path in paths:
        raw = read_frame_bytes(path)
        image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8),
                             cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise FrameError(path, "corrupt_frame", f"not a decodable image ({len(raw)} bytes)")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32))
    return frames, (int(frames[0].shape[0]), int(frames[0].shape[1]))


def baseline_input_clip(frames: Sequence[np.ndarray], resized_hw: Tuple[int, int],
                        matrix: np.ndarray, do_flip: bool,
                        out_shape: Tuple[int, int]) -> np.ndarray:
    """`data.transforms.input_clip` of the baseline: float32 frames resized, flipped, warped
    (`warp_frames`), / 255 -> `(T, 3, out_h, out_w)` float32."""
    resized = np.stack([
        cv2.resize(np.asarray(frame, dtype=np.float32), (resized_hw[1], resized_hw[0]),
                   interpolation=cv2.INTER_LINEAR)
        for frame in frames
    ])
    clip = warp_frames(resized, matrix, do_flip, out_shape)
    clip = clip.transpose(0, 3, 1, 2) / np.float32(255.0)
    return np.ascontiguousarray(clip, dtype=np.float32)


class BaselineJpegFolder(JpegFolder):
    """The JPEG folders read frame by frame the plain way (`baseline_read_frames`)."""

    def read(self, video: str, indices: Sequence[int], *,
             fast_decode_shape: Optional[Sequence[int]] = None
             ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
        return baseline_read_frames([frame_path(video, k) for k in indices], fast_decode_shape)


# A dataset's items made by the plain loop: the same items, bit for bit; only their time
# differs. Each clip is its own array, stacked by the collate (no batch tensor written).
BASELINE_LOADING = LoadingOptions(frames=BaselineJpegFolder(), make_clip=baseline_input_clip,
                                  write_batches=False)
