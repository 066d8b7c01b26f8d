"""NTU RGB+D 60 frames with the Kinect skeletons of the official release.

Layout under `<data_dir>/NTU/data/` (`--protocol xsub`, the default, as the original release):
    NTU_{train,test}.json                         COCO layout; images: id, setup_idx, file_name,
                                                  skeleton_file_name, height, width, frame_num;
                                                  annotations: image_id, action_label
    frames/nturgb+d_rgb_s{setup_idx}/{file_name}/%06d.jpg   the documented naming (docs/
                                                  data_format.md, "NTU RGB+D"): the int 1 gives
                                                  `nturgb+d_rgb_s1`; where only the official
                                                  archives' zero-padded `nturgb+d_rgb_s001`
                                                  folders exist, those (decided once per set)
    nturgb+d_skeletons/{skeleton_file_name}       the official .skeleton text format

`.skeleton` format: frame count; per frame a body count; per body an info line (10 numbers),
a joint-count line, then per joint `x y z depthX depthY colorX colorY oW oX oY oZ state`.
The colour-camera coordinates (fields 5, 6) are in the original RGB frame's pixels.
Classes: 60 (NTU RGB+D 60), unless `--class_num` says otherwise.

With `--protocol xview` no json is read: the videos are the sample folders
`frames/nturgb+d_rgb_s{setup}/SsssCcccPpppRrrrAaaa[_rgb]/` of the split
(data/NTU/release_folders.py), as for NTU RGB+D 120 (data/NTU/NTU120.py). Either way the samples
the release lists as having missing or incomplete skeletons (data/NTU/protocols.py) are left out
and counted ('listed_missing_skeleton').
"""
from __future__ import annotations

import math
import os
import os.path as osp
from typing import Any, Collection, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from common.errors import DataError, UsageError
from common.report.problems import Problem
from data.file_cache import cached_per_file
from data.joint_sets import NTU_25
from data.parsing import (FieldError, int_field, int_value, name_field, parse_float,
                          read_file_bytes, short_repr)
from data.annotations import CocoVideos, load_coco_videos
from data.NTU.protocols import (DEFAULT_PROTOCOL, NTU60, Release, missing_skeletons,
                                parse_sample)
from data.NTU.release_folders import find_release_videos, release_setups
from data.poses import FramePeople, pixel_poses
from data.sources.jpeg_folder import require_folder
from data.video_list import Record
from data.video_pose_dataset import LoadingOptions, VideoPoseDataset

COLOR_X_FIELD, COLOR_Y_FIELD = 5, 6
NTU_CLASS_NUM = NTU60.actions
SetupIdx = Union[int, str]


def setup_folder(setup_idx: SetupIdx, padded: bool = False) -> str:
    """Frame folder of a setup.

    `nturgb+d_rgb_s{setup_idx}` as docs/data_format.md writes it (the int 1 gives
    `nturgb+d_rgb_s1`, a string is used as it is); `padded`: the official archives' naming,
    the number written with 3 digits (`nturgb+d_rgb_s001`; a string that is not all digits
    stays as it is).
    """
    text = str(setup_idx)
    if padded and text.isdigit():
        text = f"{int(text):03d}"
    return f"nturgb+d_rgb_s{text}"


def choose_setup_naming(present: Collection[str], setups: Iterable[SetupIdx]) -> Tuple[bool, str]:
    """Decide once for a data set whether its setup folders are zero-padded.

    The documented naming (`s1`, docs/data_format.md) unless more of the needed setups have a
    zero-padded folder (`s001`, the official archives') than one named the documented way.

    Args:
        present: the names in the `frames/` folder (one listing).
        setups: the `setup_idx` of every video.
    Returns:
        `(padded, note)`: the decision and one line saying what was found.
    """
    needed = sorted({str(s) for s in setups})
    documented = [s for s in needed if setup_folder(s) in present]
    padded = [s for s in needed if setup_folder(s, padded=True) in present]
    example = needed[0] if needed else "1"
    if len(padded) > len(documented):
        return True, (f"frame folders: the zero-padded {setup_folder(example, True)} naming of "
                      f"the official archives ({len(padded)} of {len(needed)} setups found; "
                      f"{len(documented)} named {setup_folder(example)} as in docs/data_format.md)")
    return False, (f"frame folders: {setup_folder(example)} as docs/data_format.md names them "
                   f"({len(documented)} of {len(needed)} setups found)")


