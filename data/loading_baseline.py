"""The plain loading loop that the fast item path is tested and measured against, and the
functions that time loading.

`baseline_clip` is the straightforward reading of SPEC.md, frame by frame in float32: read the
JPEG with OpenCV, BGR -> RGB, float32, bilinear resize, flip, bilinear warp, / 255; it is what
the item path did before it was made faster (`data.transforms.input_clip`, which gives
the same clip bit for bit). `use_baseline_loading` puts the same loop into a dataset, so that a
DataLoader over it measures the baseline through the real item path (poses, collate, workers).
`measure_loader` / `time_loader`, `time_items` and `compare` measure (see tool/benchmark.py).
"""
from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset

from common.runtime.device import move_batch
from data.frames import FrameError, read_frame_bytes
from data.transforms import warp_frames
from data.clip_loader import build_clip_loader
from data.registry import build_dataset

CPU = torch.device("cpu")


def baseline_clip(frame_paths: Sequence[str], resized_hw: Tuple[int, int], matrix: np.ndarray,
                  do_flip: bool, out_shape: Tuple[int, int]) -> np.ndarray:
    """One clip the straightforward way: per frame `cv2.imread` -> RGB -> float32 ->
    `cv2.resize` to `resized_hw` (bilinear) -> flip (when `do_flip`) -> `cv2.warpAffine` by
    `matrix` (bilinear, float32, 0 outside); then `/ 255`.

    Args:
        frame_paths: the clip's JPEGs, in order.
        resized_hw: `(H, W)` the frames are resized to.
        matrix: `(2, 3)` from `data.transforms.crop_affine`.
        do_flip: mirror the resized frames horizontally before the warp.
        out_shape: `(out_h, out_w)`.
    Returns:
        `(T, 3, out_h, out_w)` float32 RGB in [0, 1]: what an item's 'video' holds.
    """
    height, width = resized_hw
    out_h, out_w = out_shape
    warped = []
    for path in frame_paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise OSError(f"{path}: cannot read the frame")
        frame = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
        if do_flip:
            frame = cv2.flip(frame, 1)
        warped.append(cv2.warpAffine(frame, matrix.astype(np.float64), (out_w, out_h),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=0))
    clip = np.stack(warped).transpose(0, 3, 1, 2) / np.float32(255.0)
    return np.ascontiguousarray(clip, dtype=np.float32)


# ---- the same loop as a dataset's item path (what items did before the fast path)
def baseline_read_frames(paths: Sequence[str], fast_decode_shape: Optional[Sequence[int]] = None
                         ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
    """`VideoPoseDataset.read_clip_frames` of the baseline: every frame decoded as BGR, turned
    to RGB, float32 (as `load_frame` did; the same checks and errors as the fast path), `(H, W)`
    of the first. `fast_decode_shape` is ignored (the baseline decodes at full size)."""
    frames = []
    for path in paths:
        raw = read_frame_bytes(path)
        image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8),
                             cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise FrameError(path, "corrupt_frame", f"not a decodable image ({len(raw)} bytes)")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32))
    return frames, (int(frames[0].shape[0]), int(frames[0].shape[1]))


def baseline_input_clip(frames: Sequence[np.ndarray], resized_hw: Tuple[int, int],
                        matrix: np.ndarray, do_flip: bool,
                        out_shape: Tuple[int, int]) -> np.ndarray:
    """`VideoPoseDataset.make_input_clip` of the baseline: float32 frames resized, flipped,
    warped (`warp_frames`), / 255 -> `(T, 3, out_h, out_w)` float32."""
    resized = np.stack([
        cv2.resize(np.asarray(frame, dtype=np.float32), (resized_hw[1], resized_hw[0]),
                   interpolation=cv2.INTER_LINEAR)
        for frame in frames
    ])
    clip = warp_frames(resized, matrix, do_flip, out_shape)
    clip = clip.transpose(0, 3, 1, 2) / np.float32(255.0)
    return np.ascontiguousarray(clip, dtype=np.float32)


def use_baseline_loading(dataset: Any) -> Any:
    """Make `dataset` (a `VideoPoseDataset`) build its clips with the baseline loop; returns
    it. Its items stay bit-identical; only the time they take changes."""
    dataset.read_clip_frames = baseline_read_frames
    dataset.make_input_clip = baseline_input_clip
    dataset.write_batches = False  # each item its own array, stacked by the collate
    return dataset


# ---- timing
@dataclass
class LoaderTiming:
    """What `measure_loader` measured.

    Attributes:
        clips_per_s: clips per wall-clock second after the warm-up batches (the target
            measure; on a shared machine it moves with the other load).
        cpu_s_per_clip: CPU seconds (user + system, this process and its worker processes)
            per clip over the whole run, start-up included: steadier on a loaded machine.
    """

    clips_per_s: float
    cpu_s_per_clip: float


