"""Skeleton annotation files: the restricted unpickler, and bad files and entries (one-line
errors for unusable files, skip-and-count for unusable entries, never NaN in an item)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from common.errors import DataError, UsageError
from data.parsing import FieldError
from data.safe_pickle import load_array_pickle
from data.Skeleton.Skeleton import Skeleton
from data.Skeleton.skeleton_file import check_entry
from tests.skeleton_fixtures import make_entry, skeleton_cfg, write_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Hostile:
    """Unpickling it would run `touch <marker>`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --------------------------------------------------------------------------- the unpickler
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_and_containers_load_in_every_protocol(tmp_path, protocol):
    content = {"split": {"a": ["x"]}, "annotations": [make_entry("x", 1)],
               "scalar": np.float32(0.5), "set": {1, 2}, "bytes": b"\x00\xff"}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    loaded = load_array_pickle(str(path), "skeleton annotation file")
    entry = loaded["annotations"][0]
    assert entry["keypoint"].dtype == np.float16 and entry["keypoint"].shape == (2, 8, 17, 2)
    np.testing.assert_array_equal(entry["keypoint"], content["annotations"][0]["keypoint"])
    assert loaded["scalar"] == np.float32(0.5) and loaded["set"] == {1, 2}
    assert loaded["bytes"] == b"\x00\xff"


def test_a_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [Hostile(str(marker))]}))
    with pytest.raises(DataError) as err:
        load_array_pickle(str(path), "skeleton annotation file")
    message = str(err.value)
    assert message.startswith(f"{path}: refused to load")
    assert f"{os.system.__module__}.system" in message and "\n" not in message
    assert not marker.exists()


def test_train_py_refuses_a_hostile_file_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": ["a"]}, "annotations": [
        {"frame_dir": "a", "keypoint": Hostile(str(marker))}]}))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "main", "train.py"), "--mode", "pose_only",
         "--dataset", "Skeleton", "--ann_file", str(path), "--split", "train",
         "--output_dir", str(tmp_path / "out"), "--pretrained", "none", "--num_thread", "0",
         "--gpu", "cpu", "--progress_bar", "false"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in lines[0] and "refused to load" in lines[0]
    assert not marker.exists()


