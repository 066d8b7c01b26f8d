"""test.py builds the network and the test-time input from the snapshot's configuration, refuses
a command line that contradicts it, and keeps the command line for the authors' files."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from common.train.checkpoint import load_snapshot, save_snapshot, snapshot_path
from common.train.engine import evaluate, predict
from common.model import build_model
from data.collate import collate_clips
from data.registry import build_dataset
from main import test as test_entry
from main.config import build_config
from tests.fixtures_data import write_kinetics

# Options that change no weight shape: a snapshot trained with them and tested without them
# would load strictly and give wrong numbers.
TRAINED_WITH = {"pose_gate": False, "frame_per_seg": 3, "frame_interval": 4,
                "pose_frame_factor": 2, "video_shape": (36,), "input_img_shape": (32, 32),
                "input_hm_shape": (12, 12), "hm_sigma": 0.8, "paf_sigma": 1.5, "top_k_pose": 2,
                "pose_score_thr": 0.2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapcfg")
    write_kinetics(str(root), num_classes=3, videos_per_class=2, frame_num=20,
                   frame_size=(36, 48), subset="Tiny")
    out = root / "out"
    base = {"subset": "Tiny", "data_dir": str(root), "output_dir": str(out), "num_thread": 0,
            "progress_bar": False, "test_infer_num": 2, "pretrained": "none"}
    cfg = build_config({**base, "mode": "rgb+pose", **TRAINED_WITH})
    dataset = build_dataset(cfg, "Kinetics", "test")
    torch.manual_seed(0)
    model = build_model(cfg, dataset.class_num, dataset.joint_set.limbs, dataset.joint_set.joint_num)
    model.init_weights("none")
    with torch.no_grad():  # sharp, input-dependent outputs: a wrong input shows in the numbers
        for part in (model.pose2feat, model.aggregator):
            for module in part.modules():
                if isinstance(module, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(module.weight)
        model.classifier.fc[0].weight.normal_(0, 3.0)
    path = snapshot_path(cfg.model_dir, 3)
    save_snapshot(path, model, None, 3, "rgb+pose", config=cfg)
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_clips)
    expected = evaluate(predict(model, loader, torch.device("cpu"), progress=False))
    args = ["--mode", "rgb+pose", "--test_epoch", "3", "--data_dir", str(root), "--output_dir",
            str(out), "--subset", "Tiny", "--num_thread", "0", "--progress_bar", "false",
            "--test_infer_num", "2", "--gpu", "cpu"]  # the expected values were computed on the CPU
    return out, path, args, expected


def result_probs(out):
    result = json.load(open(osp.join(out, "result", "kinetics_result.json")))
    return {int(k): np.array(v) for k, v in result.items()}


def changed_snapshot(path, folder, config_update):
    """A copy of the snapshot at `path` in `folder`/model_dump, its saved config updated with
    the dict `config_update` (None: no saved config, the authors' format); returns the folder."""
    snap = load_snapshot(path)
    if config_update is None:
        del snap["config"]
    else:
        snap["config"] = dict(snap["config"], **config_update)
    model_dump = folder / "model_dump"
    model_dump.mkdir()
    torch.save(snap, model_dump / "snapshot_3.pth.tar")
    return model_dump


def test_network_and_input_come_from_the_snapshot(trained):
    out, path, args, expected = trained
    summary = test_entry.main(args)  # none of TRAINED_WITH on the command line
    got = result_probs(out)
    assert sorted(got) == sorted(int(i) for i in expected["video_ids"])
    for video_id, probs in zip(expected["video_ids"], expected["probs"]):
        np.testing.assert_allclose(got[int(video_id)], probs, atol=1e-6)
    assert summary["top1"] == pytest.approx(expected["top1"])
    # The probabilities differ between videos by far more than the tolerance, so a wrong input
    # (another frame count, crop, heatmap or gate) could not have matched them.
    assert np.ptp(np.stack(list(got.values())), axis=0).max() > 1e-2
    log = open(osp.join(out, "log", "test_rgb_pose.txt")).read()
    assert "taken from" in log and "pose_gate: False" in log and "hm_sigma: 0.8" in log


def test_agreeing_option_is_accepted_contradicting_one_refused(trained, capsys):
    out, path, args, _ = trained
    test_entry.main(args + ["--frame_per_seg", "3", "--input_hm_shape", "12,12"])
    for option, value in (("--frame_per_seg", "8"), ("--pose_gate", "true"),
                          ("--pose_frame_factor", "1"), ("--top_k_pose", "5"),
                          ("--pose_score_thr", "0.1"), ("--input_hm_shape", "56,56"),
                          ("--class_num", "7")):
        with pytest.raises(SystemExit) as exc:
            test_entry.main(args + [option, value])
        assert exc.value.code != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert option[2:] in err and (path in err or option == "--class_num"), err


def test_authors_snapshot_without_config_uses_the_command_line(trained, tmp_path):
    out, path, args, expected = trained
    authors = changed_snapshot(path, tmp_path, None)
    explicit = []
    for key, value in TRAINED_WITH.items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value).lower()
        explicit += [f"--{key}", text]
    test_entry.main(args + ["--model_dir", str(authors)] + explicit)
    got = result_probs(out)
    for video_id, probs in zip(expected["video_ids"], expected["probs"]):
        np.testing.assert_allclose(got[int(video_id)], probs, atol=1e-6)


def test_authors_snapshot_checks_the_command_line_rules(trained, tmp_path, capsys):
    # An authors' snapshot records no configuration: the rules between network and input fields
    # that test.py defers to the snapshot's config are checked on the command line's values.
    out, path, args, _ = trained
    authors = changed_snapshot(path, tmp_path, None)
    with pytest.raises(SystemExit) as exc:
        # --frame_interval is left at its default, 8: at start-up it waits for the snapshot.
        test_entry.main(args + ["--model_dir", str(authors), "--pose_frame_factor", "3"])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--pose_frame_factor 3 must divide --frame_interval 8" in err


def test_a_snapshot_trained_with_the_swap_target_is_tested(trained, tmp_path):
    # --gate_target swap needed --context_aug_prob > 0 to train; test.py's context_aug_prob is
    # the default 0, which must not refuse the snapshot (the gate's target changes no output).
    out, path, args, expected = trained
    swapped = changed_snapshot(path, tmp_path, {"gate_target": "swap", "context_aug_prob": 0.5})
    summary = test_entry.main(args + ["--model_dir", str(swapped)])
    assert summary["top1"] == pytest.approx(expected["top1"])
    got = result_probs(out)
    for video_id, probs in zip(expected["video_ids"], expected["probs"]):
        np.testing.assert_allclose(got[int(video_id)], probs, atol=1e-6)
