"""The three-stage workflow through the real command lines on a tiny Kinetics-format data set."""
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

from tests.fixtures_data import write_kinetics, write_mimetics

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run(args, cwd=ROOT, ok=True):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    info = write_kinetics(str(root), num_classes=3, videos_per_class=2, frame_num=12,
                          frame_size=(32, 48), subset="Tiny")
    write_mimetics(str(root), num_classes=3, videos_per_class=1, frame_num=12,
                   frame_size=(32, 48), subset="Tiny")
    out = root / "out"
    common = ["--data_dir", str(root), "--output_dir", str(out), "--subset", "Tiny",
              "--frame_per_seg", "2", "--frame_interval", "2", "--video_shape", "32",
              "--input_img_shape", "32,32", "--input_hm_shape", "8,8", "--train_batch_size", "2",
              "--test_batch_size", "4", "--pretrained", "none", "--num_thread", "0",
              "--test_infer_num", "2", "--progress_bar", "false", "--seed", "0"]
    return root, out, common, info


def test_three_stages_merge_and_test(workspace):
    root, out, common, info = workspace
    dump = out / "model_dump"
    train = osp.join(ROOT, "main", "train.py")

    # Stage 1: rgb_only, then --continue one more epoch (epoch and optimizer restored).
    run([train, "--mode", "rgb_only", "--end_epoch", "2", *common])
    assert sorted(os.listdir(dump)) == ["snapshot_0.pth.tar", "snapshot_1.pth.tar"]
    first = torch.load(dump / "snapshot_1.pth.tar", weights_only=True)
    proc = run([train, "--mode", "rgb_only", "--end_epoch", "3", "--continue", *common])
    log = open(out / "log" / "train_rgb_only.txt").read()
    assert "resuming from" in log and "snapshot_1.pth.tar (epoch 1)" in log
    assert "optimizer state restored" in log
    resumed = torch.load(dump / "snapshot_2.pth.tar", weights_only=True)
    assert resumed["epoch"] == 2 and resumed["mode"] == "rgb_only"
    assert resumed["optimizer"]["state"] and first["optimizer"]["state"]
    shutil.copy(dump / "snapshot_2.pth.tar", root / "snapshot_29_rgb_only.pth.tar")

    # rgb+pose before the merge: refused, not trained on a random pose stream.
    proc = run([train, "--mode", "rgb+pose", "--end_epoch", "2", *common], ok=False)
    assert proc.returncode != 0 and "not 'rgb+pose'" in proc.stdout + proc.stderr

    # Stage 2: pose_only in the same folder would overwrite rgb_only's snapshot_0..1: refused in
    # one line (the original silently overwrote them) ...
    before = open(dump / "snapshot_0.pth.tar", "rb").read()
    proc = run([train, "--mode", "pose_only", "--end_epoch", "2", *common], ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "snapshot_0..snapshot_1" in proc.stderr and "stage rgb_only" in proc.stderr
    assert "--overwrite" in proc.stderr and "--output_dir" in proc.stderr
    assert open(dump / "snapshot_0.pth.tar", "rb").read() == before
    # ... and done on purpose with --overwrite, run from inside main/ like the original.
    run(["train.py", "--mode", "pose_only", "--end_epoch", "2", "--overwrite", *common],
        cwd=osp.join(ROOT, "main"))
    shutil.copy(dump / "snapshot_1.pth.tar", root / "snapshot_29_pose_only.pth.tar")

    # Merge with the original's default file names, from the folder holding them.
    run([osp.join(ROOT, "tool", "merge_rgb_only_pose_only.py")], cwd=str(root))
    shutil.move(str(root / "snapshot_0.pth.tar"), dump / "snapshot_0.pth.tar")

    # Stage 3: rgb+pose --continue picks the merged snapshot_0, although snapshot_1 (pose_only)
    # and snapshot_2 (rgb_only) have higher numbers.
    run([train, "--mode", "rgb+pose", "--end_epoch", "3", "--continue", "--overwrite", *common])
    log = open(out / "log" / "train_rgb_pose.txt").read()
    assert "starts from merged snapshot" in log and "snapshot_0.pth.tar" in log
    assert "trainable modules: aggregator, classifier" in log
    fused = torch.load(dump / "snapshot_2.pth.tar", weights_only=True)
    rgb = torch.load(root / "snapshot_29_rgb_only.pth.tar", weights_only=True)
    pose = torch.load(root / "snapshot_29_pose_only.pth.tar", weights_only=True)
    assert fused["mode"] == "rgb+pose" and fused["epoch"] == 2
    key = "module.img_backbone.layer2.0.conv1.weight"
    assert torch.equal(fused["network"][key], rgb["network"][key])  # frozen stream unchanged
    key = "module.pose2feat.conv.0.weight"
    assert torch.equal(fused["network"][key], pose["network"][key])

    # Test in and out of context.
    test = osp.join(ROOT, "main", "test.py")
    for dataset, n_videos in (("Kinetics", 6), ("Mimetics", 3)):
        proc = run([test, "--mode", "rgb+pose", "--test_epoch", "2", "--dataset", dataset, *common])
        lines = proc.stdout.splitlines()
        assert "Evaluation start..." in lines
        top1 = float(re.search(r"^Top-1 accuracy: (\d+\.\d{4})$", proc.stdout, re.M).group(1))
        top5 = float(re.search(r"^Top-5 accuracy: (\d+\.\d{4})$", proc.stdout, re.M).group(1))
        path = re.search(r"^Result is saved at: (.+)$", proc.stdout, re.M).group(1)
        assert path == str(out / "result" / f"{dataset.lower()}_result.json")
        result = json.load(open(path))
        assert len(result) == n_videos
        probs = np.array(list(result.values()))
        assert probs.shape == (n_videos, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
        if dataset == "Kinetics":
            labels = {str(v["id"]): v["label"] for v in info["val"]}
            correct = [int(np.argmax(p)) == labels[k] for k, p in result.items()]
            assert top1 == pytest.approx(100 * np.mean(correct), abs=1e-3)
            assert top5 == 100.0  # 3 classes: always in the top 5

    # A snapshot of one stage tested in another mode is refused.
    proc = run([test, "--mode", "pose_only", "--test_epoch", "2", *common], ok=False)
    assert proc.returncode != 0 and "trained in mode 'rgb+pose'" in proc.stdout + proc.stderr
