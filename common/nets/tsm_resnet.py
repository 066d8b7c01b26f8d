"""Temporal Shift Module (TSM) ResNet streams built on torchvision's ResNet.

The parameter names stay exactly torchvision's (`conv1`, `bn1`, `layer1.0.conv1.weight`, ...) so
that the authors' checkpoints and torchvision's ImageNet weights load without renaming: the shift
lives in a `Conv2d` subclass that replaces the first conv of every residual branch.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Dict

import torch
from torch import Tensor, nn
from torchvision.models import resnet

from common.errors import CheckpointError

logger = logging.getLogger("integral_action.model")

_BUILDERS: Dict[int, Callable[..., resnet.ResNet]] = {
    18: resnet.resnet18,
    34: resnet.resnet34,
    50: resnet.resnet50,
}
_IMAGENET_WEIGHTS = {
    18: resnet.ResNet18_Weights.IMAGENET1K_V1,
    34: resnet.ResNet34_Weights.IMAGENET1K_V1,
    50: resnet.ResNet50_Weights.IMAGENET1K_V1,
}
FEATURE_DIMS = {18: 512, 34: 512, 50: 2048}


def temporal_shift(x: Tensor, num_frames: int) -> Tensor:
    """Shift a quarter of the channels one frame back and a quarter one frame forward.

    Args:
        x: (N*T, C, H, W), the T frames of each clip consecutive along dim 0.
        num_frames: T.

    Returns:
        (N*T, C, H, W): channels [0, C/4) come from frame t-1, [C/4, C/2) from frame t+1
        (zeros past either end of the clip), the rest are unchanged.
    """
    nt, c, h, w = x.shape
    if nt % num_frames != 0:
        raise ValueError(f"batch of {nt} frames is not a multiple of {num_frames} frames per clip")
    fold = c // 4
    x = x.view(nt // num_frames, num_frames, c, h, w)
    # Every element is written once: the three copies, then zeros only where a shifted
    # quarter runs past the clip's ends (a zero-filled tensor would be written twice).
    out = torch.empty_like(x)
    out[:, 1:, :fold] = x[:, :-1, :fold]
    out[:, 0, :fold] = 0
    out[:, :-1, fold:2 * fold] = x[:, 1:, fold:2 * fold]
    out[:, -1, fold:2 * fold] = 0
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


class TemporalShiftConv2d(nn.Conv2d):
    """A Conv2d that applies `temporal_shift` to its input first (same parameters, same names)."""

    num_frames: int

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, num_frames: int) -> "TemporalShiftConv2d":
        new = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
            padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
            bias=conv.bias is not None, padding_mode=conv.padding_mode,
        )
        new.load_state_dict(conv.state_dict())
        new.num_frames = num_frames
        return new

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(temporal_shift(x, self.num_frames))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", temporal_shift(frames={self.num_frames})"


class TSMResNet(nn.Module):
    """A torchvision ResNet (without its avgpool/fc) whose residual branches shift in time.

    Args:
        depth: 18, 34 or 50.
        num_frames: frames per clip T; inputs are (B*T, C, H, W).
        skip_stem: the pose stream feeds `layer1` directly (its 7x7 stem and max-pool exist, so
            checkpoints keep their keys, but are not run).
    """

    def __init__(self, depth: int, num_frames: int, skip_stem: bool = False) -> None:
        super().__init__()
        if depth not in _BUILDERS:
            raise ValueError(f"ResNet depth must be one of {sorted(_BUILDERS)}, got {depth}")
        # zero_init_residual: every residual block starts as the identity (its last BN's scale is
        # 0). ImageNet weights overwrite it; a stream trained from scratch (`--pretrained none`,
        # or offline) then trains far more stably: without it the pose stream of the quickstart
        # sometimes stalled near chance after a loss spike in its first iterations.
        base = _BUILDERS[depth](weights=None, zero_init_residual=True)
        self.depth = depth
        self.num_frames = num_frames
        self.skip_stem = skip_stem
        self.feature_dim = FEATURE_DIMS[depth]
        self.conv1, self.bn1, self.relu, self.maxpool = base.conv1, base.bn1, base.relu, base.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            base.layer1, base.layer2, base.layer3, base.layer4)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                block.conv1 = TemporalShiftConv2d.from_conv(block.conv1, num_frames)

    def forward(self, x: Tensor) -> Tensor:
        """(B*T, 3, H, W) -> (B*T, C, H/32, W/32); with skip_stem (B*T, 64, h, w) -> (B*T, C, h/8, w/8)."""
        if not self.skip_stem:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def load_imagenet(self, source: str) -> bool:
        """Initialise from ImageNet weights: `source` is 'imagenet' (torchvision's weights API,
        which downloads once into the torch hub cache) or a local state-dict file; 'none'
        keeps the random initialisation (on purpose, and logged).

        Returns True when weights were loaded, False for 'none'. Raises `CheckpointError`
        when the weights cannot be had (no internet, a missing or unreadable file): a run that
        silently started from random weights would end far from the paper's numbers.
        """
        if not source or source.lower() == "none":
            logger.info("ResNet-%d: no ImageNet weights requested; random initialisation", self.depth)
            return False
        if source.lower() == "imagenet":
            weights = _IMAGENET_WEIGHTS[self.depth]
            try:
                state = weights.get_state_dict(progress=False)
            except Exception as err:  # noqa: BLE001 - any download failure ends the same way
                raise CheckpointError(
                    f"cannot fetch the ImageNet weights of ResNet-{self.depth} ({weights}: "
                    f"{type(err).__name__}: {err}). Either pass a local copy with --pretrained "
                    f"/path/to/resnet{self.depth}.pth (a torchvision state dict, e.g. "
                    f"{weights.url.rsplit('/', 1)[-1]} from {weights.url}), or train from random "
                    "weights on purpose with --pretrained none") from err
            origin = str(weights)
        else:
            if not os.path.isfile(source):
                raise CheckpointError(
                    f"--pretrained {source}: no such file. Give a torchvision ResNet-{self.depth} "
                    "state dict, 'imagenet' (download) or 'none' (random weights)")
            try:
                state = torch.load(source, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001 - reported with the file name
                raise CheckpointError(f"--pretrained {source}: cannot read it as a state dict "
                                      f"({type(err).__name__}: {err})") from err
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            if not isinstance(state, dict):
                raise CheckpointError(f"--pretrained {source}: not a state dict")
            origin = source
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{origin} does not match ResNet-{self.depth}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}")
        logger.info("ResNet-%d initialised from %s", self.depth, origin)
        return True
