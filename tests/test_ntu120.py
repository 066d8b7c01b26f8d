"""NTU RGB+D 120 and the NTU protocols: split membership from the sample names, the listed
samples without skeletons, the loaders on the release's own layout, one training step and a
test on NTU120, cross-view for NTU RGB+D 60, and the `--protocol` option's rules."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.errors import DataError, UsageError
from data.NTU.NTU import NTU
from data.NTU.NTU120 import NTU120
from data.NTU.protocols import (NTU60 as NTU60_RELEASE, NTU120 as NTU120_RELEASE,
                                missing_skeletons, parse_sample, sample_split)
from data.registry import build_dataset
from main import test as test_entry
from main import train as train_entry
from main.config import build_config
from tests.fixtures_data import make_cfg, write_ntu
from tests.fixtures_ntu_release import sample_name, write_ntu_release

# The cross-subject training subjects of NTU RGB+D 120 as its paper (Liu et al. 2019) lists
# them, typed here a second time.
NTU120_XSUB_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
                     45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82,
                     83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103}
LISTED_MISSING = "S001C002P005R002A008"  # first line of both official lists
FIXTURES = osp.join(osp.dirname(osp.abspath(__file__)), "reference_fixtures")


def ntu_cfg(tmp_path, dataset="NTU120", **overrides):
    return make_cfg(tmp_path, dataset=dataset, video_shape=(24, 36), **overrides)


# --------------------------------------------------------------------------- split membership
def test_every_setup_camera_and_subject_goes_to_its_split():
    assert len(NTU120_XSUB_TRAIN) == 53
    for setup in range(1, 33):
        for camera in (1, 2, 3):
            for performer in range(1, 107):
                sample = parse_sample(sample_name(setup, camera, performer, 1 + performer % 2,
                                                  1 + (setup * 7 + performer) % 120))
                assert sample_split(sample, NTU120_RELEASE, "xset") == (
                    "train" if setup % 2 == 0 else "test")
                assert sample_split(sample, NTU120_RELEASE, "xsub") == (
                    "train" if performer in NTU120_XSUB_TRAIN else "test")
                if setup <= 17:
                    assert sample_split(sample, NTU60_RELEASE, "xview") == (
                        "test" if camera == 1 else "train")
    # NTU RGB+D 60's subjects are the first twenty of NTU RGB+D 120's.
    for performer in range(1, 41):
        sample = parse_sample(sample_name(1, 1, performer, 1, 1))
        assert sample_split(sample, NTU60_RELEASE, "xsub") == sample_split(
            sample, NTU120_RELEASE, "xsub")
    with pytest.raises(ValueError, match="not a protocol of NTU RGB\\+D 120"):
        sample_split(parse_sample("S001C001P001R001A001"), NTU120_RELEASE, "xview")


def test_sample_names_and_the_official_missing_lists():
    sample = parse_sample("S031C002P103R002A120_rgb")
    assert (sample.setup, sample.camera, sample.performer, sample.replication,
            sample.action) == (31, 2, 103, 2, 120)
    assert sample.label == 119 and sample.video_id == 31002103002120
    assert parse_sample("s001c001p001r001a001") is None and parse_sample("S01C001") is None
    ntu60, ntu120 = missing_skeletons(NTU60_RELEASE), missing_skeletons(NTU120_RELEASE)
    assert len(ntu60) == 302 and len(ntu120) == 535 and ntu60 < ntu120
    assert LISTED_MISSING in ntu60 and "S032C003P067R002A077" in ntu120
    assert all(parse_sample(n).setup >= 18 for n in ntu120 - ntu60)


# --------------------------------------------------------------------------- the loader
def split_names():
    """Samples covering every setup: cameras 1-3 in turn, training and test subjects."""
    names = [sample_name(s, 1 + s % 3, (1, 3, 45, 106)[s % 4], 1, 60 + s) for s in range(1, 33)]
    return names + [LISTED_MISSING, "S002C001P008R001A002"]


def test_ntu120_splits_from_the_folders_with_listed_samples_left_out(tmp_path):
    names = split_names()
    info = write_ntu_release(str(tmp_path), names, without_skeleton=["S002C001P008R001A002"])
    seen = {}
    for protocol in ("xsub", "xset"):
        for split in ("train", "test"):
            ds = NTU120(ntu_cfg(tmp_path, protocol=protocol), split)
            assert ds.class_num == 120 and ds.protocol == protocol
            kept = {parse_sample(osp.basename(r["frame_dir"])).name for r in ds.records}
            seen[protocol, split] = kept
            for name in kept:
                assert sample_split(parse_sample(name), NTU120_RELEASE, protocol) == split
    for protocol in ("xsub", "xset"):
        assert seen[protocol, "train"] | seen[protocol, "test"] == set(names[:32])
        assert not seen[protocol, "train"] & seen[protocol, "test"]
    assert {int(n[1:4]) for n in seen["xset", "train"]} == set(range(2, 33, 2))
    # The listed sample is a protocol exclusion (S001: xset test; subject 5: xsub train); the
    # other one (S002, subject 8: train in both) lacks its skeleton file: bad data.
    ds = NTU120(ntu_cfg(tmp_path, protocol="xset"), "test")
    assert ds.skipped == {"listed_missing_skeleton": 1} and ds.annotated == 17
    ds = NTU120(ntu_cfg(tmp_path, protocol="xsub"), "train")
    assert ds.skipped == {"listed_missing_skeleton": 1, "missing_skeleton_file": 1}
    assert ds.startup_problems.counts == {"missing_skeleton_file (skipped)": 1}
    record = next(r for r in ds.records if r["frame_dir"].endswith("S002C003P045R001A062"))
    assert record["video_id"] == 2003045001062 and record["label"] == 61
    assert record["frame_num"] == 4 and (record["height"], record["width"]) == (1080, 1920)
    assert record["skeleton_path"] == info["videos"]["S002C003P045R001A062"]["skeleton_path"]


def test_ntu120_poses_scale_from_the_colour_frame(tmp_path):
    name = "S019C002P045R001A095"
    info = write_ntu_release(str(tmp_path), [name], rgb_suffix=True, padded_folders=False)
    ds = NTU120(ntu_cfg(tmp_path, protocol="xset"), "test")
    assert len(ds.records) == 1 and ds.records[0]["frame_dir"] == info["videos"][name][
        "frame_dir"]
    item = ds[0]
    assert item["problems"] == [] and int(item["label"]) == 94
    # 1920 x 1080 colour pixels -> the 24 x 36 frame -> centre crop 16 x 16 at (10, 4) -> 8 x 8.
    body = info["videos"][name]["body"]
    expected = (body * [36 / 1920, 24 / 1080] - [10, 4]) / 2
    np.testing.assert_allclose(item["pose_coords"][0, 0].numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(item["video"].mean(dim=(0, 2, 3)).numpy(),
                               np.asarray(info["videos"][name]["color"]) / 255, atol=4 / 255)


def test_ntu120_without_sample_folders_is_one_line(tmp_path):
    write_ntu_release(str(tmp_path), ["S001C001P001R001A001"])  # xset test only
    with pytest.raises(DataError, match=r"frames: no NTU RGB\+D 120 sample folder of the xset "
                                        r"train split \(expected nturgb\+d_rgb_s<setup>/"):
        NTU120(ntu_cfg(tmp_path, protocol="xset"), "train")


# --------------------------------------------------------------------------- NTU RGB+D 60
def test_ntu60_cross_view_from_the_folders(tmp_path):
    names = [sample_name(s, c, 1 + c, 1, 1 + s) for s in (1, 2, 17) for c in (1, 2, 3)]
    names += ["S018C001P050R001A070", "S003C002P002R001A061"]  # NTU RGB+D 120 only
    write_ntu_release(str(tmp_path), names, dataset="NTU")
    cameras = {}
    for split in ("train", "test"):
        ds = NTU(ntu_cfg(tmp_path, dataset="NTU", protocol="xview"), split)
        assert ds.class_num == 60 and not ds.reads_annotation_files
        cameras[split] = sorted(parse_sample(osp.basename(r["frame_dir"])).camera
                                for r in ds.records)
    assert cameras == {"train": [2, 2, 2, 3, 3, 3], "test": [1, 1, 1]}
    assert any("samples outside NTU RGB+D 60" in n and "nturgb+d_rgb_s018" in n
               for n in ds.startup_notes)
    # The default protocol still reads NTU_{train,test}.json, as before.
    with pytest.raises(DataError, match=r"NTU_test\.json"):
        NTU(ntu_cfg(tmp_path, dataset="NTU"), "test")


def test_ntu60_cross_view_on_the_reference_fixture_agrees_with_its_json(tmp_path):
    # Written by other hands (tests/reference_fixtures/ntu_fixture.py): every sample is camera 1,
    # so all of them test; the labels and frame counts found in the folders are its json's.
    root = tmp_path / "NTU" / "data"
    subprocess.run([sys.executable, osp.join(FIXTURES, "ntu_fixture.py"), str(root), "--videos",
                    "4", "--frames", "20", "--seed", "0"], check=True, capture_output=True)
    coco = json.load(open(root / "NTU_test.json"))
    labels = {a["image_id"]: a["action_label"] for a in coco["annotations"]}
    expected = sorted((parse_sample(i["file_name"]).video_id, labels[i["id"]], i["frame_num"])
                      for i in coco["images"])
    assert len(expected) == 4
    ds = NTU(ntu_cfg(tmp_path, dataset="NTU", protocol="xview"), "test")
    assert sorted((r["video_id"], r["label"], r["frame_num"]) for r in ds.records) == expected
    with pytest.raises(DataError, match="no NTU RGB\\+D 60 sample folder of the xview train"):
        NTU(ntu_cfg(tmp_path, dataset="NTU", protocol="xview"), "train")


def test_ntu60_json_leaves_the_listed_sample_out(tmp_path):
    info = write_ntu(str(tmp_path), num_classes=2)
    path = osp.join(info["data_root"], "NTU_test.json")
    coco = json.load(open(path))
    coco["images"][0]["skeleton_file_name"] = f"{LISTED_MISSING}.skeleton"
    json.dump(coco, open(path, "w"))
    ds = NTU(ntu_cfg(tmp_path, dataset="NTU"), "test")
    assert ds.skipped == {"listed_missing_skeleton": 1} and len(ds.records) == 1
    assert ds.startup_problems.counts == {}  # the protocol's exclusion, no data problem


# --------------------------------------------------------------------------- config
def test_protocol_option_rules():
    cfg = build_config({"dataset": "NTU120"})
    assert cfg.protocol is None and cfg.video_shape == (240, 320) and cfg.class_num is None
    for overrides, message in (
            ({"dataset": "NTU120", "protocol": "xview"},
             "--protocol xview is not a protocol of --dataset NTU120 (its protocols: xsub, xset)"),
            ({"dataset": "NTU", "protocol": "xset"},
             "--protocol xset is not a protocol of --dataset NTU (its protocols: xsub, xview)"),
            ({"dataset": "Kinetics", "protocol": "xsub"},
             "--protocol xsub is for NTU and NTU120; --dataset Kinetics has a split of its own: "
             "leave out --protocol")):
        with pytest.raises(UsageError) as err:
            build_config(overrides)
        assert str(err.value) == message
    assert build_config({"dataset": "NTU", "protocol": "xview"}).protocol == "xview"


# --------------------------------------------------------------------------- train and test
def test_ntu120_trains_one_step_and_tests(tmp_path, capsys):
    names = [sample_name(s, 1, 1 + s, 1, a) for s in (1, 2, 3, 4) for a in (61, 120)]
    write_ntu_release(str(tmp_path), names, frame_num=6)
    out = tmp_path / "out"
    common = ["--dataset", "NTU120", "--protocol", "xset", "--mode", "pose_only",
              "--data_dir", str(tmp_path), "--output_dir", str(out), "--frame_per_seg", "2",
              "--frame_interval", "2", "--video_shape", "24,36", "--input_img_shape", "16,16",
              "--input_hm_shape", "8,8", "--num_thread", "0", "--progress_bar", "false",
              "--gpu", "cpu", "--test_infer_num", "2"]
    train_entry.main([*common, "--end_epoch", "1", "--train_batch_size", "2",
                      "--max_iters_per_epoch", "1", "--pretrained", "none", "--seed", "0"])
    snap = torch.load(out / "model_dump" / "snapshot_0.pth.tar", weights_only=True)
    assert snap["network"]["module.classifier.fc.0.weight"].shape[0] == 120
    summary = test_entry.main([*common, "--test_epoch", "0"])
    assert summary["videos"] == summary["annotated"] == 4  # setups 1 and 3
    result = json.load(open(out / "result" / "ntu120_result.json"))
    assert sorted(result) == sorted(str(parse_sample(n).video_id) for n in names
                                    if int(n[1:4]) % 2)
    assert all(len(p) == 120 and abs(sum(p) - 1) < 1e-4 for p in result.values())
    printed = capsys.readouterr().out
    assert "Top-1 accuracy" in printed and "tested on its" not in printed
    # --protocol comes from test.py's command line, like --dataset: the default (xsub) tests
    # another split than the snapshot's, and test.py says so.
    plain = [a for a in common if a not in ("--protocol", "xset")]
    summary = test_entry.main([*plain, "--test_epoch", "0"])
    assert summary["videos"] == 2  # subjects 2..5: 2, 4, 5 train; 3 tests (both actions)
    assert ("was trained on the xset split of NTU120, and is tested on its xsub split: the "
            "test videos may include training videos; give --protocol xset"
            in capsys.readouterr().out)


def test_registry_builds_ntu120(tmp_path):
    write_ntu_release(str(tmp_path), ["S002C001P001R001A001"])
    assert isinstance(build_dataset(ntu_cfg(tmp_path), "NTU120", "train"), NTU120)


def test_ntu60_cross_view_from_the_release_videos_equals_the_folders(tmp_path):
    # The release's `<name>_rgb.avi` videos stand for the frame folders `<name>_rgb/`.
    from data.sources.video_file import VideoFile
    from tests.test_video_source import folders_to_videos, items
    names = [sample_name(s, c, 1 + c, 1, 1 + s) for s in (1, 2) for c in (1, 2)]
    info = write_ntu_release(str(tmp_path / "jpeg"), names, dataset="NTU", frame_num=6,
                             rgb_suffix=True)
    write_ntu_release(str(tmp_path / "video"), names, dataset="NTU", frame_num=6,
                      rgb_suffix=True)
    dirs = [v["frame_dir"].replace(str(tmp_path / "jpeg"), str(tmp_path / "video"))
            for v in info["videos"].values()]
    videos = folders_to_videos(dirs, kind="ffv1.avi")
    assert all(v.endswith("_rgb.avi") for v in videos.values())
    for split, count in (("train", 2), ("test", 2)):
        sets = [NTU(ntu_cfg(tmp_path / side, dataset="NTU", protocol="xview",
                            video_short_side=0), split) for side in ("video", "jpeg")]
        assert [r["frame_num"] for r in sets[0].records] == [6] * count
        assert [osp.basename(r["frame_dir"]) for r in sets[0].records] == \
            [osp.basename(r["frame_dir"]) for r in sets[1].records]
        for a, b in zip(*(items(d) for d in sets)):
            assert a["problems"] == [] and torch.equal(a["video"], b["video"])
            assert torch.equal(a["pose_coords"], b["pose_coords"])
    assert isinstance(sets[0].frames, VideoFile)
