"""The videos of an NTU split found in the release's own folders, without an annotation file.

Where a protocol is decided by the sample names (data/NTU/protocols.py), the videos are the
frame folders `frames/nturgb+d_rgb_s<setup>/<SsssCcccPpppRrrrAaaa>[_rgb]/`: the name gives the
label (`A013` -> 12), the split and the skeleton file (`<name>.skeleton`), the folder's JPEGs
give `frame_num`. The release's colour videos `<name>_rgb.avi` may stand for the folders
`<name>_rgb/` (their frames counted from their packets once, at start-up: demuxing, no decoding).
`find_release_videos` describes them as the entries of a COCO-layout file would
(`data.annotations.CocoVideos`), so that the loader treats them exactly as the videos of
NTU_{train,test}.json.
"""
from __future__ import annotations

import functools
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Callable, Collection, Dict, List, Mapping, Tuple

from common.errors import DataError
from data.annotations import CocoVideos
from data.NTU.protocols import Release, in_release, parse_sample, sample_split
from data.sources.base import FrameError
from data.sources.video_file import VideoFile

# The Kinect v2 colour camera's frame, (H, W): the pixels the `.skeleton` colour coordinates
# are given in, whatever size the frames were extracted at.
RGB_HW = (1080, 1920)
SETUP_FOLDER = re.compile(r"nturgb\+d_rgb_s(\d+)")
FRAME_FILE = re.compile(r"\d{6}\.jpg")
# The release's colour videos, `<name>_rgb.avi`, stand for the frame folders `<name>_rgb/`.
VIDEO_SUFFIX = ".avi"


@dataclass
class _Ignored:
    """Entries of the setup folders that are no sample of the release, counted for the log."""

    not_samples: int = 0
    outside: int = 0
    misplaced: int = 0
    notes: List[str] = field(default_factory=list)

    def note(self, release: Release) -> str:
        parts = [f"{n} {what}" for n, what in (
            (self.not_samples, "entries that are no sample folder (SsssCcccPpppRrrrAaaa[_rgb])"),
            (self.outside, f"samples outside {release.title}"),
            (self.misplaced, "samples in the folder of another setup")) if n] + self.notes
        return "ignored in the frame folders: " + ", ".join(parts) if parts else ""


def release_setups(present: Collection[str], release: Release) -> Tuple[List[int], List[str]]:
    """The setups of `release` that `frames/` has a folder for (named either way), and the
    setup folders outside the release (e.g. NTU RGB+D 120's in NTU RGB+D 60's folder)."""
    inside, outside = set(), []
    for name in present:
        match = SETUP_FOLDER.fullmatch(name)
        if match is None:
            continue
        if 1 <= int(match.group(1)) <= release.setups:
            inside.add(int(match.group(1)))
        else:
            outside.append(name)
    return sorted(inside), sorted(outside)


def count_frames(frame_dir: str) -> int:
    """The `%06d.jpg` files of a frame folder."""
    return sum(1 for name in os.listdir(frame_dir) if FRAME_FILE.fullmatch(name))


def _sample_entries(folder: str, ignored: "_Ignored"
                    ) -> List[Tuple[str, Callable[[str], int]]]:
    """A setup folder's entries that may be samples, sorted, each with how its frames are
    counted: the frame folders, and the release's `<name>_rgb.avi` videos, each named as the
    frame folder it stands for (`<name>_rgb`; the folder wins where both are there)."""
    with os.scandir(folder) as entries:
        listed = [(e.name, e.is_dir()) for e in entries]
    folders = {name for name, is_dir in listed if is_dir}
    videos = {name[:-len(VIDEO_SUFFIX)] for name, is_dir in listed
              if not is_dir and name.endswith(VIDEO_SUFFIX)} - folders
    counted = [(n, count_frames) for n in folders]
    counted += [(n, functools.partial(_count_video_frames, ignored=ignored)) for n in videos]
    return sorted(counted, key=lambda entry: entry[0])


def _count_video_frames(frame_dir: str, *, ignored: "_Ignored") -> int:
    """The frames of the video `<frame_dir>.avi`; 0 (the loader leaves it out as too short)
    for a video that cannot be read, noted for the log."""
    try:
        return VideoFile(short_side=0, cache_size=0).frame_count(frame_dir + ".avi")
    except FrameError as err:
        ignored.notes.append(f"unreadable video {err.path} ({err.detail}), counted 0 frames")
        return 0


def find_release_videos(setup_dirs: Mapping[int, str], *, release: Release, protocol: str,
                        split: str, frame_root: str,
                        outside_setups: Collection[str] = ()) -> Tuple[CocoVideos, str]:
    """The split's videos among the sample folders of `setup_dirs` (setup -> its folder).

    Returns:
        `(videos, note)`: one `(image, annotation)` per sample of the split, with the fields
        of docs/data_format.md's NTU entries (`id` is the name's digits,
        `protocols.Sample.video_id`; `height`, `width` the colour camera's `RGB_HW`), and a
        line for the log about the entries that are no sample of the release ('' if none).
    Raises:
        DataError: `<frame_root>: ...` when the split has no sample folder at all.
    """
    coco = CocoVideos(path=frame_root)
    ignored = _Ignored()
    if outside_setups:
        ignored.notes.append(f"setup folders outside {release.title}: "
                             f"{', '.join(outside_setups)}")
    first: Dict[str, str] = {}
    for setup, folder in sorted(setup_dirs.items()):
        for name, frame_num in _sample_entries(folder, ignored):
            sample = parse_sample(name)
            if sample is None or name not in (sample.name, f"{sample.name}_rgb"):
                ignored.not_samples += 1
            elif not in_release(sample, release):
                ignored.outside += 1
            elif sample.setup != setup:
                ignored.misplaced += 1
            elif sample_split(sample, release, protocol) == split:
                frame_dir = osp.join(folder, name)
                if sample.name in first:  # `<name>` and `<name>_rgb` both: the first is kept
                    coco.repeated_images.append(f"{frame_dir} repeats {first[sample.name]}")
                    continue
                first[sample.name] = frame_dir
                image = {"id": sample.video_id, "setup_idx": setup, "file_name": name,
                         "skeleton_file_name": f"{sample.name}.skeleton",
                         "height": RGB_HW[0], "width": RGB_HW[1],
                         "frame_num": frame_num(frame_dir)}
                coco.videos.append((image, {"image_id": sample.video_id,
                                            "action_label": sample.label}))
    if not coco.videos:
        raise DataError(f"{frame_root}: no {release.title} sample folder of the {protocol} "
                        f"{split} split (expected nturgb+d_rgb_s<setup>/SsssCcccPpppRrrrAaaa/"
                        f"000001.jpg ... or SsssCcccPpppRrrrAaaa_rgb.avi, see "
                        f"docs/data_format.md)")
    return coco, ignored.note(release)
