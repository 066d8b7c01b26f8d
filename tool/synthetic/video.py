"""Rendering the synthetic videos: one video's frames (scene, people, held object) and what a
pose detector would report on them, and all videos of a data set over worker processes.

A video is a pure function of its plan and `GenParams`: its random stream is `video_rng(...,
1)`, drawn from in a fixed order (the actor's style, the scene, the bystander, then per frame
and person the detector noise), so the bytes do not depend on the worker that renders it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from typing import Any, Dict, List, Tuple

import cv2
import numpy as np

from tool.synthetic.actions import BodyShape, MotionParams, action_pose, idle_params
from tool.synthetic.annotations import Detections, write_pose_file
from tool.synthetic.figures import FigureStyle, draw_held_prop, draw_person
from tool.synthetic.layout import dataset_paths, frame_dir
from tool.synthetic.plan import CLASSES, GenParams, VideoPlan, plan_dataset, video_rng
from tool.synthetic.scenes import draw_scene

# Detector imperfections written into the pose files (the drawn figure itself is exact).
JOINT_NOISE = 0.012  # std of the joint position noise, in body units
MISSED_JOINT_PROB = 0.05  # joints reported with score 0
SCORE_RANGE = (0.5, 1.0)  # confidence of the detected joints

# A person in a video: how it is drawn, its body, its motion and the motion's parameters.
Person = Tuple[FigureStyle, BodyShape, str, MotionParams]


def detect_joints(px: np.ndarray, scale: float, *, height: int, width: int,
                  rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """What a pose detector would report for exact pixel joints `px (18, 2)`: noise, misses,
    scores.

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


def cast_people(plan: VideoPlan, actor: FigureStyle, *, height: int, width: int,
                rng: np.random.Generator) -> List[Person]:
    """The people of a video, back to front: the optional idle bystander, then the actor."""
    people: List[Person] = [(actor, plan.body, plan.motion, plan.motion_params)]
    if plan.bystander:
        h, w = height, width
        # Smaller (further away) and on the side away from the actor.
        far_side = rng.uniform(0.8, 0.94) if actor.centre_x < w / 2 else rng.uniform(0.06, 0.2)
        bystander = FigureStyle.random(
            rng, centre_x=w * far_side, ground_y=actor.ground_y - h * rng.uniform(0.04, 0.1),
            scale=actor.scale * rng.uniform(0.55, 0.8))
        people.insert(0, (bystander, BodyShape.random(rng), "idle", idle_params(rng)))
    return people


def render_frames(plan: VideoPlan, params: GenParams, *, background: np.ndarray,
                  people: List[Person], actor: FigureStyle, folder: str,
                  rng: np.random.Generator) -> Detections:
    """Draw and write the JPEG frames of a video into `folder`; returns per frame the
    detections `(xy (18, 2) pixels, score (18,))` of its people, the actor first."""
    h, w = params.height, params.width
    os.makedirs(folder, exist_ok=True)
    detections: Detections = []
    for t in range(params.frames):
        img = background.copy()
        found = []
        for style, shape, motion, motion_params in people:  # back to front
            px = style.to_pixels(action_pose(motion, t, motion_params, shape))
            draw_person(img, px, style)
            if style is actor:
                draw_held_prop(img, plan.held_prop, px, style.scale)
            found.append(detect_joints(px, style.scale, height=h, width=w, rng=rng))
        found.reverse()  # the actor first in the pose files
        detections.append(found)
        cv2.imwrite(os.path.join(folder, f"{t + 1:06d}.jpg"), img,
                    [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
    return detections


def render_video(plan: VideoPlan, params: GenParams, paths: Dict[str, str]) -> None:
    """Write the JPEG frames and the pose file of one video."""
    h, w = params.height, params.width
    rng = video_rng(params, plan.split, plan.label, plan.slot, 1)
    actor = FigureStyle.random(rng, centre_x=plan.actor_x, ground_y=plan.actor_ground,
                               scale=plan.actor_scale)
    background = draw_scene(h, w, CLASSES[plan.scene].scene, rng)
    people = cast_people(plan, actor, height=h, width=w, rng=rng)
    detections = render_frames(plan, params, background=background, people=people,
                               actor=actor, folder=frame_dir(paths, plan), rng=rng)
    write_pose_file(plan, params, paths, detections)


def render_shard(out_dir: str, params: Dict[str, Any], shard: int, num_shards: int) -> None:
    """Render every `num_shards`-th video starting at `shard` (the work of one process)."""
    gen = GenParams(**params)
    paths = dataset_paths(out_dir, gen.subset)
    plans = plan_dataset(gen)
    ordered = [plan for split_plans in plans.values() for plan in split_plans]
    for plan in ordered[shard::num_shards]:
        render_video(plan, gen, paths)


# Helper processes are fresh interpreters, not forks nor multiprocessing children: a fork of a
# process whose torch/OpenCV thread pools already run (a test session, a training script) can
# deadlock, and multiprocessing's spawn re-imports the caller's __main__, which breaks callers
# that have no `if __name__ == "__main__"` guard.
SHARD_CODE = ("import json, sys, cv2; cv2.setNumThreads(1); "
              "from tool.synthetic.video import render_shard; "
              "render_shard(*json.loads(sys.argv[1]))")
# The repository root (this file is tool/synthetic/video.py), put first on the helpers' path.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def render_all(out_dir: str, params: GenParams, workers: int) -> None:
    """Render all videos with `workers` processes (this one included)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    helpers = [subprocess.Popen(
        [sys.executable, "-c", SHARD_CODE, json.dumps([out_dir, asdict(params), k, workers])],
        cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE) for k in range(1, workers)]
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
