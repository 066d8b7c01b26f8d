"""The IntegralAction network: RGB stream, pose stream, pose-gated aggregation, classifier.

All three training stages use the same module tree (so every snapshot holds all five parts, as
the authors' checkpoints do); `mode` picks which parts run.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from common.clip_frames import pose_frame_count
from common.nets.fusion import Aggregator, Classifier, GateOptions, Pose2Feat, init_head_weights
from common.nets.pose_fallback import fall_back_to_pose
from common.nets.pose_maps import render_pose_maps
from common.nets.tsm_resnet import FEATURE_DIMS, TSMResNet
from common.stages import MODULE_NAMES, get_stage

logger = logging.getLogger("integral_action.model")

# (N, P, J, 2) coords, (N, P, J) scores, (L, 2) limbs, hm_shape, *, hm_sigma, paf_sigma,
# score_thr -> (N, J + 2L, H, W) pose maps (`common.nets.pose_maps.render_pose_maps`).
PoseRenderer = Callable[..., Tensor]


class IntegralAction(nn.Module):
    """The network: RGB stream, pose stream (pose maps -> Pose2Feat -> ResNet), the pose-gated
    `Aggregator` and the classifier; `forward` takes a batch dict (see there).

    Args:
        mode: 'rgb_only', 'pose_only' or 'rgb+pose'.
        class_num: number of action classes.
        limbs: the skeleton's (joint, joint) pairs used for the part affinity fields.
        joint_num: J.
        frame_per_seg: T, RGB frames per clip.
        pose_frame_factor: the pose stream sees (T-1)*factor+1 frames.
        img_resnet_type, pose_resnet_type: 18, 34 or 50.
        agg_feat_dim: width of the integrated feature.
        input_hm_shape: (h, w) of the rendered pose maps.
        hm_sigma, paf_sigma, pose_score_thr: pose-map rendering parameters.
        gate: the aggregator's pose gate (`GateOptions`: the paper's gate by default).
        dropout: classifier dropout probability.
        stream_agreement: scale the RGB term of the aggregator by how far the two stages'
            classifiers agree (`Aggregator`'s `agreement`); False in the paper.
        agreement_scaling: with `stream_agreement`, whether the agreement scales the RGB term
            (False: the stages' classifiers serve `pose_fallback` only).
        pose_fallback: 0 (the paper): the fused classifier's output. > 0 (needs
            `stream_agreement`): at evaluation, clips whose streams agree less than this fall
            back to the pose_only stage's prediction (`common.nets.pose_fallback`).
        pose_renderer: what turns poses into pose maps (`PoseRenderer`); a benchmark passes
            its baseline here to time the same network with another renderer.
    """

    def __init__(self, mode: str, class_num: int, limbs: Sequence[Tuple[int, int]],
                 joint_num: int, *, frame_per_seg: int = 8, pose_frame_factor: int = 1,
                 img_resnet_type: int = 18, pose_resnet_type: int = 18, agg_feat_dim: int = 512,
                 input_hm_shape: Sequence[int] = (56, 56), hm_sigma: float = 0.5,
                 paf_sigma: float = 1.0, pose_score_thr: float = 0.1,
                 gate: GateOptions = GateOptions(), dropout: float = 0.5,
                 stream_agreement: bool = False, agreement_scaling: bool = True,
                 pose_fallback: float = 0.0,
                 pose_renderer: PoseRenderer = render_pose_maps) -> None:
        super().__init__()
        if pose_fallback > 0 and not stream_agreement:
            raise ValueError("pose_fallback needs stream_agreement (the stages' classifiers)")
        self.pose_fallback = pose_fallback
        self.agreement_scaling = agreement_scaling
        self.stage = get_stage(mode)
        self.mode = mode
        self.class_num = class_num
        self.joint_num = joint_num
        self.frame_per_seg = frame_per_seg
        self.pose_frame_num = pose_frame_count(frame_per_seg=frame_per_seg,
                                               pose_frame_factor=pose_frame_factor)
        self.input_hm_shape = tuple(input_hm_shape)
        self.hm_sigma, self.paf_sigma, self.pose_score_thr = hm_sigma, paf_sigma, pose_score_thr
        self.register_buffer("limbs", torch.as_tensor(limbs, dtype=torch.long).view(-1, 2),
                             persistent=False)
        self.pose_renderer = pose_renderer

        self.img_backbone = TSMResNet(img_resnet_type, frame_per_seg)
        self.pose_backbone = TSMResNet(pose_resnet_type, self.pose_frame_num, skip_stem=True)
        self.pose2feat = Pose2Feat(joint_num + 2 * len(limbs), 64)
        img_dim, pose_dim = FEATURE_DIMS[img_resnet_type], FEATURE_DIMS[pose_resnet_type]
        self.aggregator = Aggregator(img_dim, pose_dim, out_dim=agg_feat_dim,
                                     frame_per_seg=frame_per_seg,
                                     pose_frame_factor=pose_frame_factor, gate=gate,
                                     agreement_classes=class_num if stream_agreement else 0)
        cls_dim = {"img": img_dim, "pose": pose_dim, "fusion": agg_feat_dim}[self.stage.feature]
        self.classifier = Classifier(cls_dim, class_num, dropout)

    def init_weights(self, pretrained: Optional[str] = "imagenet") -> None:
        """The original's training-time initialisation: ImageNet for both backbones,
        N(0, 0.001) convs / N(0, 0.01) linears / BN 1, 0 for the other layers.

        `pretrained` is 'imagenet', a local state-dict file or 'none' (see
        `TSMResNet.load_imagenet`, which stops when the weights cannot be had); None leaves the
        backbones alone, for a run whose backbones all come from a snapshot.
        """
        if pretrained is not None:
            for backbone in (self.img_backbone, self.pose_backbone):
                backbone.load_imagenet(pretrained)
        for part in (self.pose2feat, self.aggregator, self.classifier):
            part.apply(init_head_weights)
        self.aggregator.init_hidden_gate()

    @property
    def uses_video(self) -> bool:
        return self.stage.needs_video

    @property
    def uses_pose(self) -> bool:
        return self.stage.needs_pose

    def render_pose(self, pose_coords: Tensor, pose_scores: Tensor) -> Tensor:
        """(B, Tp, P, J, 2), (B, Tp, P, J) -> (B*Tp, J + 2L, h, w) pose maps on the input's device."""
        b, tp, p, j = pose_scores.shape
        return self.pose_renderer(
            pose_coords.reshape(b * tp, p, j, 2), pose_scores.reshape(b * tp, p, j), self.limbs,
            self.input_hm_shape, hm_sigma=self.hm_sigma, paf_sigma=self.paf_sigma,
            score_thr=self.pose_score_thr)

    def pose_features(self, pose_coords: Tensor, pose_scores: Tensor) -> Tensor:
        return self.pose_backbone(self.pose2feat(self.render_pose(pose_coords, pose_scores)))

    def forward(self, inputs: Dict[str, Tensor]) -> Dict[str, Optional[Tensor]]:
        """
        Args:
            inputs: 'video' (B, T, 3, H, W) RGB in [0, 1] (not needed in pose_only);
                'pose_coords' (B, Tp, P, J, 2) on the heatmap grid and 'pose_scores'
                (B, Tp, P, J) (not needed in rgb_only).

        Returns:
            'logits': (B, classes), frame logits averaged over the clip;
            'gate': (B*T, agg_feat_dim) pose gate in rgb+pose with the gate, else None;
            'agreement': (B,) the streams' agreement with `stream_agreement`, else None;
            'pose_probs': (B, C) the pose_only stage's own clip probabilities with
            `stream_agreement`, else None;
            'pose_share': (B,) the pose stage's share of the output with `pose_fallback` in
            eval mode (then 'logits' are the mixture's log-probabilities), else None.
        """
        gate = agreement = pose_probs = pose_share = None
        if not self.stage.needs_video:
            b, frames = inputs["pose_scores"].shape[:2]
            feat = self.pose_features(inputs["pose_coords"], inputs["pose_scores"])
        else:
            video = inputs["video"]
            b, frames = video.shape[:2]
            feat = self.img_backbone(video.reshape(b * frames, *video.shape[2:]))
            if self.stage.needs_pose:
                pose_feat = self.pose_features(inputs["pose_coords"], inputs["pose_scores"])
                stage_probs = self.aggregator.clip_stage_probs(feat, pose_feat)
                if stage_probs is not None:
                    agreement = (stage_probs[0] * stage_probs[1]).sum(dim=-1)
                    pose_probs = stage_probs[1]
                # Without the scaling the aggregator gets an agreement of 1: the paper's fusion.
                scale = agreement if self.agreement_scaling or agreement is None else \
                    torch.ones_like(agreement)
                feat, gate = self.aggregator(feat, pose_feat, scale)
        logits = self.classifier(feat).view(b, frames, -1).mean(dim=1)
        if self.pose_fallback > 0 and pose_probs is not None and not self.training:
            logits, pose_share = fall_back_to_pose(logits, pose_probs, agreement,
                                                   threshold=self.pose_fallback)
        return {"logits": logits, "gate": gate, "agreement": agreement, "pose_probs": pose_probs,
                "pose_share": pose_share}

    def trainable_modules(self) -> List[str]:
        """The parts whose parameters this stage optimises (`Stage.trains`)."""
        return list(self.stage.trains)

    def freeze_for_stage(self) -> None:
        """Turn off gradients of the parts this stage does not train.

        The original kept computing gradients for the frozen streams in rgb+pose; here they run
        without autograd. They still run in train mode, so their BatchNorm statistics adapt as in
        the original.
        """
        frozen = set(self.frozen_modules())
        for name in MODULE_NAMES:
            getattr(self, name).requires_grad_(name not in frozen)
        if self.aggregator.agreement is not None:
            # The stages' own classifiers: they judge the streams, they are not retrained.
            self.aggregator.agreement.requires_grad_(False)

    def frozen_modules(self) -> List[str]:
        """The parts this stage does not train (`Stage.frozen`)."""
        return list(self.stage.frozen)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        for name in self.trainable_modules():
            yield from (p for p in getattr(self, name).parameters() if p.requires_grad)


def build_model(cfg, class_num: int, limbs: Sequence[Tuple[int, int]], joint_num: int, *,
                mode: Optional[str] = None,
                pose_renderer: PoseRenderer = render_pose_maps) -> IntegralAction:
    """Build the network from the config (no weights loaded; see `IntegralAction.init_weights`).

    `mode` overrides `cfg.mode`; `pose_renderer` is `IntegralAction`'s (benchmarks pass a
    baseline renderer).
    """
    return IntegralAction(
        mode=mode or cfg.mode, class_num=class_num, limbs=limbs, joint_num=joint_num,
        frame_per_seg=cfg.frame_per_seg, pose_frame_factor=cfg.pose_frame_factor,
        img_resnet_type=cfg.img_resnet_type, pose_resnet_type=cfg.pose_resnet_type,
        agg_feat_dim=cfg.agg_feat_dim, input_hm_shape=cfg.input_hm_shape, hm_sigma=cfg.hm_sigma,
        paf_sigma=cfg.paf_sigma, pose_score_thr=cfg.pose_score_thr,
        gate=GateOptions(enabled=cfg.pose_gate, input=cfg.gate_input, hidden=cfg.gate_hidden),
        dropout=cfg.dropout, stream_agreement=cfg.stream_agreement,
        agreement_scaling=cfg.agreement_scaling, pose_fallback=cfg.pose_fallback, pose_renderer=pose_renderer)
