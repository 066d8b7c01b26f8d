"""The usable videos of a data set, decided once at start-up from its annotation file.

`VideoList` is the start-up half of every loader (`data.video_pose_dataset.VideoPoseDataset`
is the item half). A subclass reads the fields it needs from each annotation entry
(`video_fields`) and says where a video's frames and poses are (`video_source`); `load_videos`
(given `load_coco_videos` of the annotation file) does the rest: the class count, the
exclusions and the one summary line.

A data set that cannot be used at all (annotation file missing or not COCO layout, no usable
video...) raises `DataError` with one line naming the file. Videos are left out, and counted in
`skipped`, for the protocol's own reasons ('too_short', 'no_annotation', and the subclass's:
'has_skeleton_false', 'no_skeleton_label', 'listed_missing_skeleton') and for bad data
('missing_field', 'bad_field', 'duplicate_id', 'conflicting_labels', 'label_out_of_range', a
missing pose file, ...); bad data
also goes through `startup_problems` (a ProblemTally: a warning naming the file, and an error
with `cfg.strict`). An entry that repeats another exactly (an image entry written twice, a label
given twice) loses nothing: the video is kept once, the repeat is logged, and a repeated image
entry is counted as 'repeated_entry'. `len(records) + sum(skipped.values()) == annotated`.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from common.errors import DataError
from common.report.problems import Problem, ProblemTally
from data.annotations import CocoVideos, resolve_class_num
from data.parsing import FieldError, int_field
from data.sampling import clip_span

logger = logging.getLogger("integral_action.data")

SPLITS = ("train", "test")
Record = Dict[str, Any]
# `(video_id, label, frame_num, the subclass's fields)` of a video whose entries were read.
Candidate = Tuple[int, int, int, Dict[str, Any]]

# Videos left out by the evaluation protocol itself: counted, never a data problem (not even
# with --strict). Every other start-up exclusion is bad data.
# NTU's 'listed_missing_skeleton': a sample its release lists as having no usable skeleton.
PROTOCOL_EXCLUSIONS = ("too_short", "no_annotation", "has_skeleton_false", "no_skeleton_label",
                       "listed_missing_skeleton")
# An image entry that repeats an earlier one exactly: its video is kept once (no data problem).
REPEATED_ENTRY = "repeated_entry"
# Repeated entries named in the log line (the rest are counted).
LISTED_REPEATS = 5


class VideoList:
    """The videos of one split of a data set. Subclasses implement `video_fields` and
    `video_source` (and `own_class_count` where the data set has a known class count, `inspect`
    where they decide something from all the videos first).

    Attributes:
        records: one plain dict per usable video: video_id (int), frame_dir (str),
            frame_num (int), label (int), height, width (int, the annotation's original frame
            size; 0 where the data set does not need it) and the subclass's pose file.
        class_num: number of classes (see `resolve_class_num`); `class_num_reason` says how.
        class_names: class index -> name, from the annotations' `action_name` where present.
        split: 'train' or 'test'.
        span: frames one clip covers; a shorter video is left out ('too_short').
        annotation_path: the annotation file; `annotated`: its number of video entries.
        skipped: reason -> number of videos left out at start-up (protocol and bad data).
        startup_problems: the ProblemTally of the start-up's bad data (counts by reason).
        startup_notes: extra facts for the summary line (e.g. NTU's frame folder naming).
    """

    def __init__(self, cfg: Any, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.cfg = cfg
        self.split = split
        self.span = clip_span(int(cfg.frame_per_seg), int(cfg.frame_interval))
        self.records: List[Record] = []
        self.skipped: Dict[str, int] = {}
        self.class_num: int = 0
        self.class_num_reason = ""
        self.class_names: Dict[int, str] = {}
        self.annotation_path = ""
        self.annotated = 0
        self.startup_problems = ProblemTally(strict=bool(cfg.strict), logger=logger)
        self.startup_notes: List[str] = []

    # ---- for subclasses
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

    def inspect_records(self) -> None:
        """Hook run once on the kept `records`, before the summary line (Kinetics decides how
        its pose files count frames here)."""

    def choose_frame_source(self) -> None:
        """Hook run once on the kept `records` (`VideoPoseDataset` decides there whether the
        frames are read from JPEG folders or video files)."""

    def video_fields(self, image: Dict[str, Any], where: str) -> Dict[str, Any]:
        """The subclass's fields of an image entry, checked (raise `FieldError`)."""
        raise NotImplementedError

    def video_source(self, video_id: int, fields: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """`{'frame_dir': ..., <pose file key>: ...}` of a video, or None after `exclude` /
        `reject` (or raise `FieldError` for a bad entry of another file, naming it in `path`)."""
        raise NotImplementedError

    # ---- start-up
    def load_videos(self, coco: CocoVideos) -> None:
        """Turn the annotation file's videos (`load_coco_videos`) into `records`, set
        `class_num`, log one summary line.

        Raises:
            DataError: one line naming the annotation file when no video is usable (with the
                exclusion counts); with `cfg.strict`, on the first video left out for bad data.
        """
        self.annotation_path = coco.path
        self.annotated = coco.annotated
        for problem in coco.rejected:
            self.reject(problem)
        for _ in coco.repeated_images:
            self.skip(REPEATED_ENTRY)
        self._log_repeats(coco)
        # Not a video each: reported (and fatal with --strict) but not in `skipped`.
        self.startup_problems.add(coco.stray_annotations)
        self.inspect(coco)
        candidates = self._candidates(coco)
        self.class_num, self.class_num_reason = resolve_class_num(
            self.cfg.class_num, self.own_class_count(), [c[1] for c in candidates])
        for candidate in candidates:
            self._keep(candidate)
        if self.records:
            self.inspect_records()
            self.choose_frame_source()
        self._log_summary(coco)

    def _candidates(self, coco: CocoVideos) -> List[Candidate]:
        """The videos whose annotation entries are usable (the others left out)."""
        candidates: List[Candidate] = []
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
                self.reject(Problem(err.reason, err.path or coco.path, err.detail))
                continue
            candidates.append((video_id, label, frame_num, fields))
            name = ann.get("action_name")
            if isinstance(name, str) and name.strip():
                self.class_names.setdefault(label, name.strip())
        return candidates

    def _keep(self, candidate: Candidate) -> None:
        """Add the video to `records`, unless its label, length or files leave it out."""
        video_id, label, frame_num, fields = candidate
        if not 0 <= label < self.class_num:
            self.reject(Problem(
                "label_out_of_range", self.annotation_path,
                f"video {video_id}: action_label {label} is outside [0, {self.class_num}) "
                f"({self.class_num} classes: {self.class_num_reason})"))
            return
        if frame_num < self.span:
            self.exclude("too_short")
            return
        try:
            source = self.video_source(video_id, fields)
        except FieldError as err:
            self.reject(Problem(err.reason, err.path or self.annotation_path, err.detail))
            return
        if source is None:
            return
        self.records.append({
            "video_id": video_id, "frame_num": frame_num, "label": label,
            "height": fields.get("height", 0), "width": fields.get("width", 0), **source,
        })

    def _log_repeats(self, coco: CocoVideos) -> None:
        """Log one line for the entries that repeat earlier ones exactly (none: no line)."""
        repeats = coco.repeated_images + coco.repeated_annotations
        if not repeats:
            return
        listed = "; ".join(repeats[:LISTED_REPEATS])
        more = f"; and {len(repeats) - LISTED_REPEATS} more" if len(repeats) > LISTED_REPEATS \
            else ""
        logger.info("%s: %d entr%s repeat%s an earlier one exactly, each video kept once: "
                    "%s%s", coco.path, len(repeats), "y" if len(repeats) == 1 else "ies",
                    "s" if len(repeats) == 1 else "", listed, more)

    def _log_summary(self, coco: CocoVideos) -> None:
        """Log the start-up's one summary line; `DataError` when no video is usable."""
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
