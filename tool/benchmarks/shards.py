"""Case (opt-in, `--cases shards`): the benchmark data set packed into tar shards
(`data.shards.writer`), what that costs (seconds, bytes against the frame files), and the
training and test loaders' clips/s from the shards against the same loaders on the frame
folders (ours: shards; baseline: folder). Both give the same clips (tests/test_shards.py).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import statistics
import tempfile
from typing import Any, Dict, List

import torch

from data.registry import build_dataset
from data.shards.writer import write_shards
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import measure_loader

SHARD_BYTES = 64 * 2**20


def _folder_bytes(dataset: Any) -> int:
    """Bytes of the frame files of the split's videos."""
    return sum(osp.getsize(osp.join(r["frame_dir"], name)) for r in dataset.records
               for name in os.listdir(r["frame_dir"]))


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str,
        workers: int) -> Dict[str, Any]:
    """Loading runs on the CPU wherever the model runs (`device` is not used)."""
    cfg = benchmark_config(data_dir, smoke=smoke, mode="rgb+pose")
    batches = 2 if smoke else 40
    rows: List[Dict[str, Any]] = []
    packing: Dict[str, Any] = {}
    work = tempfile.mkdtemp(prefix="benchmark-shards-")
    try:
        for split in ("test", "train"):
            folder = build_dataset(cfg, cfg.dataset, split)
            out = osp.join(work, split)
            summary = write_shards(folder, cfg, split=split, out=out, shard_bytes=SHARD_BYTES)
            packing[split] = {"videos": summary.samples, "frames": summary.frames,
                              "shards": summary.shards, "shard_mib": summary.bytes / 2**20,
                              "frame_file_mib": _folder_bytes(folder) / 2**20,
                              "seconds": summary.seconds}
            shards = build_dataset(benchmark_config(data_dir, smoke=smoke, mode="rgb+pose",
                                                    shards=out), cfg.dataset, split)
            shards.prepare(range(summary.shards))
            rates: Dict[str, List[float]] = {"ours": [], "baseline": []}
            for _ in range(repeats):  # alternately, so that both share the machine's load
                for name, data in (("ours", shards), ("baseline", folder)):
                    rates[name].append(measure_loader(data, workers=workers,
                                                      batches=batches).clips_per_s)
            rate = {k: statistics.median(v) for k, v in rates.items()}
            rows.append({"case": f"shards, {split} split ({workers} workers)",
                         "ours_clips_per_s": rate["ours"],
                         "baseline_clips_per_s": rate["baseline"],
                         "speedup": rate["ours"] / rate["baseline"],
                         "targets": {"shards >= 0.9x folder":
                                     rate["ours"] >= 0.9 * rate["baseline"]}})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"case": "shards", "rows": rows, "packing": packing,
            "targets": {r["case"]: all(r["targets"].values()) for r in rows}}
