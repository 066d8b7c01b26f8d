"""Bad data: each defect and each kind of bad input, by the message or the count.

Same geometry as tests/test_datasets.py: frames 32 x 48 (h x w), `video_shape (24,)` ->
resized 24 x 36, centre crop 16 x 16 at (xmin 10, ymin 4), heatmap grid 8 x 8 (grid = crop / 2),
clips of T = 2 frames every 2 frames (test clip 0 = frames 0 and 2).
"""
import json
import logging
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from common.errors import DataError
from common.nets.pose_maps import render_pose_maps
from tool.benchmarks.baselines.pose_maps_dense import render_pose_maps_dense
from common.report.problems import JOINTS_ZEROED, POSE_ZEROED, SKIPPED, Problem
from data.sources.jpeg_folder import frame_path
from data.collate import collate_clips
from data.joint_sets import NTU_25, OPENPOSE_18
from data.Kinetics.Kinetics import Kinetics, read_kinetics_skeleton
from data.Mimetics.Mimetics import Mimetics, read_mimetics_poses
from data.NTU.NTU import NTU, choose_setup_naming, read_ntu_skeleton
from data.poses import FAR_JOINT_FACTOR, sanitize_joints
from main.config import build_config
from tests.fixtures_data import (
    make_cfg,
    write_json,
    write_kinetics,
    write_kinetics_skeleton,
    write_mimetics,
    write_mimetics_poses,
    write_ntu,
    write_ntu_skeleton,
)

UNUSABLE_KEYS = {"video_id", "clip_index", "problems"}


def ntu_cfg(tmp_path, **overrides):
    return make_cfg(tmp_path, dataset="NTU", video_shape=(24, 36), **overrides)


def mim_cfg(tmp_path, **overrides):
    return make_cfg(tmp_path, dataset="Mimetics", **overrides)


def to_grid(x, y):
    """Resized-frame pixel -> heatmap grid for the centre crop of these tests."""
    return (x - 10) / 2, (y - 4) / 2


