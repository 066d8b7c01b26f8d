"""The names of a trained network's classes, from a file given on the command line or from the
files of the data set it was trained on (class index -> name).

A `--labels` file must name every class of the snapshot: fewer names than classes is an error
(the names would be shifted or missing); more names is a warning, and the names of classes
0..N-1 are used (a label file of a larger release listing the same classes first).
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Tuple

from common.errors import DataError, UsageError
from data.parsing import read_json_file


def _names_from_json(content: Any) -> Dict[int, str]:
    """Class names of a COCO-layout annotation file (`action_label`, `action_name`) or of a
    kinetics-skeleton label file (`label_index`, `label`); {} for anything else."""
    names: Dict[int, str] = {}
    if isinstance(content, dict) and isinstance(content.get("annotations"), list):
        for ann in content["annotations"]:
            if isinstance(ann, dict) and isinstance(ann.get("action_label"), int) \
                    and isinstance(ann.get("action_name"), str):
                names.setdefault(ann["action_label"], ann["action_name"])
    elif isinstance(content, dict):
        for entry in content.values():
            if isinstance(entry, dict) and isinstance(entry.get("label_index"), int) \
                    and isinstance(entry.get("label"), str) and entry["label_index"] >= 0:
                names.setdefault(entry["label_index"], entry["label"])
    return names


def read_class_names(path: str) -> Dict[int, str]:
    """Class index -> name from a text file (line i = class i), a COCO-layout annotation file
    (`action_label`, `action_name`) or a kinetics-skeleton label file (`label_index`, `label`).

    Raises:
        UsageError: the file (given as `--labels`) is none of these.
    """
    if not osp.isfile(path):
        raise UsageError(f"--labels {path}: no such file")
    if not path.lower().endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return {i: line.strip() for i, line in enumerate(
                line for line in f.read().splitlines() if line.strip())}
    try:
        content = read_json_file(path, "class names file")
    except DataError as err:
        raise UsageError(f"--labels: {err}") from None
    names = _names_from_json(content)
    if not names:
        raise UsageError(f"--labels {path}: no class names in it (expected a text file with one "
                         "name per line, a COCO annotation file with action_label/action_name, "
                         "or a kinetics-skeleton label file)")
    return names


def find_class_names(labels: Optional[str], source_set: Mapping[str, Any]
                     ) -> Tuple[Dict[int, str], str]:
    """Class names and where they came from: `labels` (the `--labels` file), else the files of
    the data set a snapshot was trained on (`source_set`: its dataset, subset and data_dir),
    the classes file `tool/extract_poses.py` writes, then the annotation files' `action_name`;
    else none (class indices are shown)."""
    if labels:
        return read_class_names(labels), labels
    if source_set["dataset"] in ("Kinetics", "Mimetics"):  # Mimetics uses Kinetics' labels
        root = osp.join(source_set["data_dir"], "Kinetics", "data")
        subset = source_set["subset"]
        for name in (f"Kinetics{subset}_classes.txt", f"Kinetics{subset}_val.json",
                     f"Kinetics{subset}_train.json"):
            path = osp.join(root, name)
            if osp.isfile(path):
                try:
                    return read_class_names(path), path
                except UsageError:
                    continue
    return {}, "none found (pass --labels): class indices are shown"


def names_for_classes(names: Mapping[int, str], class_num: int, *, labels: Optional[str],
                      snapshot: str) -> Tuple[List[str], Optional[str]]:
    """The name of each of a network's `class_num` classes, and a warning or None.

    Args:
        names: class index -> name (`find_class_names`).
        labels: the `--labels` file the names came from; None: found in the data set's files,
            where a class without a name is shown as its index.
        snapshot: the snapshot's path, for messages.

    Raises:
        UsageError: a `--labels` file names fewer classes than the snapshot has (both counts in
            the message).
    """
    if labels is None:
        return [names.get(i, str(i)) for i in range(class_num)], None
    missing = [i for i in range(class_num) if i not in names]
    if missing:
        shown = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UsageError(f"--labels {labels} has {len(names)} class names but {snapshot} has "
                         f"{class_num} classes (no name for class {shown}): give one name per "
                         "class (a text file: line i = class i)")
    extra = sorted(i for i in names if i >= class_num)
    warning = None
    if extra:
        warning = (f"--labels {labels} has {len(names)} class names but {snapshot} has "
                   f"{class_num} classes: using the names of classes 0-{class_num - 1}, "
                   f"ignoring the other {len(extra)}")
    return [names[i] for i in range(class_num)], warning
