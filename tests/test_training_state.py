"""Exact resume (after an epoch and mid-epoch), seed repeatability, and what a snapshot records.

The runs go through `main/train.py`'s `main(argv)` in this process on a tiny Kinetics-format data
set; weights and optimizer states are compared bit for bit.
"""
import os
import os.path as osp
import re
import shutil

import pytest
import torch

from common.train import run as training_run
from main import train as train_entry
from tests.fixtures_data import write_kinetics


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("state")
    # 9 videos, batch 2: 4 iterations per epoch (the last, odd clip is dropped).
    write_kinetics(str(root), num_classes=3, videos_per_class=3, frame_num=12,
                   frame_size=(32, 48), subset="Tiny")
    return root


def args(root, out, *extra, workers=0):
    return ["--mode", "rgb_only", "--data_dir", str(root), "--output_dir", str(out),
            "--subset", "Tiny", "--frame_per_seg", "2", "--frame_interval", "2",
            "--video_shape", "32", "--input_img_shape", "32,32", "--input_hm_shape", "8,8",
            "--train_batch_size", "2", "--pretrained", "none", "--num_thread", str(workers),
            "--progress_bar", "false", "--lr", "0.05", *extra]


def load(out, name):
    return torch.load(osp.join(out, "model_dump", name), map_location="cpu", weights_only=True)


def assert_same_state(a, b):
    """Networks and optimizer states equal bit for bit."""
    assert a["epoch"] == b["epoch"]
    assert a["network"].keys() == b["network"].keys()
    for key in a["network"]:
        assert torch.equal(a["network"][key], b["network"][key]), key
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and sa
    for key in sa:
        assert torch.equal(sa[key]["momentum_buffer"], sb[key]["momentum_buffer"]), key


def iteration_losses(out):
    """The per-iteration losses the log file records (DEBUG lines)."""
    log = open(osp.join(out, "log", "train_rgb_only.txt")).read()
    return re.findall(r"epoch (\d+) itr (\d+)/\d+ lr \S+ action_cls (\S+)", log)


def test_continue_after_an_epoch_is_bit_identical(data_root, tmp_path):
    # Dropout, random crops and flips, and a step decay inside the run: all must line up. The
    # decay comes at epoch 1, inside the first part (a decay epoch past a run's end is refused),
    # so the continued part must take up the divided learning rate.
    extra = ("--seed", "5", "--lr_dec_epoch", "1", "--dropout", "0.5")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_entry.main(args(data_root, whole, "--end_epoch", "3", *extra))
    train_entry.main(args(data_root, parts, "--end_epoch", "2", *extra))
    train_entry.main(args(data_root, parts, "--end_epoch", "3", "--continue", *extra))
    assert_same_state(load(whole, "snapshot_2.pth.tar"), load(parts, "snapshot_2.pth.tar"))
    log = open(parts / "log" / "train_rgb_only.txt").read()
    assert "random generator states restored" in log


def test_workers_and_their_reused_batch_slots_train_as_the_main_process_alone(data_root,
                                                                              tmp_path):
    # With workers, train.py's loader writes the clips into reused shared-memory slots
    # (data/batch_pool.py); without, the main process reads them. The same run either way.
    extra = ("--seed", "2", "--end_epoch", "2", "--dropout", "0.5")
    alone, pooled = tmp_path / "alone", tmp_path / "pooled"
    train_entry.main(args(data_root, alone, *extra, workers=0))
    train_entry.main(args(data_root, pooled, *extra, workers=2))
    assert_same_state(load(alone, "snapshot_1.pth.tar"), load(pooled, "snapshot_1.pth.tar"))
    log = open(pooled / "log" / "train_rgb_only.txt").read()
    assert "loader: 2 workers write the clips into 6 reused shared-memory batch slots" in log
    assert "found every slot taken" not in log


