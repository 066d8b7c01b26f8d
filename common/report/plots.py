"""Evaluation figures: the confusion matrix and the pose gate, written as PNG files.

matplotlib is imported inside the functions, so importing this module stays cheap. The
figures are built with `matplotlib.figure.Figure` on an Agg canvas rather than through pyplot:
that needs no display, leaves the caller's pyplot backend and open figures alone, and keeps
no global figure registry to close.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from common.io.atomic_file import atomic_write
from common.report.metrics import per_class_mean

DPI = 120
# Above these many classes, tick labels would overlap (confusion) or bars would not fit (gate).
MAX_TICK_LABELS = 60
MAX_CELL_NUMBERS = 20
MAX_GATE_BARS = 40


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Any, path: str) -> str:
    # Written aside and renamed: an interrupted run never leaves a truncated PNG under the name.
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI)
    return path


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], path: str, *,
                          title: str, normalize: bool = True) -> str:
    """Draw a confusion matrix with a colorbar and save it as a PNG.

    Args:
        confusion: (C, C) counts; rows are the true class, columns the predicted class.
        class_names: C names for the axes. Above 60 classes no tick labels are drawn (the axis
            label says so); numbers are written in the cells only up to 20 classes.
        path: PNG file to write; its folder is created.
        title: figure title.
        normalize: divide each row by its total, so a cell is the fraction of the true class
            predicted as the column's class (rows with no sample stay 0).

    Returns:
        `path`.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be (C, C), got {confusion.shape}")
    class_num = confusion.shape[0]
    if len(class_names) != class_num:
        raise ValueError(f"{len(class_names)} class names for {class_num} classes")
    if normalize:
        totals = confusion.sum(axis=1, keepdims=True)
        shown = np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)
        vmax = 1.0
    else:
        shown = confusion
        vmax = max(float(confusion.max()), 1.0)
    with_ticks = class_num <= MAX_TICK_LABELS
    # ~0.2 inch per class keeps small matrices readable; the cap bounds the file for large C.
    side = float(np.clip(3.0 + 0.2 * class_num, 5.0, 14.0)) if with_ticks else 10.0
    fig = _new_figure(side + 1.5, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest",
                      aspect="equal")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of the true class" if normalize else "videos")
    _label_confusion_axes(ax, class_names, with_ticks=with_ticks)
    if class_num <= MAX_CELL_NUMBERS:
        for (row, col), value in np.ndenumerate(shown):
            text = "%.2f" % value if normalize else "%d" % value
            ax.text(col, row, text, ha="center", va="center", fontsize=8,
                    color="white" if value > 0.5 * vmax else "black")
    ax.set_title(title + (" (row-normalised)" if normalize else ""))
    fig.tight_layout()
    return _save_figure(fig, path)


def _label_confusion_axes(ax: Any, class_names: Sequence[str], *, with_ticks: bool) -> None:
    """The confusion matrix's axis labels: a tick per class named, or only the class count."""
    class_num = len(class_names)
    if not with_ticks:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"Predicted class ({class_num} classes, labels omitted)")
        ax.set_ylabel(f"True class ({class_num} classes, labels omitted)")
        return
    fontsize = float(np.clip(360.0 / class_num, 5.0, 10.0))
    ticks = np.arange(class_num)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels([str(n) for n in class_names], rotation=90, fontsize=fontsize)
    ax.set_yticklabels([str(n) for n in class_names], fontsize=fontsize)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")


