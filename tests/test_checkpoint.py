"""Snapshots: authors' layout, strict and safe loading, atomic saving, stage checks, merge."""
import os
import pickle

import pytest
import torch

from common.train.checkpoint import (CheckpointError, load_network, load_snapshot,
                                     load_stage_heads, save_snapshot, snapshot_path)
from common.train.snapshot_stages import (check_stage, find_resume_snapshot, infer_stage,
                                          merge_single_stream_snapshots)
from common.model import IntegralAction
from data.joint_sets import OPENPOSE_18
from tool import merge_rgb_only_pose_only


def make(mode, seed=0):
    torch.manual_seed(seed)
    model = IntegralAction(mode, 7, OPENPOSE_18.limbs, 18, frame_per_seg=2, input_hm_shape=(8, 8))
    model.init_weights("none")
    return model


# Key names and shapes of the authors' ResNet-18 rgb+pose Kinetics50 snapshot (docs/data_format.md).
AUTHORS_KEYS = {
    "module.img_backbone.conv1.weight": (64, 3, 7, 7),
    "module.img_backbone.bn1.running_var": (64,),
    "module.img_backbone.layer4.1.conv2.weight": (512, 512, 3, 3),
    "module.img_backbone.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "module.pose_backbone.conv1.weight": (64, 3, 7, 7),
    "module.pose_backbone.layer1.0.conv1.weight": (64, 64, 3, 3),
    "module.pose2feat.conv.0.weight": (64, 52, 3, 3),
    "module.pose2feat.conv.0.bias": (64,),
    "module.pose2feat.conv.1.running_mean": (64,),
    "module.aggregator.pose_temporal_conv.0.weight": (512, 512, 5, 1, 1),
    "module.aggregator.pose_temporal_conv.1.running_mean": (512,),
    "module.aggregator.pose_gate_fc.0.weight": (512, 512),
    "module.aggregator.pose_gate_fc.0.bias": (512,),
    "module.aggregator.img_conv.0.weight": (512, 512, 1, 1),
    "module.aggregator.img_conv.0.bias": (512,),
    "module.aggregator.pose_conv.1.weight": (512,),
    "module.aggregator.img_norm.weight": (512, 1, 1),
    "module.aggregator.pose_norm.bias": (512, 1, 1),
    "module.classifier.fc.0.weight": (50, 512),
    "module.classifier.fc.0.bias": (50,),
}


def test_snapshot_has_authors_layout(tmp_path):
    model = IntegralAction("rgb+pose", 50, OPENPOSE_18.limbs, 18)
    path = tmp_path / "snapshot_3.pth.tar"
    save_snapshot(str(path), model, None, 3, "rgb+pose")
    snap = torch.load(path, weights_only=True)
    assert snap["epoch"] == 3 and set(snap) >= {"epoch", "network", "optimizer"}
    net = snap["network"]
    assert all(k.startswith("module.") for k in net)
    for key, shape in AUTHORS_KEYS.items():
        assert tuple(net[key].shape) == shape, key
    assert not any(".fc." in k for k in net if "backbone" in k)


def test_authors_layout_checkpoint_loads_strictly():
    """A state dict written the authors' way (DataParallel, `module.` keys) loads with no
    missing or unexpected keys, and the weights land where they belong."""
    source = make("rgb+pose", seed=1)
    authors = {"module." + k: v.clone() for k, v in source.state_dict().items()}
    target = make("rgb+pose", seed=2)
    load_network(target, authors)
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)
    wrapped = torch.nn.DataParallel(make("rgb+pose", seed=3))
    load_network(wrapped, authors)
    assert torch.equal(wrapped.module.classifier.fc[0].weight, source.classifier.fc[0].weight)


def test_strict_loading_refuses_missing_and_renamed_keys():
    source = {"module." + k: v for k, v in make("rgb+pose").state_dict().items()}
    broken = dict(source)
    broken["module.aggregator.gate.weight"] = broken.pop("module.aggregator.pose_gate_fc.0.weight")
    with pytest.raises(CheckpointError, match="missing keys.*pose_gate_fc"):
        load_network(make("rgb+pose"), broken)
    small = make("rgb+pose")
    small.classifier.fc[0] = torch.nn.Linear(512, 3)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_network(small, source)


