"""Decoding videos into frames, as `tool/video2image.py` extracts them and as `main/demo.py`
and `tool/extract_poses.py` read them: the same frame selection (`--fps`), rotation and resize.

Videos are decoded in-process with PyAV (no shell, any legal file name works).
"""
from __future__ import annotations

import os.path as osp
from typing import Iterator, Optional, Tuple

import av
import cv2
import numpy as np

from common.errors import DataError


VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


# A container that declares its frame count (mp4, mov) but yields fewer frames than that was cut
# short, typically a half-finished download: FFmpeg only logs this and stops early, so without a
# check the folder of a truncated video would look complete. A few frames of slack allow for
# edit lists, which may legitimately hide some declared frames.
MISSING_FRAMES_SLACK = 2


MISSING_FRAMES_FRACTION = 0.01


# Timestamps come from integer pts times a rational time base; this absorbs the float rounding
# so that a frame exactly on the resampling grid is not dropped for being 1e-12 s early.
TIME_EPS = 1e-6


def is_video_file(path: str) -> bool:
    """Whether `path` has one of the video extensions, compared case-insensitively (`.MP4`)."""
    return osp.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def video_stem(path: str) -> str:
    """The file name without its last extension only: `a.b.mp4` -> `a.b` (the original cut at
    the first dot, so `a.b.mp4` and `a.c.mp4` both became `a`)."""
    return osp.splitext(osp.basename(path))[0]


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Resize so that the shorter side is `short_side` pixels; `short_side <= 0` keeps the size.

    The long side is `int(long / short * short_side)` (truncated), the rule the original frames
    were made with, so that frame sizes, and the pose coordinates measured on them, agree.
    INTER_AREA when shrinking because it averages the pixels a down-scaled pixel covers instead
    of skipping some (less aliasing); linear when enlarging, where INTER_AREA has no advantage.
    """
    if short_side <= 0:
        return image
    height, width = image.shape[:2]
    short, long = min(height, width), max(height, width)
    if short == short_side:
        return image
    new_long = int(long / short * short_side)
    new_height, new_width = (short_side, new_long) if height <= width else (new_long, short_side)
    interpolation = cv2.INTER_AREA if short_side < short else cv2.INTER_LINEAR
    return cv2.resize(image, (new_width, new_height), interpolation=interpolation)


def apply_rotation(image: np.ndarray, degrees: float) -> np.ndarray:
    """Turn a decoded frame upright: rotate it counterclockwise by `degrees` (a multiple of 90).

    Phone videos store sensor-oriented pixels plus a display matrix; the `ffmpeg` command the
    original frames were made with applies it by default, so the frames (and the poses computed
    on them) are upright. PyAV does not, so it is done here. Angles that are not a multiple of
    90 degrees are rounded to the nearest quarter turn.
    """
    quarter_turns = int(round(degrees / 90.0)) % 4
    if quarter_turns == 0:
        return image
    # np.rot90 turns from the first axis (rows, downwards) towards the second (columns), which
    # on an image shown with row 0 on top is counterclockwise; cv2 needs contiguous memory.
    return np.ascontiguousarray(np.rot90(image, quarter_turns))


class FpsSampler:
    """Keeps the frames that fall on a `fps` grid of timestamps, counted from the first frame.

    Frames are kept, never duplicated: a target rate above the video's rate keeps every frame
    rather than inventing repeated ones. Variable-frame-rate videos are handled because the
    decision uses each frame's own timestamp, not its index.
    """

    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.period = 1.0 / fps
        self.start: Optional[float] = None
        self.next_time = 0.0

    def keep(self, time: float) -> bool:
        if self.start is None:
            self.start = time
        t = time - self.start
        if t + TIME_EPS < self.next_time:
            return False
        # Advance past t (not just by one period) so that a gap in the video does not make a
        # burst of kept frames afterwards.
        while self.next_time <= t + TIME_EPS:
            self.next_time += self.period
        return True


def frame_image(frame: av.VideoFrame, short_side: int) -> np.ndarray:
    """A decoded frame as `(H, W, 3)` uint8 RGB, upright (`apply_rotation`) and resized
    (`resize_short_side`): the pixels `tool/video2image.py` writes for it."""
    image = apply_rotation(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)
    return resize_short_side(image, short_side)


# --------------------------------------------------------------------------- decoding
def iter_video_frames(path: str, *, short_side: int = 256,
                      fps: Optional[float] = None) -> Iterator[np.ndarray]:
    """The frames of a video exactly as `tool/video2image.py` extracts them (same frame
    selection, rotation and resize), as `(H, W, 3)` uint8 RGB arrays instead of JPEGs.

    Raises:
        Whatever PyAV raises for an unreadable file; ValueError for a file without a video
        stream, without a decodable frame, or clearly shorter than its container declares.
    """
    sampler = FpsSampler(fps) if fps is not None else None
    decoded = kept = 0
    # The video is handed to PyAV as an open Python file, not as a name: FFmpeg reads a name
    # such as `pipe:0` or `concat:x|y` as a protocol, and names that are not UTF-8 cannot be
    # passed to it at all; a file object sidesteps both.
    with open(path, "rb") as f, av.open(f, mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        # Frame threads speed up decoding several-fold and do not change the decoded pixels.
        stream.thread_type = "AUTO"
        rate = stream.average_rate
        declared = stream.frames  # 0 when the container does not say (mkv, webm, avi often)
        for frame in container.decode(stream):
            decoded += 1
            if sampler is not None:
                when = frame.time
                if when is None:
                    when = (decoded - 1) / float(rate) if rate else float(decoded - 1)
                if not sampler.keep(when):
                    continue
            kept += 1
            yield frame_image(frame, short_side)
    missing = declared - decoded
    if declared > 0 and missing > max(MISSING_FRAMES_SLACK, MISSING_FRAMES_FRACTION * declared):
        raise ValueError(f"truncated video: decoded {decoded} of the {declared} frames its "
                         "container declares")
    if kept == 0:
        raise ValueError("no frame could be decoded")


def video_frame_rate(path: str, fps: Optional[float] = None) -> float:
    """Frames per second of the frames `iter_video_frames` yields: `fps` when given, else the
    video's average rate (25 when the container does not say)."""
    if fps is not None:
        return float(fps)
    with open(path, "rb") as f, av.open(f, mode="r") as container:
        rate = container.streams.video[0].average_rate if container.streams.video else None
    return float(rate) if rate else 25.0


def decode_video(path: str, *, short_side: int = 256, fps: Optional[float] = None
                 ) -> Tuple[np.ndarray, float]:
    """All frames of a video, `(N, H, W, 3)` uint8 RGB, and their rate (see
    `iter_video_frames`); `DataError` naming the file when it cannot be read."""
    try:
        frames = np.stack(list(iter_video_frames(path, short_side=short_side, fps=fps)))
        return frames, video_frame_rate(path, fps)
    except (OSError, ValueError, av.FFmpegError) as err:
        raise DataError(f"{path}: cannot read the video ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None

