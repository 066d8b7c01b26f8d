"""Frames decoded from encoded video files (`VideoFile`), with PyAV.

A record's 'frame_dir' names a frame folder `X/`; this source reads the video file that stands
for it (`X.mp4`, `X_rgb.avi`, ...: `data.sources.locate.find_video_file`), or the video
named directly. Frame k is the k-th frame of the video in presentation order, resized so that
its shorter side is `short_side` pixels: the pixels `tool/video2image.py --short_side S` writes
as its file `k + 1` (JPEG then adds its own error; with `--ext png` they are the same bits).

Only what a clip needs is decoded (`data.sources.video_index.OpenVideo`: from the key frame
before its first frame to its last frame). Each process (a loader worker) keeps the last
`cache_size` videos it read open, least recently used first out, so that the clips of one
video (test.py's 10 per video, in a row) do not reopen and re-index the file; the indexes
(frame timestamps, a few KiB a video) of more videos are kept apart. Nothing of it crosses a
fork or a pickle: a worker opens its own files.
"""
from __future__ import annotations

import gc
import os
import weakref
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from data.sources.base import FrameError, FrameSource
from data.sources.locate import find_video_file, video_candidates
from data.sources.video_index import FrameIndex, OpenVideo, frame_hw

# Videos whose location and frame index a process remembers after closing them.
INDEX_CACHE_SIZE = 4096


class _Lru(OrderedDict):
    """A bounded mapping, least recently used first out (`on_drop` is given what leaves)."""

    def __init__(self, size: int, on_drop: Any = None) -> None:
        super().__init__()
        self.size = size
        self.on_drop = on_drop

    def get_recent(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            _, dropped = self.popitem(last=False)
            if self.on_drop is not None:
                self.on_drop(dropped)


class _ProcessState:
    """What one process has open and remembers; made again in a new process.

    The open videos are closed before the process forks (a loader starting its workers): a
    child that inherited one could neither use it (the file offset is shared with the parent)
    nor free it (FFmpeg would wait for the decoder's threads, which a child does not have).
    """

    def __init__(self, cache_size: int) -> None:
        self.pid = os.getpid()
        self.open: _Lru = _Lru(cache_size, on_drop=OpenVideo.close)
        self.indexes: _Lru = _Lru(INDEX_CACHE_SIZE)
        self.paths: _Lru = _Lru(INDEX_CACHE_SIZE)
        self.sizes: _Lru = _Lru(INDEX_CACHE_SIZE)
        state = weakref.ref(self)

        def close_before_fork() -> None:
            alive = state()
            if alive is not None and alive.pid == os.getpid():
                alive.close_open()
                # A closed container is freed only by the cycle collector: here, not in the
                # child.
                gc.collect()

        os.register_at_fork(before=close_before_fork)

    def close_open(self) -> None:
        """Close the open videos (their indexes stay)."""
        while self.open:
            self.open.popitem(last=False)[1].close()


class VideoFile(FrameSource):
    """Frames decoded from a video file per video (see the module docstring).

    Args:
        short_side: the shorter side frames are resized to (0 keeps their size); use the
            `--short_side` of `tool/video2image.py`'s frames to get the same pixels.
        cache_size: videos kept open per process (0: each read opens and closes its file).
    """

    def __init__(self, *, short_side: int = 256, cache_size: int = 8) -> None:
        self.short_side = int(short_side)
        self.cache_size = int(cache_size)
        self._state: Optional[_ProcessState] = None

    def __getstate__(self) -> Dict[str, Any]:
        # Open files stay in the process that opened them.
        return {"short_side": self.short_side, "cache_size": self.cache_size, "_state": None}

    def _process_state(self) -> _ProcessState:
        if self._state is None or self._state.pid != os.getpid():
            # A forked worker starts its own (the parent closed its open videos before the
            # fork: see `_ProcessState`).
            self._state = _ProcessState(self.cache_size)
        return self._state

    def video_path(self, video: str) -> str:
        """The video file of `video` (a frame folder or the file itself).

        Raises:
            FrameError: 'missing_frame' naming the folder and the names tried when there is
                no such file.
        """
        state = self._process_state()
        path = state.paths.get_recent(video)
        if path is None:
            path = find_video_file(video)
            if path is None:
                tried = video_candidates(video)
                raise FrameError(video, "missing_frame",
                                 f"no video file for it ({os.path.basename(tried[0])}, ... "
                                 f"{os.path.basename(tried[-1])} not found)")
            state.paths.put(video, path)
        return path

    def _with_open(self, video: str, use: Any) -> Any:
        """`use(OpenVideo)` on the open video of `video`, cached or opened for the call."""
        state = self._process_state()
        path = self.video_path(video)
        opened = state.open.get_recent(path)
        fresh = opened is None
        if fresh:
            opened = OpenVideo(path, short_side=self.short_side)
            state.indexes.put(path, opened.index)
        try:
            result = use(opened)
        except BaseException:
            # A video that failed half-way is not kept in a state of unknown position.
            state.open.pop(path, None)
            opened.close()
            raise
        if fresh:
            if self.cache_size > 0:
                state.open.put(path, opened)
            else:
                opened.close()
        return result

    def read(self, video: str, indices: Sequence[int], *,
             fast_decode_shape: Optional[Sequence[int]] = None
             ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
        """The frames `indices` of `video`, uint8 RGB, and `(H, W)` of the first one.
        `fast_decode_shape` is not used: every frame is decoded whole."""
        if not len(indices):
            raise ValueError("VideoFile.read needs at least one frame")
        frames = self._with_open(video, lambda opened: opened.read(indices))
        hw = frame_hw(frames)
        self._process_state().sizes.put(self.video_path(video), hw)
        return frames, hw

    def frame_size(self, video: str, index: int) -> Tuple[int, int]:
        """`(H, W)` of the video's frames: decoded once per video and process (a video's
        frames share one size)."""
        hw = self._process_state().sizes.get_recent(self.video_path(video))
        return hw if hw is not None else self.read(video, [index])[1]

    def frame_index(self, video: str) -> FrameIndex:
        """The video's `FrameIndex` (its frame count is `.frame_count`), cached per process."""
        state = self._process_state()
        index = state.indexes.get_recent(self.video_path(video))
        return index if index is not None else self._with_open(video, lambda o: o.index)

    def frame_count(self, video: str) -> int:
        """The number of frames of `video` (see `data.sources.video_index`).

        Raises:
            FrameError: as `read`, for a video that cannot be opened.
        """
        return self.frame_index(video).frame_count
