"""Clip pixels sent as bytes and turned into the network's float input where they are used.

A test clip that is a whole-pixel crop of uint8 frames (`data.transforms.
input_clip_bytes`) holds only the values k / 255. Its loader worker sends the uint8 bytes, a
quarter of the float32 clip, and the consumer (the main process, or the GPU after a uint8 copy)
makes the float32 clip. The result is bit-identical to the float32 clip the worker would have
made (`np.float32(k) / np.float32(255)`):
- on the CPU by the same IEEE division (correctly rounded, as numpy's);
- on other devices by a 256-entry table of exactly those values, because a GPU kernel may
  divide by multiplying with the reciprocal, which is not always the same float.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["unit_values", "video_as_float"]


def unit_values(device: torch.device) -> Tensor:
    """(256,) float32 on `device`: entry k is float32(k) / float32(255), as numpy computes it."""
    table = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(table).to(device)


def video_as_float(video: Tensor) -> Tensor:
    """The float32 clip in [0, 1] of a uint8 clip of pixel values; a float clip is returned as
    it is.

    Args:
        video: (..., 3, H, W) uint8 (bytes from a loader worker) or float32 (already made).

    Returns:
        The same shape, float32, on `video`'s device: k -> float32(k) / 255, exactly.
    """
    if video.dtype != torch.uint8:
        return video
    if video.device.type == "cpu":
        return video.to(torch.float32).div_(255.0)
    return unit_values(video.device)[video.long()]
