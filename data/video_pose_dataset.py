"""What the Kinetics, Mimetics and NTU loaders share: start-up checks, clip sampling, frame
reading and transforms.

A subclass names its files, reads the fields it needs from each annotation entry
(`video_fields`), says where a video's frames and poses are (`video_source`) and implements
`load_poses`; `load_videos` (given `load_coco_videos` of the annotation file) does the rest of
the start-up (class count, exclusions, the one summary line) and everything a dataset item goes through (frame sampling, resize, crop/flip,
top-k people, pose transform) lives here.

Usable item (a plain dict; batch it with `data.collate.collate_clips`):
    'video':       float32 (T, 3, in_h, in_w), RGB in [0, 1] (pixels / 255, no mean/std
                   normalisation: the released checkpoints expect this). Absent in pose_only.
                   With `video_as_bytes` set, a clip made only of whole pixels comes as its
                   uint8 values instead (`common.runtime.clip_pixels.video_as_float` gives the same
                   float32 clip; the collate and `move_batch` apply it).
    'pose_coords': float32 (Tp, K, J, 2), joint (x, y) on the heatmap grid, always finite.
    'pose_scores': float32 (Tp, K, J); padded people have score 0 (and coords 1.0).
    'label':       int64 scalar.
    'video_id':    int64 scalar, the COCO image id of the video.
    'problems':    list of `common.report.problems.Problem` (usually empty): a zeroed pose
                   (POSE_ZEROED) or zeroed joints (JOINTS_ZEROED) of this clip.
with T = frame_per_seg, Tp = (T - 1) * pose_frame_factor + 1, K = top_k_pose, J = joints.

Unusable item (bad data: a missing or corrupt frame; an unreadable pose file in pose_only):
    {'video_id': int64 scalar, 'clip_index': int, 'problems': [Problem(action=SKIPPED), ...]}
without 'label'. The dataset neither logs nor raises for bad data met in an item: the training
and test loops hand `batch['problems']` to a `common.report.problems.ProblemTally`, which warns,
counts and, with `--strict`, stops.

Start-up (in `__init__`): a data set that cannot be used at all (annotation file missing or not
COCO layout, no usable video...) raises `DataError` with one line naming the file. Videos are
left out, and counted in `skipped`, for the protocol's own reasons ('too_short',
'no_annotation', and the subclass's: 'has_skeleton_false', 'no_skeleton_label') and for bad
data ('missing_field', 'bad_field', 'duplicate_id', 'label_out_of_range', a missing pose file,
...); bad data also goes through `startup_problems` (a ProblemTally: a warning naming the file,
and an error with `cfg.strict`). `len(records) + sum(skipped.values()) == annotated`.

Randomness (train only): each item draws from its own `random.Random`. train.py's sampler
(`data.samplers.TrainSampler`) hands every item an `(index, stream)` key, the stream made of the
run's seed and the epoch, and the item's generator is seeded from the pair: an item's crop, flip
and start frame do not depend on the worker or process that loads it, which is what lets a run
resume exactly, even mid-epoch. Indexed with a plain integer (no such sampler), the generator is
seeded from `torch.initial_seed()` (different in every DataLoader worker, fixed by
`torch.manual_seed`), the index, and one draw from torch's global generator (so that a new epoch
sees new crops). Test items use no randomness at all (fixed start frames, centre crop).
"""
from __future__ import annotations

import logging
import os.path as osp
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from common.clip_frames import pose_frame_count
from common.errors import DataError, UsageError
from common.report.problems import JOINTS_ZEROED, POSE_ZEROED, SKIPPED, Problem, ProblemTally
from common.stages import get_stage
from data.frames import FrameError, frame_path, load_clip_frames, load_frame
from data.transforms import (
    PAD_COORD,
    center_crop_box,
    crop_affine,
    input_clip,
    input_clip_bytes,
    resize_shape,
    sample_train_crop,
    select_top_k_frames,
    transform_pose,
)
from data.batch_pool import SharedBatchPool, SlotBatch, items_into_batch
from data.joint_sets import JointSet
from data.parsing import FieldError, int_field, int_value, read_json_file, strip_path, type_name

