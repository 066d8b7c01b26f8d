import math

import pytest
import torch

from common.nets.loss import compute_losses, pose_gate_loss


def test_paper_gate_loss_is_minus_log_gate():
    gate = torch.tensor([[0.5, 0.25], [1.0, 0.5]])
    expected = -(math.log(0.5) * 2 + math.log(0.25) + math.log(1.0)) / 4
    assert pose_gate_loss(gate).item() == pytest.approx(expected)


def test_gate_loss_with_one_target_per_clip():
    # 2 clips x 2 frames, 2 channels: clip 0's scene was swapped (target 1), clip 1's was not (0).
    gate = torch.tensor([[0.5, 0.25], [0.5, 0.5], [0.75, 0.5], [0.5, 0.5]])
    target = torch.tensor([1.0, 0.0])
    clip0 = -(3 * math.log(0.5) + math.log(0.25))
    clip1 = -(3 * math.log(0.5) + math.log(0.25))  # BCE(g, 0) = -log(1 - g)
    assert pose_gate_loss(gate, target).item() == pytest.approx((clip0 + clip1) / 8)


def test_compute_losses_weights_the_gate_term():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 1])
    gate = torch.full((4, 3), 0.5)
    losses = compute_losses({"logits": logits, "gate": gate}, labels, reg_weight=5.0,
                            gate_target=torch.tensor([1.0, 0.0]))
    assert losses["action_cls"].item() == pytest.approx(math.log(1 + math.exp(-2.0)))
    assert losses["pose_gate"].item() == pytest.approx(5.0 * math.log(2.0))
    assert set(compute_losses({"logits": logits, "gate": None}, labels, 5.0)) == {"action_cls"}
