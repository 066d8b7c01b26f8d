"""Data set name -> loader class (a plain dict: no exec, no string-built imports)."""
from __future__ import annotations

from typing import Any, Dict, Type

from data.Kinetics.Kinetics import Kinetics
from data.Mimetics.Mimetics import Mimetics
from data.NTU.NTU import NTU
from data.video_pose_dataset import VideoPoseDataset

DATASETS: Dict[str, Type[VideoPoseDataset]] = {
    "Kinetics": Kinetics,
    "Mimetics": Mimetics,
    "NTU": NTU,
}


def build_dataset(cfg: Any, name: str, split: str) -> VideoPoseDataset:
    """The `name` data set's `split` ('train' or 'test'), configured by `cfg`."""
    try:
        cls = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None
    return cls(cfg, split)
