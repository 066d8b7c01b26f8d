"""The config object: the field table, defaults, stage/dataset rules, command-line overrides,
the one-line errors, and what a snapshot's own config decides."""
import json
from typing import Optional, Tuple

import pytest
import torch

from common.runtime.device import parse_gpu_ids, select_device
from common.errors import CheckpointError, UsageError
from data.registry import DATASETS as REGISTERED_DATASETS
from main.cli import config_from_argv, parse_command_line
from main.config import DATASETS, FIELDS, GROUP_NAMES, build_config, default_config
from main.snapshot_config import config_from_snapshot, inference_config, snapshot_fields

# The original's defaults, restated: the table must not move any of them.
ORIGINAL_DEFAULTS = {
    "mode": "rgb+pose", "dataset": "Kinetics", "subset": "50", "protocol": None,
    "class_num": None,
    "ann_file": None, "split": None, "frame_root": None, "label_map": None,
    "pose_gate": True, "gate_input": "pose", "gate_target": "pose", "gate_hidden": 0,
    "stream_agreement": False, "agreement_scaling": True, "pose_fallback": 0.0, "img_resnet_type": 18, "pose_resnet_type": 18,
    "agg_feat_dim": 512, "dropout": 0.5, "pretrained": "imagenet", "video_shape": None,
    "input_img_shape": (224, 224), "input_hm_shape": (56, 56), "hm_sigma": 0.5, "paf_sigma": 1.0,
    "top_k_pose": 5, "frame_per_seg": 8, "frame_interval": 8, "pose_frame_factor": 1,
    "pose_score_thr": 0.1, "lr": None, "lr_dec_epoch": (21, 26), "lr_dec_factor": 10.0,
    "end_epoch": 30, "momentum": 0.9, "weight_decay": 1e-4, "train_batch_size": 8,
    "train_aug": True, "reg_weight": 1.5, "context_aug_prob": 0.0, "context_aug_box_margin": 0.15,
    "max_iters_per_epoch": None, "init_snapshot": None, "fusion_frozen_bn": False,
    "test_infer_num": 10, "test_batch_size": 16, "test_epoch": None, "num_thread": 4,
    "gpu_ids": None, "continue_train": False, "overwrite": False, "strict": False, "seed": None,
    "log_interval": 20, "progress_bar": True, "model_dir": None, "vis_dir": None,
    "log_dir": None, "result_dir": None,
    # Schedules, mid-epoch snapshots, precision, torchrun, TensorBoard (the original's
    # behaviour by default: step schedule, no warm-up, fp32 on the CPU, per-GPU BatchNorm).
    "lr_schedule": "step", "lr_min": 0.0, "warmup_epochs": 0.0, "warmup_factor": 0.01,
    "save_every": None, "amp": "auto", "channels_last": None, "cudnn_benchmark": None,
    "sync_bn": False, "dist_backend": None, "tensorboard": False,
    # The faster decode that changes pixels, off by default; evaluation's sub-batches.
    "fast_decode": False, "eval_chunk_frames": None,
    # Shard sets (off: the folder).
    "shards": None, "shard_cache": None,
    # Frames from JPEG folders or video files, whichever the data set has; videos decoded to
    # the JPEG folders' 256 px shorter side.
    "frames_from": "auto", "video_short_side": 256, "video_cache_size": 8,
}


def test_defaults_are_the_papers():
    cfg = build_config({"mode": "rgb_only"})
    assert cfg.frame_per_seg == 8 and cfg.frame_interval == 8 and cfg.top_k_pose == 5
    assert cfg.input_img_shape == (224, 224) and cfg.input_hm_shape == (56, 56)
    assert cfg.video_shape == (256,) and cfg.lr == 5e-3 and cfg.reg_weight == 1.5
    assert cfg.lr_dec_epoch == (21, 26) and cfg.end_epoch == 30 and cfg.train_batch_size == 8


def test_lr_and_video_shape_follow_the_command_line():
    # The original fixed both at import time from class-level values.
    assert config_from_argv("train", ["--mode", "rgb+pose"]).lr == 5e-4
    assert config_from_argv("train", ["--mode", "pose_only"]).lr == 5e-3
    cfg = config_from_argv("train", ["--mode", "pose_only", "--dataset", "NTU"])
    assert cfg.video_shape == (240, 320)


