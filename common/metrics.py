"""Metrics as pure functions over arrays."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np


def average_clip_probs(video_ids: Sequence[int], probs: np.ndarray, labels: Sequence[int]
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average the class probabilities of the clips of each video.

    Args:
        video_ids: (N,) id of the video each clip comes from.
        probs: (N, C) clip class probabilities.
        labels: (N,) ground-truth label of each clip (constant within a video).

    Returns:
        ids (V,) in order of first appearance, probs (V, C) averaged, labels (V,).
    """
    video_ids = np.asarray(video_ids)
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    ids, first, inverse = np.unique(video_ids, return_index=True, return_inverse=True)
    sums = np.zeros((len(ids), probs.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
    mean = sums / counts[:, None]
    order = np.argsort(first, kind="stable")
    return ids[order], mean[order], labels[first][order]


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label is among the k highest probabilities."""
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)) * 100.0)


def results_dict(ids: np.ndarray, probs: np.ndarray) -> Dict[str, list]:
    """`{video_id (as a string): [probabilities]}` as the original's result json."""
    return {str(int(i)): [float(p) for p in row] for i, row in zip(ids, probs)}
