"""How close a network's evaluation is to what the machine's convolutions allow.

`conv_flops` counts the floating-point operations of a forward pass's convolutions (2 per
multiply-add, from each layer's output shape), and `peak_conv_rate` measures the best rate the
device reaches on the network's own 3x3 convolution shapes, in the layout ours uses. Their
quotient is the *convolution floor*: the time one forward pass would take if every convolution
ran at that best rate and nothing else cost anything. No implementation of the same fp32
arithmetic gets below it, so `baseline / floor` bounds the speed-up any fp32 evaluation can
show against a baseline on this machine.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn

from tool.benchmarks.measure import sync

# ResNet's 3x3 stage shapes at 224 x 224 input: (channels, spatial size).
RESNET_STAGES: Tuple[Tuple[int, int], ...] = ((64, 56), (128, 28), (256, 14), (512, 7))


def conv_flops(model: nn.Module, run_forward: Callable[[], Any]) -> float:
    """Floating-point operations of the convolutions in one `run_forward()` of `model`.

    A Conv2d/Conv3d layer with output (N, C_out, *S) and kernel (C_out, C_in / groups, *K)
    costs 2 * N * C_out * prod(S) * (C_in / groups) * prod(K) operations (bias ignored).
    """
    total = [0.0]

    def count(module: nn.Module, _inputs: Any, output: Tensor) -> None:
        kernel = module.weight.shape  # (C_out, C_in / groups, *K)
        per_output = float(torch.tensor(kernel[1:]).prod())
        total[0] += 2.0 * output.numel() * per_output

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    try:
        with torch.inference_mode():
            run_forward()
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def peak_conv_rate(device: torch.device, *, channels_last: bool, frames: int = 32,
                   repeats: int = 3) -> Dict[str, Any]:
    """The best FLOP/s of a 3x3 convolution (C -> C, stride 1, padding 1) over ResNet's stage
    shapes on `frames` frames, in fp32: the median of `repeats` calls per shape, the fastest
    shape kept.

    Returns: 'flops_per_s' (the best), 'per_shape' [{'channels', 'size', 'flops_per_s'}].
    """
    per_shape: List[Dict[str, Any]] = []
    g = torch.Generator().manual_seed(0)
    for channels, size in RESNET_STAGES:
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=True).to(device).eval()
        x = torch.randn(frames, channels, size, size, generator=g).to(device)
        if channels_last:
            conv = conv.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        flops = 2.0 * frames * channels * size * size * channels * 9
        runs = []
        with torch.inference_mode():
            conv(x)  # warm-up: oneDNN builds its kernels on the first call
            for _ in range(repeats):
                sync(device)
                start = time.perf_counter()
                conv(x)
                sync(device)
                runs.append(time.perf_counter() - start)
        runs.sort()
        per_shape.append({"channels": channels, "size": size,
                          "flops_per_s": flops / runs[len(runs) // 2]})
    return {"flops_per_s": max(p["flops_per_s"] for p in per_shape), "per_shape": per_shape}