def test_any_field_can_be_overridden():
    cfg = config_from_argv("train", [
        "--mode", "rgb_only", "--continue", "--end_epoch", "2", "--train_batch_size=3",
        "--input_img_shape", "96,96", "--input_hm_shape", "24,24", "--img_resnet_type", "34",
        "--train_aug", "false", "--lr", "0.01", "--class_num", "8", "--data_dir", "/tmp/x",
        "--gpu", "0-3"])
    assert cfg.continue_train and cfg.end_epoch == 2 and cfg.train_batch_size == 3
    assert cfg.input_img_shape == (96, 96) and cfg.input_hm_shape == (24, 24)
    assert cfg.img_resnet_type == 34 and cfg.train_aug is False and cfg.lr == 0.01
    assert cfg.class_num == 8 and cfg.data_dir == "/tmp/x" and cfg.gpu_ids == "0-3"
    assert cfg.model_dir == default_config().output_dir + "/model_dump"


def test_test_entry_needs_epoch_and_rejects_unknown_fields(capsys):
    cfg = config_from_argv("test", ["--mode", "rgb+pose", "--test_epoch", "29", "--dataset", "Mimetics"])
    assert cfg.test_epoch == 29 and cfg.dataset == "Mimetics"
    with pytest.raises(SystemExit) as exit_info:
        config_from_argv("train", ["--mode", "rgb_only", "--end_epoc", "2"])
    assert exit_info.value.code == 2
    assert "unknown config field --end_epoc; did you mean --end_epoch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        config_from_argv("train", ["--mode", "rgb_only", "--end_epoch", "two"])
    assert exit_info.value.code == 2
    assert "argument --end_epoch: expected an integer, got 'two'" in capsys.readouterr().err
    # A combination that cannot be used is a UsageError (the entry points print it as one line).
    with pytest.raises(UsageError, match="--pose_frame_factor 3 must divide --frame_interval 8"):
        config_from_argv("train", ["--mode", "rgb_only", "--pose_frame_factor", "3"])
    with pytest.raises(SystemExit):
        config_from_argv("test", ["--mode", "rgb+pose"])
    assert "required: --test_epoch" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the table

def test_table_covers_every_field_with_type_group_and_help():
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names)) == 81
    assert dict(default_config()) == {**ORIGINAL_DEFAULTS, **{
        k: default_config()[k] for k in ("root_dir", "data_dir", "output_dir")}}
    assert set(names) == set(ORIGINAL_DEFAULTS) | {"root_dir", "data_dir", "output_dir"}
    assert default_config().data_dir == default_config().root_dir + "/data"
    for field in FIELDS:
        assert field.group in GROUP_NAMES, field.name
        assert field.help and "\n" not in field.help, field.name
        assert field.base in (int, float, str, bool, Tuple[int, ...]), field.name
    by_name = {f.name: f for f in FIELDS}
    assert by_name["class_num"].type == Optional[int] and by_name["lr"].type == Optional[float]
    assert by_name["video_shape"].type == Optional[Tuple[int, ...]]
    assert by_name["gpu_ids"].type == Optional[str] and by_name["overwrite"].type is bool
    assert by_name["pose_gate"].group == "network" and by_name["top_k_pose"].group == "input"
    assert by_name["subset"].group == "data" and by_name["seed"].group == "training"
    assert by_name["test_epoch"].group == "testing" and by_name["strict"].group == "runtime"
    assert by_name["model_dir"].group == "paths"
    # config.py names the data sets without importing the loaders: the names must agree.
    assert set(DATASETS) == set(REGISTERED_DATASETS)


def test_every_field_is_an_option_of_both_entries():
    # Each field's default, written as on the command line, reads back as the default.
    shown = {None: "none", True: "true", False: "false"}
    for entry in ("train", "test"):
        for field in FIELDS:
            if entry == "test" and field.name == "test_epoch":
                continue  # required there: an integer, not none
            default = field.default
            if isinstance(default, tuple):
                text = ",".join(map(str, default))
            elif default is None or isinstance(default, bool):
                text = shown[default]
            else:
                text = str(default)
            got = parse_command_line(entry, ["--mode", "rgb_only", "--test_epoch", "1",
                                             f"--{field.name}={text}"])
            assert got[field.name] == default and type(got[field.name]) is type(default), field.name
    got = parse_command_line("train", ["--mode", "rgb_only", "--gpu", "1", "--continue"])
    assert got == {"mode": "rgb_only", "gpu_ids": "1", "continue_train": True}


