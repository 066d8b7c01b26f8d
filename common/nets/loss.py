"""Training losses: clip classification and the pose-gate regulariser."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def action_classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of clip logits (B, classes) against labels (B,), averaged over clips."""
    return F.cross_entropy(logits, labels)


def pose_gate_loss(gate: Tensor, target: Optional[Tensor] = None) -> Tensor:
    """BCE of the gate (B*T, C) against its target, averaged over every element.

    Without `target` (the paper) the target is 1 everywhere: a pull towards the pose stream.
    `target` (B,) in [0, 1] gives one target per clip, shared by its T frames and C channels.
    """
    if target is None:
        return F.binary_cross_entropy(gate, torch.ones_like(gate))
    per_clip = gate.view(target.shape[0], -1)
    return F.binary_cross_entropy(per_clip, target.to(per_clip.dtype)[:, None].expand_as(per_clip))


def compute_losses(outputs: Dict[str, Optional[Tensor]], labels: Tensor, reg_weight: float,
                   gate_target: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """The training objective by term: {'action_cls': ..., 'pose_gate': ... (with a gate)}.

    `gate_target` (B,): per-clip gate targets instead of the paper's 1 (see `pose_gate_loss`).
    """
    losses = {"action_cls": action_classification_loss(outputs["logits"], labels)}
    gate = outputs.get("gate")
    if gate is not None:
        losses["pose_gate"] = reg_weight * pose_gate_loss(gate.float(), gate_target)
    return losses
