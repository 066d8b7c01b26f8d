"""Pack the videos of a loaded split into tar shards (the layout of `data.shards.layout`).

`write_shards` walks the loader's `records` in order; a shard is closed once it holds
`shard_bytes` bytes or `shard_samples` samples. Frames are stored as the bytes of their files
(no re-encoding: the same pixels), all `frame_num` of each video, so that any clip sampling
(train's random starts, any `test_infer_num`) finds its frames. The index is written last: a
folder without one is an interrupted packing.
"""
from __future__ import annotations

import io
import json
import logging
import os
import os.path as osp
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from common.errors import DataError, OutputError
from data.shards.layout import (INDEX_NAME, SHARD_NAME, ShardIndex, frame_member, meta_member,
                                poses_member, sample_key)
from data.shards.poses import pose_table
from data.shards.store import is_url, url_filesystem
from data.sources.jpeg_folder import JpegFolder, frame_path
from data.sources.locate import find_video_file

logger = logging.getLogger("integral_action.data")


@dataclass(frozen=True)
class PackSummary:
    """What `write_shards` wrote: samples, shards, bytes, seconds, frames; and the source's
    frame bytes (`source_bytes`, the JPEG files read)."""

    samples: int
    shards: int
    bytes: int
    seconds: float
    frames: int
    source_bytes: int

    def line(self, out: str) -> str:
        return (f"{self.samples} videos, {self.frames} frames in {self.shards} shard(s), "
                f"{self.bytes / 2**20:.1f} MiB (source frames {self.source_bytes / 2**20:.1f} "
                f"MiB) in {self.seconds:.1f} s, {self.samples / max(self.seconds, 1e-9):.1f} "
                f"videos/s -> {out}")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """One member with fixed metadata (the same input gives the same tar bytes)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _sample_members(dataset: Any, record: Dict[str, Any], key: str
                    ) -> Tuple[List[Tuple[str, bytes]], Dict[str, Any]]:
    """The members of one video and its index entry."""
    pose_path = record[dataset.pose_key]
    entry = {k: record[k] for k in ("video_id", "label", "frame_num", "height", "width",
                                    "frame_dir")}
    entry["pose_path"] = pose_path
    members: List[Tuple[str, bytes]] = []
    try:
        poses: Optional[bytes] = pose_table(dataset, record).to_bytes()
        entry["pose_error"] = None
    except DataError as err:  # kept: each clip of it reports this, as from the folder
        poses, entry["pose_error"] = None, str(err)
    missing = _read_frames(record, key, members)
    if len(missing) == record["frame_num"]:
        # A folder with no frame at all is not a few damaged frames: the set is not the one
        # the annotations describe (frames never extracted, or a wrong --data_dir).
        raise DataError(f"{record['frame_dir']}: none of the video's {record['frame_num']} "
                        "frames is there (no JPEG frame file); extract its frames or remove "
                        "it from the annotation file")
    entry["missing_frames"] = missing
    head = [(meta_member(key), json.dumps(entry, sort_keys=True).encode())]
    if poses is not None:
        head.append((poses_member(key), poses))
    return head + members, entry


def _read_frames(record: Dict[str, Any], key: str, members: List[Tuple[str, bytes]]
                 ) -> List[int]:
    """Append the video's frame files to `members`; returns the 0-based frames not there."""
    missing = []
    for k in range(record["frame_num"]):
        try:
            with open(frame_path(record["frame_dir"], k), "rb") as f:
                members.append((frame_member(key, k), f.read()))
        except FileNotFoundError:
            missing.append(k)
        except OSError as err:
            raise DataError(f"{frame_path(record['frame_dir'], k)}: cannot read "
                            f"({err.strerror or err}); fix it or remove it") from None
    return missing


