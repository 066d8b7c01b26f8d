"""Case 4: test.py's evaluation against the authors' pipeline, on the same data and weights.

Ours is what `main/test.py` runs: its loader with `num_thread` workers (loading overlapped
with compute; on the CPU, batches in reused shared memory; for a GPU, whole-pixel clips sent as
uint8), BatchNorm folded into the convolutions, the precision's memory layout (channels_last),
on the CPU the batch run 16 frames' worth of clips at a time (`ClipChunks`),
`torch.inference_mode`, outputs kept on the device until the end. The baseline runs the same
network the original's way: loading in the main process between batches with the per-frame
read/resize/warp in float32 (`tool.benchmarks.baselines`; the same clips), BatchNorm as separate
layers, contiguous fp32, the dense pose-map renderer (the original's arithmetic),
`torch.no_grad`, and each batch's probabilities copied to the host as it is done.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from common.runtime.device import move_batch
from common.train.engine import predict
from common.train.inference import eval_chunk_clips, optimize_for_inference
from common.model import build_model
from common.runtime.precision import Precision, resolve_precision
from data.clip_loader import build_clip_loader
from data.collate import collate_clips
from data.registry import build_dataset
from data.samplers import ShardedBatchSampler
from data.video_pose_dataset import LoadingOptions
from tool.benchmarks.baselines.loading import BASELINE_LOADING
from tool.benchmarks.baselines.pose_maps_dense import render_pose_maps_dense
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import ratio, sync
from tool.benchmarks.roofline import conv_flops, peak_conv_rate


def trained_looking(model: nn.Module) -> nn.Module:
    """BatchNorm statistics away from their initial values, so that folding does real work."""
    g = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model.eval()


def _baseline_predict(model: nn.Module, dataset: Any, batch_size: int,
                      device: torch.device) -> np.ndarray:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                        collate_fn=collate_clips)
    probs = []
    with torch.no_grad():
        for batch in loader:
            outputs = model(move_batch(batch, device))
            probs.append(torch.softmax(outputs["logits"], dim=1).cpu().numpy())
    return np.concatenate(probs)


def network_steps(model: nn.Module, batch: Dict[str, Any], *, baseline: nn.Module,
                  device: torch.device, repeats: int, chunk: Optional[int]
                  ) -> List[Dict[str, Any]]:
    """The network alone on one in-memory batch, as each evaluation step is added in turn:
    the original's way (dense renderer, BatchNorm layers, NCHW, the whole batch), then the
    windowed renderer, BatchNorm folded, channels_last, and `chunk`-clip sub-batches (skipped
    when None: a GPU takes the batch whole). `baseline` is `model` with the dense renderer (the
    same weights). The variants are timed round-robin, `repeats`
    rounds, median per variant.

    Returns: one row per step: 'step', 'per_clip_s', 'vs_original' (the original's time per
    clip over this step's).
    """
    original = copy.deepcopy(baseline).eval()
    windowed = copy.deepcopy(model).eval()
    nchw = Precision(amp="off", channels_last=False, device_type=device.type)
    nhwc = Precision(amp="off", channels_last=True, device_type=device.type)
    variants = [("the original's way", original),
                ("+ windowed pose-map renderer", windowed),
                ("+ BatchNorm folded", optimize_for_inference(windowed, nchw)[0]),
                ("+ channels_last", optimize_for_inference(windowed, nhwc)[0])]
    if chunk is not None:
        variants.append((f"+ sub-batches of {chunk} clip(s)",
                         optimize_for_inference(windowed, nhwc, chunk_clips=chunk)[0]))
    clips = batch["video"].shape[0]
    runs: List[List[float]] = [[] for _ in variants]
    with torch.inference_mode():
        for _, net in variants:  # warm-up: oneDNN builds its kernels on the first call
            net(batch)
        for _ in range(repeats):
            for i, (_, net) in enumerate(variants):
                sync(device)
                start = time.perf_counter()
                net(batch)
                sync(device)
                runs[i].append(time.perf_counter() - start)
    per_clip = [float(np.median(r)) / clips for r in runs]
    return [{"step": name, "per_clip_s": t, "vs_original": per_clip[0] / t}
            for (name, _), t in zip(variants, per_clip)]


def _two_networks(cfg: Any, dataset: Any, device: torch.device) -> Tuple[nn.Module, nn.Module]:
    """Ours (trained-looking weights) and the same network and weights with the dense
    renderer, the original's arithmetic, both on `device`."""
    joints = dataset.joint_set
    torch.manual_seed(0)
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    model.init_weights(None)
    model = trained_looking(model).to(device)
    baseline_model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num,
                                 pose_renderer=render_pose_maps_dense)
    baseline_model.load_state_dict(model.state_dict())
    return model, baseline_model.to(device).eval()