def plot_gate(gates: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: str, *,
              title: str) -> str:
    """Draw the pose gate: its histogram on [0, 1] and its mean per class, in one PNG.

    Args:
        gates: (N,) gate value of each clip (or video).
        labels: (N,) class of each.
        class_names: C names; classes without a sample get no bar.
        path: PNG file to write; its folder is created.
        title: figure title.

    Returns:
        `path`. Bars are sorted by value, lowest at the top; with more than 40 classes only the
        20 lowest and the 20 highest are drawn, split by a dashed line.
    """
    from matplotlib.ticker import MaxNLocator

    gates = np.asarray(gates, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    class_num = len(class_names)
    means = per_class_mean(gates, labels, class_num)
    present = np.flatnonzero(~np.isnan(means))
    order = present[np.argsort(means[present], kind="stable")]
    half = MAX_GATE_BARS // 2
    truncated = len(order) > MAX_GATE_BARS
    shown = np.concatenate([order[:half], order[-half:]]) if truncated else order

    height = float(np.clip(1.5 + 0.22 * len(shown), 4.0, 11.0))
    fig = _new_figure(12.0, height)
    hist_ax = fig.add_subplot(1, 2, 1)
    finite = gates[np.isfinite(gates)]
    hist_ax.hist(finite, bins=20, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    hist_ax.set_xlim(0.0, 1.0)
    hist_ax.set_xlabel("gate value")
    hist_ax.set_ylabel("count")
    hist_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    mean_text = "mean %.3f" % finite.mean() if len(finite) else "no values"
    hist_ax.set_title(f"{len(finite)} values, {mean_text}")

    bar_ax = fig.add_subplot(1, 2, 2)
    if len(shown):
        rows = np.arange(len(shown))
        bar_ax.barh(rows, means[shown], color="tab:orange")
        bar_ax.set_yticks(rows)
        bar_ax.set_yticklabels([str(class_names[i]) for i in shown],
                               fontsize=float(np.clip(240.0 / len(shown), 6.0, 10.0)))
        bar_ax.invert_yaxis()
        if truncated:
            bar_ax.axhline(half - 0.5, color="gray", linestyle="--", linewidth=1)
        bar_ax.set_title(f"mean gate per class ({half} lowest and {half} highest of "
                         f"{len(order)})" if truncated else "mean gate per class")
    else:
        bar_ax.text(0.5, 0.5, "no class has a sample", ha="center", va="center",
                    transform=bar_ax.transAxes)
        bar_ax.set_title("mean gate per class")
    bar_ax.set_xlim(0.0, 1.0)
    bar_ax.set_xlabel("mean gate")
    fig.suptitle(title)
    fig.tight_layout()
    return _save_figure(fig, path)


def write_report_files(report: Dict[str, Any], *, clip_gates: Optional[np.ndarray],
                       clip_labels: Optional[np.ndarray], result_dir: str, vis_dir: str,
                       prefix: str) -> Dict[str, str]:
    """Write the confusion matrix (JSON and PNG) and, with gates, the gate figure.

    Args:
        report: `common.report.metrics.evaluation_report`'s dict ('confusion_matrix', 'class_names').
        clip_gates: (N,) gate of each clip, or None for a model without a gate.
        clip_labels: (N,) class of each clip; needed with `clip_gates`.
        result_dir: folder of `<prefix>_confusion.json`.
        vis_dir: folder of `<prefix>_confusion.png` and `<prefix>_gate.png`.
        prefix: file name prefix, e.g. the dataset name.

    Returns:
        {'confusion_json': path, 'confusion_png': path} and 'gate_png' when it was written.
    """
    if clip_gates is not None and clip_labels is None:
        raise ValueError("clip_gates given without clip_labels")
    confusion: List[List[int]] = report["confusion_matrix"]
    names: List[str] = report["class_names"]

    os.makedirs(result_dir, exist_ok=True)
    json_path = osp.join(result_dir, f"{prefix}_confusion.json")
    with atomic_write(json_path) as f:
        json.dump({"class_names": names, "rows_true_cols_pred": confusion}, f)

    paths = {
        "confusion_json": json_path,
        "confusion_png": plot_confusion_matrix(
            np.asarray(confusion), names, osp.join(vis_dir, f"{prefix}_confusion.png"),
            title=f"{prefix}: confusion matrix ({report.get('videos', '?')} videos)"),
    }
    if clip_gates is not None:
        paths["gate_png"] = plot_gate(clip_gates, clip_labels, names,
                                      osp.join(vis_dir, f"{prefix}_gate.png"),
                                      title=f"{prefix}: pose gate over clips")
    return paths
