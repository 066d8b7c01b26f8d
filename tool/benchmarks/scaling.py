"""Case 5 (opt-in): how the cost grows with batch size, frames, people and heatmap size.

Four sweeps, each varying one parameter from the paper's shape (8 clips of 8 frames, 5 people of
which 2 real, 56 x 56 maps, 224 x 224 RGB, 18 joints, 17 limbs):

- people per frame: 1 ... 20, all of them real (visible), so that ours has more to draw;
- heatmap size: 28 ... 224;
- frames per clip: 4 ... 32;
- batch size (clips): 1 ... 16.

Each point times the pose-map rendering of ours (`common.nets.pose_maps`) and of the dense
baseline (`tool.benchmarks.baselines.pose_maps_dense`) alternately, and checks that they agree.
The frames and
batch sweeps also time the rgb+pose network's forward pass, as test.py runs it (BatchNorm folded,
channels_last, on the CPU 16 frames' worth of clips at a time, `inference_mode`, ours rendering
inside), on random inputs: no data is read. The network's points stop below the
largest rendering points (16 frames, batch 8), because on a 2-core CPU one forward pass there
already takes seconds.

Each point runs its sides for about `POINT_BUDGET_S` seconds at most (at least once, at most
`repeats` times), so that the whole case stays at a few minutes on 2 cores. The dense side is
skipped, with the reason recorded, where its (N, P, max(J, L), H, W) float intermediate would
exceed `DENSE_LIMIT_BYTES`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from common.io.atomic_file import atomic_write
from common.train.inference import ClipChunks, eval_chunk_clips, optimize_for_inference
from common.model import build_model
from common.runtime.precision import Precision, resolve_precision
from data.joint_sets import OPENPOSE_18
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import ratio, sync, time_call, time_pair
from tool.benchmarks.pose_maps import clip_poses, make_call

# The dense renderer's largest intermediate beyond which its side is skipped: several such
# tensors are alive at once, so 2 GiB of one means 6-10 GiB of peak memory.
DENSE_LIMIT_BYTES = 2 * 2**30
# Seconds each side of a point may run (the repeats are cut to fit, but it runs once at least).
POINT_BUDGET_S = 1.5
# Kinetics-400's classifier: its cost is negligible next to the backbones, but it is the real one.
CLASS_NUM = 400
PLOT_DPI = 120


@dataclass(frozen=True)
class Shape:
    """One point's input: `clips` clips of `frames` frames, `people` per frame of which `real`
    are visible, `hm` x `hm` pose maps, `img` x `img` RGB."""

    clips: int
    frames: int
    people: int
    real: int
    hm: int
    img: int

    def describe(self) -> str:
        return (f"{self.clips} clips x {self.frames} frames, {self.people} people "
                f"({self.real} real), {self.hm}x{self.hm}")


@dataclass(frozen=True)
class Sweep:
    """One parameter varied from the base shape: `field` of `Shape` takes `values` for the
    rendering and `network_values` (a subset) for the network."""

    name: str
    label: str
    field: str
    values: Tuple[int, ...]
    network_values: Tuple[int, ...] = ()

    def shape(self, base: Shape, value: int) -> Shape:
        if self.field == "people":  # every person real: ours' cost grows with what it draws
            return dataclasses.replace(base, people=value, real=value)
        return dataclasses.replace(base, **{self.field: value})


def base_shape(*, smoke: bool) -> Shape:
    """The paper's shape; tiny in smoke mode (that of `benchmark_config(smoke=True)`)."""
    if smoke:
        return Shape(clips=2, frames=2, people=3, real=2, hm=8, img=16)
    return Shape(clips=8, frames=8, people=5, real=2, hm=56, img=224)


def sweeps(*, smoke: bool) -> Tuple[Sweep, ...]:
    """The four sweeps (two points each in smoke mode)."""
    if smoke:
        return (Sweep("people", "people per frame (all real)", "people", (1, 3)),
                Sweep("hm", "heatmap size (H = W)", "hm", (8, 16)),
                Sweep("frames", "frames per clip", "frames", (2, 4), (2, 4)),
                Sweep("batch", "batch size (clips)", "clips", (1, 2), (1, 2)))
    return (Sweep("people", "people per frame (all real)", "people", (1, 2, 5, 10, 20)),
            Sweep("hm", "heatmap size (H = W)", "hm", (28, 56, 112, 224)),
            Sweep("frames", "frames per clip", "frames", (4, 8, 16, 32), (4, 8, 16)),
            Sweep("batch", "batch size (clips)", "clips", (1, 2, 4, 8, 16), (1, 2, 4, 8)))


def dense_intermediate_bytes(shape: Shape) -> int:
    """Bytes of the dense renderer's largest intermediate: a float32 (N, P, max(J, L), H, W)
    tensor, N = clips * frames (the heatmaps' J = 18 is the larger on OpenPose-18)."""
    channels = max(OPENPOSE_18.joint_num, len(OPENPOSE_18.limbs))
    return shape.clips * shape.frames * shape.people * channels * shape.hm * shape.hm * 4