# --------------------------------------------------------------------------- unusable files
def _whole_file_error(tmp_path, content=None, raw=None):
    path = tmp_path / "bad.pkl"
    path.write_bytes(raw if raw is not None else pickle.dumps(content, protocol=4))
    with pytest.raises(DataError) as err:
        Skeleton(skeleton_cfg(tmp_path, str(path)), "train")
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_a_truncated_pickle_is_one_line(tmp_path):
    good = pickle.dumps({"split": {"train": ["a"]}, "annotations": [make_entry("a", 0)]})
    message = _whole_file_error(tmp_path, raw=good[: len(good) // 2])
    assert "truncated or damaged" in message


@pytest.mark.parametrize("content, words", [
    ([1, 2], "the top level is a list"),
    ({"annotations": []}, "'split' is missing"),
    ({"split": {"train": []}}, "'annotations' is missing"),
    ({"split": {"train": "a"}, "annotations": []}, "'split'['train'] is not a list"),
])
def test_a_wrong_layout_names_the_field(tmp_path, content, words):
    assert words in _whole_file_error(tmp_path, content)


def test_a_3d_file_is_refused_naming_the_keypoint_shape(tmp_path):
    entry = make_entry("a", 0)
    entry["keypoint"] = np.zeros((2, 8, 25, 3), np.float16)
    message = _whole_file_error(tmp_path, {"split": {"train": ["a"]}, "annotations": [entry]})
    assert "annotations[0]['keypoint'] has shape (2, 8, 25, 3)" in message
    assert "(M, T, 17, 2)" in message


def test_kinetics400_table_of_contents_says_why_and_how(tmp_path):
    entry = {"frame_dir": "abc", "label": 3, "img_shape": (340, 256), "total_frames": 300,
             "raw_file": "kpfiles/part_0.pkl", "frame_inds": np.arange(3),
             "box_score": np.ones(3, np.float16), "valid": {0.5: 300}}
    message = _whole_file_error(tmp_path, {"split": {"train": ["abc"]}, "annotations": [entry]})
    assert "'raw_file' and no 'keypoint'" in message and "Kinetics-400" in message
    assert "docs/data_format.md" in message


def test_split_names_are_listed_when_unknown_or_missing(tmp_path):
    path = write_file(tmp_path / "a.pkl", [make_entry("a", 0), make_entry("b", 1)],
                      {"xsub_train": ["a"], "xsub_val": ["b"]})
    for split, start in (("xview_train", "--split xview_train: "), (None, "--dataset Skeleton "
                                                                    "needs --split NAME")):
        with pytest.raises(UsageError) as err:
            Skeleton(skeleton_cfg(tmp_path, path, split=split), "train")
        assert str(err.value).startswith(start)
        assert str(err.value).endswith("xsub_train, xsub_val")


# --------------------------------------------------------------------------- bad entries
def _bad_entries():
    """(frame_dir, entry, reason) of one bad entry each."""
    missing = make_entry("missing", 0)
    del missing["keypoint_score"]
    rank = make_entry("rank", 0)
    rank["keypoint"] = rank["keypoint"][0]
    joints = make_entry("joints", 0)
    joints["keypoint"] = np.zeros((2, 8, 18, 2), np.float16)
    frames = make_entry("frames", 0)
    frames["total_frames"] = 9
    nan = make_entry("nan", 0)
    nan["keypoint"][:] = np.nan
    empty = make_entry("empty", 0, people=0)
    return [("missing", missing, "missing_field"), ("rank", rank, "bad_field"),
            ("joints", joints, "bad_field"), ("frames", frames, "bad_field"),
            ("nan", nan, "bad_field"), ("empty", empty, "no_people")]


def test_bad_entries_are_skipped_and_counted(tmp_path):
    bad = _bad_entries()
    annotations = [make_entry("good", 1, seed=1)] + [entry for _, entry, _ in bad]
    path = write_file(tmp_path / "a.pkl", annotations)
    dataset = Skeleton(skeleton_cfg(tmp_path, path), "train")
    assert [r["frame_dir"] for r in dataset.records] == ["good"]
    assert dataset.skipped == {"missing_field": 1, "bad_field": 4, "no_people": 1}
    assert dataset.startup_problems.counts == {"missing_field (skipped)": 1,
                                               "bad_field (skipped)": 4,
                                               "no_people (skipped)": 1}


def test_a_file_of_bad_entries_only_is_one_line(tmp_path):
    # (Not the 18-joint entry: a first array of another joint set makes it another kind of
    # file, as test_a_3d_file_is_refused_naming_the_keypoint_shape shows.)
    path = write_file(tmp_path / "a.pkl",
                      [entry for name, entry, _ in _bad_entries() if name != "joints"])
    with pytest.raises(DataError) as err:
        Skeleton(skeleton_cfg(tmp_path, path), "train")
    assert str(err.value).startswith(f"{path}: no usable video (5 video entries; left out: "
                                     "bad_field: 3, missing_field: 1, no_people: 1)")


def test_some_nan_joints_are_zeroed_and_counted_never_nan(tmp_path):
    entry = make_entry("a", 0, people=1)
    entry["keypoint"][0, :, 3] = np.nan
    entry["keypoint_score"][0, :, 4] = np.inf
    path = write_file(tmp_path / "a.pkl", [entry])
    dataset = Skeleton(skeleton_cfg(tmp_path, path, split="train"), "test")
    for index in range(len(dataset)):
        item = dataset[index]
        assert np.isfinite(item["pose_coords"].numpy()).all()
        assert np.isfinite(item["pose_scores"].numpy()).all()
        assert [p.reason for p in item["problems"]] == ["nonfinite_joint"]
        # COCO 3 (L_Ear) is OpenPose 17, COCO 4 (R_Ear) OpenPose 16: zeroed.
        assert (item["pose_scores"][:, 0, 16:] == 0).all()


def test_without_people_rgb_stages_keep_the_video(tmp_path):
    from tests.fixtures_data import write_frames

    path = write_file(tmp_path / "a.pkl", [make_entry("empty", 0, people=0)])
    write_frames(str(tmp_path / "frames" / "empty"), np.full((8, 64, 96, 3), 90, np.uint8))
    dataset = Skeleton(skeleton_cfg(tmp_path, path, mode="rgb+pose",
                                    frame_root=str(tmp_path / "frames")), "train")
    item = dataset[0]
    assert item["video"].shape == (2, 3, 32, 32) and not item["problems"]
    assert (item["pose_scores"] == 0).all()


@pytest.mark.parametrize("img_shape, expected", [
    ((340, 256), (340, 256)), ([340, 256], (340, 256)),
    (np.array([340, 256], np.int64), (340, 256)), (np.array([480, 640], np.int32), (480, 640)),
    (np.array([340.0, 256.0]), None), (np.array([[340, 256]]), None),
    (np.array([340, 0]), None), (np.array([340, 256, 3]), None), ("340x256", None)])
def test_img_shape_is_two_positive_ints_in_a_tuple_list_or_array(img_shape, expected):
    entry = make_entry("a", 0)
    entry["img_shape"] = img_shape
    if expected is None:
        with pytest.raises(FieldError) as err:
            check_entry(entry, "annotations[0]")
        assert err.value.reason == "bad_field" and "'img_shape' is " in str(err.value)
    else:
        checked = check_entry(entry, "annotations[0]")
        assert checked.img_hw == expected and all(type(s) is int for s in checked.img_hw)
