"""Case 5: training clips/s in fp32 against mixed precision with channels_last, each stage.

Two sides, each train.py's step on one batch in memory (the paper's shapes): `step_losses`
(the forward pass in the side's precision, the losses in fp32), the host copy of the loss terms
that train.py checks for NaN every step, and `optimizer_step`.

- fp32: NCHW, no autocast (`--amp off --channels_last false`).
- mixed: what train.py runs on a GPU by default (`--amp auto`: bf16 where the GPU has it, else
  fp16 with a gradient scaler; channels_last; cuDNN autotuning, which the fp32 side gets too).
  On the CPU, where 'auto' means fp32, bf16 autocast with channels_last: reported, with no
  target (a CPU without bf16 instructions runs it slower than fp32).

On a GPU, at the paper's batch (8 clips) and at 32 clips. Targets, GPU only: every stage's
mixed clips/s >= 2.5 x its fp32 clips/s, and above 160 clips/s, the top of the authors' README
figure for two GPUs (130-160), at the better of the two batches. PyTorch's own defaults stay
as they are and are recorded (cuDNN's fp32 convolutions may use TF32).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable, Dict, List

import torch

from common.train.engine import make_optimizer, optimizer_step, step_losses
from common.model import build_model
from common.runtime.precision import Precision, apply_precision, make_grad_scaler
from common.stages import STAGES
from data.registry import build_dataset
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import sync
from tool.benchmarks.train_step import training_batch

# The authors' README: about 130-160 clips/s of training on two GPUs.
AUTHORS_TWO_GPU_CLIPS_PER_S = 160.0


def mixed_precision(device: torch.device) -> Precision:
    """The mixed side: train.py's GPU default; bf16 + channels_last on the CPU."""
    gpu = device.type == "cuda"
    amp = "bf16" if not gpu or torch.cuda.is_bf16_supported() else "fp16"
    return Precision(amp=amp, channels_last=True, cudnn_benchmark=gpu, device_type=device.type)


def _training_step(stage: str, cfg: Any, dataset: Any, batch: Dict[str, torch.Tensor], *,
                   precision: Precision, device: torch.device) -> Callable[[], None]:
    """train.py's step for `stage` in `precision`, on `batch`, from the same initial weights."""
    joints = dataset.joint_set
    torch.manual_seed(0)
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    model.init_weights(None)
    model.freeze_for_stage()
    model = apply_precision(model.to(device).train(), precision)
    optimizer = make_optimizer(model, cfg)
    scaler = make_grad_scaler(precision)

    def step() -> None:
        # cuDNN's autotuning is a process-wide switch: each side sets its own before it runs.
        torch.backends.cudnn.benchmark = precision.cudnn_benchmark
        losses = step_losses(model, batch, reg_weight=cfg.reg_weight, precision=precision)
        values = [float(v.detach()) for v in losses.values()]  # train.py's per-step NaN check
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError(f"{stage}: a non-finite loss in {precision.describe()}")
        optimizer_step(sum(losses.values()), optimizer, scaler)
    return step


def _stage_rows(stage: str, *, data_dir: str, device: torch.device, repeats: int, smoke: bool,
                batch_size: int) -> Dict[str, Any]:
    cfg = benchmark_config(data_dir, smoke=smoke, mode=stage, train_batch_size=batch_size)
    dataset = build_dataset(cfg, cfg.dataset, "train")
    batch = training_batch(cfg, dataset, device)
    sides = {"fp32": Precision(amp="off", channels_last=False,
                               cudnn_benchmark=device.type == "cuda", device_type=device.type),
             "mixed": mixed_precision(device)}
    steps = {name: _training_step(stage, cfg, dataset, batch, precision=p, device=device)
             for name, p in sides.items()}
    for step in steps.values():  # warm-up: kernels built, cuDNN's algorithms chosen
        for _ in range(3 if device.type == "cuda" and not smoke else 1):
            step()
    sync(device)
    runs: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):  # alternately, so that both sides share the machine's state
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            sync(device)
            runs[name].append(time.perf_counter() - start)
    seconds = {name: statistics.median(r) for name, r in runs.items()}
    return {"stage": stage, "batch": batch_size, "mixed": sides["mixed"].describe(),
            "fp32_clips_per_s": batch_size / seconds["fp32"],
            "mixed_clips_per_s": batch_size / seconds["mixed"],
            "speedup": seconds["fp32"] / seconds["mixed"]}


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str) -> Dict[str, Any]:
    gpu = device.type == "cuda"
    batches = [2] if smoke else [8, 32] if gpu else [8]
    # A GPU step takes milliseconds: more repeats cost little and steady the medians.
    repeats = max(repeats, 10) if gpu and not smoke else repeats
    rows = [_stage_rows(stage, data_dir=data_dir, device=device, repeats=repeats, smoke=smoke,
                        batch_size=b)
            for b in batches for stage in STAGES]
    best: Dict[str, Dict[str, Any]] = {}
    for row in rows:
        if row["stage"] not in best or row["mixed_clips_per_s"] > best[row["stage"]][
                "mixed_clips_per_s"]:
            best[row["stage"]] = row
    result: Dict[str, Any] = {
        "case": "training precision (batch in memory)", "rows": rows,
        "defaults": {"cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                     "matmul precision": torch.get_float32_matmul_precision()},
        "targets": {},
    }
    if gpu:
        result["targets"] = {
            "mixed >= 2.5 x fp32, every stage": all(r["speedup"] >= 2.5 for r in best.values()),
            f"mixed above {AUTHORS_TWO_GPU_CLIPS_PER_S:.0f} clips/s, every stage":
                all(r["mixed_clips_per_s"] > AUTHORS_TWO_GPU_CLIPS_PER_S for r in best.values()),
        }
    return result
