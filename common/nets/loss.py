"""Training losses: clip classification and the pose-gate regulariser."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def action_classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of clip logits (B, classes) against labels (B,), averaged over clips."""
    return F.cross_entropy(logits, labels)


def pose_gate_loss(gate: Tensor) -> Tensor:
    """BCE(g, 1) averaged over every gate element (B*T, C): pulls the gate towards the pose stream."""
    return F.binary_cross_entropy(gate, torch.ones_like(gate))


def compute_losses(outputs: Dict[str, Optional[Tensor]], labels: Tensor,
                   reg_weight: float) -> Dict[str, Tensor]:
    """The training objective by term: {'action_cls': ..., 'pose_gate': ... (with a gate)}."""
    losses = {"action_cls": action_classification_loss(outputs["logits"], labels)}
    gate = outputs.get("gate")
    if gate is not None:
        losses["pose_gate"] = reg_weight * pose_gate_loss(gate.float())
    return losses