def _repeats(one_call_s: float, repeats: int) -> int:
    """How many timed calls fit a point's budget: between 1 and `repeats`."""
    return max(1, min(repeats, int(POINT_BUDGET_S / max(one_call_s, 1e-9))))


def _timed(fn: Callable[[], Any], device: torch.device) -> Tuple[Any, float]:
    """`fn()`'s result and its wall time (the device synchronised)."""
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def render_point(shape: Shape, *, device: torch.device, repeats: int,
                 dense_limit_bytes: int = DENSE_LIMIT_BYTES) -> Dict[str, Any]:
    """Rendering time of one batch of `shape` by ours and by the dense baseline.

    The first call of each side is the warm-up; it also gives the two (N, J + 2L, H, W) maps
    whose largest difference is recorded. The sides are then timed alternately
    (`time_pair`). Where the dense intermediate would exceed `dense_limit_bytes`, ours is
    timed alone and the dense figures are None, with the reason in 'dense_skipped'.

    Returns: 'ours_s', 'dense_s' (seconds per batch), the same '_per_clip_s', 'speedup'
    (dense / ours), 'max_abs_diff', 'dense_estimate_gib', 'dense_skipped' (None or why),
    'repeats'.
    """
    dims = dict(clips=shape.clips, frames=shape.frames, people=shape.people, real=shape.real,
                hm=shape.hm, device=str(device))
    ours = make_call(side="ours", **dims)
    estimate = dense_intermediate_bytes(shape)
    record: Dict[str, Any] = {"dense_estimate_gib": estimate / 2**30, "dense_s": None,
                              "dense_per_clip_s": None, "speedup": None, "max_abs_diff": None,
                              "dense_skipped": None}
    ours_out, ours_first = _timed(ours, device)
    if estimate > dense_limit_bytes:
        del ours_out
        record["dense_skipped"] = (
            f"its (N, P, max(J, L), H, W) intermediate would take {estimate / 2**30:.2f} GiB, "
            f"over the {dense_limit_bytes / 2**30:.2f} GiB limit")
        n = _repeats(ours_first, repeats)
        ours_s = time_call(ours, device=device, repeats=n, warmup=0).median
    else:
        dense = make_call(side="baseline", **dims)
        dense_out, dense_first = _timed(dense, device)
        record["max_abs_diff"] = float((ours_out - dense_out).abs().max())
        del ours_out, dense_out  # large at the big points: not held while timing
        n = _repeats(max(ours_first, dense_first), repeats)
        times = time_pair(ours, dense, device=device, repeats=n, warmup=0)
        ours_s, dense_s = times["ours"].median, times["baseline"].median
        record.update(dense_s=dense_s, dense_per_clip_s=dense_s / shape.clips,
                      speedup=ratio(dense_s, ours_s))
    record.update(ours_s=ours_s, ours_per_clip_s=ours_s / shape.clips, repeats=n)
    return record