def test_unseeded_run_resumes_exactly_with_workers(data_root, tmp_path):
    """No --seed: the run draws one and records it; DataLoader workers load the clips, and
    an item's augmentation does not depend on which worker loads it."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_entry.main(args(data_root, whole, "--end_epoch", "2", workers=2))
    seed = load(whole, "snapshot_1.pth.tar")["seed"]
    # The interrupted run: same seed (as if drawn), stopped after epoch 0, resumed without it.
    train_entry.main(args(data_root, parts, "--end_epoch", "1", "--seed", str(seed), workers=2))
    train_entry.main(args(data_root, parts, "--end_epoch", "2", "--continue", workers=2))
    assert_same_state(load(whole, "snapshot_1.pth.tar"), load(parts, "snapshot_1.pth.tar"))


def test_mid_epoch_snapshot_resumes_with_the_next_batch(data_root, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    # Keep every mid-epoch snapshot (the run deletes the superseded ones), to resume from one.
    monkeypatch.setattr(training_run, "remove_partial_snapshots", lambda *a, **k: [])
    train_entry.main(args(data_root, whole, "--end_epoch", "2", "--seed", "1",
                          "--save_every", "1"))
    dump = whole / "model_dump"
    names = sorted(os.listdir(dump))
    # 4 iterations per epoch: mid-epoch snapshots after iterations 1, 2, 3 of each epoch.
    assert names == ["snapshot_0.pth.tar", "snapshot_0_iter1.pth", "snapshot_0_iter2.pth",
                     "snapshot_0_iter3.pth", "snapshot_1.pth.tar", "snapshot_1_iter1.pth",
                     "snapshot_1_iter2.pth", "snapshot_1_iter3.pth"]
    partial = load(whole, "snapshot_1_iter2.pth")
    assert partial["epoch"] == 1 and partial["progress"]["iteration"] == 2

    # The run "died" after iteration 2 of epoch 1: only what was on disk then is left.
    parts = tmp_path / "parts"
    shutil.copytree(dump, parts / "model_dump")
    for name in ("snapshot_1.pth.tar", "snapshot_1_iter3.pth"):
        os.remove(parts / "model_dump" / name)
    monkeypatch.undo()
    train_entry.main(args(data_root, parts, "--end_epoch", "2", "--continue", "--save_every", "1"))
    assert_same_state(load(whole, "snapshot_1.pth.tar"), load(parts, "snapshot_1.pth.tar"))
    log = open(parts / "log" / "train_rgb_only.txt").read()
    assert "training continues at epoch 1 after 2 iterations" in log
    # The resumed run trained exactly the two batches left, and cleaned up the mid-epoch files.
    resumed = [(e, i) for e, i, _ in iteration_losses(parts)]
    assert resumed == [("1", "3"), ("1", "4")]
    assert sorted(os.listdir(parts / "model_dump")) == ["snapshot_0.pth.tar", "snapshot_1.pth.tar"]
    # The two runs logged the same losses for the same iterations.
    whole_losses = {(e, i): loss for e, i, loss in iteration_losses(whole)}
    for e, i, loss in iteration_losses(parts):
        assert whole_losses[(e, i)] == loss


def test_same_seed_same_losses_other_seed_other_losses(data_root, tmp_path):
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        out = tmp_path / name
        train_entry.main(args(data_root, out, "--end_epoch", "1", "--seed", seed))
        runs[name] = (iteration_losses(out), load(out, "snapshot_0.pth.tar"))
    assert len(runs["a"][0]) == 4 and runs["a"][0] == runs["b"][0]
    assert_same_state(runs["a"][1], runs["b"][1])
    assert runs["a"][0] != runs["c"][0]


def test_snapshot_records_code_seed_and_scaler(data_root, tmp_path):
    """fp16 autocast on the CPU with its gradient scaler; the log has every iteration."""
    out = tmp_path / "fp16"
    train_entry.main(args(data_root, out, "--end_epoch", "1", "--seed", "2", "--amp", "fp16",
                          "--tensorboard", "--warmup_epochs", "0.5", "--lr_schedule", "cosine"))
    snap = load(out, "snapshot_0.pth.tar")
    assert snap["seed"] == 2 and snap["precision"] == "fp16" and snap["world_size"] == 1
    assert snap["scaler"]["scale"] > 0 and "growth_factor" in snap["scaler"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", snap["git"]["commit"])
    assert snap["config"]["lr_schedule"] == "cosine" and len(snap["rng"]) == 1
    log = open(out / "log" / "train_rgb_only.txt").read()
    assert "code: git " in log and "precision fp16" in log
    lrs = [float(v) for v in re.findall(r"epoch 0 itr \d+/4 lr (\S+)", log)]
    # Warm-up over 2 of the 4 iterations (from lr x 0.01), then the cosine from lr.
    assert len(lrs) == 4 and lrs[0] == pytest.approx(0.05 * 0.01)
    assert lrs[1] == pytest.approx(0.05 * (0.01 + 0.99 * 0.5))
    assert lrs[2] == pytest.approx(0.05) and lrs[3] < lrs[2]
    events = os.listdir(out / "tensorboard" / "rgb_only")
    assert any(name.startswith("events.out.tfevents") for name in events)
