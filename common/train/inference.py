"""A trained model made cheaper to evaluate: BatchNorm folded into the convolutions, NHWC layout,
and, on a CPU, the batch run in sub-batches of whole clips.

At evaluation a BatchNorm is a fixed per-channel affine map, so the convolution before it can
absorb it (`torch.nn.utils.fusion.fuse_conv_bn_eval`): one pass over the activations fewer per
layer, the same outputs up to float rounding. The snapshot is not touched: the folded model is a
copy used only to predict.

In eval mode every clip's outputs depend on that clip alone (the temporal shift stays within a
clip, BatchNorm uses its running statistics), so a batch can be evaluated a few clips at a time
(`ClipChunks`). On a CPU that is faster: the activations of 16 frames at 224 x 224 stay in the
caches, those of 128 do not (measured: about 1.25x per clip on a 2-core x86 machine).
"""
from __future__ import annotations

import copy
import re
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from common.runtime.precision import Precision, apply_precision

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


def optimize_for_inference(model: nn.Module, precision: Precision, *,
                           chunk_clips: Optional[int] = None) -> Tuple[nn.Module, int]:
    """An evaluation copy of `model`: eval mode, BatchNorm folded, the precision's memory layout,
    and with `chunk_clips` the batch evaluated that many clips at a time (`ClipChunks`; see
    `eval_chunk_clips`).

    Returns the copy and the number of BatchNorm layers folded.
    """
    fast = copy.deepcopy(model).eval()
    folded = fold_batchnorm(fast)
    fast = apply_precision(fast, precision)
    if chunk_clips is not None:
        fast = ClipChunks(fast, chunk_clips).eval()
    return fast, folded


# Frames per sub-batch of evaluation on the CPU when the config does not say.
CPU_CHUNK_FRAMES = 16


class ClipChunks(nn.Module):
    """Evaluate a batch `clips` clips at a time; the outputs are the whole batch's.

    The wrapped model takes the dataset batch dict ('video' (B, T, 3, H, W), 'pose_coords'
    (B, Tp, P, J, 2), 'pose_scores' (B, Tp, P, J), ...) and returns 'logits' (B, C), 'gate'
    (B*T, D) or None, 'agreement' (B,) or None. Each output is the concatenation, along its
    first dimension, of the sub-batches' outputs, which holds because clips are independent in
    eval mode and a clip's T frames are consecutive in the gate's B*T rows. For evaluation only.
    """

    def __init__(self, model: nn.Module, clips: int) -> None:
        super().__init__()
        if clips < 1:
            raise ValueError(f"clips must be >= 1, got {clips}")
        self.model = model
        self.clips = clips

    def forward(self, inputs: Dict[str, Tensor]) -> Dict[str, Optional[Tensor]]:
        sizes = {v.shape[0] for v in inputs.values() if torch.is_tensor(v) and v.dim() > 0}
        if len(sizes) != 1:
            raise ValueError(f"inputs disagree on the batch size: {sorted(sizes)}")
        batch = sizes.pop()
        if batch <= self.clips:
            return self.model(inputs)
        parts: List[Dict[str, Optional[Tensor]]] = []
        for start in range(0, batch, self.clips):
            part = {k: v[start:start + self.clips] if torch.is_tensor(v) and v.dim() > 0 else v
                    for k, v in inputs.items()}
            parts.append(self.model(part))
        return {key: (None if parts[0][key] is None
                      else torch.cat([p[key] for p in parts], dim=0))
                for key in parts[0]}


def eval_chunk_clips(chunk_frames: Optional[int], frames_per_clip: int,
                     device: torch.device) -> Optional[int]:
    """Clips per evaluation sub-batch from `cfg.eval_chunk_frames`: None on a GPU and for 0
    (the whole batch); else `chunk_frames` (16 on the CPU when None) frames' worth of whole
    clips, at least one."""
    if chunk_frames is None:
        if device.type != "cpu":
            return None
        chunk_frames = CPU_CHUNK_FRAMES
    if chunk_frames <= 0:
        return None
    return max(1, chunk_frames // max(1, frames_per_clip))
