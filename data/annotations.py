"""The annotation file of a data set: its videos, their labels, the number of classes.

Every data set here describes its videos in a COCO-layout JSON file: `images` are the videos
(id, frame_num and the data set's own fields), `annotations` their labels (image_id,
action_label, action_name). `load_coco_videos` reads it, keeping bad entries apart instead of
raising; `resolve_class_num` decides the number of action classes. docs/data_format.md
describes each data set's fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from common.errors import DataError, UsageError
from common.report.problems import SKIPPED, Problem
from data.parsing import (FieldError, int_field, int_value, read_json_file, short_repr,
                          type_name)


@dataclass
class CocoVideos:
    """The videos of a COCO-layout annotation file (see `load_coco_videos`).

    Attributes:
        path: the file.
        videos: `(image, annotation or None)` per image entry with a usable, unique integer
            `id`, in file order; a video's annotation is the first whose `image_id` is its id
            (further ones repeat its `action_label`, see `repeated_annotations`).
        rejected: one SKIPPED Problem per image entry that is no usable video entry (not an
            object: 'bad_field'; no id: 'missing_field'; an id that is not an integer:
            'bad_field'; an id used before by other content: 'duplicate_id'; annotations
            giving it different labels: 'conflicting_labels').
        repeated_images: one line per image entry that repeats an earlier one exactly (same
            id, same fields): the video is kept once.
        repeated_annotations: one line per annotation that repeats the label an earlier one
            gives the same video: the video is kept with that label.
        stray_annotations: one Problem per annotation entry that belongs to no video (not an
            object, or no integer `image_id`); its video, if any, has no annotation.
        categories: the file's `categories` list (COCO *object* categories, usually
            `[{"id": 1, "name": "person"}]`: never the action classes), [] when absent.
    """

    path: str
    videos: List[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]] = field(default_factory=list)
    rejected: List[Problem] = field(default_factory=list)
    stray_annotations: List[Problem] = field(default_factory=list)
    categories: List[Any] = field(default_factory=list)
    repeated_images: List[str] = field(default_factory=list)
    repeated_annotations: List[str] = field(default_factory=list)

    @property
    def annotated(self) -> int:
        """Video entries in the file (`images`), usable, repeated or not."""
        return len(self.videos) + len(self.rejected) + len(self.repeated_images)


def load_coco_videos(path: str) -> CocoVideos:
    """Read a COCO-layout annotation file of videos (`images` = videos, `annotations` = their
    labels).

    Raises:
        DataError: `<path>: ...` when the file is missing, not JSON, or not COCO layout (not an
            object with an `images` and an `annotations` list). A bad *entry* does not raise:
            it is returned in `rejected` / `stray_annotations`.
    """
    content = read_json_file(path, "annotation file")
    if not isinstance(content, dict):
        raise DataError(f"{path}: not a COCO-layout annotation file (the top level is "
                        f"{type_name(content)}, not an object with 'images' and 'annotations')")
    for key in ("images", "annotations"):
        if not isinstance(content.get(key), list):
            state = "missing" if key not in content else type_name(content[key])
            raise DataError(f"{path}: not a COCO-layout annotation file ('{key}' is {state}, "
                            "not a list)")
    out = CocoVideos(path=path)
    categories = content.get("categories")
    out.categories = list(categories) if isinstance(categories, list) else []

    annotations = _annotations_by_video(content["annotations"], out)
    seen: Dict[int, Tuple[int, Dict[str, Any]]] = {}
    for n, image in enumerate(content["images"]):
        where = f"images[{n}]"
        if not isinstance(image, dict):
            out.rejected.append(Problem("bad_field", path,
                                        f"{where} is {type_name(image)}, not an object"))
            continue
        try:
            video_id = int_field(image, "id", where)
        except FieldError as err:
            out.rejected.append(Problem(err.reason, path, err.detail))
            continue
        if video_id in seen:
            first, earlier = seen[video_id]
            if image == earlier:  # the same entry written twice: nothing to choose between
                out.repeated_images.append(f"{where} repeats images[{first}] (id {video_id})")
            else:
                out.rejected.append(Problem("duplicate_id", path, f"{where}: id {video_id} is "
                                            f"already the id of images[{first}]"))
            continue
        seen[video_id] = (n, image)
        anns = annotations.get(video_id, [])
        conflict = _label_conflict(video_id, anns, path)
        if conflict is not None:
            out.rejected.append(conflict)
            continue
        out.repeated_annotations.extend(
            f"annotations[{a}] repeats the action_label of annotations[{anns[0][0]}] "
            f"(video {video_id})" for a, _ in anns[1:])
        out.videos.append((image, anns[0][1] if anns else None))
    return out


def _annotations_by_video(entries: List[Any],
                          out: CocoVideos) -> Dict[int, List[Tuple[int, Any]]]:
    """`{image_id: [(index in the file, annotation)]}`; entries without a usable `image_id`
    go to `out.stray_annotations`."""
    by_video: Dict[int, List[Tuple[int, Any]]] = {}
    for n, ann in enumerate(entries):
        where = f"annotations[{n}]"
        if not isinstance(ann, dict):
            out.stray_annotations.append(Problem(
                "bad_field", out.path, f"{where} is {type_name(ann)}, not an object", SKIPPED))
            continue
        if ann.get("id") is not None:
            where += f" (id {ann['id']!r})"
        try:
            image_id = int_field(ann, "image_id", where)
        except FieldError as err:
            out.stray_annotations.append(Problem(err.reason, out.path, err.detail, SKIPPED))
            continue
        by_video.setdefault(image_id, []).append((n, ann))
    return by_video


def _label_conflict(video_id: int, anns: List[Tuple[int, Any]], path: str) -> Optional[Problem]:
    """The 'conflicting_labels' problem of video `video_id` when its annotations `anns` give
    it different `action_label`s (which one is right cannot be told), else None."""
    if not anns:
        return None
    first, ann = anns[0]
    for n, other in anns[1:]:
        if _label_key(other) != _label_key(ann):
            return Problem("conflicting_labels", path,
                           f"video {video_id}: annotations[{first}] gives action_label "
                           f"{short_repr(ann.get('action_label'))}, annotations[{n}] gives "
                           f"{short_repr(other.get('action_label'))}")
    return None


def _label_key(ann: Dict[str, Any]) -> Any:
    """An annotation's `action_label` as compared between two annotations (3 == 3.0)."""
    value = ann.get("action_label")
    number = int_value(value)
    return number if number is not None else repr(value)


def resolve_class_num(
    cfg_class_num: Optional[int], own_count: Optional[Tuple[int, str]], labels: Sequence[int]
) -> Tuple[int, str]:
    """The number of action classes, and how it was decided.

    `cfg.class_num` when set; else the data set's own count (`own_count = (count, what it
    is)`, e.g. Kinetics50: 50); else the largest non-negative label + 1. A COCO file's
    `categories` never count: they are object categories ('person'), not actions.
    Returns `(0, why)` when there is nothing to count from.
    """
    if cfg_class_num is not None:
        count = int_value(cfg_class_num)
        if count is None or count < 1:
            raise UsageError(f"class_num must be a positive integer, got {cfg_class_num!r}")
        return count, "given as class_num: --class_num, or at test time the snapshot's"
    if own_count is not None:
        return own_count
    usable = [label for label in labels if label >= 0]
    if usable:
        top = max(usable)
        return top + 1, f"the largest label {top} + 1, no known class count for this data set"
    return 0, "no non-negative label to count from"