# ------------------------------------------------------------------------------ parsing

def test_only_explicit_options_are_returned_typed():
    got = parse_command_line("train", [
        "--mode", "rgb_only", "--continue", "--overwrite", "--strict", "off", "--seed=3",
        "--class_num", "none", "--video_shape", "(240, 320)", "--lr", "1e-3", "--gpu", "cpu",
        "--pose_gate", "NO", "--train_aug=1", "--lr_dec_epoch", "7"])
    assert got == {"mode": "rgb_only", "continue_train": True, "overwrite": True, "strict": False,
                   "seed": 3, "class_num": None, "video_shape": (240, 320), "lr": 1e-3,
                   "gpu_ids": "cpu", "pose_gate": False, "train_aug": True, "lr_dec_epoch": (7,)}
    assert parse_command_line("test", ["--mode", "pose_only", "--test_epoch", "4"]) == {
        "mode": "pose_only", "test_epoch": 4}
    # A string field keeps 'none' as text: '--pretrained none' means random weights.
    assert parse_command_line("train", ["--mode", "rgb_only", "--pretrained", "none"])[
        "pretrained"] == "none"


@pytest.mark.parametrize("argv,words", [
    (["--mode", "foo"], ["argument --mode", "rgb_only, pose_only, rgb+pose", "'foo'"]),
    (["--dataset", "Foo"], ["argument --dataset", "Kinetics, Mimetics, NTU", "'Foo'"]),
    (["--class_num", "abc"], ["argument --class_num", "an integer or none", "'abc'"]),
    (["--seed", "1.5"], ["argument --seed", "an integer or none", "'1.5'"]),
    (["--lr", "fast"], ["argument --lr", "a number or none", "'fast'"]),
    (["--lr", "nan"], ["argument --lr", "a number or none", "'nan'"]),
    (["--max_iters_per_epoch", "all"], ["argument --max_iters_per_epoch", "'all'"]),
    (["--video_shape", "a,b"], ["argument --video_shape", "or none", "'a,b'"]),
    (["--input_img_shape", "96,,96"], ["argument --input_img_shape", "'96,,96'"]),
    (["--end_epoch", "none"], ["argument --end_epoch", "expected an integer, got 'none'"]),
    (["--train_aug", "maybe"], ["argument --train_aug", "true or false", "'maybe'"]),
    (["--img_resnet_type", "20"], ["argument --img_resnet_type", "18, 34, 50", "'20'"]),
    (["--gpu", "abc"], ["argument --gpu", "'abc' is not a GPU list", "'0-3'", "'cpu'"]),
    (["--gpu", "0-"], ["argument --gpu", "'0-' is not a GPU list"]),
    (["--gpu", "3-1"], ["argument --gpu", "'3-1': the range ends before it starts"]),
    (["--gpu", "-1"], ["argument --gpu", "'-1' is not a GPU list"]),
    (["--gpu", "0,,1"], ["argument --gpu", "'0,,1' is not a GPU list"]),
    (["--end_epoc", "2"], ["unknown config field --end_epoc; did you mean --end_epoch"]),
    (["--frame_per_segment=4"],
     ["unknown config field --frame_per_segment; did you mean --frame_per_seg"]),
    (["--img_resnet", "34"], ["unknown config field --img_resnet"]),  # no abbreviations
    (["stray"], ["unexpected argument 'stray'"]),
])
def test_bad_command_line_is_one_line_and_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_command_line("train", ["--mode", "rgb_only", *argv])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and captured.out == ""
    assert lines[0].endswith("(see train.py --help)")
    for word in words:
        assert word in lines[0]


