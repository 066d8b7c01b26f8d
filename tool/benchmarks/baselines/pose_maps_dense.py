"""Dense pose-map renderer: the baseline written straight from docs/data_format.md's formulas.

Every (frame, person, joint) and every (frame, person, limb) is evaluated on every pixel of
the map, padded people and dropped joints included, so the intermediates are
(N, P, J, H, W) and (N, P, L, H, W) tensors: the full pixel grid, the two-dimensional Gaussian
and one float tensor per mask, multiplied together. It is the arithmetic the original runs,
kept as the reference that `common.nets.pose_maps` (the windowed renderer the model uses) is
tested against, and as the baseline of `tool/benchmark.py`. Not for the hot path, nor for the
product: pass it to `IntegralAction(pose_renderer=...)` to time the network with it.

An earlier version of this baseline was a cheaper dense variant (a separable Gaussian, boolean
masks), about 3x faster than the original's arithmetic; docs/performance.md gives both ratios.

Known difference from the fast renderer: a NaN coordinate poisons the dense maps even where
its score is 0 (NaN * 0 = NaN), while the fast renderer never reads undrawn joints.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["render_joint_heatmaps_dense", "render_part_affinity_fields_dense",
           "render_pose_maps_dense"]


def _grid(height: int, width: int, like: Tensor) -> Tuple[Tensor, Tensor]:
    """The full pixel grid, as the original builds it: pixel (i, j) has x = j, y = i (no
    half-pixel offset). Returns ys, xs, each (1, 1, 1, H, W)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=like.device),
                            torch.arange(width, device=like.device), indexing="ij")
    return ys.to(like.dtype)[None, None, None], xs.to(like.dtype)[None, None, None]


def render_joint_heatmaps_dense(coords: Tensor, scores: Tensor, hm_shape: Sequence[int], *,
                                sigma: float = 0.5, score_thr: float = 0.1) -> Tensor:
    """Gaussian joint heatmaps, summed over people and clipped at 1.

    Args:
        coords: (N, P, J, 2) joint (x, y) on the heatmap grid.
        scores: (N, P, J) joint confidences; joints with score <= score_thr are not drawn.
        hm_shape: (H, W).

    Returns:
        (N, J, H, W) with value exp(-((x-jx)^2 + (y-jy)^2) / (2 sigma^2)).
    """
    ys, xs = _grid(int(hm_shape[0]), int(hm_shape[1]), coords)
    jx = coords[..., 0, None, None]  # (N, P, J, 1, 1)
    jy = coords[..., 1, None, None]
    # The two-dimensional Gaussian on every pixel of every (frame, person, joint), padded and
    # dropped ones included, then masked by a float multiplication: the original's arithmetic.
    gauss = torch.exp(-((xs - jx) / sigma) ** 2 / 2 - ((ys - jy) / sigma) ** 2 / 2)
    visible = (scores > score_thr).to(coords.dtype)[..., None, None]
    heatmaps = (gauss * visible).sum(dim=1)  # (N, J, H, W)
    return heatmaps.clamp(max=1.0)


def render_part_affinity_fields_dense(coords: Tensor, scores: Tensor, limbs: Tensor,
                                      hm_shape: Sequence[int], *, paf_sigma: float = 1.0,
                                      score_thr: float = 0.1) -> Tensor:
    """Part affinity fields, evaluated on every pixel: the definition, arguments and result of
    `common.nets.pose_maps.render_part_affinity_fields`, (N, 2*L, H, W)."""
    ys, xs = _grid(int(hm_shape[0]), int(hm_shape[1]), coords)
    limbs = limbs.to(coords.device)
    p0 = coords[:, :, limbs[:, 0]]  # (N, P, L, 2)
    p1 = coords[:, :, limbs[:, 1]]
    delta = p1 - p0
    length = delta.norm(dim=-1)  # (N, P, L)
    unit = delta / length.clamp(min=1e-12)[..., None]
    vx, vy = unit[..., 0, None, None], unit[..., 1, None, None]  # (N, P, L, 1, 1)
    x0, y0 = p0[..., 0, None, None], p0[..., 1, None, None]
    # Every mask is a full (N, P, L, H, W) float tensor, multiplied together, as the original
    # computes them.
    along = vx * (xs - x0) + vy * (ys - y0)  # (N, P, L, H, W)
    across = (vy * (xs - x0) - vx * (ys - y0)).abs()
    dtype = coords.dtype
    valid = ((scores[:, :, limbs[:, 0]] >= score_thr).to(dtype)
             * (scores[:, :, limbs[:, 1]] >= score_thr).to(dtype)
             * (length > 0).to(dtype))[..., None, None]
    on_limb = ((along >= 0).to(dtype) * (along <= length[..., None, None]).to(dtype)
               * (across <= paf_sigma).to(dtype) * valid)
    fields = torch.stack((on_limb * vx, on_limb * vy), dim=3).sum(dim=1)  # (N, L, 2, H, W)
    count = on_limb.sum(dim=1).clamp(min=1.0)  # (N, L, H, W)
    fields = fields / count[:, :, None]
    n, num_limbs, _, h, w = fields.shape
    return fields.reshape(n, 2 * num_limbs, h, w)


def render_pose_maps_dense(coords: Tensor, scores: Tensor, limbs: Tensor,
                           hm_shape: Sequence[int], *, hm_sigma: float = 0.5,
                           paf_sigma: float = 1.0, score_thr: float = 0.1) -> Tensor:
    """Pose-network input: (N, P, J, 2), (N, P, J) -> (N, J + 2*L, H, W) = [heatmaps, PAFs]."""
    heatmaps = render_joint_heatmaps_dense(coords, scores, hm_shape, sigma=hm_sigma,
                                           score_thr=score_thr)
    pafs = render_part_affinity_fields_dense(coords, scores, limbs, hm_shape,
                                             paf_sigma=paf_sigma, score_thr=score_thr)
    return torch.cat((heatmaps, pafs), dim=1)
