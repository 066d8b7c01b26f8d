"""Estimate the poses of a folder of videos and write them as a Kinetics-format data set, or
as an MMAction2/PYSKL skeleton annotation file (`--format pyskl`).

    python tool/extract_poses.py --src VIDEO_OR_FOLDER [--data_root data/Kinetics/data]
        [--split val] [--subset Custom] [--short_side 256] [--fps none] [--device cpu]
        [--pose_weights PATH] [--pose_min_size 800] [--person_thr 0.5] [--overwrite]
    python tool/extract_poses.py --format pyskl --out FILE.pkl --src FOLDER [--split train] ...

`--format pyskl` writes one file instead (`tool/extract_skeleton_file.py`): the COCO-17 people
of every labelled video, float16, under split `--split`, read back with `--dataset Skeleton`.

`--src` holds one folder per class (`<src>/<class>/<video>.mp4`, as `tool/video2image.py`
mirrors it into `frames/<split>_256/<class>/<video>/`). For every video it writes, under
`--data_root`:

    kinetics-skeleton/kinetics_<split>/<video>.json   the kinetics-skeleton pose file: every
        frame's people in OpenPose-18, x, y normalised by the frame size, `frame_index` from 1
    kinetics-skeleton/kinetics_<split>_label.json     {video: {has_skeleton, label, label_index}}
    Kinetics<subset>_<split>.json                     the COCO-layout annotation file (images:
        id, seq_name = class, file_name = video, frame_num, height, width; annotations:
        action_label, action_name)
    Kinetics<subset>_classes.txt                      class names, line i = class i (shared by
        the splits: a later run keeps the order and appends new classes)

which, with the frames of `tool/video2image.py` (same `--short_side` and `--fps`, so that the
frame counts agree), is what `data/Kinetics/Kinetics.py` reads (`--dataset Kinetics --subset
<subset>`). Poses come from torchvision's Keypoint R-CNN (`common/pose_estimation.py`), converted
to OpenPose-18 (`data/coco_to_openpose.py`).

Resumable: a video whose pose file exists is not estimated again (`--overwrite` redoes it);
every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written file under a final name. Unreadable videos are skipped and listed at the end
(exit status 1); the others are still done. Videos that are not in a class folder (`--src` a
single file, or videos directly in `--src`) get a pose file but no label and no annotation entry.
"""

import argparse
import json
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from common.errors import UsageError, exit_on_error
from common.io.atomic_file import atomic_write
from data.pose_extraction import Estimator, write_pose_file
from data.skeleton_files import pose_table, write_json_atomic
from data.video_decode import video_stem
from main.cli import OneLineParser
from main.pose_options import add_pose_options, make_estimator, parse_pose_command
from tool.extract_skeleton_file import extract_skeleton_file
from tool.video2image import find_videos
from tool.video_poses import LazyEstimator, class_of, estimate_people, read_classes


# --------------------------------------------------------------------------- the folder
@dataclass(frozen=True)
class VideoPoses:
    """What the index files need to know of a video's pose file."""
    frame_num: int
    height: int
    width: int
    has_skeleton: bool


