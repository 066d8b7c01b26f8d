"""Data problems during a run: counted by reason, warned about by file, fatal with --strict; the
loops pass over unusable clips, leave out videos with unreadable clips, and never score NaN."""
import logging

import numpy as np
import pytest
import torch

from common.train.engine import NonFiniteError, evaluate, predict
from common.train.epoch import LoopOptions, train_one_epoch
from common.errors import DataError
from common.report.problems import JOINTS_ZEROED, POSE_ZEROED, SKIPPED, Problem, ProblemTally
from common.model import IntegralAction
from data.joint_sets import OPENPOSE_18
from main.config import build_config


def test_tally_counts_by_reason_and_warns_naming_the_file(caplog):
    tally = ProblemTally(logger=logging.getLogger("integral_action.test_tally"), warn_limit=2)
    with caplog.at_level(logging.WARNING, logger="integral_action.test_tally"):
        tally.add([Problem("corrupt_frame", f"/d/v{i}/000001.jpg", "not a JPEG") for i in range(3)])
        tally.add([Problem("bad_pose_file", "/d/p.json", "line 1: bad", POSE_ZEROED)])
    assert tally.counts == {"corrupt_frame (skipped)": 3, "bad_pose_file (pose zeroed)": 1}
    assert tally.total == 4
    assert tally.summary() == "bad_pose_file (pose zeroed): 1, corrupt_frame (skipped): 3"
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "data problem: /d/v0/000001.jpg: not a JPEG (corrupt_frame, skipped)",
        "data problem: /d/v1/000001.jpg: not a JPEG (corrupt_frame, skipped); further ones are "
        "only counted",
        "data problem: /d/p.json: line 1: bad (bad_pose_file, pose zeroed)"]
    tally.reset()
    assert tally.counts == {} and tally.summary() == "none"


def test_strict_stops_at_a_lost_clip_or_pose_not_at_a_zeroed_joint():
    tally = ProblemTally(strict=True)
    tally.add([Problem("nonfinite_joint", "/d/k.json", "1 joint(s)", JOINTS_ZEROED)])
    assert tally.counts == {"nonfinite_joint (joints zeroed)": 1}
    for action in (SKIPPED, POSE_ZEROED):
        with pytest.raises(DataError, match=r"^/d/x\.jpg: gone \(missing_frame, .*--strict"):
            tally.add([Problem("missing_frame", "/d/x.jpg", "gone", action)])
    with pytest.raises(ValueError, match="action"):
        Problem("x", "/p", action="ignored")


def _model():
    torch.manual_seed(0)
    model = IntegralAction("pose_only", 3, OPENPOSE_18.limbs, 18, frame_per_seg=2,
                           input_hm_shape=(8, 8))
    model.init_weights("none")
    return model


def _batch(video_ids, labels):
    n = len(video_ids)
    torch.manual_seed(1)
    return {"pose_coords": torch.rand(n, 2, 1, 18, 2) * 8, "pose_scores": torch.ones(n, 2, 1, 18),
            "label": torch.tensor(labels), "video_id": torch.tensor(video_ids), "problems": [],
            "skipped": []}


def _unusable(video_id, path):
    return {"problems": [Problem("corrupt_frame", path, "not a JPEG")],
            "skipped": [(video_id, 1)]}


def test_predict_leaves_out_videos_with_unreadable_clips():
    batches = [_batch([1, 1, 2], [0, 0, 1]), _unusable(2, "/d/v2/000009.jpg"),
               _batch([3, 3], [2, 2])]
    tally = ProblemTally()
    predictions = predict(_model(), batches, torch.device("cpu"), progress=False, tally=tally)
    assert predictions["prob"].shape == (5, 3)
    assert predictions["skipped_video_id"].tolist() == [2]
    assert tally.counts == {"corrupt_frame (skipped)": 1}
    result = evaluate(predictions)
    assert result["video_ids"].tolist() == [1, 3] and result["left_out"].tolist() == [2]
    assert result["clips"] == 4


def test_nan_probabilities_are_refused_not_scored_as_class_0():
    model = _model()
    with torch.no_grad():
        model.classifier.fc[0].bias[1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"video id\(s\) \[1, 2\]"):
        predict(model, [_batch([1, 2], [0, 1])], torch.device("cpu"), progress=False)
    with pytest.raises(NonFiniteError):
        evaluate({"video_id": np.array([1]), "label": np.array([0]),
                  "prob": np.array([[np.nan, 0.5, 0.5]])})


def test_training_passes_over_unusable_batches_and_counts_them():
    model = _model()
    model.freeze_for_stage()
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.01)
    cfg = build_config({"mode": "pose_only", "progress_bar": False, "log_interval": 0})
    tally = ProblemTally()
    batches = [_unusable(5, "/d/v5/000003.jpg"), _batch([1, 2], [0, 1]),
               _unusable(6, "/d/v6/000001.jpg")]
    cpu = torch.device("cpu")
    stats = train_one_epoch(model, batches, optimizer, cfg, epoch=0,
                            options=LoopOptions.from_config(cfg, device=cpu, tally=tally))
    assert stats["iters"] == 1 and np.isfinite(stats["action_cls"])
    assert tally.counts == {"corrupt_frame (skipped)": 2}
    strict = ProblemTally(strict=True)
    with pytest.raises(DataError, match="v5/000003.jpg"):
        train_one_epoch(model, batches, optimizer, cfg, epoch=0,
                        options=LoopOptions.from_config(cfg, device=cpu, tally=strict))


def test_a_nan_loss_stops_training_naming_the_epoch():
    model = _model()
    with torch.no_grad():
        model.classifier.fc[0].bias[0] = float("inf")
    model.freeze_for_stage()
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.01)
    cfg = build_config({"mode": "pose_only", "progress_bar": False, "log_interval": 0})
    with pytest.raises(NonFiniteError, match="non-finite loss at epoch 3 iteration 0"):
        train_one_epoch(model, [_batch([1, 2], [0, 1])], optimizer, cfg, epoch=3,
                        options=LoopOptions.from_config(cfg, device=torch.device("cpu")))
