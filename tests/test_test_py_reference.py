"""main/test.py on data sets written the way real releases are (tests/reference_fixtures: COCO
files with the 'person' category, NTU folders `nturgb+d_rgb_s{setup_idx}`): every video is
evaluated with the data set's own class count, and an unreadable frame is reported, not fatal."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from common.train.checkpoint import save_snapshot, snapshot_path
from common.train.engine import evaluate, predict
from common.model import build_model
from data.collate import collate_clips
from data.registry import build_dataset
from main import test as test_entry
from main.config import build_config

FIXTURES = osp.join(osp.dirname(osp.abspath(__file__)), "reference_fixtures")
VIDEOS = 3
SHAPES = {"frame_per_seg": 2, "frame_interval": 8, "input_img_shape": (48, 48),
          "input_hm_shape": (12, 12), "test_infer_num": 2, "num_thread": 0,
          "progress_bar": False, "pretrained": "none"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference_test_py")
    for script, target in (("kinetics_fixture.py", out), ("ntu_fixture.py", out / "NTU" / "data")):
        subprocess.run([sys.executable, osp.join(FIXTURES, script), str(target), "--videos",
                        str(VIDEOS), "--seed", "1"], check=True, capture_output=True)
    return out


def make_snapshot(root, out, dataset, **extra):
    """A rgb+pose snapshot trained (here: initialised) for `dataset`; returns the probabilities
    the same model gives in this process, through the same loader."""
    cfg = build_config({"mode": "rgb+pose", "dataset": dataset, "data_dir": str(root),
                        "output_dir": str(out), **SHAPES, **extra})
    data = build_dataset(cfg, dataset, "test")
    torch.manual_seed(0)
    model = build_model(cfg, data.class_num, data.joint_set.limbs, data.joint_set.joint_num)
    model.init_weights("none")
    with torch.no_grad():
        model.classifier.fc[0].weight.normal_(0, 3.0)
    save_snapshot(snapshot_path(cfg.model_dir, 5), model, None, 5, "rgb+pose", config=cfg)
    expected = evaluate(predict(model, DataLoader(data, batch_size=4, collate_fn=collate_clips),
                                torch.device("cpu"), progress=False))
    return data.class_num, expected


def run_test(root, out, dataset, *extra):
    return test_entry.main(["--mode", "rgb+pose", "--test_epoch", "5", "--dataset", dataset,
                            "--data_dir", str(root), "--output_dir", str(out), "--num_thread",
                            "0", "--progress_bar", "false", "--test_infer_num", "2",
                            "--gpu", "cpu", *extra])  # as the expected values (no TF32 on a GPU)


@pytest.mark.parametrize("dataset, trained_on, classes, video_shape", [
    ("Kinetics", "Kinetics", 50, (64,)), ("Mimetics", "Kinetics", 50, (64,)),
    ("NTU", "NTU", 60, (60, 80))])
def test_every_video_evaluated_with_the_data_sets_class_count(root, tmp_path, capsys, dataset,
                                                               trained_on, classes, video_shape):
    out = tmp_path / "out"
    class_num, expected = make_snapshot(root, out, trained_on, video_shape=video_shape)
    assert class_num == classes  # not the file's one 'person' category
    summary = run_test(root, out, dataset)
    printed = capsys.readouterr().out
    assert summary["videos"] == summary["annotated"] == VIDEOS
    assert f"Evaluated {VIDEOS} of {VIDEOS} annotated videos; left out: none" in printed
    result = json.load(open(osp.join(out, "result", f"{dataset.lower()}_result.json")))
    assert len(result) == VIDEOS and all(len(p) == classes for p in result.values())
    if dataset == trained_on:
        for video_id, probs in zip(expected["video_ids"], expected["probs"]):
            np.testing.assert_allclose(result[str(int(video_id))], probs, atol=1e-6)


def test_an_unreadable_frame_leaves_its_video_out_and_strict_stops(root, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(root / "Kinetics", data / "Kinetics")
    out = tmp_path / "out"
    make_snapshot(data, out, "Kinetics", video_shape=(64,))
    frame_dirs = sorted({osp.dirname(p) for p in
                         (osp.join(d, f) for d, _, files in os.walk(data / "Kinetics" / "data" /
                                                                    "frames" / "val_256")
                          for f in files)})
    broken = osp.join(frame_dirs[0], "000001.jpg")  # the first test clip's first frame
    with open(broken, "wb") as f:
        f.write(b"\xff\xd8 not really a JPEG")
    summary = run_test(data, out, "Kinetics")
    printed = capsys.readouterr()
    assert summary["videos"] == VIDEOS - 1 and summary["annotated"] == VIDEOS
    assert summary["data_problems"] == {"corrupt_frame (skipped)": 1}
    line = re.search(r"^Evaluated .*$", printed.out, re.M).group(0)
    assert line == (f"Evaluated {VIDEOS - 1} of {VIDEOS} annotated videos; left out: unreadable "
                    "clips: 1 (corrupt_frame (skipped): 1)")
    assert f"data problem: {broken}" in printed.out  # the warning names the file
    with pytest.raises(SystemExit) as exc:
        run_test(data, out, "Kinetics", "--strict")
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {broken}") and "--strict" in err


def test_workers_writing_into_reused_batch_slots_give_the_same_probabilities(root, tmp_path):
    # test.py on the CPU with workers: the clips come through the loader's reused
    # shared-memory slots (data/batch_pool.py); the result equals the main process alone.
    out = tmp_path / "out"
    make_snapshot(root, out, "Kinetics", video_shape=(64,))
    path = osp.join(out, "result", "kinetics_result.json")
    run_test(root, out, "Kinetics")
    alone = json.load(open(path))
    run_test(root, out, "Kinetics", "--num_thread", "2")
    assert json.load(open(path)) == alone
    log = open(osp.join(out, "log", "test_rgb_pose.txt")).read()
    assert "workers write the clips into 6 reused shared-memory batch slots" in log
