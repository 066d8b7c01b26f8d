"""Write a small synthetic action data set in the real Kinetics and Mimetics on-disk formats.

It makes the paper's claim visible on a laptop: every class has a typical *scene* (an easy
shortcut for an RGB network) and a typical *motion* (what the pose stream sees); two pairs of
classes share the very same motion and differ only by the object in the hands and the scene,
like many Kinetics classes. The out-of-context split (Mimetics format) mimes the same motions
with no object in the scene of another class, so an RGB model that learned scene -> class fails
there while the pose stream keeps working.

Layout written under `<out>` (read by the project's ordinary loaders, `data_dir=<out>`)::

    Kinetics/data/Kinetics{subset}_{train,val}.json              MS COCO layout + categories
    Kinetics/data/frames/{train_256,val_256}/{action}/{file_name}/%06d.jpg   (1-based)
    Kinetics/data/kinetics-skeleton/kinetics_{train,val}_label.json
    Kinetics/data/kinetics-skeleton/kinetics_{train,val}/{video}.json        (normalised x, y)
    Mimetics/data/Mimetics{subset}.json
    Mimetics/data/frames/{action}/{file_name}/%06d.jpg
    Mimetics/data/pose_results/{action}/{file_name}/data.json               (pixel x, y)
    synthetic_dataset.json                                       written first: "this folder is
                                                                 the generator's" (never removed)
    synthetic_params.json                                        written last: "complete" marker

It never writes into a folder that holds another data set: when `<out>/Kinetics/data`,
`<out>/Mimetics/data` or `<out>/NTU/data` already holds files and `<out>` has no marker of this
generator, it stops with a one-line error (choose an empty folder). Its own earlier output
(complete, interrupted, or written with other parameters) is rebuilt in place.

Every video is a pure function of (seed, split, class, slot), so the output does not depend on
the number of worker processes or the order they run in.

    python tool/make_synthetic_dataset.py --out output/synthetic --seed 0
"""
from __future__ import annotations

import os
import sys


import argparse
import json
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from common.io.atomic_file import atomic_write
from common.errors import UsageError, exit_on_error
from tool.synthetic.actions import BodyShape, MotionParams, action_pose, idle_params
from tool.synthetic.render import (SCENES, FigureStyle, draw_held_prop, draw_person,
                                   draw_scene)

FORMAT_VERSION = 3  # bump when the generated content changes, so old sets get rebuilt
MARKER_NAME = "synthetic_params.json"  # the "complete" marker: the parameters of the set
OWNER_MARKER_NAME = "synthetic_dataset.json"  # "this folder holds the generator's output"
# Data set folders under <out> that may hold a real data set (the project's data_dir layout).
DATASET_DIRS = ("Kinetics", "Mimetics", "NTU")


@dataclass(frozen=True)
class ActionClass:
    """A class = a motion + the object held while doing it + the scene it usually happens in."""

    name: str
    motion: str
    held_prop: Optional[str]
    scene: str


# The first 8 are the default set. Two pairs share a motion and differ only by held object and
# scene (swing_racket/swing_bat, lift_dumbbell/lift_box), so pose alone cannot separate them.
# The pairs sit at 0/1 and 4/5 so that smaller sets (e.g. 4 classes) still mix both kinds.
CLASSES: Tuple[ActionClass, ...] = (
    ActionClass("swing_racket", "swing", "racket", "tennis_court"),
    ActionClass("swing_bat", "swing", "bat", "baseball_field"),
    ActionClass("wave", "wave", None, "beach"),
    ActionClass("jump", "jump", None, "snow"),
    ActionClass("lift_dumbbell", "lift", "dumbbells", "gym"),
    ActionClass("lift_box", "lift", "box", "warehouse"),
    ActionClass("squat", "squat", None, "living_room"),
    ActionClass("kick_ball", "kick", "ball", "soccer_field"),
    ActionClass("punch", "punch", "gloves", "boxing_ring"),
    ActionClass("clap", "clap", None, "stage"),
    ActionClass("arm_circles", "arm_circles", None, "street"),
    ActionClass("bow", "bow", None, "pool"),
)
assert all(c.scene in SCENES for c in CLASSES)

