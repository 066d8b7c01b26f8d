"""Every random generator a training run draws from, captured and restored.

A snapshot stores them so that `--continue` goes on with the same random numbers as the
uninterrupted run: Python's `random`, NumPy's global generator, torch's CPU and CUDA generators
(dropout) and the run's own `torch.Generator` (context augmentation). The states are stored as
tensors and lists, which `torch.load(weights_only=True)` reads back.
"""
from __future__ import annotations

import random
from typing import Any, Dict, Optional

import numpy as np
import torch


def capture_rng_state(generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
    """The current state of every generator (and of `generator`, when given)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng_state(state: Dict[str, Any], generator: Optional[torch.Generator] = None) -> None:
    """Set every generator to `state` (from `capture_rng_state`).

    The CUDA states are restored only when the snapshot has one per visible GPU (a run moved
    to other hardware cannot repeat its GPU random numbers anyway).
    """
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((str(name), keys.numpy().astype(np.uint32), int(pos), int(has_gauss),
                         float(cached)))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
