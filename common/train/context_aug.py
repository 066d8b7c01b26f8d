"""Context augmentation for the fusion stage: paste another clip's scene around the people.

Out of context (Mimetics), the scene around a person no longer predicts the action. Training the
fusion stage on clips whose background comes from another clip of the batch teaches the gate that
the RGB feature can lie about the scene, while what the people are doing and holding (inside
their pose boxes) is kept. Runs on the model's device, on whole batches.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def person_box_mask(pose_coords: Tensor, pose_scores: Tensor, img_shape: Sequence[int],
                    hm_shape: Sequence[int], *, margin: float = 0.15,
                    score_thr: float = 0.1) -> Tensor:
    """Union of the people's joint boxes (grown by `margin` of their size on each side).

    Args:
        pose_coords: (B, T, P, J, 2) on the heatmap grid (one pose frame per RGB frame).
        pose_scores: (B, T, P, J).
        img_shape, hm_shape: (H, W) of the RGB input and of the heatmap grid.

    Returns:
        (B, T, 1, H, W) float mask, 1 inside some person's box.
    """
    height, width = int(img_shape[0]), int(img_shape[1])
    sx, sy = width / hm_shape[1], height / hm_shape[0]
    visible = pose_scores > score_thr  # (B, T, P, J)
    big = torch.finfo(pose_coords.dtype).max
    x = pose_coords[..., 0] * sx
    y = pose_coords[..., 1] * sy
    x0 = torch.where(visible, x, torch.full_like(x, big)).amin(-1)
    x1 = torch.where(visible, x, torch.full_like(x, -big)).amax(-1)
    y0 = torch.where(visible, y, torch.full_like(y, big)).amin(-1)
    y1 = torch.where(visible, y, torch.full_like(y, -big)).amax(-1)
    has_person = visible.any(-1)  # (B, T, P)
    grow_x = (x1 - x0).clamp(min=0) * margin + 0.04 * width
    grow_y = (y1 - y0).clamp(min=0) * margin + 0.04 * height
    x0, x1 = x0 - grow_x, x1 + grow_x
    y0, y1 = y0 - grow_y, y1 + grow_y
    xs = torch.arange(width, device=pose_coords.device, dtype=pose_coords.dtype)
    ys = torch.arange(height, device=pose_coords.device, dtype=pose_coords.dtype)
    inside_x = (xs >= x0[..., None]) & (xs <= x1[..., None])  # (B, T, P, W)
    inside_y = (ys >= y0[..., None]) & (ys <= y1[..., None])  # (B, T, P, H)
    inside = inside_y[..., :, None] & inside_x[..., None, :] & has_person[..., None, None]
    return inside.any(dim=2, keepdim=False).unsqueeze(2).to(pose_coords.dtype)


def swap_context(video: Tensor, pose_coords: Tensor, pose_scores: Tensor, *,
                 hm_shape: Sequence[int], prob: float, margin: float = 0.15,
                 pose_frame_factor: int = 1, generator: Optional[torch.Generator] = None
                 ) -> Tuple[Tensor, Tensor]:
    """Replace, with probability `prob` per clip, the pixels outside the people's boxes by the
    frames of another clip of the batch.

    Args:
        video: (B, T, 3, H, W).
        pose_coords: (B, Tp, P, J, 2), pose_scores (B, Tp, P, J); Tp = (T-1)*factor+1.

    Returns:
        video: (B, T, 3, H, W) the augmented clips (the input when B < 2 or nothing is drawn).
        source: (B,) int64 on the video's device, the clip whose scene each clip now shows
            (its own index when it was left alone), so a caller can tell which scenes now
            disagree with their labels.
    """
    b = video.shape[0]
    device = video.device
    own = torch.arange(b, device=device)
    if b < 2 or prob <= 0:
        return video, own
    draw = torch.rand(b, generator=generator) < prob
    if not bool(draw.any()):
        return video, own
    # Every clip gets a partner other than itself: a random non-zero cyclic shift.
    shift = int(torch.randint(1, b, (1,), generator=generator))
    partner = (torch.arange(b) + shift) % b
    coords = pose_coords[:, ::pose_frame_factor]
    scores = pose_scores[:, ::pose_frame_factor]
    mask = person_box_mask(coords, scores, video.shape[-2:], hm_shape, margin=margin)
    drawn = draw.to(device=device, dtype=mask.dtype).view(b, 1, 1, 1, 1)
    keep = mask * drawn + (1 - drawn)  # clips not drawn keep all their pixels
    partner = partner.to(device)
    source = torch.where(draw.to(device), partner, own)
    return keep * video + (1 - keep) * video[partner], source
