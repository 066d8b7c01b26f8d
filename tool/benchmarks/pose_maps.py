"""Case 1: rendering the pose maps (joint heatmaps + PAFs), ours against the dense formulation.

The baseline is `tool.benchmarks.baselines.pose_maps_dense.render_pose_maps_dense`, written
straight from docs/data_format.md the way the original computes it: one (N, P, L, H, W) tensor
per mask.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import torch

from common.nets.pose_maps import render_pose_maps
from tool.benchmarks.baselines.pose_maps_dense import render_pose_maps_dense
from data.joint_sets import OPENPOSE_18
from tool.benchmarks.measure import peak_memory_mib, ratio, time_pair

RENDERERS = {"ours": render_pose_maps, "baseline": render_pose_maps_dense}


def clip_poses(*, clips: int, frames: int, people: int, real: int, hm: int, seed: int = 0,
               device: str = "cpu") -> Dict[str, torch.Tensor]:
    """Poses as a data loader gives them: `real` people per frame moving a little, the others
    padding (score 0, coordinate 1.0), one joint in ten dropped (score 0).

    Returns 'coords' (clips*frames, people, 18, 2) on the `hm` x `hm` grid, 'scores'
    (clips*frames, people, 18).
    """
    g = torch.Generator().manual_seed(seed)
    n, joints = clips * frames, OPENPOSE_18.joint_num
    coords = torch.ones(n, people, joints, 2)
    scores = torch.zeros(n, people, joints)
    centre = torch.rand(clips, 1, real, 1, 2, generator=g) * hm * 0.6 + hm * 0.2
    spread = torch.randn(clips, 1, real, joints, 2, generator=g) * hm * 0.12
    drift = torch.randn(clips, frames, real, 1, 2, generator=g).cumsum(1) * 0.3
    coords[:, :real] = (centre + spread + drift).reshape(n, real, joints, 2)
    scores[:, :real] = (torch.rand(n, real, joints, generator=g) * 0.8 + 0.2)
    scores[:, :real] *= (torch.rand(n, real, joints, generator=g) > 0.1).float()
    return {"coords": coords.to(device), "scores": scores.to(device)}


def make_call(*, side: str, clips: int, frames: int, people: int, real: int, hm: int,
              device: str = "cpu") -> Callable[[], Any]:
    """A closure rendering the clips' pose maps with one side's renderer (for the memory
    measurement, which builds it in a fresh process)."""
    poses = clip_poses(clips=clips, frames=frames, people=people, real=real, hm=hm,
                       device=device)
    limbs = torch.as_tensor(OPENPOSE_18.limbs, device=device)
    renderer = RENDERERS[side]

    def call() -> torch.Tensor:
        with torch.no_grad():
            return renderer(poses["coords"], poses["scores"], limbs, (hm, hm), hm_sigma=0.5,
                            paf_sigma=1.0, score_thr=0.1)
    return call


def run(*, device: torch.device, repeats: int, smoke: bool) -> Dict[str, Any]:
    """Per-clip time and peak memory of both renderers, and their largest difference."""
    shape = dict(clips=2, frames=2, people=5, real=2, hm=16) if smoke else \
        dict(clips=8, frames=8, people=5, real=2, hm=56)
    calls = {side: make_call(side=side, device=str(device), **shape) for side in RENDERERS}
    diff = float((calls["ours"]() - calls["baseline"]()).abs().max())
    times = time_pair(calls["ours"], calls["baseline"], device=device, repeats=repeats,
                      warmup=2)
    memory = {side: peak_memory_mib("tool.benchmarks.pose_maps", "make_call", device=device,
                                    kwargs=dict(side=side, device=str(device), **shape))
              for side in RENDERERS}
    per_clip = {side: times[side].median / shape["clips"] for side in RENDERERS}
    # Below 0.1 MiB the resident set cannot tell (pages, allocator caches): the ratio is then
    # a lower bound.
    floor = 0.1
    memory_ratio = ratio(memory["baseline"], max(memory["ours"], floor))
    return {
        "case": "pose maps (per clip)",
        "shape": f"{shape['frames']} frames, {shape['people']} people ({shape['real']} real), "
                 f"{shape['hm']}x{shape['hm']}, 18 joints, 17 limbs",
        "ours_s": per_clip["ours"], "baseline_s": per_clip["baseline"],
        "speedup": ratio(per_clip["baseline"], per_clip["ours"]),
        "ours_peak_mib": memory["ours"], "baseline_peak_mib": memory["baseline"],
        "memory_ratio": memory_ratio, "memory_ratio_is_lower_bound": memory["ours"] < floor,
        "max_abs_diff": diff,
        "targets": {"speedup >= 25": ratio(per_clip["baseline"], per_clip["ours"]) >= 25,
                    "memory ratio >= 10": memory_ratio >= 10,
                    "max abs diff <= 1e-5": diff <= 1e-5},
    }
