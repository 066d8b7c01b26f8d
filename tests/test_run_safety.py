"""Work is never lost: resume picks the interrupted run, temporaries, permissions, weights that
cannot be had, one-line errors."""
import os
import stat
import time

import pytest
import torch

from common.train import checkpoint
from common.train.checkpoint import (TMP_PREFIX, atomic_save, load_snapshot, new_run_info,
                                     remove_stale_temporaries, save_snapshot, snapshot_path)
from common.train.snapshot_stages import find_resume_snapshot
from common.errors import CheckpointError, UsageError, exit_on_error
from common.model import IntegralAction
from common.nets.tsm_resnet import TSMResNet
from data.joint_sets import OPENPOSE_18


def make(mode, seed=0):
    torch.manual_seed(seed)
    model = IntegralAction(mode, 3, OPENPOSE_18.limbs, 18, frame_per_seg=2, input_hm_shape=(8, 8))
    model.init_weights("none")
    return model


def _with_umask(mask, fn):
    old = os.umask(mask)
    try:
        return fn()
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_snapshots_respect_the_umask(tmp_path, mask, mode):
    path = str(tmp_path / "snapshot_0.pth.tar")
    _with_umask(mask, lambda: atomic_save({"epoch": 0, "network": {}}, path))
    assert stat.S_IMODE(os.stat(path).st_mode) == mode  # not the 0o600 of mkstemp


def _dead_pid():
    # A pid far above any live one (pid_max is at most 2**22 on Linux).
    return 2**22 + 12345


def test_stale_temporaries_are_removed_live_ones_kept(tmp_path):
    host = checkpoint._tmp_name_prefix()[len(TMP_PREFIX):].split("_")[0]
    # mkstemp's random part may itself hold '_' (it did in a CI run: `_24c_tvs8`).
    dead = tmp_path / f".tmp_{host}_{_dead_pid()}_a_bc.pth.tar"
    live = tmp_path / f".tmp_{host}_{os.getpid()}_def.pth.tar"
    foreign_old = tmp_path / ".tmp_otherhost_12_g_hi.pth.tar"
    foreign_new = tmp_path / ".tmp_otherhost_13_jkl.pth.tar"
    keep = tmp_path / "snapshot_3.pth.tar"
    for path in (dead, live, foreign_old, foreign_new, keep):
        path.write_bytes(b"x" * 100)
    old = time.time() - checkpoint.FOREIGN_TMP_STALE_S - 60
    os.utime(foreign_old, (old, old))
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(foreign_old)])
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (live, foreign_new, keep))


def test_resume_takes_the_interrupted_run_not_the_highest_epoch(tmp_path):
    folder = str(tmp_path)
    model = make("rgb_only")
    first, second = new_run_info(), new_run_info()
    for epoch in range(4):  # a finished earlier run: epochs 0..3
        save_snapshot(snapshot_path(folder, epoch), model, None, epoch, "rgb_only", run=first)
    time.sleep(0.01)
    for epoch in range(2):  # restarted with --overwrite, interrupted after epoch 1
        save_snapshot(snapshot_path(folder, epoch), model, None, epoch, "rgb_only", run=second)
    path, snap = find_resume_snapshot(folder, "rgb_only")
    assert path == snapshot_path(folder, 1) and snap["run"]["id"] == second["id"]
    # Another stage's newer snapshot does not count.
    save_snapshot(snapshot_path(folder, 7), make("pose_only"), None, 7, "pose_only",
                  run=new_run_info())
    path, _ = find_resume_snapshot(folder, "rgb_only")
    assert path == snapshot_path(folder, 1)


def test_files_without_a_run_form_one_run_dated_by_mtime(tmp_path):
    folder = str(tmp_path)
    model = make("rgb_only")
    for epoch in (0, 1, 5):
        path = snapshot_path(folder, epoch)
        save_snapshot(path, model, None, epoch, "rgb_only")
        snap = load_snapshot(path)
        del snap["run"], snap["saved_at"]  # as the authors' and older files
        torch.save(snap, path)
    path, _ = find_resume_snapshot(folder, "rgb_only")
    assert path == snapshot_path(folder, 5)


def test_imagenet_download_failure_stops_with_both_ways_out(monkeypatch):
    from torchvision.models import resnet

    def offline(self, *args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(resnet.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    net = TSMResNet(18, 2)
    with pytest.raises(CheckpointError) as err:
        net.load_imagenet("imagenet")
    text = str(err.value)
    assert "name resolution" in text and "--pretrained none" in text
    assert "--pretrained /path/to/resnet18.pth" in text and "resnet18-" in text
    model = IntegralAction("rgb_only", 3, OPENPOSE_18.limbs, 18, frame_per_seg=2)
    with pytest.raises(CheckpointError, match="--pretrained none"):
        model.init_weights("imagenet")


def test_pretrained_file_problems_name_the_file(tmp_path):
    net = TSMResNet(18, 2)
    with pytest.raises(CheckpointError, match="no such file.*'none'"):
        net.load_imagenet(str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(CheckpointError, match="bad.pth: cannot read it"):
        net.load_imagenet(str(bad))


def test_init_weights_without_pretrained_leaves_backbones(monkeypatch):
    calls = []
    monkeypatch.setattr(TSMResNet, "load_imagenet", lambda self, source: calls.append(source))
    make_model = IntegralAction("rgb+pose", 3, OPENPOSE_18.limbs, 18, frame_per_seg=2)
    make_model.init_weights(None)
    assert calls == []
    make_model.init_weights("none")
    assert calls == ["none", "none"]


def test_exit_on_error_prints_one_line(capsys):
    @exit_on_error
    def main():
        raise UsageError("--gpu abc: not a GPU id\nsecond line")

    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: --gpu abc: not a GPU id second line\n"

    @exit_on_error
    def bug():
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        bug()