logger = logging.getLogger("integral_action.data")

SPLITS = ("train", "test")
Record = Dict[str, Any]
Item = Dict[str, Any]

# Videos left out by the evaluation protocol itself: counted, never a data problem (not even
# with --strict). Every other start-up exclusion is bad data.
PROTOCOL_EXCLUSIONS = ("too_short", "no_annotation", "has_skeleton_false", "no_skeleton_label")
# A joint further out of the frame than this many frame sizes is no detection (and its square
# would lose all precision in float32 in the pose-map renderer): score 0, coordinate 0.
FAR_JOINT_FACTOR = 10.0
# Frames named in a problem's detail (the rest are counted).
LISTED_FRAMES = 5


# --------------------------------------------------------------------------- sampling
def clip_span(frame_per_seg: int, frame_interval: int) -> int:
    """Frames covered by one clip, first to last inclusive: `(T - 1) * interval + 1`."""
    return (frame_per_seg - 1) * frame_interval + 1


def train_start_frame(frame_num: int, span: int, rng: random.Random) -> int:
    """Uniform random start frame in `[0, frame_num - span]` (inclusive)."""
    return rng.randint(0, frame_num - span)


def test_start_frames(frame_num: int, span: int, n: int) -> List[int]:
    """Start frames of the n test clips of a video, evenly spread from the first frame on.

    `int((frame_num - 1 - (span - 1)) * t / (n - 1))` for t = 0..n-1 (the original's formula;
    the last clip ends on the last frame). The formula is undefined for n = 1: a single test
    clip is then taken from the middle of the video, `(frame_num - span) // 2`, for the same
    reason a single crop is the centre crop.
    """
    last_start = frame_num - 1 - (span - 1)
    if n == 1:
        return [last_start // 2]
    return [int(last_start * t / (n - 1)) for t in range(n)]


# The name starts with "test": keep pytest from collecting it when a test module imports it.
test_start_frames.__test__ = False  # type: ignore[attr-defined]


def clip_frame_indices(start: int, frame_per_seg: int, frame_interval: int) -> List[int]:
    """0-based frame numbers of the T image frames of a clip: `start + i * interval`."""
    return [start + i * frame_interval for i in range(frame_per_seg)]


def pose_frame_indices(
    start: int, frame_per_seg: int, frame_interval: int, pose_frame_factor: int
) -> List[int]:
    """0-based frame numbers of the pose frames: every `interval // factor` frames, over the
    same span as the image frames, `(T - 1) * factor + 1` of them (factor 1: the same frames)."""
    step = frame_interval // pose_frame_factor
    count = pose_frame_count(frame_per_seg=frame_per_seg, pose_frame_factor=pose_frame_factor)
    return [start + i * step for i in range(count)]


# --------------------------------------------------------------------------- annotations
@dataclass
class CocoVideos:
    """The videos of a COCO-layout annotation file (see `load_coco_videos`).

    Attributes:
        path: the file.
        videos: `(image, annotation or None)` per image entry with a usable, unique integer
            `id`, in file order; a video's annotation is the first whose `image_id` is its id.
        rejected: one SKIPPED Problem per image entry that is no usable video entry (not an
            object: 'bad_field'; no id: 'missing_field'; an id that is not an integer:
            'bad_field'; an id used before: 'duplicate_id').
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

    @property
    def annotated(self) -> int:
        """Video entries in the file (`images`), usable or not."""
        return len(self.videos) + len(self.rejected)


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

    first_annotation: Dict[int, Dict[str, Any]] = {}
    for n, ann in enumerate(content["annotations"]):
        where = f"annotations[{n}]"
        if not isinstance(ann, dict):
            out.stray_annotations.append(Problem(
                "bad_field", path, f"{where} is {type_name(ann)}, not an object", SKIPPED))
            continue
        if ann.get("id") is not None:
            where += f" (id {ann['id']!r})"
        try:
            image_id = int_field(ann, "image_id", where)
        except FieldError as err:
            out.stray_annotations.append(Problem(err.reason, path, err.detail, SKIPPED))
            continue
        first_annotation.setdefault(image_id, ann)

    seen: Dict[int, int] = {}
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
            out.rejected.append(Problem("duplicate_id", path, f"{where}: id {video_id} is "
                                        f"already the id of images[{seen[video_id]}]"))
            continue
        seen[video_id] = n
        out.videos.append((image, first_annotation.get(video_id)))
    return out


def require_folder(path: str, what: str) -> None:
    """Raise `DataError` `<path>: <what> not found; ...` unless `path` is a directory (a data
    set whose frame root is missing has no usable clip at all)."""
    if not osp.isdir(path):
        raise DataError(f"{path}: {what} not found; extract the frames (tool/video2image.py) "
                        "or point --data_dir at the data set")


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


def stack_people(
    per_frame: Sequence[Optional[Tuple[np.ndarray, np.ndarray]]], joint_num: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Stack per-frame people into fixed arrays for `load_poses`.

    Args:
        per_frame: for each frame, None (no people) or `(coords (P_f, J, 2), scores (P_f, J))`.
    Returns:
        `(coords (F, P, J, 2), scores (F, P, J))` float32 with P = max P_f; frames with fewer
        people are padded with coords 1.0 and score 0.
    """
    people = max([0] + [len(p[1]) for p in per_frame if p is not None])
    coords = np.full((len(per_frame), people, joint_num, 2), PAD_COORD, dtype=np.float32)
    scores = np.zeros((len(per_frame), people, joint_num), dtype=np.float32)
    for f, entry in enumerate(per_frame):
        if entry is None or len(entry[1]) == 0:
            continue
        count = len(entry[1])
        coords[f, :count] = entry[0]
        scores[f, :count] = entry[1]
    return coords, scores


def sanitize_joints(
    coords: np.ndarray, scores: np.ndarray, resized_hw: Tuple[int, int],
    far_factor: float = FAR_JOINT_FACTOR,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Give every joint a finite coordinate the pose-map renderer can square in float32.

    A joint whose coordinate or score is NaN/inf, or whose coordinate lies more than
    `far_factor` frame sizes from the origin (`|x| > far_factor * W` or `|y| > far_factor * H`),
    gets score 0 and coordinate (0, 0): a NaN joint of score 0 would still turn its heatmap
    channel into NaN (NaN x 0), and a huge one its limbs' part affinity fields.

    Args:
        coords: `(F, P, J, 2)` in pixels of the frame resized to `resized_hw = (H, W)`.
        scores: `(F, P, J)`.
    Returns:
        `(coords, scores, nonfinite (F, P, J) bool, far (F, P, J) bool)`, new arrays.
    """
    coords = np.array(coords, dtype=np.float32, copy=True)
    scores = np.array(scores, dtype=np.float32, copy=True)
    nonfinite = ~np.isfinite(coords).all(axis=-1) | ~np.isfinite(scores)
    limit = far_factor * np.array([resized_hw[1], resized_hw[0]], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        far = ~nonfinite & (np.abs(coords) > limit).any(axis=-1)
    zeroed = nonfinite | far
    coords[zeroed] = 0.0
    scores[zeroed] = 0.0
    return coords, scores, nonfinite, far


def _frames_text(mask: np.ndarray, frame_indices: Sequence[int]) -> str:
    """'frames 3, 11 (0-based)' for the frames where `mask (F, P, J)` has a joint."""
    frames = [frame_indices[f] for f in np.flatnonzero(mask.any(axis=(1, 2)))]
    listed = ", ".join(str(k) for k in frames[:LISTED_FRAMES])
    more = f" and {len(frames) - LISTED_FRAMES} more" if len(frames) > LISTED_FRAMES else ""
    return f"frame{'s' if len(frames) > 1 else ''} {listed}{more} (0-based)"


# --------------------------------------------------------------------------- dataset
class VideoPoseDataset(Dataset):
    """Base of the three loaders. Subclasses set `joint_set` and `pose_key`, implement
    `video_fields`, `video_source` and `load_poses` (and `own_class_count` where the data set
    has a known class count), and end `__init__` with `load_videos(load_coco_videos(path))`
    (reading the annotation file first, so that its absence is the first thing reported).

    Attributes:
        records: one plain dict per usable video: video_id (int), frame_dir (str),
            frame_num (int), label (int), height, width (int, the annotation's original frame
            size; 0 where the data set does not need it) and the pose file under `pose_key`.
        joint_set: the joint set of the poses (OpenPose-18 or NTU-25).
        class_num: number of classes (see `resolve_class_num`); `class_num_reason` says how.
        split: 'train' or 'test'.
        stage: the `common.stages.Stage` of `cfg.mode` (what the items must hold).
        annotation_path: the annotation file; `annotated`: its number of video entries.
        skipped: reason -> number of videos left out at start-up (protocol and bad data).
        startup_problems: the ProblemTally of the start-up's bad data (counts by reason).
    """

    joint_set: JointSet
    pose_key: str = "pose_path"
    # How an item reads its frames (`(paths, fast_decode_shape) -> (frames, (H, W) of the
    # first)`) and makes its input clip (`(frames, resized_hw, matrix, do_flip, out_shape) ->
    # (T, 3, h, w)` float32): the fast exact path. `data.loading_baseline.use_baseline_loading`
    # swaps in the plain per-frame loop it is tested and measured against (the same clips).
    read_clip_frames = staticmethod(load_clip_frames)
    make_input_clip = staticmethod(input_clip)

    def __init__(self, cfg: Any, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.cfg = cfg
        self.split = split
        self.stage = get_stage(cfg.mode)
        self.records: List[Record] = []
        self.skipped: Dict[str, int] = {}
        self.class_num: int = 0
        self.class_num_reason = ""
        # Class index -> name, from the annotations' `action_name` where the format has one.
        self.class_names: Dict[int, str] = {}
        self.annotation_path = ""
        self.annotated = 0
        self.startup_problems = ProblemTally(strict=bool(cfg.strict), logger=logger)
        # Extra facts for the start-up summary line (e.g. NTU's frame folder naming).
        self.startup_notes: List[str] = []
        self.frame_per_seg = int(cfg.frame_per_seg)
        self.frame_interval = int(cfg.frame_interval)
        # Set by a consumer that turns uint8 clips into float itself (test.py with loader
        # workers): whole-pixel clips then cross from the worker as a quarter of the bytes.
        self.video_as_bytes = False
        # A batch's clips are written into one batch tensor (`__getitems__`); off for the
        # plain baseline loop (`data.loading_baseline.use_baseline_loading`).
        self.write_batches = True
        # Set by `data.clip_loader.build_clip_loader` when its batches go to reused slots.
        self.batch_pool: Optional[SharedBatchPool] = None
        self.pose_frame_factor = int(cfg.pose_frame_factor)
        self.span = clip_span(self.frame_per_seg, self.frame_interval)
        self.test_infer_num = int(cfg.test_infer_num)
        self.with_video = self.stage.needs_video
        self.use_train_aug = split == "train" and bool(cfg.train_aug)

    # ---- start-up helpers
    def skip(self, reason: str) -> None:
        """Count one video left out for `reason`."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def exclude(self, reason: str) -> None:
        """Leave one video out for one of the protocol's own reasons (not a data problem)."""
        if reason not in PROTOCOL_EXCLUSIONS:
            raise ValueError(f"{reason!r} is not a protocol exclusion; use reject()")
        self.skip(reason)

    def reject(self, problem: Problem) -> None:
        """Leave one video out for bad data: counted, warned about (naming the file) and,
        with `cfg.strict`, a `DataError`."""
        self.skip(problem.reason)
        self.startup_problems.add([problem])

    def own_class_count(self) -> Optional[Tuple[int, str]]:
        """The data set's own number of classes and what it is, None when unknown (e.g. the
        synthetic subset 'Synth'). Overridden by the subclasses."""
        return None

    def inspect(self, coco: CocoVideos) -> None:
        """Hook run once before the videos are read (NTU decides its folder naming here)."""

    def video_fields(self, image: Dict[str, Any], where: str) -> Dict[str, Any]:
        """The subclass's fields of an image entry, checked (raise `FieldError`)."""
        raise NotImplementedError

    def video_source(self, video_id: int, fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """`{'frame_dir': ..., <pose_key>: ...}` of a video, or None after `exclude`/`reject`
        (or raise `FieldError` for a bad entry of another file, naming it in `path`)."""
        raise NotImplementedError

    def load_videos(self, coco: CocoVideos) -> None:
        """Turn the annotation file's videos (`load_coco_videos`) into `records`, set
        `class_num`, log one summary line.

        Raises:
            DataError: one line naming the annotation file when no video is usable (with the
                exclusion counts); with `cfg.strict`, on the first video left out for bad data.
        """
        ann_path = coco.path
        self.annotation_path = ann_path
        self.annotated = coco.annotated
        for problem in coco.rejected:
            self.reject(problem)
        # Not a video each: reported (and fatal with --strict) but not in `skipped`.
        self.startup_problems.add(coco.stray_annotations)
        self.inspect(coco)

        candidates = []
        labels: List[int] = []
        for image, ann in coco.videos:
            video_id = int(image["id"])
            where = f"video {video_id}"
            if ann is None:
                self.exclude("no_annotation")
                continue
            try:
                label = int_field(ann, "action_label", f"{where}: its annotation")
                frame_num = int_field(image, "frame_num", where, minimum=0)
                fields = self.video_fields(image, where)
            except FieldError as err:
                self.reject(Problem(err.reason, err.path or ann_path, err.detail))
                continue
            labels.append(label)
            candidates.append((video_id, label, frame_num, fields))
            name = ann.get("action_name")
            if isinstance(name, str) and name.strip():
                self.class_names.setdefault(label, name.strip())

        self.class_num, self.class_num_reason = resolve_class_num(
            self.cfg.class_num, self.own_class_count(), labels)
        for video_id, label, frame_num, fields in candidates:
            if not 0 <= label < self.class_num:
                self.reject(Problem(
                    "label_out_of_range", ann_path,
                    f"video {video_id}: action_label {label} is outside [0, {self.class_num}) "
                    f"({self.class_num} classes: {self.class_num_reason})"))
                continue
            if frame_num < self.span:
                self.exclude("too_short")
                continue
            try:
                source = self.video_source(video_id, fields)
            except FieldError as err:
                self.reject(Problem(err.reason, err.path or ann_path, err.detail))
                continue
            if source is None:
                continue
            self.records.append({
                "video_id": video_id, "frame_num": frame_num, "label": label,
                "height": fields.get("height", 0), "width": fields.get("width", 0), **source,
            })
        self._log_summary(coco)

    def _log_summary(self, coco: CocoVideos) -> None:
        left_out = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        name = f"{type(self).__name__} {self.split}"
        if not self.records:
            raise DataError(f"{self.annotation_path}: no usable video ({self.annotated} video "
                            f"entries; left out: {left_out})")
        why = self.class_num_reason
        if coco.categories:
            why += ("; the file's 1 'categories' entry is a COCO object category, not an action "
                    "class: not used" if len(coco.categories) == 1 else
                    f"; the file's {len(coco.categories)} 'categories' entries are COCO object "
                    "categories, not action classes: not used")
        classes = f"{self.class_num} classes ({why})"
        notes = "".join(f"; {note}" for note in self.startup_notes)
        logger.info("%s: kept %d of %d annotated videos in %s; %s; left out: %s%s", name,
                    len(self.records), self.annotated, self.annotation_path, classes, left_out,
                    notes)

    # ---- pose helpers for subclasses
    def pixel_poses_of_frames(self, frames: Sequence[Optional[Tuple[np.ndarray, np.ndarray]]],
                              frame_indices: Sequence[int], record: Record,
                              resized_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        """`load_poses` for sources holding one `(coords (P, J, 2), scores (P, J))` or None per
        0-based frame in the annotation's original pixels: picks the frames (none past the end
        of the list), scales `x / width * W`, `y / height * H`, and stacks them."""
        scale = np.array([resized_hw[1] / record["width"], resized_hw[0] / record["height"]],
                         dtype=np.float32)
        per_frame = []
        for k in frame_indices:
            entry = frames[k] if 0 <= k < len(frames) else None
            per_frame.append(None if entry is None else (entry[0] * scale, entry[1]))
        return stack_people(per_frame, self.joint_set.joint_num)

    # ---- to implement
    def load_poses(
        self, record: Record, frame_indices: Sequence[int], resized_hw: Tuple[int, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Poses of the given 0-based frames of a video.

        Returns `(coords (F, P, J, 2), scores (F, P, J))` with coords in pixels of the frame
        resized to `resized_hw = (H, W)` (NaN/inf as the file has them: `__getitem__` zeroes
        them); P may differ between calls (see `stack_people`). Raises `DataError` naming the
        pose file when it cannot be parsed.
        """
        raise NotImplementedError

    # ---- items
    def __len__(self) -> int:
        if self.split == "test":
            return len(self.records) * self.test_infer_num
        return len(self.records)

    def locate(self, index: int) -> Tuple[int, int]:
        """Item index -> (video index, clip index); test item i is clip i % n of video i // n."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        if self.split == "test":
            return divmod(index, self.test_infer_num)
        return index, 0

    def item_rng(self, index: int, stream: Optional[int] = None) -> random.Random:
        """The item's random generator (see the module docstring).

        `stream` (from `data.samplers.TrainSampler`: the run's seed and the epoch) makes the
        item's randomness independent of the worker and process that loads it."""
        if stream is not None:
            return random.Random((int(stream) << 64) | index)
        draw = int(torch.randint(0, 2**31 - 1, ()).item()) if self.split == "train" else 0
        # Bit-disjoint fields, so different (seed, draw, index) never give the same seed.
        return random.Random((torch.initial_seed() << 96) | (draw << 64) | index)

    def clip_start(self, record: Record, clip_index: int, rng: random.Random) -> int:
        """First frame of the item's clip: random for train, `test_start_frames` for test."""
        if self.split == "train":
            return train_start_frame(record["frame_num"], self.span, rng)
        return test_start_frames(record["frame_num"], self.span, self.test_infer_num)[clip_index]

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> Item:
        """Item `key`: an index, or `(index, stream)` from `data.samplers.TrainSampler`."""
        return self._item(key)

    @property
    def writes_batches(self) -> bool:
        """Whether `__getitems__` writes a batch's clips into one batch tensor: float32 clips
        (`input_clip`; not with `video_as_bytes`, not in pose_only), unless `write_batches` is
        off (the plain baseline loop, `data.loading_baseline.use_baseline_loading`)."""
        return self.write_batches and self.with_video and not self.video_as_bytes

    def batch_clip_shape(self, batch_size: int) -> Tuple[int, int, int, int, int]:
        """`(B, T, 3, h, w)` of a batch of `batch_size` clips."""
        height, width = self.cfg.input_img_shape
        return (int(batch_size), self.frame_per_seg, 3, int(height), int(width))

    def __getitems__(self, keys: Sequence[Union[int, Tuple[int, int]]]) -> List[Item]:
        """The items of one DataLoader batch (the DataLoader calls this rather than
        `__getitem__` per key), equal to `[self[key] for key in keys]`.

        Their clips are written straight into the slots of one `(B, T, 3, h, w)` batch tensor
        (`writes_batches`), which `collate_clips` then passes on as the batch: no clip is copied
        into a stacked batch, and no per-clip array is allocated. The tensor is the pool slot
        that `keys` names (a `SlotBatch` from a `data.batch_pool.PooledBatchSampler`), else a
        new one, in shared memory inside a worker (`data.batch_pool.items_into_batch`).
        """
        if self.writes_batches:
            return items_into_batch(keys, lambda key, out: self._item(key, video_out=out),
                                    batch_shape=self.batch_clip_shape(len(keys)),
                                    pool=self.batch_pool)
        items = [self._item(key) for key in keys]
        if isinstance(keys, SlotBatch):
            # A slot named for a batch not written into it: the main process gives it back.
            return SlotBatch(items, keys.slot, keys.pool_key)
        return items

    def _item(self, key: Union[int, Tuple[int, int]],
              video_out: Optional[torch.Tensor] = None) -> Item:
        """Item `key`; its clip written into `video_out` when given (see `__getitems__`)."""
        index, stream = key if isinstance(key, tuple) else (key, None)
        video_index, clip_index = self.locate(index)
        record = self.records[video_index]
        problems: List[Problem] = []
        try:
            item = self._clip(record, index, clip_index, problems, stream, video_out)
        except FrameError as err:
            problems.append(Problem(err.reason, err.path, err.detail, SKIPPED))
            item = None
        if item is None:
            return {"video_id": torch.tensor(int(record["video_id"]), dtype=torch.int64),
                    "clip_index": clip_index, "problems": problems}
        item["problems"] = problems
        return item

    def _clip(self, record: Record, index: int, clip_index: int,
              problems: List[Problem], stream: Optional[int] = None,
              video_out: Optional[torch.Tensor] = None) -> Optional[Item]:
        """The usable item, or None when its problems (appended) leave it out. With
        `video_out` (a slot of a batch tensor) the clip is written there
        (`input_clip(out=...)`) and is the item's 'video'."""
        cfg = self.cfg
        rng = self.item_rng(index, stream)
        start = self.clip_start(record, clip_index, rng)
        image_frames = clip_frame_indices(start, self.frame_per_seg, self.frame_interval)
        pose_frames = pose_frame_indices(start, self.frame_per_seg, self.frame_interval,
                                         self.pose_frame_factor)

        paths = [frame_path(record["frame_dir"], k) for k in image_frames]
        if self.with_video:
            # Decoded in order, before the poses: the first bad frame is the item's problem.
            # `fast_decode` (off by default) lets the decoder shrink large frames: other pixels.
            fast_decode = cfg.video_shape if cfg.fast_decode else None
            frames, stored_hw = self.read_clip_frames(paths, fast_decode)
        else:
            # pose_only: one frame tells the frame size; the pixels are not needed.
            stored_hw = load_frame(paths[0]).shape[:2]
        # The frames of a video share one size; the first read one sets the resize target
        # (the annotation's height/width may describe the original video, not the JPEGs).
        resized_hw = resize_shape(stored_hw[0], stored_hw[1], cfg.video_shape)

        poses = self._clip_poses(record, pose_frames, resized_hw, problems)
        if poses is None:
            return None
        coords, scores = poses

        if self.use_train_aug:
            box, do_flip = sample_train_crop(resized_hw, cfg.input_img_shape, rng)
        else:
            box, do_flip = center_crop_box(resized_hw, cfg.input_img_shape), False
        matrix = crop_affine(box, do_flip, resized_hw[1], cfg.input_img_shape)

        item: Item = {}
        if self.with_video:
            clip = None
            if self.video_as_bytes:
                clip = input_clip_bytes(frames, resized_hw, matrix, do_flip,
                                        cfg.input_img_shape)
            if clip is None and video_out is not None:
                input_clip(frames, resized_hw, matrix, do_flip, cfg.input_img_shape,
                           out=video_out.numpy())
                item["video"] = video_out  # the slot itself: the collate sees the batch
            else:
                if clip is None:
                    # Resize, flip, crop, / 255 (`input_clip`: the same pixels as doing each
                    # in turn).
                    clip = self.make_input_clip(frames, resized_hw, matrix, do_flip,
                                                cfg.input_img_shape)
                item["video"] = torch.from_numpy(clip)

        coords, scores = select_top_k_frames(coords, scores, int(cfg.top_k_pose))
        coords, scores = transform_pose(
            coords, scores, matrix, do_flip, resized_hw[1], self.joint_set.flip_pairs,
            cfg.input_img_shape, cfg.input_hm_shape,
        )
        item["pose_coords"] = torch.from_numpy(coords)
        item["pose_scores"] = torch.from_numpy(scores)
        item["label"] = torch.tensor(int(record["label"]), dtype=torch.int64)
        item["video_id"] = torch.tensor(int(record["video_id"]), dtype=torch.int64)
        return item

    def _clip_poses(self, record: Record, pose_frames: Sequence[int],
                    resized_hw: Tuple[int, int],
                    problems: List[Problem]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """`(coords (F, P, J, 2), scores (F, P, J))` of the clip, all finite, in resized-frame
        pixels; None when an unreadable pose file leaves the clip out (pose_only).

        Problems are reported only where the stage uses poses: rgb_only reads them (the item
        keys stay the same in every stage) but never looks at them.
        """
        report = self.stage.needs_pose
        path = record[self.pose_key]
        joint_num = self.joint_set.joint_num
        try:
            # A huge coordinate may overflow to inf when scaled: handled below, not a warning.
            with np.errstate(over="ignore", invalid="ignore"):
                coords, scores = self.load_poses(record, pose_frames, resized_hw)
        except DataError as err:
            if not self.with_video:
                problems.append(Problem("bad_pose_file", path, strip_path(str(err), path),
                                        SKIPPED))
                return None
            if report:
                problems.append(Problem("bad_pose_file", path, strip_path(str(err), path),
                                        POSE_ZEROED))
            return (np.full((len(pose_frames), 0, joint_num, 2), PAD_COORD, np.float32),
                    np.zeros((len(pose_frames), 0, joint_num), np.float32))
        if coords.shape[0] != len(pose_frames) or coords.shape[2:] != (joint_num, 2) \
                or scores.shape != coords.shape[:3]:
            raise ValueError(f"{type(self).__name__}.load_poses returned shapes {coords.shape}, "
                             f"{scores.shape} for {len(pose_frames)} frames of {joint_num} joints")
        coords, scores, nonfinite, far = sanitize_joints(coords, scores, resized_hw)
        if report and nonfinite.any():
            problems.append(Problem(
                "nonfinite_joint", path,
                f"{int(nonfinite.sum())} joint(s) with NaN/inf coordinates or scores in "
                f"{_frames_text(nonfinite, pose_frames)}: score 0, coordinate (0, 0)",
                JOINTS_ZEROED))
        if report and far.any():
            problems.append(Problem(
                "far_joint", path,
                f"{int(far.sum())} joint(s) more than {FAR_JOINT_FACTOR:g} frame sizes out of "
                f"the frame in {_frames_text(far, pose_frames)}: score 0, coordinate (0, 0)",
                JOINTS_ZEROED))
        return coords, scores

