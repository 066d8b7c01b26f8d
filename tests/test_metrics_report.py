"""Evaluation report: confusion matrix, per-class and clip-versus-video accuracy, the gate,
the printed lines and the figures, on hand-made arrays with hand-computed values."""
import json
import math
import os
import time

import matplotlib.image
import numpy as np
import pytest

from common.report.metrics import (average_clip_probs, confusion_matrix, evaluation_report,
                            format_report, histogram, mean_class_accuracy, per_class_accuracy,
                            per_class_mean)
from common.report.plots import plot_confusion_matrix, plot_gate, write_report_files

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["walk", "run", "jump", "sit", "wave", "clap"]

# 6 classes, 6 videos of 2 clips each; classes 4 and 5 have no video.
#                       0     1     2      3     4     5
CLIP_PROBS = np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1],       # v0 label 0: right
                       [0.7, 0.1, 0.05, 0.05, 0.05, 0.05],   #             right
                       [0.3, 0.4, 0.1, 0.1, 0.05, 0.05],     # v1 label 0: wrong, 0 is 2nd
                       [0.2, 0.5, 0.1, 0.1, 0.05, 0.05],     #             wrong, 0 is 2nd
                       [0.05, 0.8, 0.05, 0.05, 0.03, 0.02],  # v2 label 1: right
                       [0.4, 0.3, 0.1, 0.1, 0.05, 0.05],     #             wrong; video right
                       [0.1, 0.1, 0.6, 0.1, 0.05, 0.05],     # v3 label 2: right
                       [0.1, 0.1, 0.5, 0.2, 0.05, 0.05],     #             right
                       [0.2, 0.1, 0.4, 0.1, 0.1, 0.1],       # v4 label 2: right
                       [0.1, 0.1, 0.6, 0.1, 0.05, 0.05],     #             right
                       [0.1, 0.1, 0.1, 0.0, 0.6, 0.1],       # v5 label 3: wrong, 3 is last
                       [0.2, 0.1, 0.1, 0.01, 0.5, 0.09]])    #             wrong, 3 is last
CLIP_VIDEO_IDS = np.repeat(np.arange(6), 2)
CLIP_LABELS = np.repeat([0, 0, 1, 2, 2, 3], 2)
# Chosen off the 0.05-wide bin edges, and so that no printed mean ends on a rounding tie.
CLIP_GATES = np.array([0.12, 0.32, 0.52, 0.52, 0.22, 0.42, 0.92, 0.72, 0.62, 0.62, 0.97, 0.99])


def _report(**kwargs):
    _, video_probs, video_labels = average_clip_probs(CLIP_VIDEO_IDS, CLIP_PROBS, CLIP_LABELS)
    return evaluation_report(clip_probs=CLIP_PROBS, clip_labels=CLIP_LABELS,
                             video_probs=video_probs, video_labels=video_labels, class_num=6,
                             **kwargs)


def _assert_png(path, ndim=3):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == ndim and image.shape[0] > 50 and image.shape[1] > 50
    return image


def test_confusion_matrix_counts_and_errors():
    conf = confusion_matrix(np.array([0, 1, 1, 2, 0]), np.array([0, 0, 1, 2, 2]), 4)
    assert conf.dtype == np.int64
    assert conf.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert confusion_matrix(np.array([], int), np.array([], int), 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="label 4"):
        confusion_matrix(np.array([0, 1]), np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="label -1"):
        confusion_matrix(np.array([0, 1]), np.array([-1, 0]), 4)
    with pytest.raises(ValueError, match="prediction 5"):
        confusion_matrix(np.array([5, 1]), np.array([0, 0]), 4)
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        confusion_matrix(np.array([0, 1]), np.array([0, 0, 1]), 4)


def test_per_class_and_mean_class_accuracy():
    conf = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    acc = per_class_accuracy(conf)
    assert acc.dtype == np.float64
    assert np.allclose(acc[:3], [50.0, 100.0, 200.0 / 3]) and math.isnan(acc[3])
    # Mean over the three classes with samples, not four: (50 + 100 + 66.67) / 3.
    assert mean_class_accuracy(conf) == pytest.approx((50.0 + 100.0 + 200.0 / 3) / 3)
    assert mean_class_accuracy(np.zeros((3, 3), int)) == 0.0


