"""Reading extracted video frames.

Frames are JPEGs named `%06d.jpg`, counted from 1 on disk: frame k (0-based, the index every
sampling function uses) is the file `k + 1`.
"""
from __future__ import annotations

import os.path as osp

import cv2
import numpy as np

FRAME_NAME = "%06d.jpg"


def frame_path(frame_dir: str, frame_index: int) -> str:
    """Path of 0-based frame `frame_index` in `frame_dir` (file number `frame_index + 1`)."""
    return osp.join(frame_dir, FRAME_NAME % (frame_index + 1))


def load_frame(path: str) -> np.ndarray:
    """Read one frame as `(H, W, 3)` float32 RGB in [0, 255].

    EXIF orientation is ignored (the extracted frames are stored upright, and the poses were
    computed on the stored pixels). Raises IOError naming the path when the file is missing or
    cannot be decoded (cv2.imread only returns None).
    """
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        reason = "missing" if not osp.isfile(path) else "unreadable or corrupt"
        raise IOError(f"cannot read frame {path!r} ({reason})")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
