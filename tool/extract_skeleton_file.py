"""`tool/extract_poses.py --format pyskl`: a folder of videos -> one MMAction2/PYSKL skeleton
annotation file (COCO-17 keypoints as the estimator gives them) and its label map."""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from common.errors import DataError, UsageError
from common.io.atomic_file import atomic_write
from data.pose_extraction import Estimator
from data.Skeleton.skeleton_file import read_skeleton_file
from data.Skeleton.skeleton_writer import skeleton_entry, write_skeleton_file
from tool.video2image import find_videos
from tool.video_poses import (LazyEstimator, class_of, estimate_people, frame_folder_name,
                              read_classes)


def skeleton_file_paths(out: str) -> Tuple[str, str]:
    """`(--out, its label map)`: the label map is `<out without .pkl>_label_map.txt`."""
    return out, osp.splitext(out)[0] + "_label_map.txt"


@dataclass
class SkeletonContent:
    """What the skeleton file will hold: its entries, splits and classes (line i of the label
    map = class i), and each entry's position by `frame_dir`."""

    annotations: List[Any] = field(default_factory=list)
    splits: Dict[str, List[str]] = field(default_factory=dict)
    classes: List[str] = field(default_factory=list)
    position: Dict[str, int] = field(default_factory=dict)

    def put(self, entry: Dict[str, Any]) -> None:
        """Add `entry`, or replace the one of its `frame_dir`."""
        at = self.position.setdefault(entry["frame_dir"], len(self.annotations))
        self.annotations[at:at + 1] = [entry]


def read_existing(out: str, label_map: str) -> SkeletonContent:
    """The content of an existing `out` and its label map, to extend; empty for a new `out`.

    Raises:
        DataError: `out` exists without its label map: its entries' labels would be numbered
            anew from the videos met, and could name other classes than they did.
    """
    if not osp.exists(out):
        return SkeletonContent(classes=read_classes(label_map))
    if not osp.isfile(label_map):
        raise DataError(f"{out}: its label map {label_map} is missing, so the labels of its "
                        "entries cannot be kept; put the label map back, or write to a new --out")
    existing = read_skeleton_file(out)
    annotations = list(existing.annotations)
    return SkeletonContent(
        annotations=annotations, splits={k: list(v) for k, v in existing.splits.items()},
        classes=read_classes(label_map),
        position={a.get("frame_dir"): n for n, a in enumerate(annotations)
                  if isinstance(a, dict)})


def extract_skeleton_file(src: str, out: str, *, split: str = "val",
                          estimator_factory: Callable[[], Estimator], short_side: int = 256,
                          fps: Optional[float] = None, overwrite: bool = False,
                          verbose: bool = False) -> Dict[str, Any]:
    """`--format pyskl`: estimate the COCO-17 people of every labelled video under `src` and
    write them as a skeleton annotation file `out` (`data.Skeleton.skeleton_writer`), the
    videos listed under split `split`, and its label map (line i = class i).

    A video's `frame_dir` is its frame folder as `tool/video2image.py` writes it, relative
    (`<class>/<video>`), so that `--frame_root` is video2image's output folder. An existing
    `out` is extended: its entries and splits are kept, a video already in it is not estimated
    again (`overwrite`: it is), and the label map keeps its class order (an existing `out`
    without its label map is refused: see `read_existing`). Videos outside a class folder have
    no label and are not written (counted as 'unlabelled').

    Returns:
        as `extract_tree`, with files {"skeleton file", "label map"}.
    """
    if not osp.exists(src):
        raise UsageError(f"--src {src}: no such video or folder")
    out, label_map = skeleton_file_paths(out)
    content = read_existing(out, label_map)
    members = content.splits.setdefault(split, [])
    result: Dict[str, Any] = {"done": 0, "skipped": 0, "failed": 0, "unlabelled": 0,
                              "failures": [], "files": {}}
    estimator = LazyEstimator(estimator_factory)
    owner: Dict[str, str] = {}
    for video in find_videos(src):
        label = class_of(video, src)
        if label is None:
            result["unlabelled"] += 1
            continue
        frame_dir = frame_folder_name(video, src)
        if frame_dir in owner:
            result["failures"].append((video, f"its frame_dir {frame_dir} is already used by "
                                              f"{owner[frame_dir]}"))
            continue
        owner[frame_dir] = video
        if label not in content.classes:
            content.classes.append(label)
        if frame_dir in content.position and not overwrite:
            result["skipped"] += 1
        elif not _estimate(video, frame_dir, content.classes.index(label), content, estimator,
                           result, short_side=short_side, fps=fps, verbose=verbose):
            continue
        if frame_dir not in members:
            members.append(frame_dir)
    result["failed"] = len(result["failures"])
    if content.annotations:
        write_skeleton_file(out, content.annotations, content.splits)
        with atomic_write(label_map, encoding="utf-8") as f:
            f.write("".join(f"{name}\n" for name in content.classes))
        result["files"] = {"skeleton file": out, "label map": label_map}
    return result


def _estimate(video: str, frame_dir: str, label: int, content: SkeletonContent,
              estimator: LazyEstimator, result: Dict[str, Any], *, short_side: int,
              fps: Optional[float], verbose: bool) -> bool:
    """Estimate `video`'s people into its entry of `content`; False when it failed (the
    failure is in `result`)."""
    found = estimate_people(video, estimator=estimator, short_side=short_side, fps=fps,
                            result=result, verbose=verbose)
    if found is None:
        return False
    entry = skeleton_entry(frame_dir, label, *found)
    content.put(entry)
    result["done"] += 1
    if verbose:
        print(f"done: {entry['total_frames']} frames, {len(entry['keypoint'])} people: {video}",
              flush=True)
    return True
