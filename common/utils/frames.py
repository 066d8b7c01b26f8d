"""Reading extracted video frames.

Frames are JPEGs named `%06d.jpg`, counted from 1 on disk: frame k (0-based, the index every
sampling function uses) is the file `k + 1`.
"""
from __future__ import annotations

import os.path as osp

import cv2
import numpy as np

from common.errors import DataError

FRAME_NAME = "%06d.jpg"
# JPEG start-of-image and end-of-image markers.
JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
# How far from the end the end-of-image marker may sit (some writers pad the file).
EOI_SEARCH_BYTES = 64


class FrameError(DataError, OSError):
    """A frame that cannot be read. An `OSError` too, as `load_frame` always raised one.

    Attributes:
        path: the JPEG.
        reason: 'missing_frame' (no such file) or 'corrupt_frame' (empty, truncated or not
            decodable).
        detail: what is wrong, one line.
    """

    def __init__(self, path: str, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail


def frame_path(frame_dir: str, frame_index: int) -> str:
    """Path of 0-based frame `frame_index` in `frame_dir` (file number `frame_index + 1`)."""
    return osp.join(frame_dir, FRAME_NAME % (frame_index + 1))


def load_frame(path: str) -> np.ndarray:
    """Read one frame as `(H, W, 3)` float32 RGB in [0, 255].

    EXIF orientation is ignored (the extracted frames are stored upright, and the poses were
    computed on the stored pixels).

    Raises:
        FrameError: 'missing_frame' when the file does not exist; 'corrupt_frame' when it is
            empty, a JPEG without its end-of-image marker (a truncated file, which OpenCV would
            decode into a half-grey image with only a warning on stderr), or not decodable.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FrameError(path, "missing_frame", "frame file not found") from None
    except OSError as err:
        raise FrameError(path, "corrupt_frame", f"cannot read ({err.strerror or err})") from None
    if not raw:
        raise FrameError(path, "corrupt_frame", "empty file")
    if raw.startswith(JPEG_SOI) and JPEG_EOI not in raw[-EOI_SEARCH_BYTES:]:
        raise FrameError(path, "corrupt_frame", f"truncated JPEG ({len(raw)} bytes, no "
                                                "end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8),
                         cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise FrameError(path, "corrupt_frame", f"not a decodable image ({len(raw)} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