def test_per_class_mean_and_histogram():
    means = per_class_mean(np.array([0.2, 0.4, 0.9, 0.1]), np.array([0, 0, 2, 2]), 4)
    assert np.allclose(means[[0, 2]], [0.3, 0.5])
    assert math.isnan(means[1]) and math.isnan(means[3])
    with pytest.raises(ValueError):
        per_class_mean(np.array([0.5]), np.array([4]), 4)

    hist = histogram(np.array([0.01, 0.02, 0.51, 0.99, 1.0, np.nan, 1.5]))
    assert len(hist["edges"]) == 21 and hist["edges"][0] == 0.0 and hist["edges"][-1] == 1.0
    # 1.0 falls in the last bin; NaN and 1.5 are not counted.
    assert hist["counts"] == [2] + [0] * 9 + [1] + [0] * 8 + [2]
    assert histogram(np.array([0.1, 0.6, 3.5]), bins=4, value_range=(0.0, 4.0)) == {
        "edges": [0.0, 1.0, 2.0, 3.0, 4.0], "counts": [2, 0, 0, 1]}


def test_evaluation_report_values():
    report = _report(class_names=NAMES)
    assert set(report) == {"video_top1", "video_top5", "clip_top1", "clip_top5",
                           "mean_class_accuracy", "per_class_accuracy", "confusion_matrix",
                           "class_names", "videos", "clips"}
    assert report["videos"] == 6 and report["clips"] == 12
    # Videos: v0, v2, v3, v4 right; v5's label is ranked last of 6 so top-5 misses it.
    assert report["video_top1"] == pytest.approx(400 / 6)
    assert report["video_top5"] == pytest.approx(500 / 6)
    # Clips: v2's second clip is wrong though its video is right, so clips score lower.
    assert report["clip_top1"] == pytest.approx(700 / 12)
    assert report["clip_top5"] == pytest.approx(1000 / 12)
    assert report["confusion_matrix"] == [[1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0],
                                          [0, 0, 2, 0, 0, 0], [0, 0, 0, 0, 1, 0],
                                          [0] * 6, [0] * 6]
    assert report["per_class_accuracy"] == [50.0, 100.0, 100.0, 0.0, None, None]
    assert report["mean_class_accuracy"] == 62.5  # (50 + 100 + 100 + 0) / 4, not / 6
    assert report["class_names"] == NAMES
    assert _report()["class_names"] == ["0", "1", "2", "3", "4", "5"]
    json.dumps(report, allow_nan=False)  # no NaN, no numpy scalars
    assert all(type(report[k]) is float for k in ("video_top1", "clip_top5",
                                                  "mean_class_accuracy"))
    with pytest.raises(ValueError, match="5 class names for 6 classes"):
        _report(class_names=NAMES[:5])


def test_evaluation_report_top5_with_fewer_than_five_classes():
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = np.array([2, 2])
    report = evaluation_report(clip_probs=probs, clip_labels=labels, video_probs=probs,
                               video_labels=labels, class_num=3)
    assert report["video_top1"] == 50.0 and report["video_top5"] == 100.0  # k clipped to 3


def test_evaluation_report_gate():
    report = _report(clip_gates=CLIP_GATES, class_names=NAMES)
    gate = report["gate"]
    assert set(gate) == {"mean", "per_class", "histogram"}
    assert gate["mean"] == pytest.approx(6.96 / 12)
    # Per class over clips: walk (.12 .32 .52 .52), run (.22 .42), jump (.92 .72 .62 .62), sit.
    assert gate["per_class"][:4] == pytest.approx([0.37, 0.32, 0.72, 0.98])
    assert gate["per_class"][4:] == [None, None]
    counts = [0] * 20
    for b, n in {2: 1, 4: 1, 6: 1, 8: 1, 10: 2, 12: 2, 14: 1, 18: 1, 19: 2}.items():
        counts[b] = n
    assert gate["histogram"]["counts"] == counts
    json.dumps(report, allow_nan=False)

    # Video gates, when given, decide the per-class means; the clip gates keep mean/histogram.
    video_gates = np.array([0.2, 0.4, 0.3, 0.8, 0.6, 1.0])
    both = _report(clip_gates=CLIP_GATES, video_gates=video_gates)["gate"]
    assert both["per_class"] == pytest.approx([0.3, 0.3, 0.7, 1.0, None, None])
    assert both["mean"] == gate["mean"] and both["histogram"] == gate["histogram"]
    only_video = _report(video_gates=video_gates)["gate"]
    assert only_video["mean"] == pytest.approx(3.3 / 6)
    assert sum(only_video["histogram"]["counts"]) == 6