def test_help_lists_every_field_with_default_and_meaning(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_command_line("test", ["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for field in FIELDS:
        assert f"--{field.name}" in text
        assert " ".join(field.help.split()) in text, field.name
    assert "--frame_per_seg N frames per clip (default: 8)" in text
    assert "--input_img_shape N,N crop fed to the RGB stream, H,W (default: 224,224)" in text
    assert "--test_epoch N the snapshot_<N>.pth.tar that test.py evaluates (test.py needs it) " \
           "(required)" in text
    assert "--gpu, --gpu_ids GPUS|none" in text and "--strict [true|false]" in text


# ------------------------------------------------------------------------------ building

@pytest.mark.parametrize("overrides,entry,pattern", [
    ({"dataset": "Mimetics"}, "train",
     r"--dataset Mimetics is a test-only data set .* train on Kinetics .* --dataset Mimetics"),
    ({"mode": "rgb"}, None, r"--mode: expected one of rgb_only, pose_only, rgb\+pose, got 'rgb'"),
    ({"dataset": "HMDB"}, None, r"--dataset: expected one of Kinetics, Mimetics, NTU"),
    ({"class_num": "abc"}, None, r"--class_num: expected an integer or none, got 'abc'"),
    ({"subset": 400}, None, r"--subset: expected a string, got 400"),
    ({"lr": "0.1"}, None, r"--lr: expected a number or none, got '0.1'"),
    ({"video_shape": "256"}, None, r"--video_shape: expected integers .* or none, got '256'"),
    ({"train_aug": 1}, None, r"--train_aug: expected true or false, got 1"),
    ({"gpu_ids": "abc"}, None, r"--gpu 'abc' is not a GPU list: use '0', '0,1', '0-3' or 'cpu'"),
    ({"gpu_ids": "3-1"}, None, r"--gpu '3-1': the range ends before it starts"),
    ({"end_epochs": 3}, None, r"unknown config field --end_epochs; did you mean --end_epoch"),
    ({"pose_frame_factor": 3}, None, r"--pose_frame_factor 3 must divide --frame_interval 8"),
    ({"pose_frame_factor": 0}, None, r"--pose_frame_factor must be 1 or more, got 0"),
    ({"gate_target": "swap"}, None, r"--gate_target swap needs .*--context_aug_prob > 0"),
    ({"input_img_shape": (96,)}, None,
     r"--input_img_shape must be H,W of positive integers, got 96"),
    ({"dropout": 1.0}, None, r"--dropout must be in \[0, 1\), got 1.0"),
    ({"test_epoch": None}, "test", r"test.py needs --test_epoch N"),
])
def test_build_config_refuses_with_the_field_named(overrides, entry, pattern):
    with pytest.raises(UsageError, match=pattern):
        build_config({"mode": "rgb_only", **overrides}, entry=entry)


def test_build_config_keeps_python_callers_working():
    cfg = build_config({"mode": "rgb_only", "input_img_shape": [96, 96], "video_shape": 48,
                        "lr": 1})
    assert cfg.input_img_shape == (96, 96) and cfg.video_shape == (48,)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    # Mimetics is fine where no entry is named and at test time.
    assert build_config({"dataset": "Mimetics"}).dataset == "Mimetics"
    assert build_config({"dataset": "Mimetics", "test_epoch": 0}, entry="test").test_epoch == 0


def test_gpu_ids_syntax():
    assert parse_gpu_ids("0-3") == [0, 1, 2, 3] and parse_gpu_ids("0,2") == [0, 2]
    assert parse_gpu_ids(" 1 ") == [1] and parse_gpu_ids("2-2") == [2]
    assert parse_gpu_ids(None) == [] and parse_gpu_ids("cpu") == [] and parse_gpu_ids("none") == []
    for bad in ("abc", "0-", "-1", "0,,1", "", "1.5", "0-3,5", "gpu0"):
        with pytest.raises(UsageError, match=r"use '0', '0,1', '0-3' or 'cpu'"):
            parse_gpu_ids(bad)
    with pytest.raises(UsageError, match="GPU 1 is named twice"):
        parse_gpu_ids("1,0,1")
    with pytest.raises(UsageError, match="ends before it starts; write it 1-3"):
        parse_gpu_ids("3-1")


def test_select_device_names_a_gpu_that_is_not_there():
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(UsageError, match=rf"--gpu 999: GPU 999 not available \({visible} visible|"
                                         rf"--gpu 999: GPU 999 not available \(none visible"):
        select_device("999")
    with pytest.raises(UsageError, match="without --gpu"):
        select_device("0-999")
    # An explicit 'cpu' is the CPU even where a GPU is visible.
    assert select_device("cpu") == (torch.device("cpu"), [])


# ------------------------------------------------------------------------------ snapshots

def saved_config(**overrides):
    """A snapshot's config as it comes back from disk: plain Python, tuples as lists."""
    return json.loads(json.dumps(dict(build_config({"mode": "rgb+pose", **overrides}))))


def test_snapshot_fields_by_purpose():
    test, resume = snapshot_fields("test"), snapshot_fields("resume")
    groups = {f.name: f.group for f in FIELDS}
    assert {groups[n] for n in test} == {"network", "input"}
    assert set(test) == {n for n, g in groups.items() if g in ("network", "input")}
    assert set(resume) - set(test) == {n for n, g in groups.items() if g in ("training", "data")} \
        - {"end_epoch", "pretrained", "init_snapshot"}
    assert "dataset" not in test and "dataset" in resume and "end_epoch" not in resume
    assert not {"test_epoch", "gpu_ids", "output_dir", "num_thread"} & set(resume)
    with pytest.raises(ValueError, match="purpose"):
        snapshot_fields("train")
    # With the saved config: only what it fixes (None fixes nothing).
    assert "class_num" not in snapshot_fields("test", saved_config())
    assert "class_num" in snapshot_fields("test", saved_config(class_num=7))


def test_snapshot_decides_network_and_input_at_test():
    saved = saved_config(pose_gate=False, frame_per_seg=4, pose_frame_factor=2, hm_sigma=0.7,
                         input_hm_shape=(28, 28), top_k_pose=3, pose_score_thr=0.2, lr=0.5)
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 3}, purpose="test",
                               snapshot="s.pth", entry="test")
    assert cfg.pose_gate is False and cfg.frame_per_seg == 4 and cfg.pose_frame_factor == 2
    assert cfg.hm_sigma == 0.7 and cfg.input_hm_shape == (28, 28) and cfg.top_k_pose == 3
    assert cfg.pose_score_thr == 0.2 and cfg.test_epoch == 3
    assert cfg.lr == 5e-4  # training fields are not the snapshot's at test time


def test_snapshot_contradiction_is_refused_with_field_values_and_path():
    saved = saved_config(pose_gate=False, frame_per_seg=4)
    with pytest.raises(UsageError, match=r"--frame_per_seg 8 contradicts /runs/snapshot_3.pth.tar, "
                                         r"which was trained with frame_per_seg 4: leave out "
                                         r"--frame_per_seg \(the snapshot decides\)"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "frame_per_seg": 8}, purpose="test",
                             snapshot="/runs/snapshot_3.pth.tar")
    with pytest.raises(UsageError, match=r"--pose_gate true contradicts .*pose_gate false"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "pose_gate": True}, purpose="resume",
                             snapshot="s.pth")
    with pytest.raises(UsageError,
                       match=r"--mode rgb_only contradicts s.pth.*use --mode rgb\+pose"):
        config_from_snapshot(saved, {"mode": "rgb_only"}, purpose="test", snapshot="s.pth")


