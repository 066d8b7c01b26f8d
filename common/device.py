"""Device set-up in one place: CPU, one GPU, or several GPUs through DataParallel."""
from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import torch
from torch import nn

logger = logging.getLogger("integral_action.device")


def parse_gpu_ids(text: Optional[str]) -> List[int]:
    """'0' -> [0]; '0,1,3' -> [0, 1, 3]; '0-3' -> [0, 1, 2, 3]; None/'' -> []."""
    if text is None or str(text).strip() in ("", "none", "cpu"):
        return []
    text = str(text).strip()
    if "-" in text:
        first, last = (int(t) for t in text.split("-", 1))
        if last < first:
            raise ValueError(f"bad GPU range {text!r}")
        return list(range(first, last + 1))
    return [int(t) for t in text.split(",") if t.strip()]


def select_device(gpu_ids: Optional[str]) -> Tuple[torch.device, List[int]]:
    """The device to run on and the GPUs to spread batches over.

    Without `--gpu`, one visible GPU is used when there is one, otherwise the CPU. Asking for
    GPUs that are not there is an error, not a silent fall-back.
    """
    ids = parse_gpu_ids(gpu_ids)
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not ids:
        if available:
            return torch.device("cuda", 0), [0]
        return torch.device("cpu"), []
    missing = [i for i in ids if i >= available]
    if missing:
        raise RuntimeError(f"--gpu {gpu_ids}: GPU(s) {missing} not available "
                           f"({available} visible); run without --gpu to use the CPU")
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
    """Tensors of a batch dict to the device (non-blocking from pinned memory)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
