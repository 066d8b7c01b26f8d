"""An open video file and the index of its frames, for decoding a clip without the rest.

Frame k (0-based) of a video is its k-th frame in presentation order, the k-th frame
`data.video_decode.iter_video_frames` yields and so `tool/video2image.py`'s file `k + 1`.
`OpenVideo` finds it without decoding the frames before it: opening a file reads its packets
once (demuxing only, no decoding) into a `FrameIndex`, the presentation timestamps of its
frames and of its key frames; a clip then seeks to the last key frame at or before its first
frame and decodes up to its last one.

The frame count is the number of frames the index holds: the video stream's packets that
carry a frame. The container's own count (`stream.frames`, which mp4/mov write and mkv/webm
often do not) is not used for it: a download cut short keeps its full declared count. The
index is built from the packets instead of by decoding every frame (a decode count), which
would cost as much as decoding the whole video once.

Where a packet has no timestamp (some AVI files), the index cannot be searched: such a video
is decoded from its first frame, counting frames (`FrameIndex.seekable` is False).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple

import av
import numpy as np

from data.sources.base import FrameError
from data.video_decode import frame_image

# What PyAV and the file system raise for a file that cannot be read as a video.
DECODE_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError)


@dataclass(frozen=True)
class FrameIndex:
    """Where a video's frames are.

    Attributes:
        pts: `(N,)` int64, the presentation timestamp of frame k, ascending (k = 0..N-1).
        key_pts: `(K,)` int64, the timestamps of the key frames, ascending.
        seekable: whether every packet had a timestamp (else `pts` holds 0..N-1 and a clip
            is decoded from the first frame).
        declared: the container's own frame count (0 when it does not say).
    """

    pts: np.ndarray
    key_pts: np.ndarray
    seekable: bool
    declared: int

    @property
    def frame_count(self) -> int:
        return int(len(self.pts))

    def seek_pts(self, first: int) -> int:
        """The timestamp of the last key frame at or before frame `first` (that of frame 0
        when no key frame precedes it)."""
        target = int(self.pts[first])
        at = bisect.bisect_right(self.key_pts.tolist(), target)
        return int(self.key_pts[at - 1]) if at else int(self.pts[0])


def build_index(container: av.container.InputContainer,
                stream: av.video.stream.VideoStream) -> FrameIndex:
    """Demux the video stream (no decoding) into its `FrameIndex`; the container is left at
    its start."""
    pts: List[int] = []
    keys: List[int] = []
    seekable = True
    for packet in _packets(container, stream):
        if packet.pts is None:
            seekable = False
            continue
        pts.append(int(packet.pts))
        if packet.is_keyframe:
            keys.append(int(packet.pts))
    count = len(pts) if seekable else _packet_count(container, stream)
    if count:  # (seeking a stream without packets fails)
        container.seek(0, backward=True, any_frame=False, stream=stream)
    if not seekable:
        return FrameIndex(np.arange(count, dtype=np.int64), np.zeros(0, np.int64), False,
                          int(stream.frames or 0))
    return FrameIndex(np.sort(np.asarray(pts, dtype=np.int64)),
                      np.sort(np.asarray(keys, dtype=np.int64)), True, int(stream.frames or 0))


def _packets(container: av.container.InputContainer,
             stream: av.video.stream.VideoStream) -> Iterator[av.Packet]:
    """The video stream's packets that carry a frame, from where the container is; an end of
    file where the demuxer wanted more data ends them (the frames before it are there)."""
    try:
        for packet in container.demux(stream):
            if packet.size and not packet.is_discard:  # not the end-of-stream packet
                yield packet
    except av.EOFError:
        return


def _packet_count(container: av.container.InputContainer,
                  stream: av.video.stream.VideoStream) -> int:
    """The video stream's frame-carrying packets, counted from the start again."""
    container.seek(0, backward=True, any_frame=False, stream=stream)
    return sum(1 for _ in _packets(container, stream))