SPLIT_IDS = {"train": 0, "val": 1, "mimetics": 2}  # part of every video's random-seed key

# Detector imperfections written into the pose files (the drawn figure itself is exact).
JOINT_NOISE = 0.012  # std of the joint position noise, in body units
MISSED_JOINT_PROB = 0.05  # joints reported with score 0
SCORE_RANGE = (0.5, 1.0)  # confidence of the detected joints
BYSTANDER_PROB = 0.25  # videos with a second, idle person


@dataclass(frozen=True)
class GenParams:
    """Everything that determines the output bytes (saved as the completion marker)."""

    seed: int
    num_classes: int
    train_per_class: int
    test_per_class: int
    frames: int
    height: int
    width: int
    subset: str
    jpeg_quality: int
    version: int = FORMAT_VERSION


@dataclass(frozen=True)
class VideoPlan:
    """The per-video choices (label, scene, motion, the actor's body and placement) that the
    summary exposes; colours, textures and detector noise are drawn while rendering."""

    split: str  # 'train', 'val' or 'mimetics'
    number: int  # 1-based, unique over the data set: image id and name
    label: int
    slot: int  # index of the video within its class and split
    scene: int  # index of the class whose scene is drawn (== label unless out of context)
    held_prop: Optional[str]
    motion: str
    motion_params: MotionParams
    bystander: bool
    clip_start: int  # seconds, only for the Kinetics-style train file-name suffix
    body: BodyShape  # the actor's proportions
    actor_x: float  # pixel x of the point between the actor's feet
    actor_ground: float  # pixel y of the ground under the actor
    actor_scale: float  # pixels per body unit

    @property
    def name(self) -> str:
        return f"synth{self.number:05d}"

    @property
    def file_name(self) -> str:
        # The Kinetics release names train clips `<id>_<start>_<end>`; its pose labels use `<id>`.
        if self.split == "train":
            return f"{self.name}_{self.clip_start:06d}_{self.clip_start + 10:06d}"
        return self.name


def _rng(params: GenParams, split: str, label: int, slot: int, *extra: int) -> np.random.Generator:
    """An independent stream per video: the same video whatever the order of generation."""
    return np.random.default_rng([params.seed, SPLIT_IDS[split], label, slot, *extra])


def plan_split(params: GenParams, split: str, first_number: int, per_class: int) -> List[VideoPlan]:
    """Plans of one split, class-major; numbers start at `first_number`."""
    plans = []
    for label in range(params.num_classes):
        cls = CLASSES[label]
        for slot in range(per_class):
            rng = _rng(params, split, label, slot)
            motion_params = MotionParams.random(rng)
            bystander = bool(rng.random() < BYSTANDER_PROB)
            clip_start = int(rng.integers(0, 300))
            body = BodyShape.random(rng)
            # The whole actor fits the test-time centre crop (about the central 86 % of the
            # height and 64 % of the width at the quickstart's shapes): with the feet lower
            # down, the centre crop cut the ankles and knees off in most videos, and the
            # motions that live in the legs (jump, squat, kick) became guesswork for pose.
            actor_x = params.width * float(rng.uniform(0.38, 0.62))
            actor_ground = params.height * float(rng.uniform(0.80, 0.88))
            actor_scale = params.height * float(rng.uniform(0.52, 0.64))
            out_of_context = split == "mimetics"
            scene = label
            if out_of_context:
                # Out of context: nothing in the hands (miming), and the scene of a class with
                # another motion, so that the scene contradicts what the body does. (The scene
                # of the class sharing the motion, e.g. a tennis court for a mimed bat swing, is
                # what that class looks like without its object: a pair confusion, not a
                # misleading context, and pose cannot settle it either.)
                others = [c for c in range(params.num_classes) if c != label]
                contrary = [c for c in others if CLASSES[c].motion != cls.motion] or others
                scene = contrary[int(rng.integers(0, len(contrary)))]
            plans.append(VideoPlan(
                split=split, number=first_number + label * per_class + slot, label=label,
                slot=slot, scene=scene, held_prop=None if out_of_context else cls.held_prop,
                motion=cls.motion, motion_params=motion_params, bystander=bystander,
                clip_start=clip_start, body=body, actor_x=actor_x, actor_ground=actor_ground,
                actor_scale=actor_scale))
    return plans


