"""Case 3: one training step of each stage, with where its time goes.

For each stage: clips/s of a whole step (forward, losses, backward, SGD) on a batch in memory,
and the time of its parts measured alone on the same batch: loading (the stage's items read by
the real dataset, one process), rendering the pose maps, the backbones (forward, plus backward
where the stage trains them; the frozen streams of rgb+pose run without autograd), and the rest
(the step minus rendering and backbones: fusion, classifier, losses, optimizer).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List

import torch

from common.train.engine import make_optimizer, optimizer_step, step_losses
from common.model import IntegralAction, build_model
from common.nets.pose_maps import render_pose_maps
from common.runtime.precision import Precision
from common.stages import STAGES
from data.registry import build_dataset
from data.samplers import item_stream
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import time_call


def training_batch(cfg: Any, dataset: Any, device: torch.device) -> Dict[str, torch.Tensor]:
    """A training batch of real items (the first `train_batch_size` of the data set)."""
    items = [dataset[(i % len(dataset), item_stream(0, 0))] for i in range(cfg.train_batch_size)]
    keys = ("video", "pose_coords", "pose_scores", "label")
    return {k: torch.stack([item[k] for item in items]).to(device) for k in keys if k in items[0]}


def _loading_time(dataset: Any, batch_size: int, repeats: int) -> float:
    """Seconds to read one batch's items in this process (no workers)."""
    start = time.perf_counter()
    count = max(batch_size, repeats)
    for i in range(count):
        dataset[(i % len(dataset), item_stream(1, i))]
    return (time.perf_counter() - start) / count * batch_size


def _stage_row(stage: str, *, data_dir: str, device: torch.device, repeats: int,
               smoke: bool) -> Dict[str, Any]:
    cfg = benchmark_config(data_dir, smoke=smoke, mode=stage)
    dataset = build_dataset(cfg, cfg.dataset, "train")
    batch = training_batch(cfg, dataset, device)
    joints = dataset.joint_set
    torch.manual_seed(0)
    renders: List[int] = []

    def counting_renderer(*args: Any, **kwargs: Any) -> torch.Tensor:
        renders.append(1)
        return render_pose_maps(*args, **kwargs)

    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num,
                        pose_renderer=counting_renderer)
    model.init_weights(None)
    model.freeze_for_stage()
    model.to(device).train()
    optimizer = make_optimizer(model, cfg)

    fp32 = Precision(device_type=device.type)

    def step() -> None:  # train.py's step, in fp32
        losses = step_losses(model, batch, reg_weight=cfg.reg_weight, precision=fp32)
        optimizer_step(sum(losses.values()), optimizer)

    step_s = time_call(step, device=device, repeats=repeats).median
    renders_per_step = len(renders) / (repeats + 1)
    clips = cfg.train_batch_size
    parts = _part_times(model, batch, clips=clips, device=device, repeats=repeats)
    optimizer.zero_grad(set_to_none=True)
    load_s = _loading_time(dataset, clips, repeats)
    rest = max(step_s - sum(parts.values()), 0.0)
    # The parts are timed alone, so on a busy machine their sum can exceed the step: the
    # shares are then of the parts' sum, so that they always add up to 1.
    total = max(step_s, sum(parts.values())) + load_s
    return {
        "stage": stage, "clips_per_s": clips / step_s, "step_s": step_s, "load_s": load_s,
        "renders_per_step": renders_per_step, "batch_keys": sorted(batch),
        "share": {"loading": load_s / total, "rendering": parts["render"] / total,
                  "backbones": (parts["img_backbone"] + parts["pose_backbone"]) / total,
                  "rest": rest / total},
        "parts_s": {**parts, "rest": rest},
    }


def _part_times(model: IntegralAction, batch: Dict[str, Any], *, clips: int,
                device: torch.device, repeats: int) -> Dict[str, float]:
    """Seconds of the step's parts, each timed alone: the pose-map rendering and each
    backbone's forward (and backward, where the stage trains it)."""
    b, t = clips, model.frame_per_seg
    parts = {"render": 0.0, "img_backbone": 0.0, "pose_backbone": 0.0}
    trains = set(model.trainable_modules())
    coords, scores = batch["pose_coords"], batch["pose_scores"]
    if model.uses_pose:
        with torch.no_grad():
            parts["render"] = time_call(lambda: model.render_pose(coords, scores), device=device,
                                        repeats=repeats).median
            maps = model.render_pose(coords, scores)

        def pose_part() -> None:
            with torch.set_grad_enabled("pose_backbone" in trains):
                feat = model.pose_backbone(model.pose2feat(maps))
            if feat.requires_grad:
                feat.sum().backward()
        parts["pose_backbone"] = time_call(pose_part, device=device, repeats=repeats).median
    if model.uses_video:
        video = batch["video"].reshape(b * t, *batch["video"].shape[2:])

        def img_part() -> None:
            with torch.set_grad_enabled("img_backbone" in trains):
                feat = model.img_backbone(video)
            if feat.requires_grad:
                feat.sum().backward()
        parts["img_backbone"] = time_call(img_part, device=device, repeats=repeats).median
    return parts


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str) -> Dict[str, Any]:
    rows = [_stage_row(stage, data_dir=data_dir, device=device, repeats=repeats, smoke=smoke)
            for stage in STAGES]
    by = {row["stage"]: row for row in rows}
    fused_vs_sum = by["rgb+pose"]["step_s"] / (by["rgb_only"]["step_s"] + by["pose_only"]["step_s"])
    worst_render = max(row["parts_s"]["render"] / row["step_s"] for row in rows)
    return {
        "case": "training step (batch in memory)",
        "rows": rows,
        "fused_step_vs_single_sum": fused_vs_sum,
        "targets": {"rgb+pose step <= 0.6 x (rgb_only + pose_only)": fused_vs_sum <= 0.6,
                    "rendering < 5% of any step": worst_render < 0.05,
                    "rgb_only renders no pose maps": by["rgb_only"]["renders_per_step"] == 0,
                    "pose_only loads no frames": "video" not in by["pose_only"]["batch_keys"]},
    }
