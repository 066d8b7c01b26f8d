"""A training process killed (SIGKILL) in the middle of a save loses nothing; the stage refuses to
overwrite snapshots, resumes the interrupted run with the snapshot's own configuration, and says
when there is nothing left to do."""
import hashlib
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.fixtures_data import write_kinetics

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(ROOT, "main", "train.py")

# Runs main/train.py with torch.save replaced: the Nth save writes a few bytes, tells the test
# through a flag file, and hangs, so the test can kill the process in the middle of that save.
HANGING_SAVE = """
import os, runpy, sys, time
import torch
real_save, calls = torch.save, []
def save(obj, f, *args, **kwargs):
    calls.append(1)
    if len(calls) == int(os.environ["HANG_AT_SAVE"]):
        f.write(b"the first bytes of a snapshot")
        f.flush()
        open(os.environ["HANG_FLAG"], "w").close()
        time.sleep(600)
    return real_save(obj, f, *args, **kwargs)
torch.save = save
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run(args, ok=True):
    proc = subprocess.run([sys.executable, TRAIN, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    write_kinetics(str(root), num_classes=2, videos_per_class=2, frame_num=8, frame_size=(24, 32),
                   subset="Tiny")
    out = root / "out"
    common = ["--data_dir", str(root), "--output_dir", str(out), "--subset", "Tiny",
              "--frame_per_seg", "2", "--frame_interval", "2", "--video_shape", "24",
              "--input_img_shape", "24,24", "--input_hm_shape", "8,8", "--train_batch_size", "2",
              "--pretrained", "none", "--num_thread", "0", "--progress_bar", "false",
              "--seed", "0", "--mode", "rgb_only"]
    return root, out, common


def test_sigkill_during_a_save_then_resume(workspace):
    root, out, common = workspace
    dump = out / "model_dump"
    flag = root / "hanging"
    env = dict(os.environ, HANG_AT_SAVE="3", HANG_FLAG=str(flag))
    proc = subprocess.Popen([sys.executable, "-c", HANGING_SAVE, TRAIN, "--end_epoch", "4",
                             *common], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not flag.exists():
            assert proc.poll() is None, f"training ended early: {proc.stderr.read()[-2000:]}"
            assert time.time() < deadline, "the third save never started"
            time.sleep(0.2)
        before = {name: digest(dump / name) for name in ("snapshot_0.pth.tar", "snapshot_1.pth.tar")}
        temporaries = [n for n in os.listdir(dump) if n.startswith(".tmp_")]
        assert len(temporaries) == 1  # the save in progress
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert sorted(n for n in os.listdir(dump) if not n.startswith(".")) == [
        "snapshot_0.pth.tar", "snapshot_1.pth.tar"]
    assert os.listdir(dump).count(temporaries[0]) == 1  # the killed save's leftover

    # Without --continue the stage refuses to start over the snapshots, in one line.
    refused = run(["--end_epoch", "4", *common], ok=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--continue" in lines[0] and "--overwrite" in lines[0]
    assert "snapshot_0..snapshot_1" in lines[0]

    # --continue removes the dead save's temporary and resumes after epoch 1.
    run(["--end_epoch", "4", "--continue", *common])
    log = open(out / "log" / "train_rgb_only.txt").read()
    assert f"removed {dump / temporaries[0]}" in log
    assert "resuming from" in log and "snapshot_1.pth.tar (epoch 1)" in log
    assert sorted(os.listdir(dump)) == [f"snapshot_{e}.pth.tar" for e in range(4)]
    for name, value in before.items():
        assert digest(dump / name) == value  # nothing written before the kill was lost
    snaps = [torch.load(dump / f"snapshot_{e}.pth.tar", weights_only=True) for e in range(4)]
    assert [s["epoch"] for s in snaps] == [0, 1, 2, 3]
    assert len({s["run"]["id"] for s in snaps}) == 1  # the resumed run kept its identity

    # Nothing left to do: said so, exit 0, nothing written.
    finished = [digest(dump / f"snapshot_{e}.pth.tar") for e in range(4)]
    done = run(["--end_epoch", "4", "--continue", *common])
    assert "nothing left to do" in done.stdout and "end_epoch is 4" in done.stdout
    assert [digest(dump / f"snapshot_{e}.pth.tar") for e in range(4)] == finished

    # Resuming with an option that contradicts the snapshot's configuration is refused.
    clash = run(["--end_epoch", "5", "--continue", *common[:-2], "--mode", "rgb_only",
                 "--input_img_shape", "16,16"], ok=False)
    assert clash.returncode != 0 and "Traceback" not in clash.stderr
    assert "input_img_shape" in clash.stderr and "snapshot_3.pth.tar" in clash.stderr


def test_overwrite_on_purpose_and_a_new_run_resumed(workspace):
    root, out, common = workspace
    args = list(common)
    args[args.index("--output_dir") + 1] = str(root / "out2")
    run(["--end_epoch", "3", *args])
    dump = root / "out2" / "model_dump"
    first_run = torch.load(dump / "snapshot_2.pth.tar", weights_only=True)["run"]["id"]
    # A restart from epoch 0 on purpose, "interrupted" after epoch 0 (end_epoch 1) ...
    run(["--end_epoch", "1", "--overwrite", *args])
    second_run = torch.load(dump / "snapshot_0.pth.tar", weights_only=True)["run"]["id"]
    assert second_run != first_run
    # ... is the run --continue resumes, although the first run's snapshot_2 is higher; its
    # next epoch would replace the first run's snapshot_1, which needs --overwrite.
    refused = run(["--end_epoch", "2", "--continue", *args], ok=False)
    assert refused.returncode != 0 and "belong to another run" in refused.stderr
    run(["--end_epoch", "2", "--continue", "--overwrite", *args])
    log = open(root / "out2" / "log" / "train_rgb_only.txt").read()
    assert "snapshot_0.pth.tar (epoch 0)" in log
    resumed = torch.load(dump / "snapshot_1.pth.tar", weights_only=True)
    assert resumed["run"]["id"] == second_run and resumed["epoch"] == 1