def plan_dataset(params: GenParams) -> Dict[str, List[VideoPlan]]:
    """Plans of the three splits; image ids/names run on from train to val to mimetics."""
    n_train = params.num_classes * params.train_per_class
    n_test = params.num_classes * params.test_per_class
    return {
        "train": plan_split(params, "train", 1, params.train_per_class),
        "val": plan_split(params, "val", 1 + n_train, params.test_per_class),
        "mimetics": plan_split(params, "mimetics", 1 + n_train + n_test, params.test_per_class),
    }


# ----------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------

def dataset_paths(out_dir: str, subset: str) -> Dict[str, str]:
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
        "marker": os.path.join(out_dir, MARKER_NAME),
        "owner_marker": os.path.join(out_dir, OWNER_MARKER_NAME),
    }


def _frame_dir(paths: Dict[str, str], plan: VideoPlan) -> str:
    action = CLASSES[plan.label].name
    if plan.split == "mimetics":
        return os.path.join(paths["mimetics_dir"], "frames", action, plan.file_name)
    return os.path.join(paths["kinetics_dir"], "frames", f"{plan.split}_256", action,
                        plan.file_name)


def _pose_path(paths: Dict[str, str], plan: VideoPlan) -> str:
    if plan.split == "mimetics":
        return os.path.join(paths["mimetics_dir"], "pose_results", CLASSES[plan.label].name,
                            plan.file_name, "data.json")
    return os.path.join(paths["kinetics_skeleton_dir"], f"kinetics_{plan.split}",
                        f"{plan.name}.json")


def _write_json(path: str, obj: Any) -> None:
    """Sorted keys and pre-rounded floats: the same data always gives the same bytes."""
    with atomic_write(path) as f:
        json.dump(obj, f, sort_keys=True)


# ----------------------------------------------------------------------------------------------
# Rendering one video
# ----------------------------------------------------------------------------------------------