def test_format_report_lines():
    lines = format_report(_report(clip_gates=CLIP_GATES, class_names=NAMES))
    assert lines == [
        "Mean class accuracy: 62.5000 (4 classes with videos)",
        "Clip accuracy: top-1 58.3333, top-5 83.3333 (12 clips); "
        "video: top-1 66.6667, top-5 83.3333 (6 videos)",
        # run and jump tie at 100 %; the lower index comes first.
        "Worst classes: sit 0.0, walk 50.0, run 100.0",
        "Pose gate: mean 0.580, per class 0.320 (run) .. 0.980 (sit)",
    ]
    assert len(format_report(_report())) == 3  # no gate line without a gate
    empty = evaluation_report(clip_probs=np.zeros((0, 3)), clip_labels=np.zeros(0, int),
                              video_probs=np.zeros((0, 3)), video_labels=np.zeros(0, int),
                              class_num=3)
    assert format_report(empty)[0] == "Mean class accuracy: 0.0000 (0 classes with videos)"
    assert len(format_report(empty)) == 2


def test_plot_confusion_matrix_small_and_large(tmp_path):
    small = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    path = plot_confusion_matrix(small, ["a", "b", "c"], str(tmp_path / "new" / "c3.png"),
                                 title="three")
    assert path == str(tmp_path / "new" / "c3.png")
    _assert_png(path)
    _assert_png(plot_confusion_matrix(small, ["a", "b", "c"], str(tmp_path / "c3_counts.png"),
                                      title="three", normalize=False))

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 400, size=4000)
    pred = np.where(rng.random(4000) < 0.7, labels, rng.integers(0, 400, size=4000))
    large = confusion_matrix(pred, labels, 400)
    start = time.perf_counter()
    _assert_png(plot_confusion_matrix(large, [f"class {i}" for i in range(400)],
                                      str(tmp_path / "c400.png"), title="kinetics-400"))
    assert time.perf_counter() - start < 5.0
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    with pytest.raises(ValueError):
        plot_confusion_matrix(small, ["a", "b"], str(tmp_path / "bad.png"), title="bad")


def test_plot_gate(tmp_path):
    _assert_png(plot_gate(CLIP_GATES, CLIP_LABELS, NAMES, str(tmp_path / "g" / "gate.png"),
                          title="gate"))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 100, size=1000)
    _assert_png(plot_gate(rng.random(1000), labels, [f"c{i}" for i in range(100)],
                          str(tmp_path / "gate100.png"), title="gate, 100 classes"))


def test_write_report_files(tmp_path):
    report = _report(clip_gates=CLIP_GATES, class_names=NAMES)
    paths = write_report_files(report, clip_gates=CLIP_GATES, clip_labels=CLIP_LABELS,
                               result_dir=str(tmp_path / "result"), vis_dir=str(tmp_path / "vis"),
                               prefix="kinetics")
    assert paths == {"confusion_json": str(tmp_path / "result" / "kinetics_confusion.json"),
                     "confusion_png": str(tmp_path / "vis" / "kinetics_confusion.png"),
                     "gate_png": str(tmp_path / "vis" / "kinetics_gate.png")}
    with open(paths["confusion_json"]) as f:
        saved = json.load(f)
    assert saved == {"class_names": NAMES, "rows_true_cols_pred": report["confusion_matrix"]}
    _assert_png(paths["confusion_png"])
    _assert_png(paths["gate_png"])

    no_gate = write_report_files(_report(), clip_gates=None, clip_labels=None,
                                 result_dir=str(tmp_path / "result"),
                                 vis_dir=str(tmp_path / "vis"), prefix="mimetics")
    assert set(no_gate) == {"confusion_json", "confusion_png"}
    with pytest.raises(ValueError, match="without clip_labels"):
        write_report_files(report, clip_gates=CLIP_GATES, clip_labels=None,
                           result_dir=str(tmp_path), vis_dir=str(tmp_path), prefix="x")
