"""Case 4: test.py's evaluation against the authors' pipeline, on the same data and weights.

Ours is what `main/test.py` runs: the DataLoader with `num_thread` workers (loading overlapped
with compute; for a GPU, whole-pixel clips sent as uint8), BatchNorm folded into the convolutions, the
precision's memory layout (channels_last), on the CPU the batch run 16 frames' worth of clips
at a time (`ClipChunks`), `torch.inference_mode`, outputs kept on the device until the end. The baseline runs the same
network the original's way: loading in the main process between batches with the per-frame
read/resize/warp in float32 (`data.loading_baseline`; the same clips), BatchNorm as separate
layers, contiguous fp32, the dense pose-map renderer (the original's arithmetic), `torch.no_grad`,
and each batch's probabilities copied to the host as it is done.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Dict

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from common.device import move_batch
from common.engine import predict
from common.inference import eval_chunk_clips, optimize_for_inference
from common.model import build_model
from common.nets.pose_maps_dense import render_pose_maps_dense
from common.precision import resolve_precision
from data.collate import collate_clips
from data.loading_baseline import use_baseline_loading
from data.registry import build_dataset
from data.samplers import ShardedBatchSampler
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import ratio
from tool.benchmarks.roofline import conv_flops, peak_conv_rate


def _trained_looking(model: nn.Module) -> nn.Module:
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


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str,
        workers: int) -> Dict[str, Any]:
    cfg = benchmark_config(data_dir, smoke=smoke, mode="rgb+pose", num_thread=workers)
    dataset = build_dataset(cfg, cfg.dataset, "test")
    dataset.video_as_bytes = cfg.num_thread > 0 and device.type == "cuda"  # as test.py
    joints = dataset.joint_set
    torch.manual_seed(0)
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    model.init_weights(None)
    model = _trained_looking(model).to(device)
    baseline_model = copy.deepcopy(model)
    baseline_model.pose_renderer = render_pose_maps_dense
    precision = resolve_precision(cfg, device, training=False)
    chunk = eval_chunk_clips(cfg.eval_chunk_frames, cfg.frame_per_seg, device)  # as test.py
    ours_model, _ = optimize_for_inference(model, precision, chunk_clips=chunk)
    batch_size = cfg.test_batch_size

    def ours() -> np.ndarray:
        loader = DataLoader(dataset, batch_sampler=ShardedBatchSampler(len(dataset), batch_size),
                            num_workers=cfg.num_thread, pin_memory=device.type == "cuda",
                            collate_fn=collate_clips)
        return predict(ours_model, loader, device, progress=False, precision=precision)["prob"]

    baseline_dataset = use_baseline_loading(build_dataset(cfg, cfg.dataset, "test"))

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
    # The convolution floor: the network's convolution work at the best rate this device
    # reaches on its 3x3 shapes; no fp32 evaluation of the same network gets below it.
    first = move_batch(collate_clips([dataset[i] for i in range(min(batch_size, clips))]),
                       device)
    flops = conv_flops(ours_model, lambda: ours_model(first)) / first["video"].shape[0]
    peak = peak_conv_rate(device, channels_last=precision.channels_last,
                          frames=min(32, first["video"].shape[0] * cfg.frame_per_seg))
    floor_s = flops / peak["flops_per_s"]
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
        "targets": {"speedup >= 2": ratio(best["baseline"], best["ours"]) >= 2,
                    "probabilities within 1e-4": diff <= 1e-4},
    }
