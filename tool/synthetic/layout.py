"""Where the synthetic data set's files go under `<out>` (the Kinetics and Mimetics layouts the
project's loaders read), its marker files, and the JSON writer that gives the same bytes for the
same data."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from common.io.atomic_file import atomic_write
from tool.synthetic.plan import CLASSES, OUT_OF_CONTEXT_SPLITS, VideoPlan

MARKER_NAME = "synthetic_params.json"  # the "complete" marker: the parameters of the set
OWNER_MARKER_NAME = "synthetic_dataset.json"  # "this folder holds the generator's output"
# Data set folders under <out> that may hold a real data set (the project's data_dir layout).
DATASET_DIRS = ("Kinetics", "Mimetics", "NTU")
# The validation splits are a subset of their own, `<subset>Valid` (KineticsSynthValid_val.json,
# MimeticsSynthValid.json): test.py reads them with `--subset SynthValid`. Their videos sit in
# the test splits' folders (their names are numbered on, so none is shared).
VALID_SUFFIX = "Valid"


def valid_subset(subset: str) -> str:
    """The subset name under which the validation splits of `subset` are read."""
    return subset + VALID_SUFFIX


def dataset_paths(out_dir: str, subset: str) -> Dict[str, str]:
    """The data set's folders, annotation files and markers under `out_dir`, by role."""
    kin = os.path.join(out_dir, "Kinetics", "data")
    mim = os.path.join(out_dir, "Mimetics", "data")
    return {
        "out_dir": out_dir,
        "kinetics_dir": kin,
        "kinetics_train_json": os.path.join(kin, f"Kinetics{subset}_train.json"),
        "kinetics_val_json": os.path.join(kin, f"Kinetics{subset}_val.json"),
        "kinetics_skeleton_dir": os.path.join(kin, "kinetics-skeleton"),
        "mimetics_dir": mim,
        "mimetics_json": os.path.join(mim, f"Mimetics{subset}.json"),
        "valid_in_json": os.path.join(kin, f"Kinetics{valid_subset(subset)}_val.json"),
        "valid_out_json": os.path.join(mim, f"Mimetics{valid_subset(subset)}.json"),
        "marker": os.path.join(out_dir, MARKER_NAME),
        "owner_marker": os.path.join(out_dir, OWNER_MARKER_NAME),
    }


def frame_dir(paths: Dict[str, str], plan: VideoPlan) -> str:
    """The JPEG folder of a video (`%06d.jpg`, 1-based)."""
    action = CLASSES[plan.label].name
    if plan.split in OUT_OF_CONTEXT_SPLITS:
        return os.path.join(paths["mimetics_dir"], "frames", action, plan.file_name)
    return os.path.join(paths["kinetics_dir"], "frames", f"{_kinetics_part(plan)}_256", action,
                        plan.file_name)


def _kinetics_part(plan: VideoPlan) -> str:
    """'train' or 'val': the Kinetics files an in-context video belongs to."""
    return "train" if plan.split == "train" else "val"


def pose_path(paths: Dict[str, str], plan: VideoPlan) -> str:
    """The pose file of a video: kinetics-skeleton, or Mimetics' `pose_results/.../data.json`."""
    if plan.split in OUT_OF_CONTEXT_SPLITS:
        return os.path.join(paths["mimetics_dir"], "pose_results", CLASSES[plan.label].name,
                            plan.file_name, "data.json")
    return os.path.join(paths["kinetics_skeleton_dir"], f"kinetics_{_kinetics_part(plan)}",
                        f"{plan.name}.json")


def write_json(path: str, obj: Any, *, durable: bool = True) -> None:
    """Sorted keys and pre-rounded floats: the same data always gives the same bytes.
    `durable=False`: not flushed to disk one by one (see `dataset.flush_to_disk`)."""
    with atomic_write(path, durable=durable) as f:
        json.dump(obj, f, sort_keys=True)
