"""Generating the synthetic data set under a folder: plan, render, annotate, mark complete;
a complete set with the same parameters is found and kept, and a folder that holds another data
set is never written into (see `tool/make_synthetic_dataset.py` for the layout)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional

from common.errors import UsageError
from tool.synthetic.annotations import write_annotations
from tool.synthetic.layout import (DATASET_DIRS, MARKER_NAME, OWNER_MARKER_NAME, dataset_paths,
                                   frame_dir, pose_path, write_json)
from tool.synthetic.plan import CLASSES, VALID_PER_TEST, GenParams, VideoPlan, plan_dataset
from tool.synthetic.video import render_all


def dataset_summary(params: GenParams, plans: Dict[str, List[VideoPlan]],
                    paths: Dict[str, str], *, skipped: bool, seconds: float) -> Dict[str, Any]:
    """What `generate_dataset` returns (see there)."""
    classes = CLASSES[:params.num_classes]
    videos = {
        split: [{
            "name": p.name, "file_name": p.file_name, "image_id": p.number, "label": p.label,
            "action": CLASSES[p.label].name, "motion": p.motion, "scene": p.scene,
            "scene_name": CLASSES[p.scene].scene, "held_prop": p.held_prop,
            "bystander": p.bystander, "motion_params": asdict(p.motion_params),
            "body": asdict(p.body), "actor": {"centre_x": p.actor_x, "ground_y": p.actor_ground,
                                              "scale": p.actor_scale},
            "frame_dir": frame_dir(paths, p), "pose_file": pose_path(paths, p),
        } for p in split_plans]
        for split, split_plans in plans.items()
    }
    return {
        "out_dir": paths["out_dir"],
        "skipped": skipped,
        "seconds": round(seconds, 3),
        "params": asdict(params),
        "paths": paths,
        "class_names": [c.name for c in classes],
        "motions": [c.motion for c in classes],
        "held_props": [c.held_prop for c in classes],
        "scenes": [c.scene for c in classes],
        "counts": {split: len(p) for split, p in plans.items()},
        "videos": videos,
    }


def read_marker(path: str) -> Optional[Dict[str, Any]]:
    """A marker file's content; None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def check_target(out_dir: str) -> None:
    """Refuse to write into a folder that holds another data set.

    `out_dir` is the generator's when it holds its owner marker (or, from before that marker
    existed, a readable "complete" marker). Otherwise none of `<out_dir>/{Kinetics,Mimetics,
    NTU}/data` may hold any file: a real data set's `kinetics_{split}_label.json` and
    annotation files have the very names the generator writes.

    Raises:
        UsageError: one line naming the folder and saying to choose an empty one.
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.isfile(os.path.join(out_dir, OWNER_MARKER_NAME)) or \
            read_marker(os.path.join(out_dir, MARKER_NAME)) is not None:
        return
    for name in DATASET_DIRS:
        folder = os.path.join(out_dir, name, "data")
        if os.path.isdir(folder) and os.listdir(folder):
            raise UsageError(
                f"{folder} already holds files and {out_dir} has no {OWNER_MARKER_NAME} of "
                "this generator: it may be a real data set, which the synthetic one would "
                "overwrite; choose an empty folder for --out")


def flush_to_disk() -> None:
    """Every written file on disk before the completion marker, so that a crash after the
    marker cannot leave a "complete" set with files missing. The frames and pose files are
    written without a flush each: one per pose file was among the generator's largest costs
    (cProfile), and the frames had none."""
    if hasattr(os, "sync"):
        os.sync()


def claim_target(paths: Dict[str, str]) -> None:
    """Write the owner marker (first, before any data): later runs may rebuild here."""
    if not os.path.isfile(paths["owner_marker"]):
        write_json(paths["owner_marker"], {
            "written_by": "tool/make_synthetic_dataset.py",
            "content": "a synthetic action data set in the Kinetics and Mimetics formats "
                       "(not real data); this generator may overwrite it",
        })


def checked_params(*, seed: int, num_classes: int, train_per_class: int, test_per_class: int,
                   valid_per_class: Optional[int] = None, frames: int, height: int, width: int,
                   subset: str, jpeg_quality: int) -> GenParams:
    """The generator's parameters, checked; `valid_per_class=None` takes
    `VALID_PER_TEST` times `test_per_class`.

    Raises:
        UsageError: a count or size out of range (named by its command-line option).
    """
    if not 2 <= num_classes <= len(CLASSES):
        raise UsageError(f"--num_classes must be in [2, {len(CLASSES)}], got {num_classes}")
    if valid_per_class is None:
        valid_per_class = VALID_PER_TEST * test_per_class
    if min(train_per_class, test_per_class, valid_per_class, frames) < 1:
        raise UsageError("--train_per_class, --test_per_class, --valid_per_class and --frames "
                         "must be >= 1")
    if min(height, width) < 16:
        raise UsageError("--height and --width must be at least 16 pixels")
    return GenParams(seed=int(seed), num_classes=int(num_classes),
                     train_per_class=int(train_per_class),
                     test_per_class=int(test_per_class), valid_per_class=int(valid_per_class),
                     frames=int(frames), height=int(height), width=int(width),
                     subset=str(subset), jpeg_quality=int(jpeg_quality))


def generate_dataset(out_dir: str, *, seed: int = 0, num_classes: int = 8,
                     train_per_class: int = 60, test_per_class: int = 15,
                     valid_per_class: Optional[int] = None, frames: int = 20,
                     height: int = 128, width: int = 170, subset: str = "Synth",
                     workers: Optional[int] = None, jpeg_quality: int = 90,
                     force: bool = False) -> Dict[str, Any]:
    """Generate (or find complete) the synthetic data set under `out_dir`; return a summary.

    The summary holds `paths`, `class_names`, `motions`, `held_props`, `scenes` (per class),
    `counts` per split and `videos` (per split, per video: name, file_name, image_id, label,
    `scene` = the class index whose background is drawn, held_prop, motion, motion_params,
    body and actor placement (enough to recompute the exact joints with
    `tool.synthetic.actions.action_pose`), frame_dir, pose_file, ...). `skipped` is True when
    a complete set with the same parameters was already there (`<out_dir>/synthetic_params.json`);
    `force` rebuilds. Raises `UsageError` (see `check_target`) rather than write into a folder
    that holds another data set.
    Files of an earlier, different set that the new one does not name are left in place (the
    annotation files only list the new videos). `workers=None` uses up to 2 processes (this one
    and fresh helper interpreters, each rendering an interleaved share of the videos).
    """
    params = checked_params(seed=seed, num_classes=num_classes,
                            train_per_class=train_per_class, test_per_class=test_per_class,
                            valid_per_class=valid_per_class, frames=frames, height=height,
                            width=width, subset=subset, jpeg_quality=jpeg_quality)
    out_dir = os.path.abspath(out_dir)
    paths = dataset_paths(out_dir, params.subset)
    plans = plan_dataset(params)
    start = time.perf_counter()
    if not force and read_marker(paths["marker"]) == asdict(params):
        return dataset_summary(params, plans, paths, skipped=True, seconds=0.0)
    check_target(out_dir)
    claim_target(paths)

    # The marker goes first and comes back last, so an interrupted run is never "complete".
    if os.path.exists(paths["marker"]):
        os.remove(paths["marker"])
    n_videos = sum(len(p) for p in plans.values())
    n_workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    render_all(out_dir, params, min(n_workers, n_videos))
    write_annotations(plans, params, paths)
    flush_to_disk()
    write_json(paths["marker"], asdict(params))
    return dataset_summary(params, plans, paths, skipped=False,
                           seconds=time.perf_counter() - start)
