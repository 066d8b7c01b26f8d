"""What an exported network takes and gives, and what its file says about itself.

Inputs, named as the batch keys the model's `forward` takes at test time (only those its stage
reads):

    video        (B, T, 3, H, W) float32 RGB in [0, 1]        not in pose_only
    pose_coords  (B, Tp, P, J, 2) float32 on the heatmap grid  not in rgb_only
    pose_scores  (B, Tp, P, J) float32 joint confidences       not in rgb_only

Outputs: `logits` (B, C) and `probs` (B, C) (their softmax), and in rgb+pose `gate` (B, T, D)
with the pose gate and `agreement` (B,) with the stream agreement. The batch B is the one
dynamic axis, from 1 to `max_batch`; every other size is the snapshot's.

The file carries an `ExportInfo` (JSON under `METADATA_KEY`): the stage, class count, names,
the batch limit and the snapshot's own config, from which the demo samples its clips as for the
snapshot itself.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from common.errors import CheckpointError

METADATA_KEY = "integral_action"
FORMAT_VERSION = 1
# The pose-map renderer addresses its output with int32 indices below this many elements (a
# branch on the batch size that an exported graph cannot keep): the batch limit follows.
_INT32_ELEMENTS = 2 ** 31


@dataclass
class ExportInfo:
    """What an exported file says about itself (stored as JSON in the file).

    Attributes:
        mode: the stage.
        class_num: C.
        inputs, outputs: the tensor names, in order.
        max_batch: the largest batch the graph is valid for (None: no limit).
        config: the snapshot's saved config (None for the authors' snapshots: the defaults of
            `mode`, as test.py and the demo use).
        source: the snapshot exported.
        version: FORMAT_VERSION.
    """

    mode: str
    class_num: int
    inputs: List[str]
    outputs: List[str]
    max_batch: Optional[int]
    config: Optional[Dict[str, Any]]
    source: str
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: Optional[str], path: str) -> "ExportInfo":
        """Raises `CheckpointError` for a file that tool/export.py did not write."""
        try:
            fields = json.loads(text) if text else None
            info = cls(**fields) if isinstance(fields, dict) else None
        except (ValueError, TypeError):
            info = None
        if info is None or info.version != FORMAT_VERSION:
            raise CheckpointError(f"{path} was not written by tool/export.py (no "
                                  f"'{METADATA_KEY}' description of version {FORMAT_VERSION}); "
                                  "export the snapshot again with tool/export.py")
        return info


def input_names(model: nn.Module) -> List[str]:
    """The inputs of `model`'s stage, in order."""
    return (["video"] if model.stage.needs_video else []) + (
        ["pose_coords", "pose_scores"] if model.stage.needs_pose else [])


def output_names(model: nn.Module) -> List[str]:
    """The outputs of `model` (see the module's docstring), in order."""
    names = ["logits", "probs"]
    if model.stage.needs_video and model.stage.needs_pose:
        names += ["gate"] if model.aggregator.use_gate else []
        names += ["agreement"] if model.aggregator.agreement is not None else []
    return names


def max_batch(model: nn.Module) -> Optional[int]:
    """The largest batch an exported `model` is valid for (None: no limit)."""
    if not model.stage.needs_pose:
        return None
    height, width = model.input_hm_shape
    channels = model.joint_num + 2 * model.limbs.shape[0]
    return (_INT32_ELEMENTS - 1) // (model.pose_frame_num * channels * height * width)


def example_inputs(model: nn.Module, batch: int, *, img_hw: Tuple[int, int], people: int,
                   generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
    """Random inputs of `model`'s stage: `batch` clips of `img_hw` (H, W) frames and `people`
    people per pose frame (the config's input_img_shape and top_k_pose), coordinates on the
    heatmap grid, scores in [0, 1)."""
    out: Dict[str, Tensor] = {}
    if model.stage.needs_video:
        out["video"] = torch.rand(batch, model.frame_per_seg, 3, *img_hw, generator=generator)
    if model.stage.needs_pose:
        height, width = model.input_hm_shape
        frames, joints = model.pose_frame_num, model.joint_num
        grid = torch.tensor([width, height], dtype=torch.float32)
        out["pose_coords"] = torch.rand(batch, frames, people, joints, 2,
                                        generator=generator) * grid
        out["pose_scores"] = torch.rand(batch, frames, people, joints, generator=generator)
    return out


class ExportInterface(nn.Module):
    """The model with named tensor inputs and a tuple of outputs (`output_names`), as a graph
    export takes it. For evaluation only (the model must be in eval mode)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.names = output_names(model)

    def forward(self, video: Optional[Tensor] = None, pose_coords: Optional[Tensor] = None,
                pose_scores: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        given = {"video": video, "pose_coords": pose_coords, "pose_scores": pose_scores}
        out = self.model({k: v for k, v in given.items() if v is not None})
        logits = out["logits"]
        values = {"logits": logits, "probs": torch.softmax(logits, dim=1)}
        if out["gate"] is not None:
            values["gate"] = out["gate"].view(logits.shape[0], -1, out["gate"].shape[-1])
        if out["agreement"] is not None:
            values["agreement"] = out["agreement"]
        return tuple(values[name] for name in self.names)
