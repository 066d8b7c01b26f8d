"""A trained model made cheaper to evaluate: BatchNorm folded into the convolutions, NHWC layout.

At evaluation a BatchNorm is a fixed per-channel affine map, so the convolution before it can
absorb it (`torch.nn.utils.fusion.fuse_conv_bn_eval`): one pass over the activations fewer per
layer, the same outputs up to float rounding. The snapshot is not touched: the folded model is a
copy used only to predict.
"""
from __future__ import annotations

import copy
import re
from typing import Tuple

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from common.precision import Precision, apply_precision

# torchvision's ResNet blocks and stems name each convolution's BatchNorm after it.
_PAIR = re.compile(r"^conv(\d*)$")


def _fold_children(module: nn.Module) -> int:
    """Fold the (Conv2d, BatchNorm2d) pairs among `module`'s direct children; returns how many."""
    folded = 0
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv, bn)
                module._modules[second] = nn.Identity()
                folded += 1
        return folded
    for name, conv in list(module.named_children()):
        match = _PAIR.match(name)
        bn = getattr(module, f"bn{match.group(1)}", None) if match else None
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(module, name, fuse_conv_bn_eval(conv, bn))
            setattr(module, f"bn{match.group(1)}", nn.Identity())
            folded += 1
    return folded


def fold_batchnorm(model: nn.Module) -> int:
    """Fold, in place, every BatchNorm2d that directly follows a Conv2d: `convN` + `bnN` of a
    ResNet block or stem, and consecutive Conv2d, BatchNorm2d in a Sequential (Pose2Feat,
    ResNet's downsample). The model must be in eval mode. Returns the number folded."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (BatchNorm statistics fixed)")
    return sum(_fold_children(module) for module in list(model.modules()))


def optimize_for_inference(model: nn.Module, precision: Precision) -> Tuple[nn.Module, int]:
    """An evaluation copy of `model`: eval mode, BatchNorm folded, the precision's memory layout.

    Returns the copy and the number of BatchNorm layers folded.
    """
    fast = copy.deepcopy(model).eval()
    folded = fold_batchnorm(fast)
    return apply_precision(fast, precision), folded
