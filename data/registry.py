"""Data set name -> loader class (a plain dict: no exec, no string-built imports)."""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, Optional, Type

from common.errors import UsageError
from data.Kinetics.Kinetics import Kinetics
from data.Mimetics.Mimetics import Mimetics
from data.NTU.NTU import NTU
from data.Skeleton.Skeleton import Skeleton
from data.NTU.NTU120 import NTU120
from data.shards.dataset import ShardVideos
from data.shards.store import ShardStore
from data.video_pose_dataset import LoadingOptions, VideoPoseDataset

DATASETS: Dict[str, Type[VideoPoseDataset]] = {
    "Kinetics": Kinetics,
    "Mimetics": Mimetics,
    "NTU": NTU,
    "Skeleton": Skeleton,
    "NTU120": NTU120,
}


def build_dataset(cfg: Any, name: str, split: str, *,
                  loading: Optional[LoadingOptions] = None) -> VideoPoseDataset:
    """The `name` data set's `split` ('train' or 'test'), configured by `cfg`, its items made
    as `loading` says (None: the defaults, `LoadingOptions()`); read from the shard set
    `cfg.shards` when it is set (`data.shards.dataset.ShardVideos`).

    Raises:
        UsageError: an unknown data set name (or Mimetics for training).
        DataError: a data set that cannot be used at all (one line naming the file).
    """
    try:
        cls = DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None
    if cfg.get("shards"):  # the same items, packed by tool/make_shards.py
        store = ShardStore(cfg.shards, cache_dir=cfg.shard_cache or osp.join(
            cfg.output_dir, "shard_cache"))
        return ShardVideos(cfg, split, store=store, loader=cls, loading=loading)
    return cls(cfg, split, loading=loading)