def test_snapshot_equal_values_after_the_round_trip_are_no_contradiction():
    saved = saved_config(input_img_shape=(96, 96), video_shape=(240, 320), dropout=0.0)
    assert saved["input_img_shape"] == [96, 96] and saved["dropout"] == 0.0
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "input_img_shape": (96, 96),
                                       "video_shape": (240, 320), "dropout": 0,
                                       "frame_per_seg": 8, "hm_sigma": 0.5},
                               purpose="test", snapshot="s.pth")
    assert cfg.input_img_shape == (96, 96) and cfg.video_shape == (240, 320)
    assert cfg.dropout == 0.0


def test_snapshot_none_missing_and_unknown_fields():
    saved = saved_config(frame_per_seg=4)
    saved["class_num"] = None  # derived at run time: fixes nothing
    del saved["stream_agreement"], saved["gate_hidden"]  # fields the snapshot predates
    saved["retired_option"] = 3  # a field that no longer exists
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "class_num": 9, "gate_hidden": 16},
                               purpose="test", snapshot="s.pth")
    assert cfg.class_num == 9 and cfg.gate_hidden == 16 and cfg.stream_agreement is False
    assert cfg.frame_per_seg == 4 and "retired_option" not in cfg
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose"}, purpose="test", snapshot="s.pth")
    assert cfg.class_num is None and cfg.gate_hidden == 0


