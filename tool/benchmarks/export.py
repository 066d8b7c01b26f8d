"""Case `export` (CPU): the exported ONNX network in onnxruntime against eager PyTorch.

Both sides get the same weights (trained-looking BatchNorm statistics) and the same inputs:
the benchmark data's first test batch of 8 clips, rgb+pose at the paper's shapes. Eager is the
network as test.py runs it on a CPU (`optimize_for_inference`: BatchNorm folded, channels_last,
sub-batches of whole clips; the compact pose-map renderer) under `torch.inference_mode`.
onnxruntime runs the file tool/export.py writes (BatchNorm folded, the renderer's fixed-shape
path inside the graph) with as many threads as torch uses. A third side, eager with the
graph's fixed-shape renderer, tells what that path costs apart from the engine. The sides are
timed in turn; the export itself is timed once.
"""
from __future__ import annotations

import copy
import functools
import os.path as osp
import tempfile
import time
from typing import Any, Callable, Dict, List

import numpy as np
import torch

from common.errors import UsageError
from common.export.files import export_network, write_onnx
from common.export.onnx_runtime import OnnxModel
from common.export.signature import ExportInfo
from common.model import build_model
from common.nets.pose_maps import render_pose_maps
from common.runtime.precision import resolve_precision
from common.train.inference import eval_chunk_clips, optimize_for_inference
from data.collate import collate_clips
from data.registry import build_dataset
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.inference import trained_looking
from tool.benchmarks.measure import ratio


def time_round_robin(calls: Dict[str, Callable[[], Any]], *, repeats: int
                     ) -> Dict[str, List[float]]:
    """Seconds of each call in each round, the calls timed in turn (after a warm-up round)."""
    runs: Dict[str, List[float]] = {name: [] for name in calls}
    for round_ in range(repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_:
                runs[name].append(time.perf_counter() - start)
    return runs


def _probs(outputs: Dict[str, Any]) -> np.ndarray:
    return torch.softmax(outputs["logits"].float(), dim=1).numpy()


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str) -> Dict[str, Any]:
    if device.type != "cpu":
        raise UsageError("--cases export measures onnxruntime on the CPU: run it with "
                         "--device cpu")
    # A batch of 8 clips (test.py's 16 would double the case's minutes for the same ratio).
    cfg = benchmark_config(data_dir, smoke=smoke, mode="rgb+pose",
                           **({} if smoke else {"test_batch_size": 8}))
    dataset = build_dataset(cfg, cfg.dataset, "test")
    joints = dataset.joint_set
    torch.manual_seed(0)
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    model.init_weights(None)
    model = trained_looking(model)
    batch = collate_clips([dataset[i] for i in range(min(cfg.test_batch_size, len(dataset)))])
    clips = batch["video"].shape[0]
    start = time.perf_counter()
    program, facts = export_network(model, img_hw=tuple(cfg.input_img_shape),
                                    people=int(cfg.top_k_pose))
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, "rgb_pose.onnx")
        write_onnx(program, ExportInfo(mode=cfg.mode, class_num=dataset.class_num, config=None,
                                       source="benchmark", **facts), path)
        export_s = time.perf_counter() - start
        session = OnnxModel(path, threads=torch.get_num_threads())
    precision = resolve_precision(cfg, device, training=False)
    chunk = eval_chunk_clips(cfg.eval_chunk_frames, cfg.frame_per_seg, device)
    eager, _ = optimize_for_inference(model, precision, chunk_clips=chunk)
    # The same eager network with the graph's fixed-shape renderer: what the renderer costs.
    fixed = copy.deepcopy(model)
    fixed.pose_renderer = functools.partial(render_pose_maps, compact=False)
    eager_fixed, _ = optimize_for_inference(fixed, precision, chunk_clips=chunk)
    with torch.inference_mode():
        diff = float(np.abs(_probs(session(batch)) - _probs(eager(batch))).max())
        times = time_round_robin({"ours": lambda: session(batch), "baseline": lambda: eager(batch),
                                  "fixed": lambda: eager_fixed(batch)}, repeats=repeats)
    median = {name: float(np.median(values)) for name, values in times.items()}
    ours, base = median["ours"], median["baseline"]
    return {
        "case": f"onnxruntime vs eager PyTorch (rgb+pose, batch of {clips}, CPU)",
        "clips": clips, "ours_s": ours / clips, "baseline_s": base / clips,
        "ours_clips_per_s": clips / ours, "baseline_clips_per_s": clips / base,
        "speedup": ratio(base, ours), "max_abs_prob_diff": diff, "export_s": export_s,
        "eager_fixed_renderer_clips_per_s": clips / median["fixed"], "runs_s": times,
        "threads": torch.get_num_threads(),
        "targets": {"probabilities within 1e-4": diff <= 1e-4},
    }
