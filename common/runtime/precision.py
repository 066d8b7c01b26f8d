"""Mixed precision, memory layout and cuDNN autotuning: resolved once from the config.

`--amp`, `--channels_last` and `--cudnn_benchmark` default to what is fast on the device: on a
GPU, training in bf16 (fp16 with a gradient scaler where the GPU has no bf16), channels_last
convolutions and cuDNN autotuning; on the CPU, none of them for training. Evaluation uses
channels_last on every device (oneDNN's CPU convolutions compute in NHWC, so NCHW costs a
reorder per layer; the outputs agree to float rounding). test.py evaluates in fp32 unless
`--amp` names a precision, so that the protocol's numbers do not move with the hardware.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, Optional

import torch
from torch import nn

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """How a run computes.

    Attributes:
        amp: 'off', 'bf16' or 'fp16' (resolved: never 'auto').
        channels_last: convolutions in the NHWC layout.
        cudnn_benchmark: cuDNN picks its fastest algorithms (GPU only).
        device_type: 'cpu' or 'cuda', for `torch.autocast`.
    """

    amp: str = "off"
    channels_last: bool = False
    cudnn_benchmark: bool = False
    device_type: str = "cpu"

    @property
    def dtype(self) -> Optional[torch.dtype]:
        return _DTYPES.get(self.amp)

    @property
    def uses_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range."""
        return self.amp == "fp16"

    def autocast(self) -> ContextManager:
        """`torch.autocast` to the run's precision (a no-op context in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def describe(self) -> str:
        return (f"precision {self.amp if self.amp != 'off' else 'fp32'}, channels_last "
                f"{'on' if self.channels_last else 'off'}, cudnn.benchmark "
                f"{'on' if self.cudnn_benchmark else 'off'}")


def resolve_precision(cfg: Any, device: torch.device, *, training: bool) -> Precision:
    """The run's `Precision` from `cfg.amp`, `cfg.channels_last`, `cfg.cudnn_benchmark`.

    'auto' (and None for the two switches) means on for a GPU, off on the CPU; at test time
    (`training=False`) 'auto' is fp32 and channels_last defaults to on, on the CPU too.
    """
    gpu = device.type == "cuda"
    amp = cfg.amp
    if amp == "auto":
        if gpu and training:
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            amp = "off"
    channels_last = (gpu or not training) if cfg.channels_last is None else bool(cfg.channels_last)
    benchmark = gpu if cfg.cudnn_benchmark is None else bool(cfg.cudnn_benchmark)
    return Precision(amp=amp, channels_last=channels_last, cudnn_benchmark=benchmark and gpu,
                     device_type=device.type)


def apply_precision(model: nn.Module, precision: Precision) -> nn.Module:
    """Put the model in the run's memory layout and set cuDNN's autotuning; returns the model.

    The weights stay fp32 (autocast casts per operation), so snapshots are the same whatever the
    precision a run used.
    """
    torch.backends.cudnn.benchmark = precision.cudnn_benchmark
    if precision.channels_last:
        # Only the 2-D convolutions: `Module.to(memory_format=...)` would fail on the model's
        # tensors that are not 4-D (the pose renderer's 5-D grids).
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    return model


def make_grad_scaler(precision: Precision) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (a disabled one passes values through)."""
    return torch.amp.GradScaler(precision.device_type, enabled=precision.uses_scaler)