def test_snapshot_resume_takes_training_except_end_epoch_and_data():
    saved = saved_config(lr=0.02, train_batch_size=3, lr_dec_epoch=(5,), seed=7, end_epoch=10,
                         dataset="NTU", subset="Tiny", pretrained="none")
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "end_epoch": 40, "continue_train": True,
                                       "pretrained": "imagenet", "num_thread": 0},
                               purpose="resume", snapshot="s.pth", entry="train")
    assert cfg.lr == 0.02 and cfg.train_batch_size == 3 and cfg.lr_dec_epoch == (5,)
    assert cfg.seed == 7 and cfg.end_epoch == 40 and cfg.dataset == "NTU" and cfg.subset == "Tiny"
    assert cfg.num_thread == 0 and cfg.pretrained == "imagenet" and cfg.continue_train
    with pytest.raises(UsageError, match=r"--dataset Kinetics contradicts s.pth.*dataset NTU"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "dataset": "Kinetics"},
                             purpose="resume", snapshot="s.pth")
    with pytest.raises(UsageError, match=r"--lr 0.01 contradicts s.pth.*lr 0.02"):
        config_from_snapshot(saved, {"mode": "rgb+pose", "lr": 0.01}, purpose="resume",
                             snapshot="s.pth")


def test_snapshot_dataset_may_change_at_test():
    saved = saved_config(dataset="Kinetics", subset="50")
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "dataset": "Mimetics", "test_epoch": 29},
                               purpose="test", snapshot="s.pth", entry="test")
    assert cfg.dataset == "Mimetics" and cfg.video_shape == (256,)
    # Other runtime choices stay the command line's too.
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "test_batch_size": 2,
                                       "output_dir": "/elsewhere"},
                               purpose="test", snapshot="s.pth")
    assert cfg.test_batch_size == 2 and cfg.model_dir == "/elsewhere/model_dump"


def test_snapshot_with_a_damaged_config_names_it():
    saved = saved_config()
    saved["frame_per_seg"] = "eight"
    with pytest.raises(CheckpointError, match=r"s.pth: its config's frame_per_seg cannot be used"):
        config_from_snapshot(saved, {"mode": "rgb+pose"}, purpose="test", snapshot="s.pth")


def test_a_swap_trained_snapshot_is_tested_without_its_training_fields():
    # Trained with --gate_target swap and the augmentation it needs; at test time the training
    # fields are the defaults (context_aug_prob 0), which must not refuse the snapshot.
    saved = json.loads(json.dumps(dict(build_config(
        {"mode": "rgb+pose", "gate_target": "swap", "context_aug_prob": 0.5}, entry="train"))))
    cfg = config_from_snapshot(saved, {"mode": "rgb+pose", "test_epoch": 3}, purpose="test",
                               snapshot="s.pth", entry="test")
    assert cfg.gate_target == "swap" and cfg.context_aug_prob == 0.0
    # The same value given again on test.py's command line, before the snapshot is read.
    overrides = {"mode": "rgb+pose", "test_epoch": 3, "gate_target": "swap"}
    assert build_config(overrides, entry="test").gate_target == "swap"
    assert config_from_snapshot(saved, overrides, purpose="test", snapshot="s.pth",
                                entry="test").gate_target == "swap"
    # The demo's and the exporter's config.
    assert inference_config(saved, "s.pth", mode="rgb+pose",
                            mode_given=False).gate_target == "swap"
    # Training still refuses swap without the augmentation, fresh or resumed.
    with pytest.raises(UsageError, match=r"^--gate_target swap needs context augmentation"):
        build_config({"mode": "rgb+pose", "gate_target": "swap"}, entry="train")
    predates = dict(saved)
    del predates["context_aug_prob"]  # a snapshot older than the field: the default 0
    with pytest.raises(UsageError, match=r"^--gate_target swap needs context augmentation"):
        config_from_snapshot(predates, {"mode": "rgb+pose", "continue_train": True},
                             purpose="resume", snapshot="s.pth", entry="train")
    assert config_from_snapshot(saved, {"mode": "rgb+pose", "continue_train": True},
                                purpose="resume", snapshot="s.pth",
                                entry="train").context_aug_prob == 0.5
