"""Case 2: loading clips from JPEG frames, the real loader against a plain per-frame
read/resize/warp in float32 (`tool.benchmarks.baselines.loading`), test and train split.

Both sides give bit-identical clips (tests/test_loading_fast.py); only the time differs. Ours
runs as test.py and train.py run it: for a GPU (`--device cuda`), the test split's workers send
whole-pixel clips as uint8 and `move_batch` makes the float32 clips, which is counted. (On the
CPU they send float32: the conversion would cost the main process as much as it saves.) Two
figures per split: clips/s through a DataLoader with `workers` workers (batch 8, no model), and
the item path alone in one process (ms per clip). Ours writes each batch's float32 clips into
reused shared-memory batch slots (`data.clip_loader`), as train.py and test.py do on the CPU;
the baseline's plain loop sends each batch in fresh shared memory. And what the loader itself
costs: clips/s of ready-made clips (nothing decoded) through the same DataLoader, float32 and
uint8 in fresh shared memory and float32 in reused slots, the ceiling of any item path.
"""
from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.utils.data import Dataset

from data.batch_pool import BatchWriter
from data.registry import build_dataset
from data.video_pose_dataset import LoadingOptions
from tool.benchmarks.baselines.loading import BASELINE_LOADING
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import measure_loader, ratio, time_items


class ReadyClips(BatchWriter, Dataset):
    """Items shaped as the video datasets' (a `(T, 3, H, W)` clip of `dtype`, poses, label),
    each a fresh copy of one clip: what passing items between processes costs, without making
    them. With `write_batches`, a batch's clips are copied into one batch tensor as the video
    datasets write them (`data.batch_pool.BatchWriter`), so that the loader reuses its shared
    memory (`data.clip_loader.build_clip_loader`)."""

    def __init__(self, *, length: int, clip_shape: Tuple[int, ...], pose_shape: Tuple[int, ...],
                 dtype: torch.dtype, write_batches: bool = False) -> None:
        self.length = length
        self.clip = torch.zeros(clip_shape, dtype=dtype)
        self.coords = torch.zeros(*pose_shape, 2)
        self.scores = torch.zeros(pose_shape)
        self.writes_batches = write_batches

    def __len__(self) -> int:
        return self.length

    def batch_clip_shape(self, batch_size: int) -> Tuple[int, ...]:
        return (batch_size, *self.clip.shape)

    def _item(self, key: int, video_out: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        video = self.clip.clone() if video_out is None else video_out.copy_(self.clip)
        return {"video": video, "pose_coords": self.coords.clone(),
                "pose_scores": self.scores.clone(), "label": torch.tensor(0),
                "video_id": torch.tensor(key), "problems": []}

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return self._item(index)


def transfer_ceiling(cfg: Any, *, workers: int, batches: int, repeats: int
                     ) -> Dict[str, float]:
    """Clips/s of ready-made clips of `cfg`'s input shape through a `workers`-worker loader
    (batch 8): float32 and uint8 clips each in fresh shared memory, and float32 clips written
    into the loader's reused batch slots, as ours are. No item path can be loaded faster."""
    frames, (height, width) = int(cfg.frame_per_seg), tuple(cfg.input_img_shape)
    pose_shape = (frames, int(cfg.top_k_pose), 18)
    out: Dict[str, float] = {}
    for name, dtype, write in (("float32", torch.float32, False), ("uint8", torch.uint8, False),
                               ("float32, reused slots", torch.float32, True)):
        data = ReadyClips(length=8 * (batches + 2), clip_shape=(frames, 3, height, width),
                          pose_shape=pose_shape, dtype=dtype, write_batches=write)
        out[name] = statistics.median(measure_loader(data, workers=workers,
                                                     batches=batches).clips_per_s
                                      for _ in range(max(1, repeats // 3)))
    return out


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str,
        workers: int) -> Dict[str, Any]:
    """Loading runs on the CPU wherever the model runs; `device` decides only whether test clips
    cross as uint8 (for a GPU), as in test.py."""
    cfg = benchmark_config(data_dir, smoke=smoke, mode="rgb+pose")
    # 40 batches: a shorter run is a second long, and its rate moves with every hiccup.
    batches, items = (2, 4) if smoke else (40, 16)
    rows: List[Dict[str, Any]] = []
    for split in ("test", "train"):
        # Through the loader, ours sends whole-pixel clips as uint8 where test.py does (the
        # test split, workers, a GPU), made float here as `move_batch` does; the item path
        # alone is timed making the float clip.
        as_bytes = split == "test" and workers > 0 and device.type == "cuda"
        ours = build_dataset(cfg, cfg.dataset, split)
        base = build_dataset(cfg, cfg.dataset, split, loading=BASELINE_LOADING)
        sending = (build_dataset(cfg, cfg.dataset, split,
                                 loading=LoadingOptions(video_as_bytes=True))
                   if as_bytes else ours)
        loaded = {"ours": sending, "baseline": base}  # through the loader
        timed = {"ours": ours, "baseline": base}  # the item path alone
        rates: Dict[str, List[float]] = {"ours": [], "baseline": []}
        item_s: Dict[str, List[float]] = {"ours": [], "baseline": []}
        for _ in range(repeats):  # alternately, so that both sides share the machine's load
            for name in ("ours", "baseline"):
                rates[name].append(measure_loader(loaded[name], workers=workers,
                                                  batches=batches).clips_per_s)
                item_s[name].append(time_items(timed[name], items, 1))
        rate = {k: statistics.median(v) for k, v in rates.items()}
        item = {k: statistics.median(v) for k, v in item_s.items()}
        rows.append({
            "case": f"loading, {split} split ({workers} workers)", "split": split,
            "ours_clips_per_s": rate["ours"], "baseline_clips_per_s": rate["baseline"],
            "speedup": ratio(1 / rate["baseline"], 1 / rate["ours"]),
            "ours_item_s": item["ours"], "baseline_item_s": item["baseline"],
            "item_speedup": ratio(item["baseline"], item["ours"]),
            "targets": {"loader >= 2x": rate["ours"] >= 2 * rate["baseline"]},
        })
    ceiling = transfer_ceiling(cfg, workers=workers, batches=batches, repeats=repeats)
    return {"case": "loading", "rows": rows, "ready_clips_per_s": ceiling,
            "targets": {f"{r['split']}: loader >= 2x": r["targets"]["loader >= 2x"]
                        for r in rows}}
