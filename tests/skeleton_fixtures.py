"""Small MMAction2/PYSKL skeleton annotation files in the exact schema (float16 arrays,
keypoint (M, T, 17, 2), keypoint_score (M, T, 17)) for the Skeleton tests."""
from __future__ import annotations

import pickle
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tests.fixtures_data import make_cfg

TINY = dict(frame_per_seg=2, frame_interval=2, video_shape=(32,), input_img_shape=(32, 32),
            input_hm_shape=(8, 8), top_k_pose=2, test_infer_num=2)


def make_entry(frame_dir: str, label: int, *, frames: int = 8, people: int = 2,
               img_hw: Tuple[int, int] = (64, 96), seed: int = 0,
               dtype: Any = np.float16) -> Dict[str, Any]:
    """An entry with random keypoints inside the frame and scores in [0.2, 1)."""
    rng = np.random.default_rng(seed)
    size = np.array([img_hw[1], img_hw[0]], dtype=np.float32)
    keypoint = (rng.random((people, frames, 17, 2)) * size).astype(dtype)
    score = (0.2 + 0.8 * rng.random((people, frames, 17))).astype(dtype)
    return {"frame_dir": frame_dir, "label": label, "img_shape": img_hw,
            "original_shape": img_hw, "total_frames": frames, "keypoint": keypoint,
            "keypoint_score": score}


def write_file(path: Any, annotations: List[Any],
               splits: Optional[Dict[str, Sequence[str]]] = None) -> str:
    """Pickle `{'split', 'annotations'}`; default split 'train': every entry's frame_dir."""
    if splits is None:
        splits = {"train": [a["frame_dir"] for a in annotations]}
    with open(path, "wb") as f:
        pickle.dump({"split": {k: list(v) for k, v in splits.items()},
                     "annotations": annotations}, f, protocol=4)
    return str(path)


def skeleton_cfg(tmp_path: Any, ann_file: str, split: str = "train", **overrides: Any) -> Any:
    """A tiny pose_only `--dataset Skeleton` config."""
    values = dict(TINY, dataset="Skeleton", ann_file=ann_file, split=split, mode="pose_only")
    values.update(overrides)
    return make_cfg(tmp_path, **values)