def measure_loader(dataset: Dataset, workers: int = 2, batches: int = 20, batch_size: int = 8,
                   warmup: int = 2, opencv_threads: Optional[int] = None) -> LoaderTiming:
    """Iterate a DataLoader over `dataset` (`collate_clips`, `workers` worker processes, no
    model) for `warmup + batches` batches (indices in order, the data set cycled as needed).

    `opencv_threads`: `cv2.setNumThreads` for the run, set in this process before the workers
    are forked (they inherit it) and restored after. Not in a `worker_init_fn`: a forked worker
    that resizes the OpenCV thread pool inherited from a parent that had used it can hang in
    `pthread_cond_destroy` (seen here)."""
    needed = (warmup + batches) * batch_size
    indices = [i % len(dataset) for i in range(needed)]
    previous = cv2.getNumThreads()
    if opencv_threads is not None:
        cv2.setNumThreads(opencv_threads)
    cpu_before = _cpu_seconds()
    try:
        # The loader of train.py and test.py (reused batch slots where the data set writes
        # its clips into batch tensors; the baseline's plain loop does not).
        loader = build_clip_loader(dataset, BatchSampler(indices, batch_size, False),
                                   num_workers=workers)
        clips = total = 0
        start = 0.0
        for n, batch in enumerate(loader):  # the workers are joined when it ends
            if n == warmup:
                start = time.perf_counter()
            # A clip counts once it is the network's float input (bytes sent by
            # `video_as_bytes` workers are made float here, as `move_batch` does).
            batch = move_batch(batch, CPU)
            count = len(batch.get("label", ()))
            total += count
            if n >= warmup:
                clips += count
        elapsed = time.perf_counter() - start
    finally:
        if opencv_threads is not None:
            cv2.setNumThreads(previous)
    cpu = _cpu_seconds() - cpu_before
    return LoaderTiming(clips / elapsed if elapsed > 0 and clips else float("nan"),
                        cpu / total if total else float("nan"))


def time_loader(dataset: Dataset, workers: int = 2, batches: int = 20, batch_size: int = 8,
                warmup: int = 2, opencv_threads: Optional[int] = None) -> float:
    """Clips per second through a `workers`-worker DataLoader over `dataset` (see
    `measure_loader`): the clips of `batches` batches after `warmup` batches (the workers'
    start-up), divided by the wall-clock time they took."""
    return measure_loader(dataset, workers, batches, batch_size, warmup,
                          opencv_threads).clips_per_s


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its ended, waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_items(dataset: Dataset, items: int = 16, repeats: int = 5) -> float:
    """Median seconds per item of `dataset[i]` for the first `items` items, in this process
    (the item path alone: no workers, no collate)."""
    per_item = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(items):
            dataset[index % len(dataset)]
        per_item.append((time.perf_counter() - start) / items)
    return statistics.median(per_item)


def compare(cfg: Any, *, workers: int = 2, batches: int = 20, repeats: int = 3,
            items: int = 16) -> List[str]:
    """Fast vs baseline loading of `cfg`'s data set, test and train split: the item path alone
    (ms per clip in one process, median of `repeats` runs of `items` items) and a
    `workers`-worker DataLoader, batch 8 (clips/s and CPU ms per clip, median of `repeats`).
    Fast and baseline runs alternate, so that they share the machine's load alike. Returns
    two report lines per split."""
    lines = []
    for split in ("test", "train"):
        fast = build_dataset(cfg, cfg.dataset, split)
        base = use_baseline_loading(build_dataset(cfg, cfg.dataset, split))
        item: Dict[str, List[float]] = {"base": [], "fast": []}
        loader: Dict[str, List[LoaderTiming]] = {"base": [], "fast": []}
        for _ in range(repeats):
            item["base"].append(time_items(base, items, 1))
            item["fast"].append(time_items(fast, items, 1))
            loader["base"].append(measure_loader(base, workers, batches))
            loader["fast"].append(measure_loader(fast, workers, batches))
        ib, i_f = (statistics.median(item[k]) for k in ("base", "fast"))
        rate = {k: statistics.median(t.clips_per_s for t in v) for k, v in loader.items()}
        cpu = {k: statistics.median(t.cpu_s_per_clip for t in v) for k, v in loader.items()}
        lines.append(f"{split}: item path {ib * 1e3:.2f} -> {i_f * 1e3:.2f} ms/clip "
                     f"({ib / i_f:.2f}x)")
        lines.append(f"{split}: DataLoader {workers} workers batch 8: {rate['base']:.1f} -> "
                     f"{rate['fast']:.1f} clips/s ({rate['fast'] / rate['base']:.2f}x); CPU "
                     f"{cpu['base'] * 1e3:.1f} -> {cpu['fast'] * 1e3:.1f} ms/clip "
                     f"({cpu['base'] / cpu['fast']:.2f}x)")
    return lines