def _convolution_floor(model: nn.Module, batch: Dict[str, Any], *, cfg: Any,
                       device: torch.device, precision: Precision
                       ) -> Tuple[float, Dict[str, float]]:
    """The network's convolution work per clip (FLOP) and the best rate this device reaches on
    its 3x3 shapes: together the floor no fp32 evaluation of the same network gets below."""
    flops = conv_flops(model, lambda: model(batch)) / batch["video"].shape[0]
    peak = peak_conv_rate(device, channels_last=precision.channels_last,
                          frames=min(32, batch["video"].shape[0] * cfg.frame_per_seg))
    return flops, peak


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str,
        workers: int) -> Dict[str, Any]:
    cfg = benchmark_config(data_dir, smoke=smoke, mode="rgb+pose", num_thread=workers)
    as_bytes = cfg.num_thread > 0 and device.type == "cuda"  # as test.py
    dataset = build_dataset(cfg, cfg.dataset, "test",
                            loading=LoadingOptions(video_as_bytes=as_bytes))
    model, baseline_model = _two_networks(cfg, dataset, device)
    precision = resolve_precision(cfg, device, training=False)
    chunk = eval_chunk_clips(cfg.eval_chunk_frames, cfg.frame_per_seg, device)  # as test.py
    ours_model, _ = optimize_for_inference(model, precision, chunk_clips=chunk)
    batch_size = cfg.test_batch_size

    def ours() -> np.ndarray:
        loader = build_clip_loader(dataset, ShardedBatchSampler(len(dataset), batch_size),
                                   num_workers=cfg.num_thread, pin_memory=device.type == "cuda")
        return predict(ours_model, loader, device, progress=False, precision=precision)["prob"]

    baseline_dataset = build_dataset(cfg, cfg.dataset, "test", loading=BASELINE_LOADING)

    def baseline() -> np.ndarray:
        return _baseline_predict(baseline_model, baseline_dataset, batch_size, device)

    diff = float(np.abs(ours() - baseline()).max())
    seconds: Dict[str, list] = {"ours": [], "baseline": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("baseline", baseline)):
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    best = {name: float(np.median(values)) for name, values in seconds.items()}
    clips = len(dataset)
    first = move_batch(collate_clips([dataset[i] for i in range(min(batch_size, clips))]),
                       device)
    flops, peak = _convolution_floor(ours_model, first, cfg=cfg, device=device,
                                     precision=precision)
    floor_s = flops / peak["flops_per_s"]
    steps = network_steps(model, first, baseline=baseline_model, device=device, repeats=repeats,
                          chunk=chunk)
    return {
        "case": "test.py evaluation (rgb+pose, 10 clips per video)",
        "clips": clips, "workers": cfg.num_thread,
        "ours_s": best["ours"] / clips, "baseline_s": best["baseline"] / clips,
        "speedup": ratio(best["baseline"], best["ours"]),
        "ours_clips_per_s": clips / best["ours"], "baseline_clips_per_s": clips / best["baseline"],
        "max_abs_prob_diff": diff,
        "conv_gflops_per_clip": flops / 1e9, "peak_conv_gflops_per_s": peak["flops_per_s"] / 1e9,
        "conv_floor_s": floor_s, "ours_vs_floor": best["ours"] / clips / floor_s,
        "best_possible_speedup": best["baseline"] / clips / floor_s,
        "network_steps": steps,
        "targets": {"speedup >= 2": ratio(best["baseline"], best["ours"]) >= 2,
                    "probabilities within 1e-4": diff <= 1e-4},
    }
