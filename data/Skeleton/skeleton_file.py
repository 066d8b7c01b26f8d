"""The 2D skeleton annotation files of MMAction2 and PYSKL ("toolbox skeleton files"): reading
and checking them (docs/data_format.md, "Skeleton annotation files").

A file is a pickle of `{'split': {name: [frame_dir, ...]}, 'annotations': [entry, ...]}`; an
entry holds `frame_dir`, `label`, `img_shape` (H, W), `total_frames`, `keypoint` (M, T, 17, 2)
in pixels of `img_shape` and `keypoint_score` (M, T, 17), float16 or float32. It is read with
`data.safe_pickle.load_array_pickle` (numpy arrays and containers only).

What makes the whole file unusable is a `DataError` naming the file and the field (not a
pickle, no `split`/`annotations`, a 3D or non-COCO file, Kinetics-400's table of contents
whose keypoints are elsewhere); what spoils one entry is a `FieldError` (`check_entry`), and
the loader leaves that video out and counts it.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import DataError, UsageError
from data.parsing import FieldError, int_value, key_state, short_repr, type_name
from data.safe_pickle import load_array_pickle

WHAT = "skeleton annotation file"
COCO_JOINTS = 17
REQUIRED_KEYS = ("frame_dir", "label", "img_shape", "total_frames", "keypoint", "keypoint_score")


@dataclass(frozen=True)
class SkeletonFile:
    """A skeleton annotation file, its layout checked (not yet its entries).

    Attributes:
        path: the file.
        splits: split name -> the `frame_dir` of its videos, in file order.
        annotations: the raw entries (checked one at a time by `check_entry`).
        largest_label: the largest integer `label` of any entry (-1: none).
    """

    path: str
    splits: Dict[str, List[str]]
    annotations: List[Any]
    largest_label: int


@dataclass(frozen=True)
class SkeletonEntry:
    """One checked entry: a video's poses as the file stores them.

    Attributes:
        frame_dir: the video's identifier (and its frame folder under `--frame_root`).
        label: the action class.
        total_frames: T.
        img_hw: `(H, W)` the keypoints are in pixels of.
        keypoint: `(M, T, 17, 2)` COCO-17 (x, y), float16 or float32 as stored (M may be 0).
        keypoint_score: `(M, T, 17)`.
    """

    frame_dir: str
    label: int
    total_frames: int
    img_hw: Tuple[int, int]
    keypoint: np.ndarray
    keypoint_score: np.ndarray


def read_skeleton_file(path: str) -> SkeletonFile:
    """Load a skeleton annotation file and check its layout.

    Raises:
        DataError: `<path>: ...` for a file that is missing, not a (safe) pickle, not
            `{'split': {...}, 'annotations': [...]}`, Kinetics-400's table of contents (its
            entries name a `raw_file` instead of holding `keypoint`), or whose first keypoint
            array is not COCO-17 2D (a 3D or other joint set file).
    """
    content = load_array_pickle(path, WHAT)
    if not isinstance(content, dict):
        raise DataError(f"{path}: not a {WHAT} (the top level is {type_name(content)}, not a "
                        "dict with 'split' and 'annotations')")
    annotations = content.get("annotations")
    if not isinstance(annotations, list):
        raise DataError(f"{path}: not a {WHAT} ('annotations' is "
                        f"{key_state(content, 'annotations')}, not a list)")
    splits = _splits(content, path)
    _check_not_table_of_contents(annotations, path)
    _check_joint_layout(annotations, path)
    labels = [_int(a.get("label")) for a in annotations if isinstance(a, dict)]
    largest = max([v for v in labels if v is not None and v >= 0], default=-1)
    return SkeletonFile(path=path, splits=splits, annotations=annotations, largest_label=largest)


def _splits(content: Dict[str, Any], path: str) -> Dict[str, List[str]]:
    """The `split` dict, checked: names -> lists of strings."""
    splits = content.get("split")
    if not isinstance(splits, dict):
        raise DataError(f"{path}: not a {WHAT} ('split' is {key_state(content, 'split')}, not "
                        "a dict of split name -> list of frame_dir)")
    out: Dict[str, List[str]] = {}
    for name, members in splits.items():
        if not isinstance(members, (list, tuple)) or \
                not all(isinstance(m, str) for m in members):
            raise DataError(f"{path}: 'split'[{name!r}] is not a list of frame_dir strings")
        out[str(name)] = list(members)
    return out


def _check_not_table_of_contents(annotations: Sequence[Any], path: str) -> None:
    """Kinetics-400's file keeps its keypoints in separate files: say so, and how to convert."""
    for n, entry in enumerate(annotations):
        if isinstance(entry, dict) and "keypoint" not in entry and "raw_file" in entry:
            raise DataError(
                f"{path}: annotations[{n}] has 'raw_file' and no 'keypoint': this is "
                "Kinetics-400's table of contents, whose keypoints lie in separate compressed "
                "files; it is not read here: convert it to plain entries with 'keypoint' and "
                "'keypoint_score' (docs/data_format.md, 'Skeleton annotation files')")


def _check_joint_layout(annotations: Sequence[Any], path: str) -> None:
    """The first entry's `keypoint` must be `(M, T, 17, 2)`: another layout is another kind of
    file (NTU's 3D skeletons, OpenPose-18, ...), not one bad video."""
    for n, entry in enumerate(annotations):
        array = entry.get("keypoint") if isinstance(entry, dict) else None
        if isinstance(array, np.ndarray) and array.ndim == 4:
            if array.shape[2:] != (COCO_JOINTS, 2):
                raise DataError(
                    f"{path}: annotations[{n}]['keypoint'] has shape {array.shape}: "
                    f"{array.shape[2]} joints of {array.shape[3]} values, expected "
                    f"(M, T, {COCO_JOINTS}, 2); only 2D COCO-17 files (e.g. ntu60_hrnet.pkl, "
                    "ntu60_2d.pkl) are read")
            return


