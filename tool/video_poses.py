"""What both output formats of `tool/extract_poses.py` share: a video's class folder and frame
folder name, the classes file, the estimator built on first use, and estimating every frame of
a video (unreadable videos recorded as failures, never raised)."""
from __future__ import annotations

import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Tuple

import av

from data.pose_extraction import Estimator, People, estimate_video_people
from data.video_decode import iter_video_frames
from tool.video2image import _out_dir_for as frame_folder_of


def class_of(video: str, src: str) -> Optional[str]:
    """The class folder of a video `<src>/<class>/<video>`; None elsewhere."""
    if osp.isfile(src):
        return None
    parts = osp.normpath(osp.relpath(video, src)).split(os.sep)
    return parts[0] if len(parts) == 2 else None


def read_classes(path: str) -> List[str]:
    """Class names of a classes file (line i = class i; blank lines ignored); [] if absent."""
    if not osp.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def frame_folder_name(video: str, src: str) -> str:
    """The frame folder `tool/video2image.py` writes for `video` under `src`, relative to its
    output folder, with '/' separators (`<class>/<video>`; `<video>` for a single file)."""
    return frame_folder_of(video, src, "").replace(os.sep, "/")


def record_failure(result: Dict[str, Any], video: str, err: Exception, *,
                   verbose: bool) -> None:
    """A video that could not be decoded or estimated: its reason (the error's type and first
    line) in `result['failures']`, and on the console when `verbose`."""
    text = str(err).splitlines()[0] if str(err) else "no detail"
    result["failures"].append((video, f"{type(err).__name__}: {text}"))
    if verbose:
        print(f"failed: {video} ({type(err).__name__}: {text})", flush=True)


class LazyEstimator:
    """Builds the estimator on first use: a run whose videos are all done, or unreadable,
    needs no weights."""

    def __init__(self, factory: Callable[[], Estimator]) -> None:
        self.factory = factory
        self.estimator: Optional[Estimator] = None

    def get(self) -> Estimator:
        if self.estimator is None:
            # Outside any try: missing weights stop the run (UsageError is a ValueError).
            self.estimator = self.factory()
        return self.estimator


def estimate_people(video: str, *, estimator: LazyEstimator, short_side: int,
                    fps: Optional[float], result: Dict[str, Any], verbose: bool
                    ) -> Optional[Tuple[List[People], Tuple[int, int]]]:
    """The COCO-17 people of every frame of `video` and the frames' `(H, W)`
    (`estimate_video_people`), or None (a failure recorded in `result`) for a video that
    cannot be decoded."""
    try:
        # The first frame first: an unreadable video is found before any detector is built,
        # so a run with nothing readable left to do needs no weights.
        next(iter_video_frames(video, short_side=short_side, fps=fps))
    except (OSError, ValueError, av.FFmpegError) as err:
        record_failure(result, video, err, verbose=verbose)
        return None
    found_estimator = estimator.get()
    try:
        return estimate_video_people(video, found_estimator, short_side=short_side, fps=fps)
    except (OSError, ValueError, av.FFmpegError) as err:
        record_failure(result, video, err, verbose=verbose)
        return None