def test_round_trip_with_optimizer(tmp_path):
    model = make("rgb_only")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(dict(video=torch.rand(1, 2, 3, 32, 32)))["logits"].sum().backward()
    opt.step()
    path = snapshot_path(str(tmp_path), 4)
    save_snapshot(path, model, opt, 4, "rgb_only", config={"lr": 0.1, "shape": (1, 2)})
    snap = load_snapshot(path)
    restored = make("rgb_only", seed=9)
    load_network(restored, snap["network"])
    for k, v in model.state_dict().items():
        assert torch.equal(restored.state_dict()[k], v)
    opt2 = torch.optim.SGD(restored.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(snap["optimizer"])
    buf = opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(opt2.state_dict()["state"][0]["momentum_buffer"], buf)
    assert snap["mode"] == "rgb_only" and snap["config"]["shape"] == [1, 2]


def test_atomic_save_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch):
    path = snapshot_path(str(tmp_path), 0)
    model = make("rgb_only")
    save_snapshot(path, model, None, 0, "rgb_only")
    before = open(path, "rb").read()

    def crash(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_snapshot(path, model, None, 1, "rgb_only")
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["snapshot_0.pth.tar"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_untrusted_pickle_is_refused(tmp_path):
    path = tmp_path / "snapshot_0.pth.tar"
    with open(path, "wb") as f:
        pickle.dump({"network": {}, "x": _Evil()}, f)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_snapshot(str(path))


def test_stage_check_refuses_other_stage(tmp_path):
    path = snapshot_path(str(tmp_path), 2)
    save_snapshot(path, make("pose_only"), None, 2, "pose_only")
    snap = load_snapshot(path)
    with pytest.raises(CheckpointError, match="trained in mode 'pose_only'"):
        check_stage(snap, "rgb+pose", path)
    check_stage(snap, "pose_only", path)


def test_infer_stage_of_files_without_mode():
    rgb = make("rgb_only").state_dict()  # pose2feat BN statistics never moved
    assert infer_stage(rgb) == "rgb_only"
    fused = make("rgb+pose")
    with torch.no_grad():
        fused.aggregator.img_norm.weight.add_(0.1)
        fused.pose2feat.conv[1].running_mean.add_(0.1)
    assert infer_stage(fused.state_dict()) == "rgb+pose"


def _train_stage_snapshots(folder):
    rgb, pose = make("rgb_only", 1), make("pose_only", 2)
    with torch.no_grad():
        pose.pose2feat.conv[1].running_mean.add_(0.5)
    save_snapshot(os.path.join(folder, "snapshot_29_rgb_only.pth.tar"), rgb, None, 29, "rgb_only")
    save_snapshot(os.path.join(folder, "snapshot_29_pose_only.pth.tar"), pose, None, 29, "pose_only")
    return rgb, pose


def test_merge_tool(tmp_path):
    rgb, pose = _train_stage_snapshots(str(tmp_path))
    out = tmp_path / "model_dump" / "snapshot_0.pth.tar"
    merge_rgb_only_pose_only.main([
        "--rgb", str(tmp_path / "snapshot_29_rgb_only.pth.tar"),
        "--pose", str(tmp_path / "snapshot_29_pose_only.pth.tar"), "--out", str(out)])
    snap = load_snapshot(str(out))
    assert snap["epoch"] == 0 and snap["merged"] and snap["mode"] == "rgb+pose"
    net = snap["network"]
    assert torch.equal(net["module.img_backbone.layer1.0.conv1.weight"], rgb.img_backbone.layer1[0].conv1.weight)
    assert torch.equal(net["module.pose_backbone.layer1.0.conv1.weight"], pose.pose_backbone.layer1[0].conv1.weight)
    assert torch.equal(net["module.pose2feat.conv.1.running_mean"], pose.pose2feat.conv[1].running_mean)
    # No fusion heads and no classifier; each stage's classifier is kept for --stream_agreement.
    assert not any("classifier" in k for k in net)
    assert sorted(k for k in net if "aggregator" in k) == [
        f"module.aggregator.agreement.{head}.{p}" for head in ("img_fc", "pose_fc") for p in ("bias", "weight")]
    assert torch.equal(net["module.aggregator.agreement.img_fc.weight"], rgb.classifier.fc[0].weight)
    assert torch.equal(net["module.aggregator.agreement.pose_fc.bias"], pose.classifier.fc[0].bias)
    assert infer_stage(net) == "rgb+pose"
    fused = make("rgb+pose", 5)
    load_network(fused, net, modules=("img_backbone", "pose_backbone", "pose2feat"))
    assert torch.equal(fused.pose2feat.conv[0].weight, pose.pose2feat.conv[0].weight)
    torch.manual_seed(5)
    agreeing = IntegralAction("rgb+pose", 7, OPENPOSE_18.limbs, 18, frame_per_seg=2,
                              input_hm_shape=(8, 8), stream_agreement=True)
    load_stage_heads(agreeing, net, str(out))
    assert torch.equal(agreeing.aggregator.agreement.pose_fc.weight, pose.classifier.fc[0].weight)
    assert torch.equal(agreeing.aggregator.agreement.img_fc.bias, rgb.classifier.fc[0].bias)
    without = {k: v for k, v in net.items() if "agreement.pose_fc" not in k}
    with pytest.raises(CheckpointError, match="lacks the pose_only classifier"):
        load_stage_heads(agreeing, without, "old_merge.pth.tar")


def test_merge_tool_refuses_wrong_stage(tmp_path, capsys):
    _train_stage_snapshots(str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        merge_rgb_only_pose_only.main([
            "--rgb", str(tmp_path / "snapshot_29_pose_only.pth.tar"),
            "--pose", str(tmp_path / "snapshot_29_pose_only.pth.tar"),
            "--out", str(tmp_path / "x.pth.tar")])
    assert exc.value.code == 1
    assert "needs a 'rgb_only' snapshot" in capsys.readouterr().err
    assert not (tmp_path / "x.pth.tar").exists()


def test_merge_tool_does_not_overwrite_a_trained_snapshot(tmp_path, capsys):
    rgb, _ = _train_stage_snapshots(str(tmp_path))
    trained = tmp_path / "snapshot_0.pth.tar"
    save_snapshot(str(trained), rgb, None, 0, "rgb_only")
    before = trained.read_bytes()
    args = ["--rgb", str(tmp_path / "snapshot_29_rgb_only.pth.tar"),
            "--pose", str(tmp_path / "snapshot_29_pose_only.pth.tar"), "--out", str(trained)]
    with pytest.raises(SystemExit):
        merge_rgb_only_pose_only.main(args)
    assert "is a trained snapshot" in capsys.readouterr().err and trained.read_bytes() == before
    merge_rgb_only_pose_only.main(args + ["--overwrite"])
    assert load_snapshot(str(trained))["merged"]
    merge_rgb_only_pose_only.main(args)  # an earlier merge is replaced without asking


def test_resume_picks_the_newest_snapshot_of_the_stage(tmp_path):
    folder = str(tmp_path)
    rgb, pose = _train_stage_snapshots(folder)
    save_snapshot(snapshot_path(folder, 29), pose, None, 29, "pose_only")  # leftover
    merged = merge_single_stream_snapshots(load_snapshot(os.path.join(folder, "snapshot_29_rgb_only.pth.tar")),
                                           load_snapshot(os.path.join(folder, "snapshot_29_pose_only.pth.tar")))
    torch.save(merged, snapshot_path(folder, 0))
    path, snap = find_resume_snapshot(folder, "rgb+pose")
    assert path == snapshot_path(folder, 0) and snap["merged"]
    path, _ = find_resume_snapshot(folder, "pose_only")
    assert path == snapshot_path(folder, 29)
    assert find_resume_snapshot(folder, "rgb_only") is None


@pytest.mark.parametrize("content,problem", [
    ({"epoch": 1, "network": [torch.zeros(2)]}, "(a list)"),
    ({"epoch": 1, "network": {"fc.weight": [1.0, 2.0]}}, "('fc.weight' holds a list, not a tensor)"),
    ({"epoch": 1, "network": {3: torch.zeros(2)}}, "(its key 3 is not a parameter name)"),
])
def test_a_network_entry_that_is_no_state_dict_is_one_line(tmp_path, content, problem):
    path = str(tmp_path / "snapshot_1.pth.tar")
    torch.save(content, path)
    with pytest.raises(CheckpointError) as err:
        load_snapshot(path)
    assert str(err.value) == (f"{path} is not a snapshot: its 'network' entry is not a state "
                              f"dict {problem}")
    # Something else saved whole: named as what it holds.
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match=r"is not a snapshot \(it holds a list\)$"):
        load_snapshot(path)


def test_merge_tool_names_a_file_that_is_no_snapshot(tmp_path, capsys):
    _train_stage_snapshots(str(tmp_path))
    rgb = str(tmp_path / "snapshot_29_rgb_only.pth.tar")
    bad = str(tmp_path / "not_a_snapshot.pth.tar")
    torch.save({"network": ["weights"]}, bad)
    with pytest.raises(SystemExit) as exc:
        merge_rgb_only_pose_only.main(["--rgb", rgb, "--pose", bad,
                                       "--out", str(tmp_path / "x.pth.tar")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad} is not a snapshot: its 'network' entry is not a state " \
        "dict (a list)" in err[0]


def test_nothing_to_train_after_the_merged_snapshot_says_so_in_words(tmp_path, capsys):
    from main import train as train_entry
    _train_stage_snapshots(str(tmp_path))
    merged = tmp_path / "out" / "model_dump" / "snapshot_0.pth.tar"
    merge_rgb_only_pose_only.main([
        "--rgb", str(tmp_path / "snapshot_29_rgb_only.pth.tar"),
        "--pose", str(tmp_path / "snapshot_29_pose_only.pth.tar"), "--out", str(merged)])
    capsys.readouterr()
    result = train_entry.main(["--mode", "rgb+pose", "--end_epoch", "1", "--gpu", "cpu",
                               "--output_dir", str(tmp_path / "out"), "--num_thread", "0",
                               "--frame_per_seg", "2", "--input_hm_shape", "8,8"])
    assert result is None
    captured = capsys.readouterr()
    assert (f"nothing left to do: rgb+pose starts at epoch 1, after {merged}, and end_epoch is "
            "1; use --end_epoch 2 or more") in captured.out + captured.err
    assert sorted(os.listdir(merged.parent)) == ["snapshot_0.pth.tar"]