def _network(shape: Shape, *, device: torch.device, smoke: bool) -> Tuple[nn.Module, Precision]:
    """The rgb+pose network for clips of `shape.frames` frames (TSM's temporal shift is built
    for one clip length) and `shape`'s image and map sizes, prepared as test.py prepares it
    (eval mode, BatchNorm folded, the device's precision); random weights."""
    cfg = benchmark_config("", smoke=smoke, mode="rgb+pose", frame_per_seg=shape.frames,
                           input_img_shape=(shape.img, shape.img),
                           input_hm_shape=(shape.hm, shape.hm))  # data_dir: nothing is read
    torch.manual_seed(0)
    model = build_model(cfg, CLASS_NUM, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    model.init_weights(None)
    model = model.to(device).eval()
    precision = resolve_precision(cfg, device, training=False)
    chunk = eval_chunk_clips(cfg.eval_chunk_frames, cfg.frame_per_seg, device)  # as test.py
    fast, _ = optimize_for_inference(model, precision, chunk_clips=chunk)
    return fast, precision


def network_batch(shape: Shape, *, pose_frames: int, device: torch.device
                  ) -> Dict[str, Tensor]:
    """Random inputs of the network's forward: 'video' (B, T, 3, img, img) in [0, 1],
    'pose_coords' (B, Tp, P, J, 2) on the hm grid, 'pose_scores' (B, Tp, P, J)."""
    g = torch.Generator().manual_seed(0)
    video = torch.rand(shape.clips, shape.frames, 3, shape.img, shape.img, generator=g)
    poses = clip_poses(clips=shape.clips, frames=pose_frames, people=shape.people,
                       real=shape.real, hm=shape.hm)
    joints = OPENPOSE_18.joint_num
    return {"video": video.to(device),
            "pose_coords": poses["coords"].view(shape.clips, pose_frames, shape.people, joints,
                                                2).to(device),
            "pose_scores": poses["scores"].view(shape.clips, pose_frames, shape.people,
                                                joints).to(device)}


def network_point(shape: Shape, model: nn.Module, precision: Precision, *,
                  device: torch.device, repeats: int) -> Dict[str, Any]:
    """Forward time of the network (built for `shape.frames`) on one batch of `shape`.

    Returns: 'network_s' (seconds per batch), 'network_per_clip_s', 'network_repeats'.
    """
    inner = model.model if isinstance(model, ClipChunks) else model
    batch = network_batch(shape, pose_frames=inner.pose_frame_num, device=device)

    def forward() -> Tensor:
        with torch.inference_mode(), precision.autocast():
            return model(batch)["logits"]

    _, first = _timed(forward, device)  # the warm-up
    n = _repeats(first, repeats)
    seconds = time_call(forward, device=device, repeats=n, warmup=0).median
    return {"network_s": seconds, "network_per_clip_s": seconds / shape.clips,
            "network_repeats": n}


def plot_scaling(results: Sequence[Dict[str, Any]], path: str, *, title: str) -> str:
    """One PNG, a panel per sweep: ms per batch against the parameter, log-log; lines for
    ours' rendering, the dense rendering (its skipped points left out, marked in the legend)
    and the network's forward pass where measured. Returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

    # Figure on an Agg canvas, not pyplot: no display, no global figure registry to close.
    fig = Figure(figsize=(10, 7.5), dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    lines = (("ours_s", "ours (rendering)", "o-"), ("dense_s", "dense (rendering)", "s--"),
             ("network_s", "network forward (rgb+pose)", "^-"))
    for i, sweep in enumerate(results):
        ax = fig.add_subplot(2, 2, i + 1)
        xs = [p["value"] for p in sweep["points"]]
        for key, label, style in lines:
            shown = [(p["value"], p[key] * 1000) for p in sweep["points"] if p.get(key)]
            if not shown:
                continue
            if key == "dense_s" and len(shown) < len(xs):
                label += f" ({len(xs) - len(shown)} skipped: memory)"
            ax.plot(*zip(*shown), style, label=label, markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.xaxis.set_minor_locator(NullLocator())  # log axes' minor ticks would crowd the values
        # Plain numbers (0.5, 10, 2000), not 5 x 10^-1; minor labels would overlap on short spans.
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(sweep["label"])
        ax.set_ylabel("ms per batch")
        ax.set_title(sweep["label"], fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}\neach panel varies one parameter {results[0]['base']}"
                 if results else title, fontsize=10)
    fig.tight_layout()
    # Written aside and renamed: an interrupted run never leaves a truncated PNG under the name.
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=PLOT_DPI)
    return path


def run(*, device: torch.device, repeats: int, smoke: bool, plot_path: Optional[str] = None,
        dense_limit_bytes: int = DENSE_LIMIT_BYTES) -> Dict[str, Any]:
    """Every sweep's points; the plot written to `plot_path` when given.

    Returns: 'sweeps', a list of {'name', 'label', 'parameter', 'base', 'points'}, each point
    {'value', 'shape', the rendering figures of `render_point`, and 'network_s',
    'network_per_clip_s', 'network_repeats' (None where the network was not run)}; 'plot'
    (the path or None); 'max_abs_diff' over every point; 'targets'.
    """
    base = base_shape(smoke=smoke)
    # The base shape recurs in several sweeps: measured once, the same figures in each.
    renders: Dict[Shape, Dict[str, Any]] = {}
    networks: Dict[Shape, Dict[str, Any]] = {}
    models: Dict[int, Tuple[nn.Module, Precision]] = {}
    results: List[Dict[str, Any]] = []
    for sweep in sweeps(smoke=smoke):
        points = []
        for value in sweep.values:
            shape = sweep.shape(base, value)
            if shape not in renders:
                renders[shape] = render_point(shape, device=device, repeats=repeats,
                                              dense_limit_bytes=dense_limit_bytes)
            point: Dict[str, Any] = {"value": value, "shape": dataclasses.asdict(shape),
                                     **renders[shape], "network_s": None,
                                     "network_per_clip_s": None, "network_repeats": None}
            if value in sweep.network_values:
                if shape not in networks:
                    if shape.frames not in models:
                        models[shape.frames] = _network(shape, device=device, smoke=smoke)
                    model, precision = models[shape.frames]
                    networks[shape] = network_point(shape, model, precision, device=device,
                                                    repeats=repeats)
                point.update(networks[shape])
            points.append(point)
        results.append({"name": sweep.name, "label": sweep.label, "parameter": sweep.field,
                        "base": f"from {base.describe()}, {base.img}x{base.img} RGB",
                        "points": points})
    diffs = [p["max_abs_diff"] for s in results for p in s["points"]
             if p["max_abs_diff"] is not None]
    worst = max(diffs) if diffs else None
    plot = None
    if plot_path:
        plot = plot_scaling(results, plot_path, title=(
            f"Cost against batch, frames, people and heatmap size ({device.type})"))
    return {
        "case": "scaling (rendering and network)",
        "sweeps": results, "plot": plot, "max_abs_diff": worst,
        "dense_limit_gib": dense_limit_bytes / 2**30,
        "targets": {"max abs diff <= 1e-5": worst is None or worst <= 1e-5},
    }
