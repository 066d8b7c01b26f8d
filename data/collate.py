"""Batching dataset items of which some may be unusable (see `data.video_pose_dataset`)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch.utils.data import default_collate

from common.clip_pixels import video_as_float
from common.problems import Problem


def collate_clips(items: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The DataLoader `collate_fn` of the video datasets.

    Args:
        items: dataset items; a usable one holds 'label' (and the other tensors of the
            item), an unusable one only 'video_id', 'clip_index' and 'problems'.
    Returns:
        `default_collate` of the usable items' tensor keys ('video' (B, T, 3, H, W): uint8
            when every clip of the batch came as bytes, float32 otherwise;
        'pose_coords', 'pose_scores', 'label' (B,), 'video_id' (B,)), plus
        'problems': every item's `Problem`s, in item order (usable items' too: a zeroed pose
        is a problem of a kept clip), and
        'skipped': `[(video_id, clip_index), ...]` of the unusable items.
        When no item is usable the batch holds only 'problems' and 'skipped' (test for
        'label' before using it).
    """
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
        batch = default_collate([{key: item[key] for key in keys} for item in usable])
    batch["problems"] = problems
    batch["skipped"] = skipped
    return batch
