"""The heads around the two ResNet streams: Pose2Feat, the pose-gated aggregator, the classifier.

Module and parameter names follow the authors' checkpoints (`conv.0`, `pose_gate_fc.0`,
`img_conv.1`, `fc.0`, ...), hence the small `nn.Sequential`s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from common.clip_frames import pose_frame_count


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=kernel, padding=kernel // 2),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class Pose2Feat(nn.Module):
    """conv3x3 + BN + ReLU: (N, J + 2L, h, w) pose maps -> (N, 64, h, w) for the pose ResNet's layer1."""

    def __init__(self, in_channels: int, out_channels: int = 64) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, 3)

    def forward(self, pose_maps: Tensor) -> Tensor:
        return self.conv(pose_maps)


class StreamAgreement(nn.Module):
    """How far the two streams agree on the action, from their own stage classifiers.

    `img_fc` and `pose_fc` are the rgb_only and pose_only stages' classifiers (the merge tool
    carries them over; they stay frozen in rgb+pose). The agreement of a clip is
    a = sum_c p_rgb(c) * p_pose(c), the probability that both streams name the same class. It is
    about the pose stream's belief in the class the scene names: high when the scene fits the
    motion, near 0 when the scene names an action the body is not doing (a mimed action, a
    misleading background).
    """

    def __init__(self, img_dim: int, pose_dim: int, class_num: int) -> None:
        super().__init__()
        self.img_fc = nn.Linear(img_dim, class_num)
        self.pose_fc = nn.Linear(pose_dim, class_num)

    @torch.no_grad()
    def forward(self, img_pooled: Tensor, pose_pooled: Tensor) -> Tensor:
        """
        Args:
            img_pooled: (B, T, Ci) spatially pooled RGB features.
            pose_pooled: (B, Tp, Cp) spatially pooled pose features.

        Returns:
            (B,) agreement in [0, 1]. Clip-level, as the stages predict: the mean of the frame
            features is classified (the same as averaging frame logits: the classifier is linear).
        """
        p_img, p_pose = self.stage_probs(img_pooled, pose_pooled)
        return (p_img * p_pose).sum(dim=-1)

    @torch.no_grad()
    def stage_probs(self, img_pooled: Tensor, pose_pooled: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, T, Ci), (B, Tp, Cp) pooled features -> (B, C) clip probabilities of the rgb_only
        and of the pose_only stage's classifier (fp32)."""
        p_img = torch.softmax(self.img_fc(img_pooled.mean(dim=1)).float(), dim=-1)
        p_pose = torch.softmax(self.pose_fc(pose_pooled.mean(dim=1)).float(), dim=-1)
        return p_img, p_pose


@dataclass(frozen=True)
class GateOptions:
    """How the aggregator's pose gate is built (the defaults are the paper's).

    Attributes:
        enabled: False gives the no-gate ablation (sum of the two projections, no LayerNorm).
        input: 'pose' (the paper: the gate sees only the pooled pose feature) or 'pose+rgb'
            (the gate also sees the pooled RGB feature, so it can notice when the scene
            disagrees with the motion; `pose_gate_fc.0` then takes pose_dim + img_dim).
        hidden: 0 (the paper): the gate is one Linear layer. > 0: a hidden ReLU layer of this
            width first (`pose_gate_fc.0`, `.2`). Whether the two streams *agree* is not a
            linear function of their features, so only such a gate is able to trust the scene
            where it fits the motion and ignore it where it does not (whether training finds
            that is another matter: see the README's robust-recipe measurements).
    """

    enabled: bool = True
    input: str = "pose"
    hidden: int = 0

    def __post_init__(self) -> None:
        if self.input not in ("pose", "pose+rgb"):
            raise ValueError(f"gate_input must be 'pose' or 'pose+rgb', got {self.input!r}")


