"""The config object: defaults, stage/dataset rules, command-line overrides."""
import pytest

from main.config import build_config, config_from_argv, default_config


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


def test_test_entry_needs_epoch_and_rejects_unknown_fields():
    cfg = config_from_argv("test", ["--mode", "rgb+pose", "--test_epoch", "29", "--dataset", "Mimetics"])
    assert cfg.test_epoch == 29 and cfg.dataset == "Mimetics"
    with pytest.raises(SystemExit):
        config_from_argv("train", ["--mode", "rgb_only", "--end_epoc", "2"])
    with pytest.raises(SystemExit):
        config_from_argv("train", ["--mode", "rgb_only", "--end_epoch", "two"])
    with pytest.raises(SystemExit):
        config_from_argv("train", ["--mode", "rgb_only", "--pose_frame_factor", "3"])
