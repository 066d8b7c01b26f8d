"""Metrics as pure functions over arrays."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

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


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, class_num: int) -> np.ndarray:
    """Count (true class, predicted class) pairs.

    Args:
        pred: (N,) predicted class indices.
        labels: (N,) ground-truth class indices.
        class_num: C, the number of classes.

    Returns:
        (C, C) int64; rows are the true class, columns the predicted class.

    Raises:
        ValueError: the two arrays differ in length, or an index lies outside [0, C).
    """
    pred = np.asarray(pred).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if class_num < 1:
        raise ValueError(f"class_num must be positive, got {class_num}")
    if pred.shape != labels.shape:
        raise ValueError(f"{len(pred)} predictions but {len(labels)} labels")
    for name, values in (("label", labels), ("prediction", pred)):
        # A label of C would otherwise be folded silently into the next row by bincount.
        bad = values[(values < 0) | (values >= class_num)]
        if len(bad):
            raise ValueError(f"{name} {bad[0]} is outside [0, {class_num}) "
                             f"({len(bad)} such values)")
    flat = labels.astype(np.int64) * class_num + pred.astype(np.int64)
    counts = np.bincount(flat, minlength=class_num * class_num)
    return counts.reshape(class_num, class_num).astype(np.int64)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """(C,) float64 percent of each class's samples predicted right; NaN for classes with none."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals * 100.0, np.nan)


def mean_class_accuracy(confusion: np.ndarray) -> float:
    """Mean of `per_class_accuracy` over the classes that have samples, in percent.

    Classes without a sample are left out rather than counted as 0 %: a test split that lacks
    a class says nothing about it. With no sample at all the result is 0.0 (like
    `topk_accuracy` on an empty set) so that it stays a number in printed and JSON summaries.
    """
    acc = per_class_accuracy(confusion)
    present = acc[~np.isnan(acc)]
    return float(present.mean()) if len(present) else 0.0