@pytest.fixture
def data_log():
    """The messages of the 'integral_action.data' logger (whatever its propagation)."""
    records = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record)

    log = logging.getLogger("integral_action.data")
    handler, level = ListHandler(level=logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield records
    log.removeHandler(handler)
    log.setLevel(level)


def messages(records, level=logging.INFO):
    return [r.getMessage() for r in records if r.levelno == level]


def edit_json(path, change):
    with open(path) as f:
        content = json.load(f)
    change(content)
    write_json(path, content)


def clear_reader_caches():
    for reader in (read_kinetics_skeleton, read_mimetics_poses, read_ntu_skeleton):
        reader.cache_clear()


@pytest.fixture(autouse=True)
def fresh_caches():
    # Tests rewrite pose files in new tmp paths, but a path may repeat across parametrised runs.
    clear_reader_caches()
    yield
    clear_reader_caches()


# --------------------------------------------------------------------------- class count
def with_person_category(coco):
    """What real COCO-layout releases carry: the object category, on every annotation."""
    coco["categories"] = [{"id": 1, "name": "person"}]
    for ann in coco["annotations"]:
        ann["category_id"] = 1


def test_person_category_is_not_the_class_count(tmp_path, data_log):
    # Defect 1: the loaders took len(categories) = 1 as the class count and stopped with
    # "labels span [0, 1] but class_num is 1".
    k = write_kinetics(str(tmp_path), with_categories=False)
    write_mimetics(str(tmp_path), with_categories=False)
    write_ntu(str(tmp_path))
    for path in (osp.join(k["data_root"], "Kinetics50_val.json"),
                 osp.join(tmp_path, "Mimetics", "data", "Mimetics50.json"),
                 osp.join(tmp_path, "NTU", "data", "NTU_test.json")):
        edit_json(path, with_person_category)
    kinetics = Kinetics(make_cfg(tmp_path), "test")
    assert kinetics.class_num == 50 and len(kinetics.records) == 4
    assert Mimetics(mim_cfg(tmp_path), "test").class_num == 50
    assert NTU(ntu_cfg(tmp_path), "test").class_num == 60
    (summary,) = [m for m in messages(data_log) if m.startswith("Kinetics test")]
    assert summary == (
        f"Kinetics test: kept 4 of 4 annotated videos in "
        f"{osp.join(k['data_root'], 'Kinetics50_val.json')}; 50 classes (the Kinetics50 data "
        "set's own count; the file's 1 'categories' entry is a COCO object category, not an "
        "action class: not used); left out: none")


def test_unknown_subset_counts_the_largest_label(tmp_path, data_log):
    # The project's synthetic subset 'Synth' (and any other) has no known count.
    write_kinetics(str(tmp_path), num_classes=3, videos_per_class=1, subset="Synth",
                   with_categories=False)
    edit_json(osp.join(tmp_path, "Kinetics", "data", "KineticsSynth_val.json"),
              with_person_category)
    ds = Kinetics(make_cfg(tmp_path, subset="Synth"), "test")
    assert ds.class_num == 3
    assert "; 3 classes (the largest label 2 + 1, no known class count for this data set; the " \
        "file's 1 'categories' entry is a COCO object category" in messages(data_log)[-1]
    given = Kinetics(make_cfg(tmp_path, subset="Synth", class_num=7), "test")
    assert (given.class_num, given.class_num_reason) == (
        7, "given as class_num: --class_num, or at test time the snapshot's")


def test_label_out_of_range_is_left_out_counted_and_named(tmp_path, data_log):
    info = write_kinetics(str(tmp_path))
    path = osp.join(info["data_root"], "Kinetics50_val.json")

    def bad_labels(coco):
        coco["annotations"][1]["action_label"] = 57
        coco["annotations"][3]["action_label"] = -1

    edit_json(path, bad_labels)
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.skipped == {"label_out_of_range": 2}
    assert [r["video_id"] for r in ds.records] == [1, 3] and ds.annotated == 4
    warnings = messages(data_log, logging.WARNING)
    assert warnings == [
        f"data problem: {path}: video 2: action_label 57 is outside [0, 50) (50 classes: the "
        "Kinetics50 data set's own count) (label_out_of_range, skipped)",
        f"data problem: {path}: video 4: action_label -1 is outside [0, 50) (50 classes: the "
        "Kinetics50 data set's own count) (label_out_of_range, skipped)",
    ]
    assert messages(data_log)[-1].endswith("left out: label_out_of_range: 2")
    # --strict: the first bad-data skip at start-up is an error (one line naming the file).
    with pytest.raises(DataError) as err:
        Kinetics(make_cfg(tmp_path, strict=True), "test")
    assert str(err.value).startswith(f"{path}: video 2: action_label 57 is outside [0, 50)")
    assert "--strict" in str(err.value) and "\n" not in str(err.value)


def test_strict_allows_the_protocols_own_exclusions(tmp_path):
    write_kinetics(str(tmp_path), short_videos=1, no_skeleton_videos=1)
    ds = Kinetics(make_cfg(tmp_path, strict=True), "test")
    assert ds.skipped == {"too_short": 1, "has_skeleton_false": 1}
    assert ds.annotated == 6 and len(ds.records) + sum(ds.skipped.values()) == ds.annotated


# --------------------------------------------------------------------------- NTU folders
@pytest.mark.parametrize("padded", [False, True])
def test_ntu_frame_folder_naming_is_decided_once_and_logged(tmp_path, data_log, padded):
    # Defect 2: the loader wrote `s001` where docs/data_format.md (and the original) have `s1`.
    info = write_ntu(str(tmp_path), setup_idx=1, padded_folders=padded)
    ds = NTU(ntu_cfg(tmp_path), "test")
    folder = "nturgb+d_rgb_s001" if padded else "nturgb+d_rgb_s1"
    assert ds.padded_setups is padded
    assert [r["frame_dir"] for r in ds.records] == [v["frame_dir"] for v in info["test"]]
    assert all(f"/frames/{folder}/" in r["frame_dir"] for r in ds.records)
    assert ds[0]["problems"] == [] and ds[0]["video"].shape == (2, 3, 16, 16)
    (summary,) = [m for m in messages(data_log) if m.startswith("NTU test")]
    if padded:
        assert summary.endswith("; frame folders: the zero-padded nturgb+d_rgb_s001 naming of "
                                "the official archives (1 of 1 setups found; 0 named "
                                "nturgb+d_rgb_s1 as in docs/data_format.md)")
    else:
        assert summary.endswith("; frame folders: nturgb+d_rgb_s1 as docs/data_format.md names "
                                "them (1 of 1 setups found)")


def test_choose_setup_naming():
    assert choose_setup_naming({"nturgb+d_rgb_s1", "nturgb+d_rgb_s2"}, [1, 2])[0] is False
    assert choose_setup_naming({"nturgb+d_rgb_s001", "nturgb+d_rgb_s002"}, [1, 2])[0] is True
    # Both present, or a tie: the documented name wins; strings that are not numbers stay as
    # they are.
    assert choose_setup_naming({"nturgb+d_rgb_s1", "nturgb+d_rgb_s001"}, [1])[0] is False
    assert choose_setup_naming({"nturgb+d_rgb_s1", "nturgb+d_rgb_s002"}, [1, 2])[0] is False
    assert choose_setup_naming(set(), [1])[0] is False


def test_ntu_video_without_a_setup_folder_is_left_out(tmp_path, data_log):
    info = write_ntu(str(tmp_path), setup_idx=1)
    edit_json(osp.join(info["data_root"], "NTU_test.json"),
              lambda coco: coco["images"][1].update(setup_idx=7))
    ds = NTU(ntu_cfg(tmp_path), "test")
    assert ds.skipped == {"missing_frame_folder": 1} and len(ds.records) == 1
    missing = osp.join(info["data_root"], "frames", "nturgb+d_rgb_s7")
    assert messages(data_log, logging.WARNING) == [
        f"data problem: {missing}: video 2: no frame folder for setup 7 (missing_frame_folder, "
        "skipped)"]


# --------------------------------------------------------------------------- joints
def assert_finite_pose_maps(item, joint_set):
    coords, scores = item["pose_coords"], item["pose_scores"]
    limbs = torch.tensor(joint_set.limbs)
    maps = render_pose_maps(coords, scores, limbs, (8, 8))
    assert maps.shape == (coords.shape[0], joint_set.pose_channels, 8, 8)
    assert torch.isfinite(maps).all()


def joint_problems(item):
    return {p.reason: p for p in item["problems"]}


def check_zeroed_joints(item, path, joint_set):
    """NaN joint 3 in frame 0, inf joint 4 and a far joint 5 in frame 2, of person 0."""
    coords, scores = item["pose_coords"].numpy(), item["pose_scores"].numpy()
    assert np.isfinite(coords).all() and np.isfinite(scores).all()
    assert scores[0, 0, 3] == 0 and scores[1, 0, 4] == 0 and scores[1, 0, 5] == 0
    np.testing.assert_allclose(coords[0, 0, 3], to_grid(0, 0))
    np.testing.assert_allclose(coords[1, 0, 4], to_grid(0, 0))
    np.testing.assert_allclose(coords[1, 0, 5], to_grid(0, 0))
    assert np.all(np.delete(scores[0, 0], 3) > 0)  # the other joints are untouched
    problems = joint_problems(item)
    assert set(problems) == {"nonfinite_joint", "far_joint"}
    nonfinite, far = problems["nonfinite_joint"], problems["far_joint"]
    assert nonfinite.path == far.path == path
    assert nonfinite.action == far.action == JOINTS_ZEROED
    assert nonfinite.detail == ("2 joint(s) with NaN/inf coordinates or scores in frames 0, 2 "
                                "(0-based): score 0, coordinate (0, 0)")
    assert far.detail == ("1 joint(s) more than 10 frame sizes out of the frame in frame 2 "
                          "(0-based): score 0, coordinate (0, 0)")
    assert_finite_pose_maps(item, joint_set)


def test_nonfinite_and_far_joints_kinetics(tmp_path):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    pose = np.tile([0.5, 0.5], (18, 1))
    frames = {k: [(pose.copy(), np.full(18, 0.8))] for k in range(1, 21)}
    frames[1][0][0][3] = (np.nan, 0.5)
    frames[3][0][0][4] = (0.5, np.inf)
    frames[3][0][0][5] = (1e6, 0.5)  # 36 million resized pixels out
    path = info["val"][0]["skeleton_path"]
    write_kinetics_skeleton(path, frames)
    with open(path) as f:
        assert "NaN" in f.read()  # what json writes for it
    item = Kinetics(make_cfg(tmp_path), "test")[0]
    check_zeroed_joints(item, path, OPENPOSE_18)
    # Without the sanitising, NaN x score 0 would have reached the maps of the original's
    # dense formulation (this project's renderer skips non-finite joints on its own as well).
    raw = torch.from_numpy(np.array(item["pose_coords"]))
    raw[0, 0, 3, 0] = float("nan")
    limbs = torch.tensor(OPENPOSE_18.limbs)
    assert not torch.isfinite(render_pose_maps_dense(raw, item["pose_scores"], limbs,
                                                     (8, 8))).all()
    assert torch.isfinite(render_pose_maps(raw, item["pose_scores"], limbs, (8, 8))).all()


def test_nonfinite_and_far_joints_mimetics(tmp_path):
    info = write_mimetics(str(tmp_path), num_classes=1)
    pose = np.tile([24.0, 16.0], (18, 1))
    frames = [[(pose.copy(), np.full(18, 0.9), 1.0)] for _ in range(20)]
    frames[0][0][0][3] = (np.nan, np.nan)
    frames[2][0][0][4] = (-np.inf, 3.0)
    frames[2][0][0][5] = (3.0, 48 * 11.0)  # 11 frame heights down
    path = info["videos"][0]["pose_path"]
    write_mimetics_poses(path, frames)
    item = Mimetics(mim_cfg(tmp_path), "test")[0]
    check_zeroed_joints(item, path, OPENPOSE_18)


def test_nonfinite_and_far_joints_ntu(tmp_path):
    info = write_ntu(str(tmp_path), num_classes=1)
    body = np.tile([24.0, 16.0], (25, 1))
    frames = [[body.copy()] for _ in range(20)]
    frames[0][0][3] = (np.nan, np.nan)
    frames[2][0][4] = (np.inf, 1.0)
    frames[2][0][5] = (1e30, 1.0)
    path = info["test"][0]["skeleton_path"]
    write_ntu_skeleton(path, frames)
    item = NTU(ntu_cfg(tmp_path), "test")[0]
    coords, scores = item["pose_coords"].numpy(), item["pose_scores"].numpy()
    assert np.isfinite(coords).all() and np.isfinite(scores).all()
    for frame, joint in ((0, 3), (1, 4), (1, 5)):
        assert scores[frame, 0, joint] == 0
        np.testing.assert_allclose(coords[frame, 0, joint], to_grid(0, 0))
    assert np.all(np.delete(scores[0, 0], 3) > 0)
    # NaN/inf is the Kinect export's untracked joint (docs/data_format.md: coordinate 0,
    # score 0), not a problem; a finite coordinate far out of the frame is one.
    problems = joint_problems(item)
    assert set(problems) == {"far_joint"} and problems["far_joint"].path == path
    assert problems["far_joint"].detail == ("1 joint(s) more than 10 frame sizes out of the "
                                            "frame in frame 2 (0-based): score 0, coordinate (0, 0)")
    assert_finite_pose_maps(item, NTU_25)


def test_nan_score_becomes_zero_and_sanitize_bound():
    coords = np.zeros((1, 1, 3, 2), np.float32)
    coords[0, 0, 1] = (10 * 36, 10 * 24)  # exactly at the bound: kept
    coords[0, 0, 2] = (10 * 36 + 1, 0)   # just past it: zeroed
    scores = np.array([[[np.nan, 0.5, 0.5]]], np.float32)
    out_c, out_s, nonfinite, far = sanitize_joints(coords, scores, (24, 36))
    assert FAR_JOINT_FACTOR == 10
    assert out_s.tolist() == [[[0.0, 0.5, 0.0]]]
    assert nonfinite.tolist() == [[[True, False, False]]]
    assert far.tolist() == [[[False, False, True]]]
    assert out_c[0, 0, 1].tolist() == [360, 240] and out_c[0, 0, 2].tolist() == [0, 0]
    assert np.isnan(scores[0, 0, 0])  # inputs are not modified


def test_rgb_only_does_not_report_pose_problems(tmp_path):
    # rgb_only reads the poses (same item keys) but never looks at them.
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    with open(info["val"][0]["skeleton_path"], "w") as f:
        f.write('{"data": [')
    item = Kinetics(make_cfg(tmp_path, mode="rgb_only"), "test")[0]
    assert item["problems"] == [] and torch.all(item["pose_scores"] == 0)


# --------------------------------------------------------------------------- frames
def test_missing_jpeg_skips_the_clips_that_need_it(tmp_path):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    missing = frame_path(info["val"][0]["frame_dir"], 2)  # 000003.jpg
    os.remove(missing)
    ds = Kinetics(make_cfg(tmp_path), "test")
    item = ds[0]  # frames 0 and 2
    assert set(item) == UNUSABLE_KEYS and "label" not in item
    assert int(item["video_id"]) == 1 and item["video_id"].dtype == torch.int64
    assert item["clip_index"] == 0
    assert item["problems"] == [Problem("missing_frame", missing, "frame file not found",
                                        SKIPPED)]
    assert ds[1]["problems"] == [] and "label" in ds[1]  # clip 1: frames 1 and 3


@pytest.mark.parametrize("damage,detail", [
    (lambda data: b"", "empty file"),
    (lambda data: data[: len(data) // 2], "truncated JPEG"),
    (lambda data: b"\x00garbage" * 40, "not a decodable image (320 bytes)"),
])
def test_corrupt_jpeg_is_skipped(tmp_path, damage, detail):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    path = frame_path(info["val"][0]["frame_dir"], 0)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    item = Kinetics(make_cfg(tmp_path), "test")[0]
    (problem,) = item["problems"]
    assert set(item) == UNUSABLE_KEYS
    assert (problem.reason, problem.path, problem.action) == ("corrupt_frame", path, SKIPPED)
    assert problem.detail.startswith(detail)
    # pose_only reads that one frame for the frame size: skipped too.
    item = Kinetics(make_cfg(tmp_path, mode="pose_only"), "test")[0]
    assert set(item) == UNUSABLE_KEYS and item["problems"][0].reason == "corrupt_frame"


def test_fewer_frames_on_disk_than_frame_num(tmp_path):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    frame_dir = info["val"][0]["frame_dir"]
    for k in range(15, 20):  # the json says 20 frames, the disk holds 15
        os.remove(frame_path(frame_dir, k))
    ds = Kinetics(make_cfg(tmp_path), "test")
    items = [ds[i] for i in range(10)]
    starts = [ds.clip_start(ds.records[0], c, None) for c in range(10)]
    for start, item in zip(starts, items):
        if start + 2 >= 15:
            assert item["problems"] == [Problem("missing_frame", frame_path(frame_dir, 15)
                                                if start < 15 else frame_path(frame_dir, start),
                                                "frame file not found", SKIPPED)]
        else:
            assert "label" in item and item["problems"] == []
    assert sum("label" not in item for item in items) == 3  # starts 13, 15, 17


# --------------------------------------------------------------------------- pose files
KINETICS_BAD = [
    ('{"data": [{"frame_index": 1, "skeleton": [', "not valid JSON (Expecting value at line 1 "
                                                  "column 43); the kinetics-skeleton pose file "
                                                  "is truncated or damaged"),
    ("", "empty file (expected a kinetics-skeleton pose file in JSON)"),
    ('{"data": [{"frame_index": "one", "skeleton": []}]}',
     "data[0]: 'frame_index' is 'one', not an integer"),
    ('{"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5, "x"], "score": [1]}]}]}',
     "data[0] (frame_index 1), person 0: 'pose' is not a (rectangular) list of numbers"),
    ('[1, 2]', "not a kinetics-skeleton pose file (needs an object with a 'data' list; the top "
               "level is a list)"),
    ('{"data": [{"frame_index": 1, "skeleton": [{"pose": ' + json.dumps([0.5] * 34)
     + ', "score": ' + json.dumps([1.0] * 17) + '}]}]}',
     "data[0] (frame_index 1), person 0 has 34 pose values and 17 scores, expected 36 and 18 "
     "(18 joints)"),
]


@pytest.mark.parametrize("content,detail", KINETICS_BAD, ids=[
    "truncated", "empty", "frame_index", "pose_value", "not_object", "joint_count"])
def test_bad_kinetics_pose_file(tmp_path, content, detail):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    path = info["val"][0]["skeleton_path"]
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(DataError) as err:
        read_kinetics_skeleton(path)
    assert str(err.value).startswith(f"{path}: {detail}")
    check_bad_pose_file(make_cfg(tmp_path), Kinetics, path, detail)


def check_bad_pose_file(cfg, cls, path, detail):
    """rgb+pose keeps the frames with no people; pose_only leaves the clip out."""
    item = cls(cfg, "test")[0]
    (problem,) = item["problems"]
    assert (problem.reason, problem.path, problem.action) == ("bad_pose_file", path, POSE_ZEROED)
    assert problem.detail.startswith(detail)
    assert item["video"].shape[0] == 2 and torch.all(item["pose_scores"] == 0)
    # Nobody: every person is padding, at pixel (1, 1) -> grid ((1 - 10) / 2, (1 - 4) / 2).
    assert torch.all(item["pose_coords"][..., 0] == -4.5)
    assert torch.all(item["pose_coords"][..., 1] == -1.5)
    cfg = dict(cfg, mode="pose_only")
    item = cls(build_config(cfg), "test")[0]
    assert set(item) == UNUSABLE_KEYS
    (problem,) = item["problems"]
    assert (problem.reason, problem.action) == ("bad_pose_file", SKIPPED)
    assert problem.detail.startswith(detail)


MIMETICS_BAD = [
    ('{"pose": [[1, 2, 3', "not valid JSON"),
    ("  \n", "empty file (expected a Mimetics pose file in JSON)"),
    ('{"score": []}', "not a Mimetics pose file (needs an object with a 'pose' list; 'pose' is "
                      "missing)"),
    ('{"pose": [' + json.dumps([1.0] * 51) + ']}',
     "pose[0] has 51 values, not a multiple of 18 joints x 3 (x, y, score)"),
    ('{"pose": [' + json.dumps([1.0] * 108) + '], "score": [[0.5]]}',
     "pose[0] has 2 people but score[0] has 1 person scores"),
    ('{"pose": [{"x": 1}]}', "pose[0] is an object, not a list of numbers"),
]


@pytest.mark.parametrize("content,detail", MIMETICS_BAD, ids=[
    "truncated", "empty", "no_pose", "joint_count", "person_scores", "object"])
def test_bad_mimetics_pose_file(tmp_path, content, detail):
    info = write_mimetics(str(tmp_path), num_classes=1)
    path = info["videos"][0]["pose_path"]
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(DataError) as err:
        read_mimetics_poses(path)
    assert str(err.value).startswith(f"{path}: {detail}")
    check_bad_pose_file(mim_cfg(tmp_path), Mimetics, path, detail)


def ntu_body_lines(joints=25, fields="0 0 0 0 0 10.5 12.5 0 0 0 0 2"):
    return ["72057594037931101 0 1 1 1 1 0 0.01 -0.02 2", str(joints)] + [fields] * joints


NTU_BAD = [
    ("", "empty file (expected the .skeleton text format)"),
    ("\n".join(["20", "1"] + ntu_body_lines()[:10]),
     "truncated: the file ends at line 12, in frame 0 of the 20 the header announces, body 0 "
     "(expected joint line 8)"),
    ("\n".join(["1", "1"] + ntu_body_lines(joints=24)), "line 4: 24 joints, expected 25"),
    ("\n".join(["one"]), "line 1: 'one' is not a frame count"),
    ("\n".join(["1", "1"] + ntu_body_lines(fields="0 0 0 0 0 x y 0 0 0 0 2")),
     "line 5: colorX/colorY 'x', 'y' are not numbers"),
    ("\n".join(["1", "1"] + ntu_body_lines(fields="0 0 0 0 0")),
     "line 5: a joint line with 5 fields, expected 12 (colorX, colorY are fields 6 and 7)"),
    ("\n".join(["1", "0", "0"]), "line 3: content after the 1 frames the header announces"),
    ("\n".join(["1", "-2"]), "line 2: '-2' is not a body count"),
]


@pytest.mark.parametrize("content,detail", NTU_BAD, ids=[
    "empty", "truncated", "joint_count", "header", "coordinates", "fields", "trailing",
    "body_count"])
def test_bad_ntu_skeleton_file(tmp_path, content, detail):
    info = write_ntu(str(tmp_path), num_classes=1)
    path = info["test"][0]["skeleton_path"]
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(DataError) as err:
        read_ntu_skeleton(path)
    assert str(err.value) == f"{path}: {detail}"
    check_bad_pose_file(ntu_cfg(tmp_path), NTU, path, detail)


def test_ntu_binary_garbage_names_the_file(tmp_path):
    path = str(tmp_path / "x.skeleton")
    with open(path, "wb") as f:
        f.write(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match=re.escape(f"{path}: not a text file")):
        read_ntu_skeleton(path)


# --------------------------------------------------------------------------- COCO entries
@pytest.mark.parametrize("change,reason,detail", [
    (lambda c: c["images"][1].pop("frame_num"), "missing_field", "video 2 has no 'frame_num'"),
    (lambda c: c["images"][1].pop("file_name"), "missing_field", "video 2 has no 'file_name'"),
    (lambda c: c["images"][1].update(seq_name=None), "missing_field",
     "video 2 has no 'seq_name'"),
    (lambda c: c["annotations"][1].pop("action_label"), "missing_field",
     "video 2: its annotation has no 'action_label'"),
    (lambda c: c["images"][1].pop("id"), "missing_field", "images[1] has no 'id'"),
    (lambda c: c["images"][1].update(frame_num="many"), "bad_field",
     "video 2: 'frame_num' is 'many', not an integer"),
    (lambda c: c["images"][1].update(file_name="../../etc"), "bad_field",
     "video 2: 'file_name' is '../../etc', not a single file or folder name"),
    (lambda c: c["images"].__setitem__(1, "video"), "bad_field",
     "images[1] is a string, not an object"),
    (lambda c: c["images"][1].update(id=1), "duplicate_id",
     "images[1]: id 1 is already the id of images[0]"),
])
def test_bad_coco_entry_leaves_its_video_out(tmp_path, data_log, change, reason, detail):
    info = write_kinetics(str(tmp_path))
    path = osp.join(info["data_root"], "Kinetics50_val.json")
    edit_json(path, change)
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.skipped == {reason: 1} and len(ds.records) == 3 and ds.annotated == 4
    assert messages(data_log, logging.WARNING) == [
        f"data problem: {path}: {detail} ({reason}, skipped)"]
    assert messages(data_log)[-1].endswith(f"left out: {reason}: 1")


@pytest.mark.parametrize("cls,cfg,field", [
    (Mimetics, mim_cfg, "height"), (NTU, ntu_cfg, "setup_idx"),
    (NTU, ntu_cfg, "skeleton_file_name"), (NTU, ntu_cfg, "width"),
])
def test_missing_field_mimetics_ntu(tmp_path, cls, cfg, field):
    if cls is NTU:
        info = write_ntu(str(tmp_path))
        path = osp.join(info["data_root"], "NTU_test.json")
    else:
        info = write_mimetics(str(tmp_path))
        path = osp.join(info["data_root"], "Mimetics50.json")
    edit_json(path, lambda c: c["images"][0].pop(field))
    ds = cls(cfg(tmp_path), "test")
    assert ds.skipped == {"missing_field": 1} and [r["video_id"] for r in ds.records] == [2]
    with pytest.raises(DataError, match=re.escape(f"{path}: video 1 has no '{field}'")):
        cls(cfg(tmp_path, strict=True), "test")


def test_stray_annotation_is_reported_not_counted_as_a_video(tmp_path, data_log):
    info = write_kinetics(str(tmp_path))
    path = osp.join(info["data_root"], "Kinetics50_val.json")
    edit_json(path, lambda c: c["annotations"][0].pop("image_id"))
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.skipped == {"no_annotation": 1} and ds.annotated == 4
    assert messages(data_log, logging.WARNING) == [
        f"data problem: {path}: annotations[0] (id 1) has no 'image_id' (missing_field, "
        "skipped)"]


# --------------------------------------------------------------------------- unusable sets
def kinetics_files(tmp_path):
    root = osp.join(tmp_path, "Kinetics", "data")
    return {"ann": osp.join(root, "Kinetics50_val.json"),
            "labels": osp.join(root, "kinetics-skeleton", "kinetics_val_label.json"),
            "frames": osp.join(root, "frames", "val_256")}


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


@pytest.mark.parametrize("damage,which,message", [
    (lambda f: os.remove(f["ann"]), "ann", "annotation file not found"),
    (lambda f: write_text(f["ann"], '{"images": [{"id": 1'),
     "ann", "not valid JSON (Expecting ',' delimiter at line 1 column 21); the annotation file "
            "is truncated or damaged"),
    (lambda f: write_text(f["ann"], '{"annotations": []}'),
     "ann", "not a COCO-layout annotation file ('images' is missing, not a list)"),
    (lambda f: write_text(f["ann"], '[]'),
     "ann", "not a COCO-layout annotation file (the top level is a list, not an object with "
            "'images' and 'annotations')"),
    (lambda f: os.remove(f["labels"]), "labels", "kinetics-skeleton label file not found"),
    (lambda f: write_text(f["labels"], '["a", "b"]'),
     "labels", "the kinetics-skeleton label file is a list, not an object {video: "
               "{has_skeleton, label, label_index}}"),
    (lambda f: write_text(f["labels"], '{"a": '),
     "labels", "not valid JSON (Expecting value at line 1 column 7)"),
    (lambda f: write_text(f["ann"], '{"images": [{"id": 1, "frame_num": 2, "seq_name": "a", '
                                    '"file_name": "b"}, {"id": 2}], "annotations": '
                                    '[{"image_id": 1, "action_label": 0}]}'),
     "ann", "no usable video (2 video entries; left out: no_annotation: 1, too_short: 1)"),
    (lambda f: __import__("shutil").rmtree(f["frames"]), "frames",
     "frame folder not found; extract the frames (tool/video2image.py) or point --data_dir at "
     "the data set"),
])
def test_unusable_data_set_is_one_line_naming_the_file(tmp_path, damage, which, message):
    write_kinetics(str(tmp_path))
    files = kinetics_files(tmp_path)
    damage(files)
    with pytest.raises(DataError) as err:
        Kinetics(make_cfg(tmp_path), "test")
    text = str(err.value)
    assert text.startswith(f"{files[which]}: {message}") and "\n" not in text


# --------------------------------------------------------------------------- collate
def usable_item(video_id, problems=()):
    return {"video": torch.full((2, 3, 4, 4), float(video_id)),
            "pose_coords": torch.zeros(2, 1, 18, 2), "pose_scores": torch.ones(2, 1, 18),
            "label": torch.tensor(video_id % 2), "video_id": torch.tensor(video_id),
            "problems": list(problems)}


def unusable_item(video_id, clip_index, problem):
    return {"video_id": torch.tensor(video_id), "clip_index": clip_index, "problems": [problem]}


def test_collate_clips_mixed_and_all_unusable():
    zeroed = Problem("nonfinite_joint", "/p/3.json", "1 joint(s)", JOINTS_ZEROED)
    missing = Problem("missing_frame", "/f/000003.jpg", "frame file not found", SKIPPED)
    corrupt = Problem("corrupt_frame", "/f/000001.jpg", "empty file", SKIPPED)
    batch = collate_clips([usable_item(3, [zeroed]), unusable_item(4, 2, missing),
                           usable_item(5), unusable_item(6, 0, corrupt)])
    assert set(batch) == {"video", "pose_coords", "pose_scores", "label", "video_id",
                          "problems", "skipped"}
    assert batch["video_id"].tolist() == [3, 5] and batch["label"].tolist() == [1, 1]
    assert batch["video"].shape == (2, 2, 3, 4, 4) and batch["video"][1].max() == 5
    assert batch["problems"] == [zeroed, missing, corrupt]
    assert batch["skipped"] == [(4, 2), (6, 0)]
    empty = collate_clips([unusable_item(4, 2, missing), unusable_item(6, 0, corrupt)])
    assert empty == {"problems": [missing, corrupt], "skipped": [(4, 2), (6, 0)]}


def test_dataloader_with_workers_carries_the_problems(tmp_path):
    info = write_kinetics(str(tmp_path))
    corrupt = frame_path(info["val"][1]["frame_dir"], 0)
    with open(corrupt, "wb") as f:
        f.write(b"not a jpeg")
    ds = Kinetics(make_cfg(tmp_path), "test")
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate_clips)
    batches = list(loader)
    problems = [p for b in batches for p in b["problems"]]
    skipped = [s for b in batches for s in b["skipped"]]
    # Frame 0 belongs to the clips starting at 0: clip 0 of video 2 (start frames 0, 1, 3...).
    assert problems == [Problem("corrupt_frame", corrupt, "not a decodable image (10 bytes)",
                                SKIPPED)]
    assert skipped == [(2, 0)]
    assert sum(len(b["label"]) for b in batches if "label" in b) == len(ds) - 1
