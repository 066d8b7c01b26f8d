"""The interface every frame source implements, and the error a bad frame raises."""
from __future__ import annotations

import abc
from typing import List, Optional, Sequence, Tuple

import numpy as np

from common.errors import DataError


class FrameError(DataError, OSError):
    """A frame that cannot be read. An `OSError` too, as reading a frame always raised one.

    Attributes:
        path: the file the frame is in.
        reason: 'missing_frame' (no such file) or 'corrupt_frame' (empty, truncated, not
            decodable, or reported damaged by the decoder).
        detail: what is wrong, one line.
    """

    def __init__(self, path: str, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail


class FrameSource(abc.ABC):
    """Reads the frames of one video, given where the video is (`video`, the record's
    'frame_dir': a folder, a file, whatever the source understands) and 0-based frame numbers.

    A video's frame count comes from its annotation (`frame_num`), not from the source.
    Implementations hold settings, and at most a cache of their own process (open files),
    never passed to another: a dataset and its copies in loader workers share one.
    """

    @abc.abstractmethod
    def read(self, video: str, indices: Sequence[int], *,
             fast_decode_shape: Optional[Sequence[int]] = None
             ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
        """The frames `indices` of `video`, in order.

        Args:
            video: where the video is.
            indices: 0-based frame numbers.
            fast_decode_shape: None, or the clip's `video_shape`: the source may then decode
                large frames at a reduced size (other pixels, same resize target).
        Returns:
            `(frames, (H, W))`: `(H_t, W_t, 3)` uint8 (or float32 in [0, 255]) RGB frames and
            the stored size of the first one (what the resize target is computed from).
        Raises:
            FrameError: the first frame that cannot be read.
        """

    @abc.abstractmethod
    def frame_size(self, video: str, index: int) -> Tuple[int, int]:
        """`(H, W)` of frame `index` of `video`, read as `read` would read it (pose_only items
        need the size, not the pixels). Raises `FrameError` as `read`."""