def per_class_mean(values: np.ndarray, labels: np.ndarray, class_num: int) -> np.ndarray:
    """Mean of `values` (N,) over the samples of each class (labels (N,)); (C,) float64, NaN
    for classes with no sample."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if values.shape != labels.shape:
        raise ValueError(f"{len(values)} values but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= class_num):
        raise ValueError(f"labels must lie in [0, {class_num})")
    sums = np.bincount(labels.astype(np.int64), weights=values, minlength=class_num)
    counts = np.bincount(labels.astype(np.int64), minlength=class_num)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def histogram(values: np.ndarray, *, bins: int = 20,
              value_range: Tuple[float, float] = (0.0, 1.0)) -> Dict[str, List[float]]:
    """Equal-width histogram as plain lists: {'edges': [bins + 1 floats], 'counts': [bins ints]}.

    The last bin includes its right edge (a gate of exactly 1.0 is counted); values outside
    `value_range` and NaNs are not counted, as in `np.histogram`.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    counts, edges = np.histogram(values[np.isfinite(values)], bins=bins, range=value_range)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _none_for_nan(values: np.ndarray) -> List[Optional[float]]:
    # JSON has no NaN; `json.dump` would write the non-standard token `NaN`.
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def evaluation_report(*, clip_probs: np.ndarray, clip_labels: np.ndarray,
                      video_probs: np.ndarray, video_labels: np.ndarray, class_num: int,
                      clip_gates: Optional[np.ndarray] = None,
                      video_gates: Optional[np.ndarray] = None,
                      class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Accuracy at clip and video level, per-class accuracy, the confusion matrix and the gate.

    Args:
        clip_probs: (N, C) class probabilities of each clip.
        clip_labels: (N,) ground truth of each clip.
        video_probs: (V, C) class probabilities of each video (clips averaged).
        video_labels: (V,) ground truth of each video.
        class_num: C.
        clip_gates: (N,) mean pose gate of each clip, if the model has a gate.
        video_gates: (V,) mean pose gate of each video; preferred for the per-class gate.
        class_names: C names; default the class indices as strings.

    Returns:
        A JSON-serialisable dict (plain floats, ints and lists; NaN written as None):
        'video_top1', 'video_top5', 'clip_top1', 'clip_top5' (percent), 'mean_class_accuracy'
        (percent, video level), 'per_class_accuracy' (C, None for classes without a video),
        'confusion_matrix' (C x C lists, rows true, columns predicted, video level),
        'class_names' (C), 'videos' (V), 'clips' (N) and, with gates, 'gate':
        {'mean' (over clips if given, else videos), 'per_class' (C, None for absent classes;
        over videos if given, else clips), 'histogram' (20 bins on [0, 1], clips if given,
        else videos)}.
    """
    clip_probs = np.asarray(clip_probs, dtype=np.float64).reshape(-1, class_num)
    video_probs = np.asarray(video_probs, dtype=np.float64).reshape(-1, class_num)
    clip_labels = np.asarray(clip_labels).reshape(-1)
    video_labels = np.asarray(video_labels).reshape(-1)
    if len(clip_labels) != len(clip_probs) or len(video_labels) != len(video_probs):
        raise ValueError(f"probabilities for {len(clip_probs)} clips / {len(video_probs)} "
                         f"videos but {len(clip_labels)} / {len(video_labels)} labels")
    names = _class_names(class_names, class_num)
    confusion = confusion_matrix(video_probs.argmax(axis=1), video_labels, class_num)
    report: Dict[str, Any] = {
        "video_top1": topk_accuracy(video_probs, video_labels, 1),
        "video_top5": topk_accuracy(video_probs, video_labels, 5),
        "clip_top1": topk_accuracy(clip_probs, clip_labels, 1),
        "clip_top5": topk_accuracy(clip_probs, clip_labels, 5),
        "mean_class_accuracy": mean_class_accuracy(confusion),
        "per_class_accuracy": _none_for_nan(per_class_accuracy(confusion)),
        "confusion_matrix": confusion.tolist(),
        "class_names": names,
        "videos": int(len(video_labels)),
        "clips": int(len(clip_labels)),
    }
    if clip_gates is not None or video_gates is not None:
        report["gate"] = _gate_report(clip_gates=clip_gates, clip_labels=clip_labels,
                                      video_gates=video_gates, video_labels=video_labels,
                                      class_num=class_num)
    return report


def _class_names(class_names: Optional[Sequence[str]], class_num: int) -> List[str]:
    """The C class names as strings; the class indices without names."""
    if class_names is None:
        return [str(i) for i in range(class_num)]
    names = [str(n) for n in class_names]
    if len(names) != class_num:
        raise ValueError(f"{len(names)} class names for {class_num} classes")
    return names


def _gate_report(*, clip_gates: Optional[np.ndarray], clip_labels: np.ndarray,
                 video_gates: Optional[np.ndarray], video_labels: np.ndarray,
                 class_num: int) -> Dict[str, Any]:
    """`evaluation_report`'s 'gate' entry (see there); one of the two gate arrays may be None."""
    if video_gates is not None:
        per_class = per_class_mean(video_gates, video_labels, class_num)
    else:
        per_class = per_class_mean(clip_gates, clip_labels, class_num)
    # The clip mean is what test.py's summary has always reported as `gate_mean`.
    spread = np.asarray(clip_gates if clip_gates is not None else video_gates,
                        dtype=np.float64).reshape(-1)
    return {
        "mean": float(spread.mean()) if len(spread) else None,
        "per_class": _none_for_nan(per_class),
        "histogram": histogram(spread, bins=20, value_range=(0.0, 1.0)),
    }


def format_report(report: Dict[str, Any]) -> List[str]:
    """At most four lines summarising `evaluation_report`'s dict, printed after the top-1/top-5
    lines: mean class accuracy, clip versus video accuracy, the (up to) three worst classes and,
    with a gate, its mean and per-class range."""
    names = report["class_names"]
    accs = report["per_class_accuracy"]
    present = [(a, i) for i, a in enumerate(accs) if a is not None]
    lines = [
        "Mean class accuracy: %.4f (%d classes with videos)"
        % (report["mean_class_accuracy"], len(present)),
        "Clip accuracy: top-1 %.4f, top-5 %.4f (%d clips); video: top-1 %.4f, top-5 %.4f "
        "(%d videos)" % (report["clip_top1"], report["clip_top5"], report["clips"],
                         report["video_top1"], report["video_top5"], report["videos"]),
    ]
    if present:
        # Ties go to the lower class index so the line is reproducible.
        worst = sorted(present)[:3]
        lines.append("Worst classes: " + ", ".join("%s %.1f" % (names[i], a) for a, i in worst))
    gate = report.get("gate")
    if gate is not None and gate["mean"] is not None:
        line = "Pose gate: mean %.3f" % gate["mean"]
        means = [(g, i) for i, g in enumerate(gate["per_class"]) if g is not None]
        if means:
            (low, i_low) = min(means)
            (high, i_high) = max(means, key=lambda m: m[0])  # first of equals, as min
            line += ", per class %.3f (%s) .. %.3f (%s)" % (low, names[i_low], high,
                                                            names[i_high])
        lines.append(line)
    return lines