def _detect(px: np.ndarray, scale: float, height: int, width: int,
            rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """What a pose detector would report for exact pixel joints: noise, misses, scores.

    Returns (18, 2) pixel coordinates and (18,) scores; missed and out-of-frame joints are
    (0, 0) with score 0, as in the OpenPose outputs of the real releases.
    """
    xy = px + rng.normal(0.0, JOINT_NOISE * scale, size=px.shape)
    score = rng.uniform(*SCORE_RANGE, size=len(px))
    missed = rng.random(len(px)) < MISSED_JOINT_PROB
    outside = (xy[:, 0] < 0) | (xy[:, 0] >= width) | (xy[:, 1] < 0) | (xy[:, 1] >= height)
    lost = missed | outside
    xy[lost] = 0.0
    score[lost] = 0.0
    return xy, score


def render_video(plan: VideoPlan, params: GenParams, paths: Dict[str, str]) -> None:
    """Write the JPEG frames and the pose file of one video."""
    h, w, n_frames = params.height, params.width, params.frames
    rng = _rng(params, plan.split, plan.label, plan.slot, 1)
    actor = FigureStyle.random(rng, centre_x=plan.actor_x, ground_y=plan.actor_ground,
                               scale=plan.actor_scale)
    background = draw_scene(h, w, CLASSES[plan.scene].scene, rng)
    people = [(actor, plan.body, plan.motion, plan.motion_params)]
    if plan.bystander:
        # Smaller (further away) and on the side away from the actor.
        far_side = rng.uniform(0.8, 0.94) if actor.centre_x < w / 2 else rng.uniform(0.06, 0.2)
        bystander = FigureStyle.random(
            rng, centre_x=w * far_side, ground_y=actor.ground_y - h * rng.uniform(0.04, 0.1),
            scale=actor.scale * rng.uniform(0.55, 0.8))
        people.insert(0, (bystander, BodyShape.random(rng), "idle", idle_params(rng)))

    frame_dir = _frame_dir(paths, plan)
    os.makedirs(frame_dir, exist_ok=True)
    detections: List[List[Tuple[np.ndarray, np.ndarray]]] = []
    for t in range(n_frames):
        img = background.copy()
        found = []
        for style, shape, motion, motion_params in people:  # back to front
            px = style.to_pixels(action_pose(motion, t, motion_params, shape))
            draw_person(img, px, style)
            if style is actor:
                draw_held_prop(img, plan.held_prop, px, style.scale)
            found.append(_detect(px, style.scale, h, w, rng))
        found.reverse()  # the actor first in the pose files
        detections.append(found)
        cv2.imwrite(os.path.join(frame_dir, f"{t + 1:06d}.jpg"), img,
                    [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])

    cls = CLASSES[plan.label]
    if plan.split == "mimetics":
        pose, score = [], []
        for found in detections:
            flat: List[float] = []
            for xy, sc in found:
                # (x, y, score) per joint, flattened; np.round then tolist() gives the same
                # shortest float reprs on every run.
                flat += np.concatenate([np.round(xy, 2), np.round(sc, 3)[:, None]],
                                       axis=1).reshape(-1).tolist()
            pose.append(flat or None)  # None = nobody detected in this frame
            score.append([1.0] * len(found))
        _write_json(_pose_path(paths, plan), {"pose": pose, "score": score})
    else:
        data = []
        for t, found in enumerate(detections):
            skeleton = []
            for xy, sc in found:
                norm = xy / np.array([w, h])  # the kinetics-skeleton release is normalised
                skeleton.append({"pose": np.round(norm, 4).reshape(-1).tolist(),
                                 "score": np.round(sc, 3).tolist()})
            data.append({"frame_index": t + 1, "skeleton": skeleton})  # 1-based, as released
        _write_json(_pose_path(paths, plan),
                    {"data": data, "label": cls.name, "label_index": plan.label})


def render_shard(out_dir: str, params: Dict[str, Any], shard: int, num_shards: int) -> None:
    """Render every `num_shards`-th video starting at `shard` (the work of one process)."""
    gen = GenParams(**params)
    paths = dataset_paths(out_dir, gen.subset)
    plans = plan_dataset(gen)
    ordered = [plan for split in ("train", "val", "mimetics") for plan in plans[split]]
    for plan in ordered[shard::num_shards]:
        render_video(plan, gen, paths)


# Helper processes are fresh interpreters, not forks nor multiprocessing children: a fork of a
# process whose torch/OpenCV thread pools already run (a test session, a training script) can
# deadlock, and multiprocessing's spawn re-imports the caller's __main__, which breaks callers
# that have no `if __name__ == "__main__"` guard.
_SHARD_CODE = ("import json, sys, cv2; cv2.setNumThreads(1); "
               "from tool.make_synthetic_dataset import render_shard; "
               "render_shard(*json.loads(sys.argv[1]))")


def _render_all(out_dir: str, params: GenParams, workers: int) -> None:
    """Render all videos with `workers` processes (this one included)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    helpers = [subprocess.Popen(
        [sys.executable, "-c", _SHARD_CODE, json.dumps([out_dir, asdict(params), k, workers])],
        cwd=root, env=env, stderr=subprocess.PIPE) for k in range(1, workers)]
    try:
        render_shard(out_dir, asdict(params), 0, workers)
    finally:
        failures = []
        for k, proc in enumerate(helpers, start=1):
            _, err = proc.communicate()
            if proc.returncode != 0:
                message = err.decode(errors="replace")
                failures.append(f"shard {k}: exit {proc.returncode}\n{message}")
    if failures:
        raise RuntimeError("synthetic data helper process failed:\n" + "\n".join(failures))


# ----------------------------------------------------------------------------------------------
# Annotation files
# ----------------------------------------------------------------------------------------------

def _categories(params: GenParams) -> List[Dict[str, Any]]:
    return [{"id": i, "name": CLASSES[i].name} for i in range(params.num_classes)]


def _coco(plans: Sequence[VideoPlan], params: GenParams) -> Dict[str, Any]:
    images, annotations = [], []
    for plan in plans:
        name = CLASSES[plan.label].name
        images.append({"id": plan.number, "seq_name": name, "file_name": plan.file_name,
                       "height": params.height, "width": params.width,
                       "frame_num": params.frames})
        # `category_id` is not in the Kinetics release; it makes the file plain COCO, whose
        # index (pycocotools) requires it as soon as `categories` is present.
        annotations.append({"id": plan.number, "image_id": plan.number,
                            "action_label": plan.label, "action_name": name,
                            "category_id": plan.label})
    return {"images": images, "annotations": annotations, "categories": _categories(params)}


def _skeleton_labels(plans: Sequence[VideoPlan]) -> Dict[str, Any]:
    return {plan.name: {"has_skeleton": True, "label": CLASSES[plan.label].name,
                        "label_index": plan.label} for plan in plans}


def _write_annotations(plans: Dict[str, List[VideoPlan]], params: GenParams,
                       paths: Dict[str, str]) -> None:
    _write_json(paths["kinetics_train_json"], _coco(plans["train"], params))
    _write_json(paths["kinetics_val_json"], _coco(plans["val"], params))
    _write_json(paths["mimetics_json"], _coco(plans["mimetics"], params))
    for split in ("train", "val"):
        _write_json(os.path.join(paths["kinetics_skeleton_dir"], f"kinetics_{split}_label.json"),
                    _skeleton_labels(plans[split]))


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

def _summary(params: GenParams, plans: Dict[str, List[VideoPlan]], paths: Dict[str, str],
             skipped: bool, seconds: float) -> Dict[str, Any]:
    classes = CLASSES[:params.num_classes]
    videos = {
        split: [{
            "name": p.name, "file_name": p.file_name, "image_id": p.number, "label": p.label,
            "action": CLASSES[p.label].name, "motion": p.motion, "scene": p.scene,
            "scene_name": CLASSES[p.scene].scene, "held_prop": p.held_prop,
            "bystander": p.bystander, "motion_params": asdict(p.motion_params),
            "body": asdict(p.body), "actor": {"centre_x": p.actor_x, "ground_y": p.actor_ground,
                                              "scale": p.actor_scale},
            "frame_dir": _frame_dir(paths, p), "pose_file": _pose_path(paths, p),
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


def _read_marker(path: str) -> Optional[Dict[str, Any]]:
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
            _read_marker(os.path.join(out_dir, MARKER_NAME)) is not None:
        return
    for name in DATASET_DIRS:
        folder = os.path.join(out_dir, name, "data")
        if os.path.isdir(folder) and os.listdir(folder):
            raise UsageError(
                f"{folder} already holds files and {out_dir} has no {OWNER_MARKER_NAME} of "
                "this generator: it may be a real data set, which the synthetic one would "
                "overwrite; choose an empty folder for --out")


def _claim_target(paths: Dict[str, str]) -> None:
    """Write the owner marker (first, before any data): later runs may rebuild here."""
    if not os.path.isfile(paths["owner_marker"]):
        _write_json(paths["owner_marker"], {
            "written_by": "tool/make_synthetic_dataset.py",
            "content": "a synthetic action data set in the Kinetics and Mimetics formats "
                       "(not real data); this generator may overwrite it",
        })


def generate_dataset(out_dir: str, seed: int = 0, num_classes: int = 8,
                     train_per_class: int = 60, test_per_class: int = 15, frames: int = 20,
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
    if not 2 <= num_classes <= len(CLASSES):
        raise UsageError(f"--num_classes must be in [2, {len(CLASSES)}], got {num_classes}")
    if min(train_per_class, test_per_class, frames) < 1:
        raise UsageError("--train_per_class, --test_per_class and --frames must be >= 1")
    if min(height, width) < 16:
        raise UsageError("--height and --width must be at least 16 pixels")
    params = GenParams(seed=int(seed), num_classes=int(num_classes),
                       train_per_class=int(train_per_class),
                       test_per_class=int(test_per_class), frames=int(frames),
                       height=int(height), width=int(width), subset=str(subset),
                       jpeg_quality=int(jpeg_quality))
    out_dir = os.path.abspath(out_dir)
    paths = dataset_paths(out_dir, params.subset)
    plans = plan_dataset(params)
    start = time.perf_counter()
    if not force and _read_marker(paths["marker"]) == asdict(params):
        return _summary(params, plans, paths, skipped=True, seconds=0.0)
    check_target(out_dir)
    _claim_target(paths)

    # The marker goes first and comes back last, so an interrupted run is never "complete".
    if os.path.exists(paths["marker"]):
        os.remove(paths["marker"])
    n_videos = sum(len(p) for p in plans.values())
    n_workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    _render_all(out_dir, params, min(n_workers, n_videos))
    _write_annotations(plans, params, paths)
    _write_json(paths["marker"], asdict(params))
    return _summary(params, plans, paths, skipped=False, seconds=time.perf_counter() - start)


def write_preview(summary: Dict[str, Any], path: str, frame: Optional[int] = None,
                  cell_height: int = 128) -> str:
    """A PNG grid: one frame per class, train (top row) and out-of-context (bottom row)."""
    params = summary["params"]
    frame = frame if frame is not None else params["frames"] // 2 + 1
    rows = []
    for split in ("train", "mimetics"):
        cells = []
        for label, name in enumerate(summary["class_names"]):
            video = next(v for v in summary["videos"][split] if v["label"] == label)
            img = cv2.imread(os.path.join(video["frame_dir"], f"{frame:06d}.jpg"))
            scale = cell_height / img.shape[0]
            img = cv2.resize(img, (int(round(img.shape[1] * scale)), cell_height))
            text = name if split == "train" else f"{name} @ {video['scene_name']}"
            cv2.rectangle(img, (0, 0), (img.shape[1], 12), (0, 0, 0), -1)
            cv2.putText(img, text, (2, 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1,
                        cv2.LINE_AA)
            cells.append(cv2.copyMakeBorder(img, 2, 2, 2, 2, cv2.BORDER_CONSTANT,
                                            value=(255, 255, 255)))
        rows.append(np.concatenate(cells, axis=1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, np.concatenate(rows, axis=0))
    return path


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The command line; an unusable --out ends with one `error: ...` line and exit status 1."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(root, "output", "synthetic"),
                        help="output folder (use it as --data_dir for train.py/test.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_classes", type=int, default=8,
                        help=f"2..{len(CLASSES)}; the first 8: "
                             + ", ".join(c.name for c in CLASSES[:8]))
    parser.add_argument("--train_per_class", type=int, default=60)
    parser.add_argument("--test_per_class", type=int, default=15,
                        help="videos per class in the in-context val and the out-of-context split")
    parser.add_argument("--frames", type=int, default=20, help="frames per video")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=170)
    parser.add_argument("--subset", default="Synth",
                        help="names the files Kinetics{subset}_train.json, Mimetics{subset}.json")
    parser.add_argument("--jpeg_quality", type=int, default=90)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: up to 2)")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    parser.add_argument("--preview", default=None,
                        help="also write a PNG: one frame per class, train / out of context")
    args = parser.parse_args(argv)
    summary = generate_dataset(
        args.out, seed=args.seed, num_classes=args.num_classes,
        train_per_class=args.train_per_class, test_per_class=args.test_per_class,
        frames=args.frames, height=args.height, width=args.width, subset=args.subset,
        workers=args.workers, jpeg_quality=args.jpeg_quality, force=args.force)
    state = "already complete, nothing to do" if summary["skipped"] \
        else f"written in {summary['seconds']:.1f} s"
    print(f"Synthetic data set at {summary['out_dir']}: {state}")
    print("  videos: " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items()))
    for name, motion, prop, scene in zip(summary["class_names"], summary["motions"],
                                         summary["held_props"], summary["scenes"]):
        print(f"  {name:14s} motion={motion:12s} object={str(prop):10s} scene={scene}")
    if args.preview:
        print(f"  preview: {write_preview(summary, args.preview)}")
    return summary


if __name__ == "__main__":
    main()
