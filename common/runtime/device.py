"""Device set-up in one place: CPU, one GPU, or several GPUs through DataParallel."""
from __future__ import annotations

import logging
import re
from typing import List, Optional, Tuple

import torch
from torch import nn

from common.runtime.clip_pixels import video_as_float
from common.errors import UsageError

logger = logging.getLogger("integral_action.device")


# What `--gpu` accepts, for messages.
GPU_FORMS = "'0', '0,1', '0-3' or 'cpu'"


def parse_gpu_ids(text: Optional[str]) -> List[int]:
    """The GPU ids a `--gpu` value names: '0' -> [0]; '0,1,3' -> [0, 1, 3]; '0-3' -> [0, 1, 2, 3].

    None, 'none' (no choice made) and 'cpu' name no GPU: [].

    Raises:
        UsageError: anything else ('abc', '0-', '3-1', '-1', '0,,1', '0,0'), naming the value
            and the accepted forms.
    """
    if text is None:
        return []
    value = "".join(str(text).split())
    if value.lower() in ("none", "cpu"):
        return []
    if re.fullmatch(r"\d+(,\d+)*", value):
        ids = [int(t) for t in value.split(",")]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise UsageError(f"--gpu {text!r}: GPU {twice[0]} is named twice; use {GPU_FORMS}")
        return ids
    span = re.fullmatch(r"(\d+)-(\d+)", value)
    if span:
        first, last = int(span.group(1)), int(span.group(2))
        if last < first:
            raise UsageError(f"--gpu {text!r}: the range ends before it starts; write it "
                             f"{last}-{first}, or use {GPU_FORMS}")
        return list(range(first, last + 1))
    raise UsageError(f"--gpu {text!r} is not a GPU list: use {GPU_FORMS} "
                     "(GPU ids are whole numbers from 0)")


def select_device(gpu_ids: Optional[str]) -> Tuple[torch.device, List[int]]:
    """The device to run on and the GPUs to spread batches over.

    Without `--gpu` (None), the first visible GPU is used when there is one, otherwise the CPU;
    `--gpu cpu` always means the CPU. Asking for GPUs that are not there is an error, not a
    silent fall-back.

    Raises:
        UsageError: a bad `--gpu` value, or a GPU that is not visible.
    """
    ids = parse_gpu_ids(gpu_ids)
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not ids:
        chose_cpu = gpu_ids is not None and str(gpu_ids).strip().lower() == "cpu"
        if available and not chose_cpu:
            return torch.device("cuda", 0), [0]
        return torch.device("cpu"), []
    missing = [i for i in ids if i >= available]
    if missing:
        visible = f"{available} visible, ids 0-{available - 1}" if available else "none visible"
        fallback = "the first visible GPU" if available else "the CPU"
        raise UsageError(
            f"--gpu {gpu_ids}: GPU {', '.join(map(str, missing))} not available ({visible}; "
            f"CUDA_VISIBLE_DEVICES renumbers them from 0); without --gpu {fallback} is used")
    return torch.device("cuda", ids[0]), ids


def describe_device(device: torch.device, ids: List[int]) -> str:
    if device.type == "cpu":
        return f"CPU ({torch.get_num_threads()} threads)"
    names = [torch.cuda.get_device_name(i) for i in ids]
    return f"GPU {ids}: {', '.join(names)}"


def prepare_model(model: nn.Module, device: torch.device, ids: List[int]) -> nn.Module:
    """Move to the device; wrap in DataParallel (BatchNorm statistics per GPU, as the original)
    when more than one GPU is used."""
    model = model.to(device)
    if len(ids) > 1:
        model = nn.DataParallel(model, device_ids=ids, output_device=ids[0])
    return model


def move_batch(batch: dict, device: torch.device) -> dict:
    """Tensors of a batch dict to the device (non-blocking from pinned memory).

    A uint8 'video' (clip pixels the loader sent as bytes, see `common.runtime.clip_pixels`) crosses as
    bytes and becomes the float32 clip on the device."""
    moved = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
             for k, v in batch.items()}
    if torch.is_tensor(moved.get("video")):
        moved["video"] = video_as_float(moved["video"])
    return moved