def _index(dataset: Any, cfg: Any, split: str) -> ShardIndex:
    return ShardIndex(
        dataset=cfg.dataset, subset=str(cfg.subset), split=split, span=int(dataset.span),
        class_num=int(dataset.class_num), class_num_reason=dataset.class_num_reason,
        annotated=int(dataset.annotated), annotation_path=dataset.annotation_path,
        skipped=dict(dataset.skipped), class_names=dict(dataset.class_names),
        protocol=getattr(dataset, "protocol", None))


def write_shards(dataset: Any, cfg: Any, *, split: str, out: str, shard_bytes: int,
                 shard_samples: Optional[int] = None) -> PackSummary:
    """Pack `dataset`'s videos (a loader of `split`, built with `cfg`) into `out`, a folder or
    a URL fsspec can write (each shard is written locally, then uploaded).

    Raises:
        OutputError: `out` already holds a shard set, or cannot be written.
        DataError: the data set's frames are video files (shards hold JPEG frame files), a
            video of the annotations without any frame file, or a frame file that exists but
            cannot be read.
    """
    if not isinstance(dataset.frames, JpegFolder):
        first = dataset.records[0]["frame_dir"] if dataset.records else dataset.annotation_path
        raise DataError(f"{find_video_file(first) or first}: the frames of this {cfg.dataset} "
                        "set are video files, and shards hold JPEG frame files; extract the "
                        "frames with tool/video2image.py first, or train from the videos with "
                        "--frames_from video without shards")
    started = time.perf_counter()
    index = _index(dataset, cfg, split)
    remote = is_url(out)
    staging = tempfile.mkdtemp(prefix="shards-") if remote else out
    os.makedirs(staging, exist_ok=True)
    if not remote and osp.exists(osp.join(out, INDEX_NAME)):
        raise OutputError(f"{out}: already holds a shard set ({INDEX_NAME}); choose another "
                          "--out or remove it")
    tar: Optional[tarfile.TarFile] = None
    frames = source = 0
    try:
        for position, record in enumerate(dataset.records):
            current = index.shards[-1] if index.shards else None
            if current is None or current["bytes"] >= shard_bytes or (
                    shard_samples and current["samples"] >= shard_samples):
                if tar is not None:
                    _finish(tar, current, staging, out)
                current = {"name": SHARD_NAME % len(index.shards), "bytes": 0, "samples": 0}
                index.shards.append(current)
                tar = tarfile.open(osp.join(staging, current["name"]), "w",
                                   format=tarfile.USTAR_FORMAT)
            members, entry = _sample_members(dataset, record, sample_key(position))
            for name, data in members:
                _add(tar, name, data)
            frames += len(members) - 1 - (entry["pose_error"] is None)
            source += sum(len(d) for n, d in members if n.endswith(".jpg"))
            entry["shard"] = len(index.shards) - 1
            index.samples.append(entry)
            current["samples"] += 1
            current["bytes"] = tar.offset
        if tar is not None:
            _finish(tar, index.shards[-1], staging, out)
        _write_text(osp.join(staging, INDEX_NAME), index.to_json(), out)
    finally:
        if remote:
            shutil.rmtree(staging, ignore_errors=True)
    total = sum(s["bytes"] for s in index.shards)
    return PackSummary(len(index.samples), len(index.shards), total,
                       time.perf_counter() - started, frames, source)


def _finish(tar: tarfile.TarFile, shard: Dict[str, Any], staging: str, out: str) -> None:
    """Close a shard (its size as written) and upload it when `out` is a URL."""
    tar.close()
    path = osp.join(staging, shard["name"])
    shard["bytes"] = osp.getsize(path)
    if is_url(out):
        _upload(path, out, shard["name"])
        os.remove(path)


def _write_text(path: str, text: str, out: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    if is_url(out):
        _upload(path, out, osp.basename(path))


def _upload(path: str, out: str, name: str) -> None:
    fs, root = url_filesystem(out)
    try:
        fs.makedirs(root, exist_ok=True)
        fs.put_file(path, f"{root.rstrip('/')}/{name}")
    except OSError as err:
        raise OutputError(f"{out}: cannot write {name} ({err})") from None
