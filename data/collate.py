"""Batching dataset items of which some may be unusable (see `data.video_pose_dataset`)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch.utils.data import default_collate

from common.runtime.clip_pixels import video_as_float
from common.report.problems import Problem
from data.batch_pool import PooledVideo


def fills_rows(videos: Sequence[torch.Tensor], rows: torch.Tensor) -> bool:
    """Whether the clips are exactly `rows` `(B, ...)`, row k the k-th clip (written in place
    by `VideoPoseDataset.__getitems__`): then `rows` is their batch as it is."""
    if len(videos) != rows.shape[0]:
        return False
    return all(video.data_ptr() == row.data_ptr() and video.shape == row.shape
               and video.stride() == row.stride() and video.dtype == row.dtype
               for video, row in zip(videos, rows))


def collate_clips(items: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The DataLoader `collate_fn` of the video datasets.

    Args:
        items: dataset items; a usable one holds 'label' (and the other tensors of the
            item), an unusable one only 'video_id', 'clip_index' and 'problems'.
    Returns:
        `default_collate` of the usable items' tensor keys ('video' (B, T, 3, H, W): uint8
            when every clip of the batch came as bytes, float32 otherwise; the batch tensor the
            clips were written into when they fill it exactly (`fills_rows`), no copy;
        'pose_coords', 'pose_scores', 'label' (B,), 'video_id' (B,)), plus
        'problems': every item's `Problem`s, in item order (usable items' too: a zeroed pose
        is a problem of a kept clip), and
        'skipped': `[(video_id, clip_index), ...]` of the unusable items.
        When no item is usable the batch holds only 'problems' and 'skipped' (test for
        'label' before using it).
        Items of a `SlotBatch` with a slot (a loader with a `SharedBatchPool`) add
        'pool_slot', and their 'video' is a `PooledVideo` token when the clips fill the slot's
        rows (else a tensor): `SharedBatchPool.take` makes the batch the consumer sees.
    """
    slot, rows = getattr(items, "slot", None), getattr(items, "rows", None)
    usable = [item for item in items if "label" in item]
    problems: List[Problem] = [p for item in items for p in item["problems"]]
    skipped: List[Tuple[int, int]] = [(int(item["video_id"]), int(item["clip_index"]))
                                      for item in items if "label" not in item]
    batch: Dict[str, Any] = {}
    if usable:
        if len({item["video"].dtype for item in usable if "video" in item}) > 1:
            # Some clips came as bytes (`video_as_bytes`), some as float (a warp or a resize):
            # one batch tensor needs one dtype, and float is exact for both.
            usable = [dict(item, video=video_as_float(item["video"])) if "video" in item
                      else item for item in usable]
        keys = [key for key, value in usable[0].items() if isinstance(value, torch.Tensor)]
        whole: Any = None
        if ("video" in keys and rows is not None
                and fills_rows([item["video"] for item in usable], rows)):
            # Clips in the pool slot the main process named: it gets only the slot's number.
            whole = (PooledVideo(pool_key=items.pool_key, slot=int(slot), count=len(usable))
                     if items.in_slot else rows)
        if whole is not None:
            keys.remove("video")
        batch = default_collate([{key: item[key] for key in keys} for item in usable])
        if whole is not None:
            batch["video"] = whole
    if slot is not None:
        batch["pool_slot"] = int(slot)
    batch["problems"] = problems
    batch["skipped"] = skipped
    return batch