class _Lines:
    """The non-blank lines of a `.skeleton` file, read one at a time with their numbers."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1)
                      if line.strip()]
        self.pos = 0

    def next(self, what: str, context: str) -> Tuple[int, List[str]]:
        if self.pos >= len(self.lines):
            last = self.lines[-1][0] if self.lines else 0
            raise DataError(f"{self.path}: truncated: the file ends at line {last}, in {context} "
                            f"(expected {what})")
        line = self.lines[self.pos]
        self.pos += 1
        return line

    def count(self, what: str, context: str) -> Tuple[int, int]:
        """`(line number, value)` of a line holding a non-negative count."""
        n, tokens = self.next(what, context)
        value = int_value(_int_or_none(tokens[0]))
        if value is None or value < 0:
            raise DataError(f"{self.path}: line {n}: {short_repr(' '.join(tokens))} is not a "
                            f"{what}")
        return n, value


def _int_or_none(token: str) -> Optional[int]:
    try:
        return int(token)
    except ValueError:
        return None


@cached_per_file(maxsize=64)
def read_ntu_skeleton(path: str, joint_num: int = NTU_25.joint_num) -> List[FramePeople]:
    """Parse a `.skeleton` file into one entry per frame it holds: None (no body) or
    `(coords (P, J, 2) colour pixels, scores (P, J))`. Joints written as NaN (any Kinect
    spelling; an untracked joint) get coordinate 0 and score 0, as docs/data_format.md ("NTU
    RGB+D") says: the format's own encoding, not a data problem, so it is not reported; the
    others score 1. A complete file with fewer frames than the RGB video is fine: the caller
    gives the missing frames no people. Arrays are read-only (cached).

    Raises:
        DataError: `<path>: ...` for a missing or empty file, a file truncated before the
            frames its header announces, content after them, a count or coordinate that is not
            a number (with the line number), or a body without `joint_num` joints.
    """
    raw = read_file_bytes(path, "skeleton file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file, so not a .skeleton file") from None
    lines = _Lines(path, text)
    if not lines.lines:
        raise DataError(f"{path}: empty file (expected the .skeleton text format)")
    _, frame_count = lines.count("frame count", "the header")
    frames: List[FramePeople] = []
    for f in range(frame_count):
        context = f"frame {f} of the {frame_count} the header announces"
        _, body_count = lines.count("body count", context)
        bodies = [_read_body(lines, joint_num, f"{context}, body {b}")
                  for b in range(body_count)]
        if bodies:
            coords = np.stack([c for c, _ in bodies])
            scores = np.stack([s for _, s in bodies])
            coords.setflags(write=False)
            scores.setflags(write=False)
            frames.append((coords, scores))
        else:
            frames.append(None)
    if lines.pos < len(lines.lines):
        raise DataError(f"{path}: line {lines.lines[lines.pos][0]}: content after the "
                        f"{frame_count} frames the header announces")
    return frames


def _read_body(lines: _Lines, joint_num: int, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """One body of a `.skeleton` frame: `(coords (J, 2) colour pixels, scores (J,))`."""
    path = lines.path
    lines.next("a body info line", where)  # tracking id etc.: not used
    n, count = lines.count("joint count", where)
    if count != joint_num:
        raise DataError(f"{path}: line {n}: {count} joints, expected {joint_num}")
    coords = np.zeros((count, 2), dtype=np.float32)
    scores = np.zeros(count, dtype=np.float32)
    for j in range(count):
        n, tokens = lines.next(f"joint line {j}", where)
        if len(tokens) <= COLOR_Y_FIELD:
            raise DataError(f"{path}: line {n}: a joint line with {len(tokens)} "
                            f"fields, expected 12 (colorX, colorY are fields 6 and 7)")
        try:
            x = parse_float(tokens[COLOR_X_FIELD])
            y = parse_float(tokens[COLOR_Y_FIELD])
        except ValueError:
            raise DataError(f"{path}: line {n}: colorX/colorY "
                            f"{short_repr(tokens[COLOR_X_FIELD])}, "
                            f"{short_repr(tokens[COLOR_Y_FIELD])} are not numbers") from None
        # A NaN joint is how the Kinect export writes an untracked joint: the documented
        # coordinate 0 and score 0, an ordinary value rather than a data problem.
        if math.isfinite(x) and math.isfinite(y):
            coords[j] = (x, y)
            scores[j] = 1.0
    return coords, scores


class NTU(VideoPoseDataset):
    """NTU RGB+D 'train' or 'test' of `cfg.protocol`; see the module docstring.

    Left out at start-up (counted in `skipped`): by the protocol, 'too_short' videos and the
    release's listed samples without skeletons ('listed_missing_skeleton'); for bad data,
    'missing_skeleton_file', 'missing_frame_folder' (no folder for the video's setup under the
    naming chosen) and bad entries ('missing_field', 'bad_field').

    Attributes (besides `VideoPoseDataset`'s): `release` (data/NTU/protocols.py), `protocol`.
    """

    joint_set = NTU_25
    pose_key = "skeleton_path"
    release: Release = NTU60

    def __init__(self, cfg: Any, split: str, *, loading: Optional[LoadingOptions] = None) -> None:
        super().__init__(cfg, split, loading=loading)
        self.root = osp.join(cfg.data_dir, self.release.dataset, "data")
        self.frame_root = osp.join(self.root, "frames")
        self.protocol = cfg.get("protocol") or DEFAULT_PROTOCOL
        if self.protocol not in self.release.protocols:
            raise UsageError(f"--protocol {self.protocol} is not a protocol of "
                             f"{self.release.title} ({', '.join(self.release.protocols)})")
        self.missing = missing_skeletons(self.release)
        self.startup_notes.append(f"protocol {self.protocol}")
        self.padded_setups = False
        self.naming_decided = False
        self.present_setup_folders: Collection[str] = frozenset()
        if self.reads_annotation_files:
            coco = load_coco_videos(osp.join(self.root, f"NTU_{split}.json"))
            require_folder(self.frame_root, "frame folder")
        else:
            require_folder(self.frame_root, "frame folder")
            coco = self._release_videos()
        self.load_videos(coco)

    @property
    def reads_annotation_files(self) -> bool:
        """NTU RGB+D 60's cross-subject split is NTU_{train,test}.json (the original's); every
        other split is found from the sample names of the frame folders."""
        return self.release is NTU60 and self.protocol == "xsub"

    def own_class_count(self) -> Optional[Tuple[int, str]]:
        return self.release.actions, f"{self.release.title}'s own count"

    def _release_videos(self) -> CocoVideos:
        """The split's videos found in the frame folders (`find_release_videos`)."""
        present = set(os.listdir(self.frame_root))
        setups, outside = release_setups(present, self.release)
        self._decide_naming(present, setups)
        setup_dirs = {s: osp.join(self.frame_root, setup_folder(s, self.padded_setups))
                      for s in setups if setup_folder(s, self.padded_setups) in present}
        coco, note = find_release_videos(setup_dirs, release=self.release,
                                         protocol=self.protocol, split=self.split,
                                         frame_root=self.frame_root, outside_setups=outside)
        if note:
            self.startup_notes.append(note)
        return coco

    def _decide_naming(self, present: Collection[str], setups: Iterable[SetupIdx]) -> None:
        self.present_setup_folders = present
        self.padded_setups, note = choose_setup_naming(present, setups)
        self.naming_decided = True
        self.startup_notes.append(note)

    def inspect(self, coco: CocoVideos) -> None:
        """Choose the setup folders' naming once, from the setups the videos name (found in the
        folders: chosen while finding them)."""
        if self.naming_decided:
            return
        setups = []
        for image, _ in coco.videos:
            try:
                setups.append(self._setup_idx(image, ""))
            except FieldError:
                pass  # reported with its video in `video_fields`
        self._decide_naming(set(os.listdir(self.frame_root)), setups)

    @staticmethod
    def _setup_idx(image: Dict[str, Any], where: str) -> SetupIdx:
        value = image.get("setup_idx")
        if isinstance(value, str) and value:
            return name_field(image, "setup_idx", where)
        return int_field(image, "setup_idx", where, minimum=0)

    def video_fields(self, image: Dict[str, Any], where: str) -> Dict[str, Any]:
        return {"setup_idx": self._setup_idx(image, where),
                "file_name": name_field(image, "file_name", where),
                "skeleton_file_name": name_field(image, "skeleton_file_name", where),
                "height": int_field(image, "height", where, minimum=1),
                "width": int_field(image, "width", where, minimum=1)}

    def video_source(self, video_id: int, fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        sample = parse_sample(fields["skeleton_file_name"]) or parse_sample(fields["file_name"])
        if sample is not None and sample.name in self.missing:
            self.exclude("listed_missing_skeleton")
            return None
        folder = setup_folder(fields["setup_idx"], self.padded_setups)
        if folder not in self.present_setup_folders:
            self.reject(Problem("missing_frame_folder", osp.join(self.frame_root, folder),
                                f"video {video_id}: no frame folder for setup "
                                f"{fields['setup_idx']!r}"))
            return None
        skeleton_path = osp.join(self.root, "nturgb+d_skeletons", fields["skeleton_file_name"])
        if not osp.isfile(skeleton_path):
            self.reject(Problem("missing_skeleton_file", skeleton_path,
                                f"video {video_id} has no skeleton file"))
            return None
        return {"frame_dir": osp.join(self.frame_root, folder, fields["file_name"]),
                "skeleton_path": skeleton_path}

    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of 0-based frames (skeleton frame k is RGB frame k; frames past the end of the
        skeleton file have no people: the original raised IndexError), coords scaled from the
        annotation's original size to the resized frame (`x / width * W`, `y / height * H`)."""
        frames = read_ntu_skeleton(record["skeleton_path"], self.joint_set.joint_num)
        return pixel_poses(frames, frame_indices, original_hw=(record["height"], record["width"]),
                           resized_hw=resized_hw, joint_num=self.joint_set.joint_num)