def select_split(skeleton: SkeletonFile, name: Optional[str]) -> List[str]:
    """The `frame_dir` list of split `name`.

    Raises:
        UsageError: no name given, or a name the file does not have (the file's split names
            are listed).
    """
    names = ", ".join(skeleton.splits) or "none"
    if name is None:
        raise UsageError(f"--dataset Skeleton needs --split NAME: the splits of "
                         f"{skeleton.path} are {names}")
    if name not in skeleton.splits:
        raise UsageError(f"--split {name}: {skeleton.path} has no such split; its splits are "
                         f"{names}")
    return skeleton.splits[name]


def _int(value: Any) -> Optional[int]:
    """An integer field (a Python or numpy integer), else None."""
    if isinstance(value, np.integer):
        value = int(value)
    return int_value(value)


def check_entry(entry: Any, where: str) -> SkeletonEntry:
    """An annotation entry, checked.

    Args:
        where: names the entry in messages (`annotations[12]`).
    Raises:
        FieldError: 'missing_field' (a required key absent), 'bad_field' (a value of the wrong
            type, a wrong array shape or dtype, `total_frames` disagreeing with the arrays, no
            finite keypoint at all). An entry without people (M = 0) passes: whether it is of
            use depends on the stage.
    """
    if not isinstance(entry, dict):
        raise FieldError("bad_field", f"{where} is {type_name(entry)}, not a dict")
    for key in REQUIRED_KEYS:
        if entry.get(key) is None:
            raise FieldError("missing_field", f"{where} has no '{key}'")
    frame_dir = entry["frame_dir"]
    where = f"{where} (frame_dir {short_repr(frame_dir)})"
    if not _is_relative_path(frame_dir):
        raise FieldError("bad_field", f"{where}: 'frame_dir' is not a relative folder name")
    label = _int(entry["label"])
    total = _int(entry["total_frames"])
    if label is None or label < 0:
        raise FieldError("bad_field", f"{where}: 'label' is {short_repr(entry['label'])}, not "
                                      "an integer >= 0")
    if total is None or total < 1:
        raise FieldError("bad_field", f"{where}: 'total_frames' is "
                                      f"{short_repr(entry['total_frames'])}, not an integer >= 1")
    img_hw = _image_shape(entry["img_shape"], where)
    keypoint, score = _arrays(entry, where)
    if keypoint.shape[1] != total:
        raise FieldError("bad_field", f"{where}: 'total_frames' is {total} but 'keypoint' "
                                      f"holds {keypoint.shape[1]} frames")
    if keypoint.shape[0] and not (np.isfinite(keypoint).all(axis=-1) & np.isfinite(score)).any():
        raise FieldError("bad_field", f"{where}: no finite keypoint at all (NaN/inf)")
    return SkeletonEntry(frame_dir=frame_dir, label=label, total_frames=total, img_hw=img_hw,
                         keypoint=keypoint, keypoint_score=score)


def _is_relative_path(value: Any) -> bool:
    """A non-empty relative path without '..' (it is joined under `--frame_root`)."""
    if not isinstance(value, str) or not value or "\0" in value:
        return False
    parts = posixpath.normpath(value.replace("\\", "/")).split("/")
    return not value.startswith(("/", "\\")) and ".." not in parts and parts != ["."]


def _image_shape(value: Any, where: str) -> Tuple[int, int]:
    """`img_shape` as `(H, W)` positive integers, from a tuple, a list or a 1-D integer
    array (files written with numpy store it so)."""
    is_vector = isinstance(value, np.ndarray) and value.ndim == 1 and \
        np.issubdtype(value.dtype, np.integer)
    sides = [_int(v) for v in value] if isinstance(value, (tuple, list)) or is_vector else []
    if len(sides) != 2 or any(s is None or s < 1 for s in sides):
        raise FieldError("bad_field", f"{where}: 'img_shape' is {short_repr(value)}, not "
                                      "(height, width)")
    return sides[0], sides[1]


def _arrays(entry: Dict[str, Any], where: str) -> Tuple[np.ndarray, np.ndarray]:
    """`keypoint (M, T, 17, 2)` and `keypoint_score (M, T, 17)`, floating point."""
    keypoint, score = entry["keypoint"], entry["keypoint_score"]
    for key, array, rank in (("keypoint", keypoint, 4), ("keypoint_score", score, 3)):
        if not isinstance(array, np.ndarray) or array.ndim != rank or \
                not np.issubdtype(array.dtype, np.floating):
            shape = getattr(array, "shape", None)
            raise FieldError("bad_field", f"{where}: '{key}' is {type_name(array)} of shape "
                                          f"{shape}, expected a float array of rank {rank}")
    if keypoint.shape[2:] != (COCO_JOINTS, 2):
        raise FieldError("bad_field", f"{where}: 'keypoint' has shape {keypoint.shape}, "
                                      f"expected (M, T, {COCO_JOINTS}, 2)")
    if score.shape != keypoint.shape[:3]:
        raise FieldError("bad_field", f"{where}: 'keypoint_score' has shape {score.shape}, "
                                      f"expected {keypoint.shape[:3]} (M, T, V of 'keypoint')")
    return keypoint, score