class Aggregator(nn.Module):
    """Pose-driven feature integration.

    The gate g = sigmoid(Linear(pooled pose feature)) weighs, per channel, the pose feature
    against the RGB feature: out = g * pose' + (1 - g) * rgb'. A gate loss pulls g towards 1
    (the pose stream) so that RGB only contributes where pose says it helps.

    Args:
        img_dim, pose_dim: widths of the two streams (512 for ResNet-18/34, 2048 for 50).
        out_dim: width of the integrated feature (512).
        frame_per_seg: T, the RGB frames per clip.
        pose_frame_factor: the pose stream runs on (T-1)*factor+1 frames; a strided temporal
            conv brings it back to T. The conv always exists (checkpoints hold it) but only runs
            when factor > 1.
        gate: the gate's options (`GateOptions`; the paper's by default).
        agreement_classes: 0 (the paper). > 0: the number of classes of a `StreamAgreement`
            (`agreement.*`) whose clip-level agreement scales the RGB term, so a scene that names
            an action the body is not doing has little say: out = g * pose' + (1 - g) * a * rgb'.
    """

    def __init__(self, img_dim: int, pose_dim: int, *, out_dim: int = 512,
                 frame_per_seg: int = 8, pose_frame_factor: int = 1,
                 gate: GateOptions = GateOptions(), agreement_classes: int = 0) -> None:
        super().__init__()
        self.gate_input = gate.input
        self.frame_per_seg = frame_per_seg
        self.pose_frame_factor = pose_frame_factor
        self.pose_frame_num = pose_frame_count(frame_per_seg=frame_per_seg,
                                               pose_frame_factor=pose_frame_factor)
        self.use_gate = gate.enabled
        self.pose_temporal_conv = nn.Sequential(
            nn.Conv3d(pose_dim, pose_dim, kernel_size=(5, 1, 1), stride=(pose_frame_factor, 1, 1),
                      padding=(2, 0, 0)),
            nn.BatchNorm3d(pose_dim),
            nn.ReLU(inplace=True),
        )
        gate_in = pose_dim + (img_dim if gate.input == "pose+rgb" else 0)
        if gate.hidden > 0:
            self.pose_gate_fc = nn.Sequential(nn.Linear(gate_in, gate.hidden), nn.ReLU(inplace=True),
                                              nn.Linear(gate.hidden, out_dim))
        else:
            self.pose_gate_fc = nn.Sequential(nn.Linear(gate_in, out_dim))
        self.img_conv = conv_bn_relu(img_dim, out_dim, 1)
        self.img_norm = nn.LayerNorm([out_dim, 1, 1])
        self.pose_conv = conv_bn_relu(pose_dim, out_dim, 1)
        self.pose_norm = nn.LayerNorm([out_dim, 1, 1])
        self.agreement = (StreamAgreement(img_dim, pose_dim, agreement_classes)
                          if agreement_classes > 0 else None)

    def init_hidden_gate(self) -> None:
        """PyTorch's default (Kaiming-uniform) initialisation for a gate with a hidden layer.

        The original's N(0, 0.01) suits its one-layer heads; two such layers in a row pass
        gradients of order 1e-4 to the first one, and in the quickstart's short fusion stage the
        gate then never left 0.5. A one-layer gate keeps the original's initialisation.
        """
        if len(self.pose_gate_fc) > 1:
            for layer in self.pose_gate_fc:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    def clip_agreement(self, img_feat: Tensor, pose_feat: Tensor) -> Optional[Tensor]:
        """(B*T, Ci, h, w), (B*Tp, Cp, h', w') stream outputs -> (B,) agreement of the stages'
        classifiers, or None without `agreement_classes`."""
        probs = self.clip_stage_probs(img_feat, pose_feat)
        return None if probs is None else (probs[0] * probs[1]).sum(dim=-1)

    def clip_stage_probs(self, img_feat: Tensor, pose_feat: Tensor
                         ) -> Optional[Tuple[Tensor, Tensor]]:
        """(B*T, Ci, h, w), (B*Tp, Cp, h', w') stream outputs -> the rgb_only and pose_only
        stages' (B, C) clip probabilities, or None without `agreement_classes`."""
        if self.agreement is None:
            return None
        batch = img_feat.shape[0] // self.frame_per_seg
        return self.agreement.stage_probs(
            img_feat.mean(dim=(2, 3)).view(batch, self.frame_per_seg, -1),
            pose_feat.mean(dim=(2, 3)).view(batch, self.pose_frame_num, -1))

    def forward(self, img_feat: Tensor, pose_feat: Tensor, agreement: Optional[Tensor] = None
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """
        Args:
            img_feat: (B*T, Ci, h, w) RGB stream output.
            pose_feat: (B*Tp, Cp, h', w') pose stream output, Tp = (T-1)*factor+1.
            agreement: (B,) from `clip_agreement` when the caller already has it; computed
                here otherwise (only with `agreement_classes`).

        Returns:
            feat: (B*T, out_dim, 1, 1) integrated feature.
            gate: (B*T, out_dim) in (0, 1), or None without the gate.
        """
        if agreement is None:
            agreement = self.clip_agreement(img_feat, pose_feat)
        # The weight of the RGB term per frame: the clip's agreement, or 1 (the paper).
        rgb_weight = 1.0
        if agreement is not None:
            rgb_weight = agreement.to(img_feat.dtype).repeat_interleave(self.frame_per_seg)
            rgb_weight = rgb_weight[:, None, None, None]
        img_feat = img_feat.mean(dim=(2, 3), keepdim=True)
        pose_feat = pose_feat.mean(dim=(2, 3), keepdim=True)
        if self.pose_frame_factor > 1:
            bt, c = pose_feat.shape[:2]
            seq = pose_feat.view(bt // self.pose_frame_num, self.pose_frame_num, c, 1, 1)
            seq = self.pose_temporal_conv(seq.permute(0, 2, 1, 3, 4))  # (B, C, T, 1, 1)
            pose_feat = seq.permute(0, 2, 1, 3, 4).reshape(-1, c, 1, 1)
        if not self.use_gate:
            return self.pose_conv(pose_feat) + rgb_weight * self.img_conv(img_feat), None
        # flatten(1), not squeeze: a batch of one frame must keep its batch dimension.
        gate_in = pose_feat.flatten(1)
        if self.gate_input == "pose+rgb":
            gate_in = torch.cat((gate_in, img_feat.flatten(1)), dim=1)
        gate = torch.sigmoid(self.pose_gate_fc(gate_in))
        pose_out = self.pose_norm(self.pose_conv(pose_feat))
        img_out = rgb_weight * self.img_norm(self.img_conv(img_feat))
        g = gate[:, :, None, None]
        return g * pose_out + (1 - g) * img_out, gate


class Classifier(nn.Module):
    """Spatial mean -> dropout -> Linear: (B*T, C, h, w) -> (B*T, classes) logits."""

    def __init__(self, in_dim: int, class_num: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Sequential(nn.Linear(in_dim, class_num))

    def forward(self, feat: Tensor) -> Tensor:
        # The original computed the dropout and then classified the un-dropped feature.
        return self.fc(self.dropout(feat.mean(dim=(2, 3))))


def init_head_weights(module: nn.Module) -> None:
    """The original's initialisation of the non-backbone layers (apply with `Module.apply`)."""
    if type(module) is nn.Conv2d:
        nn.init.normal_(module.weight, std=0.001)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif type(module) is nn.BatchNorm2d:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif type(module) is nn.Linear:
        nn.init.normal_(module.weight, std=0.01)
        nn.init.zeros_(module.bias)