def read_existing_poses(video: str, path: str, result: Dict[str, Any]
                        ) -> Optional[Tuple[VideoPoses, str]]:
    """The pose file a previous run wrote, and the status line; None (a failure recorded in
    `result`) when it cannot be used."""
    try:
        with open(path) as f:
            content = json.load(f)
        found = VideoPoses(int(content["frame_num"]), int(content["height"]),
                           int(content["width"]), any(e.get("skeleton") for e in content["data"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        result["failures"].append((video, f"{path} exists but cannot be used "
                                          f"({type(err).__name__}); redo it with --overwrite"))
        return None
    result["skipped"] += 1
    return found, "skipped (pose file exists)"


def estimate_and_write(video: str, path: str, *, estimator: LazyEstimator,
                       label: Optional[str], label_index: int, short_side: int,
                       fps: Optional[float], result: Dict[str, Any], verbose: bool
                       ) -> Optional[Tuple[VideoPoses, str]]:
    """Estimate the poses of every frame of `video` and write its pose file `path`; returns
    what the index files need and the status line, or None (a failure recorded in `result`)
    for a video that cannot be decoded."""
    started = time.time()
    found = estimate_people(video, estimator=estimator, short_side=short_side, fps=fps,
                            result=result, verbose=verbose)
    if found is None:
        return None
    people, frame_hw = found
    frame_num = len(people)
    table = pose_table(people, range(frame_num), frame_hw)
    write_pose_file(path, table, frame_num=frame_num, frame_hw=frame_hw,
                    label=label or "unknown", label_index=label_index)
    result["done"] += 1
    status = (f"done: {frame_num} frames, people in {len(table)}, "
              f"{time.time() - started:.1f} s")
    return VideoPoses(frame_num, frame_hw[0], frame_hw[1], bool(table)), status


def extract_tree(src: str, data_root: str, *, split: str = "val", subset: str = "Custom",
                 estimator_factory: Callable[[], Estimator], short_side: int = 256,
                 fps: Optional[float] = None, overwrite: bool = False,
                 verbose: bool = False) -> Dict[str, Any]:
    """Estimate and write the poses of every video under `src`, then the label, annotation and
    classes files (see the module docstring).

    Args:
        estimator_factory: builds the estimator, called only when a video needs estimating
            (a finished run needs no weights).

    Returns:
        {"done", "skipped" (pose file existed), "failed", "unlabelled": counts,
         "failures": [(video, reason)], "files": {"labels", "annotations", "classes"}}
    """
    if not osp.exists(src):
        raise UsageError(f"--src {src}: no such video or folder")
    part = "train" if split == "train" else "val"
    pose_dir = osp.join(data_root, "kinetics-skeleton", f"kinetics_{part}")
    classes = read_classes(osp.join(data_root, f"Kinetics{subset}_classes.txt"))
    result: Dict[str, Any] = {"done": 0, "skipped": 0, "failed": 0, "unlabelled": 0,
                              "failures": []}
    estimator = LazyEstimator(estimator_factory)
    entries: List[Dict[str, Any]] = []  # the labelled videos with a pose file
    owner: Dict[str, str] = {}
    for video in find_videos(src):
        stem = video_stem(video)
        if stem in owner:
            result["failures"].append((video, f"its pose file name {stem}.json is already "
                                              f"used by {owner[stem]}"))
            continue
        owner[stem] = video
        label = class_of(video, src)
        if label is not None and label not in classes:
            classes.append(label)
        label_index = classes.index(label) if label is not None else -1
        path = osp.join(pose_dir, f"{stem}.json")
        if osp.isfile(path) and not overwrite:
            found = read_existing_poses(video, path, result)
        else:
            found = estimate_and_write(video, path, estimator=estimator, label=label,
                                       label_index=label_index, short_side=short_side, fps=fps,
                                       result=result, verbose=verbose)
        if found is None:
            continue
        poses, status = found
        if verbose:
            print(f"{status}: {video}", flush=True)
        if label is None:
            result["unlabelled"] += 1
            continue
        entries.append({"stem": stem, "label": label, "label_index": label_index,
                        "frame_num": poses.frame_num, "height": poses.height,
                        "width": poses.width, "has_skeleton": poses.has_skeleton})
    result["failed"] = len(result["failures"])
    result["files"] = write_index_files(entries, classes, data_root=data_root, part=part,
                                        subset=subset) if entries else {}
    return result


def write_index_files(entries: Sequence[Dict[str, Any]], classes: Sequence[str], *,
                      data_root: str, part: str, subset: str) -> Dict[str, str]:
    """The label file (entries of other videos already in it are kept), the annotation file
    (rebuilt: one video per entry, ids 1.. in class then name order) and the classes file."""
    skeleton_root = osp.join(data_root, "kinetics-skeleton")
    label_path = osp.join(skeleton_root, f"kinetics_{part}_label.json")
    labels: Dict[str, Any] = {}
    if osp.isfile(label_path):
        try:
            with open(label_path) as f:
                labels = json.load(f)
        except (OSError, ValueError):
            labels = {}
        if not isinstance(labels, dict):
            labels = {}
    ordered = sorted(entries, key=lambda e: (e["label_index"], e["stem"]))
    for e in ordered:
        labels[e["stem"]] = {"has_skeleton": bool(e["has_skeleton"]), "label": e["label"],
                             "label_index": e["label_index"]}
    images, annotations = [], []
    for video_id, e in enumerate(ordered, start=1):
        images.append({"id": video_id, "seq_name": e["label"], "file_name": e["stem"],
                       "frame_num": e["frame_num"], "height": e["height"], "width": e["width"]})
        annotations.append({"id": video_id, "image_id": video_id,
                            "action_label": e["label_index"], "action_name": e["label"]})
    annotation_path = osp.join(data_root, f"Kinetics{subset}_{part}.json")
    classes_path = osp.join(data_root, f"Kinetics{subset}_classes.txt")
    write_json_atomic(label_path, labels)
    write_json_atomic(annotation_path, {
        "images": images, "annotations": annotations,
        # COCO's object category, as the releases have it: not the action classes.
        "categories": [{"id": 1, "name": "person"}]})
    with atomic_write(classes_path, encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in classes))
    return {"labels": label_path, "annotations": annotation_path, "classes": classes_path}


def make_parser() -> argparse.ArgumentParser:
    """The tool's command line (the pose options: `main.pose_options`).

    Its options are declarations of argparse's one shape, like `main/demo.py`'s; the options
    the two share are declared once, in `main.pose_options` and `main.video_options`.
    """
    parser = OneLineParser(prog="extract_poses.py", description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True,
                        help="a video file, or a folder with one sub-folder of videos per class")
    parser.add_argument("--data_root", default=osp.join("data", "Kinetics", "data"),
                        help="the Kinetics data folder to write into (default: "
                             "data/Kinetics/data)")
    parser.add_argument("--split", choices=("train", "val"), default="val",
                        help="which files to write: kinetics_<split>/, Kinetics<subset>_<split>"
                             ".json (the test set is 'val'; default: val)")
    parser.add_argument("--subset", default="Custom",
                        help="the annotation file is Kinetics<subset>_<split>.json; train and "
                             "test with --subset <subset> (default: Custom)")
    parser.add_argument("--format", choices=("kinetics", "pyskl"), default="kinetics",
                        help="kinetics: the Kinetics-format files under --data_root (default); "
                             "pyskl: one MMAction2/PYSKL skeleton annotation file, --out")
    parser.add_argument("--out", metavar="FILE.pkl",
                        help="--format pyskl: the skeleton file to write or extend (the videos "
                             "go under split --split; class names in <FILE>_label_map.txt)")
    parser.add_argument("--overwrite", action="store_true",
                        help="estimate again the videos whose pose file exists")
    add_pose_options(parser)
    return parser


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the tool; returns `extract_tree`'s result."""
    parser = make_parser()
    args, device = parse_pose_command(parser, argv)
    if not osp.exists(args.src):
        parser.error(f"no such video or folder: {args.src!r}")
    if (args.format == "pyskl") != bool(args.out):
        parser.error("--format pyskl needs --out FILE.pkl" if args.out is None else
                     "--out is the file of --format pyskl; add --format pyskl")
    if args.format == "pyskl":
        result = extract_skeleton_file(
            args.src, args.out, split=args.split,
            estimator_factory=lambda: make_estimator(args, device),
            short_side=args.short_side, fps=args.fps, overwrite=args.overwrite, verbose=True)
    else:
        result = extract_tree(
            args.src, args.data_root, split=args.split, subset=args.subset,
            estimator_factory=lambda: make_estimator(args, device),
            short_side=args.short_side, fps=args.fps, overwrite=args.overwrite, verbose=True)
    print(f"done: {result['done']} videos, skipped (pose file exists): {result['skipped']}, "
          f"failed: {result['failed']}, without a class folder (no label): "
          f"{result['unlabelled']}")
    for name, path in result["files"].items():
        print(f"{name}: {path}")
    for video, reason in result["failures"]:
        print(f"failed: {video}: {reason}")
    return result


if __name__ == "__main__":
    sys.exit(1 if main()["failed"] else 0)
