"""Case `video_loading`: clips/s of the loader reading encoded videos (`--frames_from video`,
data/sources/video_file.py) against the same loader reading JPEG folders (the baseline), on
the same clips, test and train split.

The videos are the benchmark data's frame folders encoded as H.264 .mp4 files, as Kinetics
clips come (libx264's defaults: CRF 23, a key frame every 250 frames at most, B-frames), each
where its folder would be, in a copy of the data set beside it (`<data_dir>_video`, made once).
Both sides go through the same DataLoader and item path; only the frame source differs. Also
measured: the frames' size on disk (the folders' JPEGs against the videos) and how far the
clips' pixels differ (H.264's loss on top of the JPEG frames it was encoded from).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import statistics
from typing import Any, Dict, List

import av
import numpy as np
import torch

from data.registry import build_dataset
from data.sources.jpeg_folder import load_frame_rgb8
from tool.benchmarks.data import benchmark_config
from tool.benchmarks.measure import measure_loader, ratio, time_items

# Mean |video clip - JPEG clip| (in 1/255) below which both sides made the same clip: H.264 at
# CRF 23 over the JPEGs' own loss, about 3 (a clip of other frames differs by far more).
SAME_CLIP_DIFF = 6
# Written last into the video copy: it is complete.
DONE_MARKER = "video_copy_done"


def encode_folder(frame_dir: str, path: str, *, rate: int = 30) -> None:
    """Encode a frame folder's JPEGs (in name order) into an H.264 `path` (libx264 defaults)."""
    names = sorted(n for n in os.listdir(frame_dir) if n.endswith(".jpg"))
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        first = load_frame_rgb8(osp.join(frame_dir, names[0]))
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        for name in names:
            image = load_frame_rgb8(osp.join(frame_dir, name))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def frame_folders(root: str) -> List[str]:
    """The folders under `root` that hold `000001.jpg`."""
    return sorted(base for base, _, files in os.walk(root) if "000001.jpg" in files)


def video_copy(data_dir: str) -> str:
    """`<data_dir>_video`: the data set with each Kinetics frame folder replaced by an .mp4
    of its frames (made on first use)."""
    out = data_dir.rstrip("/") + "_video"
    if osp.isfile(osp.join(out, DONE_MARKER)):
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(data_dir, out, ignore=shutil.ignore_patterns("*.jpg"))
    frames_root = osp.join(data_dir, "Kinetics", "data", "frames")
    for folder in frame_folders(frames_root):
        target = osp.join(out, osp.relpath(folder, data_dir))
        encode_folder(folder, target + ".mp4")
        os.rmdir(target)  # the copy's (emptied) folder: the video stands for it
    open(osp.join(out, DONE_MARKER), "w").close()
    return out


def disk_bytes(root: str, suffix: str) -> int:
    """Bytes of the files under `root` whose names end with `suffix`."""
    return sum(osp.getsize(osp.join(base, f)) for base, _, files in os.walk(root)
               for f in files if f.endswith(suffix))


def run(*, device: torch.device, repeats: int, smoke: bool, data_dir: str,
        workers: int) -> Dict[str, Any]:
    """Loading runs on the CPU wherever the model runs (`device` is not used)."""
    videos = video_copy(data_dir)
    cfg = {"video": benchmark_config(videos, smoke=smoke, mode="rgb+pose", frames_from="video"),
           "jpeg": benchmark_config(data_dir, smoke=smoke, mode="rgb+pose", frames_from="jpeg")}
    batches, items = (2, 4) if smoke else (40, 16)
    rows: List[Dict[str, Any]] = []
    for split in ("test", "train"):
        sets = {side: build_dataset(c, c.dataset, split) for side, c in cfg.items()}
        rates: Dict[str, List[float]] = {"video": [], "jpeg": []}
        item_s: Dict[str, List[float]] = {"video": [], "jpeg": []}
        for _ in range(repeats):  # alternately, so that both sides share the machine's load
            for side, dataset in sets.items():
                rates[side].append(measure_loader(dataset, workers=workers,
                                                  batches=batches).clips_per_s)
                item_s[side].append(time_items(dataset, items, 1))
        rate = {k: statistics.median(v) for k, v in rates.items()}
        item = {k: statistics.median(v) for k, v in item_s.items()}
        clip = {}
        for side, dataset in sets.items():
            torch.manual_seed(0)  # the same random crop on both sides (train)
            clip[side] = dataset[0]["video"].numpy()
        diff = float(np.abs(clip["video"] - clip["jpeg"]).mean() * 255)
        rows.append({
            "case": f"video files vs JPEG folders, {split} split ({workers} workers)",
            "split": split, "ours_clips_per_s": rate["video"],
            "baseline_clips_per_s": rate["jpeg"],
            "speedup": ratio(1 / rate["jpeg"], 1 / rate["video"]),
            "ours_item_s": item["video"], "baseline_item_s": item["jpeg"],
            "mean_abs_diff_255": diff,
            "targets": {f"same clips (mean diff < {SAME_CLIP_DIFF}/255)": diff < SAME_CLIP_DIFF},
        })
    jpeg_mib = disk_bytes(osp.join(data_dir, "Kinetics"), ".jpg") / 2**20
    video_mib = disk_bytes(osp.join(videos, "Kinetics"), ".mp4") / 2**20
    return {"case": "video_loading", "rows": rows, "jpeg_mib": jpeg_mib,
            "video_mib": video_mib, "targets": {r["split"]: r["targets"] for r in rows}}