def _open_video_file(path: str) -> BinaryIO:
    """`path` opened for reading; a file that cannot be opened (gone, no permission, a
    folder) is the clip's `FrameError`, as for a JPEG frame file, never an `OSError` that
    would end a loader worker."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FrameError(path, "missing_frame", "video file not found") from None
    except OSError as err:
        raise FrameError(path, "corrupt_frame", f"cannot read ({err.strerror or err})") from None


class OpenVideo:
    """One video file, open, with its `FrameIndex`; `read` decodes the frames of one clip.

    Raises (from the constructor and `read`):
        FrameError: 'corrupt_frame' naming the file when it is no video FFmpeg can open or
            decode (a text file renamed .mp4, a truncated file, an unsupported codec), cannot
            open (no permission), has no video stream or no frame; 'missing_frame' when the
            file is gone, or a clip needs a frame past its end (fewer frames than the
            annotation says).
    """

    def __init__(self, path: str, *, short_side: int) -> None:
        self.path = path
        self.short_side = short_side
        self._file: BinaryIO = _open_video_file(path)
        try:
            # A file object, not the name: FFmpeg would read `concat:` or `pipe:` names as
            # protocols (see data.video_decode).
            self._container = av.open(self._file, mode="r")
            if not self._container.streams.video:
                raise FrameError(path, "corrupt_frame", "no video stream in the file")
            self._stream = self._container.streams.video[0]
            # One decoding thread: loader workers decode in parallel already, and a decoder
            # with a thread pool cannot be freed in a forked child (see video_file).
            self._stream.codec_context.thread_count = 1
            self.index = build_index(self._container, self._stream)
        except DECODE_ERRORS as err:
            self.close()
            raise FrameError(path, "corrupt_frame", f"not a readable video ({describe(err)})"
                             ) from None
        except BaseException:
            self.close()
            raise
        if self.index.frame_count == 0:
            self.close()
            raise FrameError(path, "corrupt_frame", "the video has no frame")

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
        self._file.close()

    def read(self, indices: Sequence[int]) -> List[np.ndarray]:
        """Frames `indices` (0-based, any order) as `(H, W, 3)` uint8 RGB, in that order."""
        wanted = sorted(set(int(k) for k in indices))
        count = self.index.frame_count
        if wanted[0] < 0 or wanted[-1] >= count:
            bad = wanted[-1] if wanted[-1] >= count else wanted[0]
            raise FrameError(self.path, "missing_frame",
                             f"frame {bad} wanted, the video has {count} frames (fewer than "
                             "the annotation's frame_num?)")
        try:
            images = (self._decode_seeking(wanted) if self.index.seekable
                      else self._decode_from_start(wanted))
            if images is None:  # the seek landed past the first frame: decode from the start
                images = self._decode_from_start(wanted)
        except DECODE_ERRORS as err:
            raise FrameError(self.path, "corrupt_frame", f"cannot decode ({describe(err)})"
                             ) from None
        missing = [k for k in wanted if k not in images]
        if missing:
            raise FrameError(self.path, "corrupt_frame",
                             f"frame {missing[0]} could not be decoded (the file ends early "
                             f"or is damaged; its index has {count} frames)")
        return [images[int(k)] for k in indices]

    def _decode_seeking(self, wanted: Sequence[int]) -> Optional[Dict[int, np.ndarray]]:
        """Seek to the key frame before `wanted[0]`, decode up to `wanted[-1]`; None when the
        seek went past the first frame wanted."""
        pts = self.index.pts
        first_pts, last_pts = int(pts[wanted[0]]), int(pts[wanted[-1]])
        by_pts = {int(pts[k]): k for k in wanted}
        self._container.seek(self.index.seek_pts(wanted[0]), backward=True, any_frame=False,
                             stream=self._stream)
        images: Dict[int, np.ndarray] = {}
        for n, frame in enumerate(self._container.decode(self._stream)):
            if frame.pts is None or (n == 0 and frame.pts > first_pts):
                return None
            k = by_pts.get(int(frame.pts))
            if k is not None:
                images[k] = frame_image(frame, self.short_side)
            if frame.pts >= last_pts:
                break
        return images

    def _decode_from_start(self, wanted: Sequence[int]) -> Dict[int, np.ndarray]:
        """Decode from frame 0, counting frames, up to `wanted[-1]`."""
        self._container.seek(0, backward=True, any_frame=False, stream=self._stream)
        targets = set(wanted)
        images: Dict[int, np.ndarray] = {}
        for k, frame in enumerate(self._container.decode(self._stream)):
            if k in targets:
                images[k] = frame_image(frame, self.short_side)
            if k >= wanted[-1]:
                break
        return images


def describe(err: BaseException) -> str:
    """`<type>: <first line>` of a decoding error (FFmpeg's own words, without the file name
    the message names already)."""
    text = getattr(err, "strerror", None) or (str(err).splitlines()[0] if str(err)
                                               else "no detail")
    return f"{type(err).__name__}: {text}"


def frame_hw(frames: Sequence[np.ndarray]) -> Tuple[int, int]:
    """`(H, W)` of the first frame."""
    return int(frames[0].shape[0]), int(frames[0].shape[1])
