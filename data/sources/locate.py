"""Where a video's frames are: its frame folder `X/`, or a video file beside where it would be.

A loader names a frame folder for each video (its record's 'frame_dir'). Users may put an
encoded video in the same place instead: `X.mp4` (or .avi, .mkv, .webm, .mov, .m4v), or the
NTU release's `X_rgb.avi`. `find_video_file` is that rule, used by every loader through
`data.sources.video_file.VideoFile`; `frames_location` is the one public answer to "folder or
video" for a given `--frames_from`; `detect_frames_from` decides `auto` once per data set.

Kinetics clips are released as `<youtube_id>_<start>_<end>.mp4` with the times written in 6
digits (`abc_000010_000020`), the way the frame folders are named; a video whose times are
written without the zeros (`abc_10_20.mp4`), or with them where the folder has none, is found
too (tried only when the exact name is missing).
"""
from __future__ import annotations

import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

from data.video_decode import VIDEO_EXTENSIONS

FRAMES_FROM = ("auto", "video", "jpeg")
# The NTU RGB+D release names its videos `<name>_rgb.avi`.
NTU_SUFFIX = "_rgb"
# `<id>_<start>_<end>`: a released Kinetics clip's name.
CLIP_TIMES = re.compile(r"^(?P<id>.+)_(?P<start>\d+)_(?P<end>\d+)$")
# Videos `detect_frames_from` looks at (spread over the data set).
DETECT_SAMPLE = 16


def clip_name_variants(name: str) -> List[str]:
    """Other spellings of a `<id>_<start>_<end>` clip name: the times with and without their
    6-digit zero padding (`a_10_20` <-> `a_000010_000020`); [] for another name."""
    match = CLIP_TIMES.match(name)
    if match is None:
        return []
    start, end = int(match["start"]), int(match["end"])
    variants = [f"{match['id']}_{start}_{end}", f"{match['id']}_{start:06d}_{end:06d}"]
    return [v for v in variants if v != name]


def video_candidates(frame_dir: str) -> List[str]:
    """The video files that stand for the frame folder `frame_dir`, in the order tried."""
    base = frame_dir.rstrip("/\\")
    folder, name = osp.split(base)
    names = [name] + clip_name_variants(name)
    paths = [osp.join(folder, n + ext) for n in names for ext in VIDEO_EXTENSIONS]
    return paths + [base + NTU_SUFFIX + ".avi"]


def find_video_file(frame_dir: str) -> Optional[str]:
    """The video file standing for the frame folder `frame_dir` (`video_candidates`, the
    first that is a file), None when there is none. `frame_dir` may name the video itself."""
    if osp.isfile(frame_dir):
        return frame_dir
    for path in video_candidates(frame_dir):
        if osp.isfile(path):
            return path
    return None


def frames_location(frame_dir: str, frames_from: str) -> Optional[str]:
    """Where the frames of the video whose frame folder is `frame_dir` are read from: the
    folder ('jpeg'), the video file ('video'), or whichever exists, the folder first ('auto');
    None when there is none.

    The public "folder or video" rule for loaders that name a frame folder per video.
    """
    if frames_from not in FRAMES_FROM:
        raise ValueError(f"frames_from must be one of {FRAMES_FROM}, got {frames_from!r}")
    if frames_from != "video" and osp.isdir(frame_dir):
        return frame_dir
    if frames_from != "jpeg":
        return find_video_file(frame_dir)
    return None


def detect_frames_from(frame_dirs: Sequence[str], *, sample: int = DETECT_SAMPLE
                       ) -> Tuple[str, str]:
    """Decide once for a data set whether its frames are JPEG folders or video files.

    Looks at up to `sample` of the videos' frame folders `frame_dirs`, spread over the list:
    'jpeg' when at least as many have a folder as have a video file (and so when neither is
    found: the items then report the missing frames), else 'video'.
    Returns:
        `('jpeg' or 'video', one line saying what was found)`.
    """
    step = max(1, len(frame_dirs) // sample)
    looked = list(frame_dirs[::step][:sample])
    folders = [d for d in looked if osp.isdir(d)]
    videos = [v for v in (find_video_file(d) for d in looked) if v is not None]
    found = (f"{len(folders)} of {len(looked)} videos looked at have a frame folder, "
             f"{len(videos)} a video file")
    if videos and len(videos) > len(folders):
        return "video", f"frames from video files ({found}, e.g. {videos[0]})"
    return "jpeg", f"frames from JPEG folders ({found})"
