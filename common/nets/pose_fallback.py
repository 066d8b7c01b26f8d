"""The robust recipe's output rule: where the streams disagree, the pose stream has the say.

The fused classifier is trained on clips whose scene fits the motion, so where a scene names an
action the body is not doing, it follows the scene. The rgb_only and pose_only stages' own
classifiers (`StreamAgreement`) tell such clips apart: their agreement
a = sum_c p_rgb(c) * p_pose(c) is near 0 when the scene names another motion. With a threshold T the output is

    p = w * softmax(fused logits) + (1 - w) * p_pose,    w = clip(2 a / T - 1, 0, 1),

the fused prediction where the streams agree (a >= T), the pose stage's own prediction where
they plainly do not (a <= T / 2), and a mixture in proportion in between. It uses nothing but
the clip itself, so it applies to any data set unchanged. It is a rule of evaluation: training
optimises the fused classifier as the paper does.

Why a band and not w = a / T: a fused classifier that follows the scene is sure of the scene's
class, so even a small weight on it outvotes the pose stage on the classes the pose cannot tell
apart (p_pose splits them); below T / 2 it has no say at all.
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
        threshold: T, the agreement at and above which the fused prediction stands alone
            (> 0); at and below T / 2 the pose stage's stands alone.

    Returns:
        logits: (B, C) log-probabilities of the mixture (a softmax of them gives it back).
        pose_share: (B,) 1 - w, the pose stage's share of each clip's output.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    weight = (2 * agreement.float() / threshold - 1).clamp(0.0, 1.0)[:, None]
    probs = weight * torch.softmax(fused_logits.float(), dim=1) + (1 - weight) * pose_probs.float()
    # A floor far below any probability that decides a ranking keeps log() finite.
    return probs.clamp_min(1e-12).log(), 1 - weight[:, 0]
