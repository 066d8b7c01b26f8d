"""The robust recipe's output rule: where the streams disagree, the pose stream has the say.

The fused classifier is trained on clips whose scene fits the motion, so where a scene names an
action the body is not doing, it follows the scene. The rgb_only and pose_only stages' own
classifiers (`StreamAgreement`) tell such clips apart: their agreement
a = sum_c p_rgb(c) * p_pose(c) is near 0 when the scene names another motion. The output is then

    p = w * softmax(fused logits) + (1 - w) * p_pose,    w = min(1, a / threshold),

the fused prediction where the streams agree (a >= threshold) and, in proportion to their
disagreement below it, the pose stage's own prediction. It uses nothing but the clip itself, so
it applies to any data set unchanged. It is a rule of evaluation: training optimises the fused
classifier as the paper does.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def fall_back_to_pose(fused_logits: Tensor, pose_probs: Tensor, agreement: Tensor, *,
                      threshold: float) -> Tuple[Tensor, Tensor]:
    """The fused prediction, mixed with the pose stage's where the streams disagree.

    Args:
        fused_logits: (B, C) the fused classifier's clip logits.
        pose_probs: (B, C) the pose_only stage's clip probabilities.
        agreement: (B,) the streams' agreement in [0, 1].
        threshold: the agreement at and above which the fused prediction stands alone (> 0).

    Returns:
        logits: (B, C) log-probabilities of the mixture (a softmax of them gives it back).
        pose_share: (B,) 1 - w, the pose stage's share of each clip's output.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    weight = (agreement.float() / threshold).clamp(max=1.0)[:, None]
    probs = weight * torch.softmax(fused_logits.float(), dim=1) + (1 - weight) * pose_probs.float()
    # A floor far below any probability that decides a ranking keeps log() finite.
    return probs.clamp_min(1e-12).log(), 1 - weight[:, 0]
