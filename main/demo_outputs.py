"""The demo's outputs, and what its steps hand to each other: the snapshot's network, the
video's frames and the prediction, printed, drawn (the annotated video, the summary figure) and
summed up in `<name>_prediction.json` (see `main/demo.py`)."""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from common.report.visualize import annotate_frames, plot_prediction_summary, write_video
from common.stages import Stage
from data.joint_sets import OPENPOSE_18, JointSet
from data.skeleton_files import write_json_atomic
from data.video_clips import ClipGeometry, ClipPlan, PoseTable


@dataclass
class DemoNetwork:
    """What the snapshot gives: its weights, config and stage, the joint set of its poses and
    the names of its classes (`names[i]` for class i; the index where no name is known)."""
    snap: Dict[str, Any]
    cfg: Any
    stage: Stage
    joint_set: JointSet
    names: List[str]
    names_from: str


@dataclass
class DemoVideo:
    """The frames `(N, H, W, 3)` uint8 RGB, their rate, where they came from, the outputs' name
    prefix and the test clips planned on them."""
    frames: np.ndarray
    fps: float
    source: str
    name: str
    plans: List[ClipPlan]


@dataclass
class DemoPrediction:
    """The network's outputs per clip ('prob' (N, C), 'gate' (N,), 'agreement' (N,)), the video's
    probabilities `(C,)` (the clips' mean), its top classes, and the clips' plans and geometry."""
    outputs: Dict[str, np.ndarray]
    probs: np.ndarray
    order: List[int]
    plans: List[ClipPlan]
    geometry: ClipGeometry



def print_prediction(video: DemoVideo, network: DemoNetwork, prediction: DemoPrediction,
                     pose_source: str) -> None:
    """The video, its clips, the top classes and the per-clip gate and agreement."""
    cfg, names, probs = network.cfg, network.names, prediction.probs
    seconds = len(video.frames) / video.fps
    print(f"{video.source}: {len(video.frames)} frames ({seconds:.1f} s at {video.fps:g} fps), "
          f"{len(prediction.plans)} clips of {cfg.frame_per_seg} frames every "
          f"{cfg.frame_interval}; {cfg.mode}; poses: {pose_source}; class names: "
          f"{network.names_from}")
    print(f"top-{len(prediction.order)}:")
    for rank, i in enumerate(prediction.order, start=1):
        print(f"  {rank}. {names[i]:<30s} {probs[i]:.4f}")
    outputs = prediction.outputs
    if "gate" in outputs:
        print("pose gate per clip (1 = pose, 0 = RGB): "
              + " ".join(f"{g:.3f}" for g in outputs["gate"]))
    if "agreement" in outputs:
        print("stream agreement per clip: " + " ".join(f"{a:.3f}" for a in outputs["agreement"]))


def clip_of_frame(plans: Sequence[ClipPlan], frame: int) -> Optional[ClipPlan]:
    """The latest-starting clip whose span holds `frame` (clips may overlap)."""
    holding = [p for p in plans if p.image_frames[0] <= frame <= p.image_frames[-1]]
    return holding[-1] if holding else None


def frame_captions(frame_num: int, prediction: DemoPrediction, names: Sequence[str]
                   ) -> List[List[str]]:
    """Per frame: the video's top-2 classes, then the current clip's own top class, gate and
    agreement."""
    probs, outputs, plans = prediction.probs, prediction.outputs, prediction.plans
    header = [f"{rank}. {names[i]} {probs[i]:.2f}"
              for rank, i in enumerate(prediction.order[:2], start=1)]
    captions = []
    for k in range(frame_num):
        lines = list(header)
        plan = clip_of_frame(plans, k)
        if plan is not None:
            i = plan.index
            clip_best = int(np.argmax(outputs["prob"][i]))
            text = f"clip {i + 1}/{len(plans)}: {names[clip_best]}"
            if "gate" in outputs:
                text += f" gate {outputs['gate'][i]:.2f}"
            if "agreement" in outputs:
                text += f" agr {outputs['agreement'][i]:.2f}"
            lines.append(text)
        captions.append(lines)
    return captions


def write_pictures(video: DemoVideo, network: DemoNetwork, prediction: DemoPrediction, *,
                   table: PoseTable, out_dir: str, video_format: str) -> Dict[str, str]:
    """The summary figure and (unless `video_format` is 'none') the annotated video; returns
    their paths ('summary', 'video')."""
    cfg, names, probs, outputs = network.cfg, network.names, prediction.probs, prediction.outputs
    best = prediction.order[0]
    files = {"summary": plot_prediction_summary(
        osp.join(out_dir, f"{video.name}_summary.png"), probs=probs, class_names=names,
        clip_times=np.array([p.start / video.fps for p in prediction.plans]),
        clip_probs=outputs["prob"], gates=outputs.get("gate"),
        agreements=outputs.get("agreement"),
        title=f"{video.name}: {names[best]} ({probs[best]:.2f}), {cfg.mode}")}
    if video_format != "none":
        drawn = annotate_frames(
            video.frames, poses=table, limbs=OPENPOSE_18.limbs,
            score_thr=float(cfg.pose_score_thr), top_k=int(cfg.top_k_pose),
            box=prediction.geometry.box_in_frame(),
            sampled={k for plan in prediction.plans for k in plan.image_frames},
            captions=frame_captions(len(video.frames), prediction, names))
        files["video"] = write_video(
            drawn, osp.join(out_dir, f"{video.name}_demo.{video_format}"), fps=video.fps)
    return files


def prediction_summary(video: DemoVideo, network: DemoNetwork, prediction: DemoPrediction, *,
                       ckpt: str, pose_source: str, device: torch.device,
                       seconds: Dict[str, float], files: Dict[str, str]) -> Dict[str, Any]:
    """What `<name>_prediction.json` holds: the video, the prediction, its clips and gates,
    the seconds per step and the files written (`files` itself, so that what is added to it
    later is in the summary too)."""
    names, probs, outputs = network.names, prediction.probs, prediction.outputs
    summary: Dict[str, Any] = {
        "source": video.source, "ckpt": ckpt, "mode": network.cfg.mode,
        "frames": len(video.frames), "fps": video.fps, "class_names_from": network.names_from,
        "poses_from": pose_source,
        "top5": [{"class": i, "name": names[i], "prob": float(probs[i])}
                 for i in prediction.order],
        "probs": [float(p) for p in probs],
        "clips": [{"start": p.start, "image_frames": list(p.image_frames),
                   "pose_frames": list(p.pose_frames),
                   "prob": [float(v) for v in outputs["prob"][p.index]]}
                  for p in prediction.plans],
        "crop_box_resized": list(prediction.geometry.box),
        "resized_hw": list(prediction.geometry.resized_hw), "device": str(device),
        "seconds": seconds, "files": files,
    }
    if "gate" in outputs:
        summary["gates"] = [float(g) for g in outputs["gate"]]
    if "agreement" in outputs:
        summary["agreements"] = [float(a) for a in outputs["agreement"]]
    return summary


def save_prediction(summary: Dict[str, Any], path: str) -> None:
    """Write `summary` to `path` (listed in its 'files' as 'prediction'), then print the files
    written and the seconds per step."""
    files = summary["files"]
    files["prediction"] = path
    write_json_atomic(path, summary)
    print("written: " + ", ".join(files[k] for k in ("video", "summary", "prediction", "poses")
                                  if k in files))
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in summary["seconds"].items()))
