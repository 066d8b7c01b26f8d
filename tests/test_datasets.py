"""The three loaders on tiny data sets written in the real formats (see tests/fixtures_data.py).

Common geometry of these tests: frames 32 x 48 (h x w), `video_shape (24,)` -> resized 24 x 36,
centre crop 16 x 16 at (xmin 10, ymin 4), heatmap grid 8 x 8 (grid = crop / 2). A clip is
T = 2 frames every 2 frames (span 3).
"""
import json
import logging
import os
import os.path as osp
import random
import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import data.pipeline as pipeline
import data.sources.jpeg_folder as jpeg_folder
from common.errors import DataError
from common.report.problems import POSE_ZEROED
from data.collate import collate_clips
from data.Kinetics.Kinetics import Kinetics, skeleton_key
from data.Mimetics.Mimetics import Mimetics
from data.NTU.NTU import NTU, read_ntu_skeleton, setup_folder
from data.registry import DATASETS, build_dataset
from data.annotations import resolve_class_num
from data.sampling import (
    clip_frame_indices,
    pose_frame_indices,
    test_start_frames,
    train_start_frame,
)
from tests.fixtures_data import (
    make_cfg,
    write_kinetics,
    write_kinetics_skeleton,
    write_mimetics,
    write_mimetics_poses,
    write_ntu,
    write_ntu_skeleton,
)


def to_grid(x, y):
    """Resized-frame pixel -> heatmap grid for the centre crop of these tests."""
    return (x - 10) / 2, (y - 4) / 2


def openpose_person(default=(0.5, 0.5), **joints):
    pose = np.tile(np.asarray(default, float), (18, 1))
    for j, xy in joints.items():
        pose[int(j[1:])] = xy
    return pose


# --------------------------------------------------------------------------- sampling
def test_test_start_frames_formula():
    # frame_num 100, T 8, interval 8: span 57, int(43 * t / 9).
    assert test_start_frames(100, 57, 10) == [0, 4, 9, 14, 19, 23, 28, 33, 38, 43]
    assert test_start_frames(20, 3, 10) == [0, 1, 3, 5, 7, 9, 11, 13, 15, 17]
    assert test_start_frames(57, 57, 10) == [0] * 10
    assert test_start_frames(100, 57, 1) == [21]  # a single clip: the middle one
    assert test_start_frames(100, 57, 2) == [0, 43]


def test_train_start_frame_inclusive_range():
    rng = random.Random(0)
    starts = {train_start_frame(20, 3, rng) for _ in range(500)}
    assert starts == set(range(18))


def test_clip_and_pose_frame_indices():
    assert clip_frame_indices(5, 4, 2) == [5, 7, 9, 11]
    assert pose_frame_indices(5, 4, 2, 1) == [5, 7, 9, 11]
    assert pose_frame_indices(0, 8, 8, 2) == list(range(0, 57, 4))  # (8 - 1) * 2 + 1 = 15
    assert pose_frame_indices(3, 3, 8, 4) == [3, 5, 7, 9, 11, 13, 15, 17, 19]


def test_resolve_class_num():
    # --class_num, else the data set's own count, else the largest label + 1; never the
    # COCO categories (object classes), which are no longer an argument at all.
    assert resolve_class_num(None, None, [0, 4, 2]) == (5, "the largest label 4 + 1, no known "
                                                           "class count for this data set")
    assert resolve_class_num(None, (50, "Kinetics50's own"), [0, 4]) == (50, "Kinetics50's own")
    assert resolve_class_num(9, (50, "Kinetics50's own"), [0, 1])[0] == 9
    # Labels out of range are the dataset's business (it leaves those videos out).
    assert resolve_class_num(1, None, [0, 1])[0] == 1
    assert resolve_class_num(None, None, [-3, 2])[0] == 3
    assert resolve_class_num(None, None, [])[0] == 0
    with pytest.raises(ValueError, match="class_num must be a positive integer"):
        resolve_class_num(0, None, [0])


# --------------------------------------------------------------------------- Kinetics
def test_kinetics_test_items_values(tmp_path):
    info = write_kinetics(str(tmp_path))
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert len(ds.records) == 4 and ds.skipped == {}
    assert len(ds) == 40 and ds.class_num == 50  # Kinetics50: the data set's own count
    item = ds[0]
    assert set(item) == {"video", "pose_coords", "pose_scores", "label", "video_id", "problems"}
    assert item["problems"] == []
    assert item["video"].shape == (2, 3, 16, 16) and item["video"].dtype == torch.float32
    assert item["pose_coords"].shape == (2, 3, 18, 2) and item["pose_coords"].dtype == torch.float32
    assert item["pose_scores"].shape == (2, 3, 18) and item["pose_scores"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].shape == ()
    assert item["video_id"].dtype == torch.int64 and int(item["video_id"]) == 1
    # RGB in [0, 1], not normalised: the class colour (200, 60, 40) +- noise and JPEG error.
    video = info["val"][0]
    np.testing.assert_allclose(item["video"].mean(dim=(0, 2, 3)).numpy(),
                               np.asarray(video["color"]) / 255, atol=3 / 255)
    # Poses: clip 0 starts at 0, frames 0 and 2 = frame_index 1 and 3 of the skeleton file.
    with open(video["skeleton_path"]) as f:
        data = {e["frame_index"]: e["skeleton"] for e in json.load(f)["data"]}
    for t, frame_index in enumerate((1, 3)):
        people = data[frame_index]
        order = np.argsort([-np.mean(p["score"]) for p in people], kind="stable")
        for slot, p in enumerate(order):
            pose = np.asarray(people[p]["pose"]).reshape(18, 2) * [36, 24]
            expected = np.stack(to_grid(pose[:, 0], pose[:, 1]), axis=-1)
            np.testing.assert_allclose(item["pose_coords"][t, slot].numpy(), expected, atol=1e-4)
            np.testing.assert_allclose(item["pose_scores"][t, slot].numpy(), people[p]["score"],
                                       atol=1e-6)
        assert torch.all(item["pose_scores"][t, len(people):] == 0)  # the padded third person


def test_kinetics_ten_test_clips_per_video(tmp_path):
    write_kinetics(str(tmp_path), num_classes=2, videos_per_class=1)
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert len(ds) == 20
    assert [ds.locate(i) for i in (0, 9, 10, 19)] == [(0, 0), (0, 9), (1, 0), (1, 9)]
    assert [ds.clip_start(ds.records[0], c, None) for c in range(10)] == \
        [0, 1, 3, 5, 7, 9, 11, 13, 15, 17]
    assert int(ds[13]["video_id"]) == ds.records[1]["video_id"]
    assert int(ds[13]["label"]) == 1
    with pytest.raises(IndexError):
        ds[20]


def test_kinetics_frame_index_is_one_based(tmp_path):
    # Clip frame k must use frame_index k + 1 (the original looked up frame_index k).
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    person = openpose_person(j0=(0.75, 0.25))
    decoy = openpose_person(j0=(0.1, 0.9))
    write_kinetics_skeleton(info["val"][0]["skeleton_path"], {
        2: [(decoy, np.full(18, 0.9))],   # what a 0-based lookup of clip frame 2 would read
        3: [(person, np.full(18, 0.7))],  # clip frame 2 (1-based index 3)
    })
    ds = Kinetics(make_cfg(tmp_path, test_infer_num=2), "test")
    item = ds[0]  # clip 0: frames 0 and 2
    assert torch.all(item["pose_scores"][0] == 0)  # frame 0 = frame_index 1: nobody
    np.testing.assert_allclose(item["pose_scores"][1, 0].numpy(), 0.7, atol=1e-6)
    np.testing.assert_allclose(item["pose_coords"][1, 0, 0].numpy(), to_grid(27, 6))  # (8.5, 1)
    np.testing.assert_allclose(item["pose_coords"][1, 0, 1].numpy(), to_grid(18, 12))
    assert torch.all(item["pose_scores"][1, 1:] == 0)


def test_skeleton_key_strips_train_suffix():
    labels = {"abc_def": {}, "xyz_000001_000002": {}}
    assert skeleton_key("abc_def_000010_000020", labels) == "abc_def"
    assert skeleton_key("abc_def", labels) == "abc_def"
    assert skeleton_key("xyz_000001_000002", labels) == "xyz_000001_000002"  # found as-is
    assert skeleton_key("nothing_000010_000020", labels) is None


def test_kinetics_train_names_with_suffix_find_their_poses(tmp_path):
    info = write_kinetics(str(tmp_path))
    ds = Kinetics(make_cfg(tmp_path), "train")
    assert len(ds) == 4 and ds.skipped == {}
    for record, video in zip(ds.records, info["train"]):
        assert video["file_name"] != video["skeleton_name"]
        assert record["skeleton_path"] == video["skeleton_path"]
        assert record["frame_dir"] == video["frame_dir"]


def test_kinetics_skips_are_counted_and_logged(tmp_path, caplog):
    info = write_kinetics(str(tmp_path), short_videos=1, short_frame_num=2, no_skeleton_videos=1)
    os.remove(info["val"][3]["skeleton_path"])
    caplog.set_level(logging.INFO, logger="integral_action.data")
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.skipped == {"too_short": 1, "has_skeleton_false": 1, "missing_skeleton_file": 1}
    assert [r["video_id"] for r in ds.records] == [1, 2, 3]
    assert len(ds) == 30
    text = " ".join(r.getMessage() for r in caplog.records if r.name == "integral_action.data")
    assert "too_short: 1" in text and "has_skeleton_false: 1" in text
    assert "missing_skeleton_file: 1" in text


def test_kinetics_shortest_usable_video_is_kept(tmp_path):
    # frame_num == (T - 1) * interval + 1 = 3 is enough; 2 (= (T - 1) * interval) is not.
    write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1, short_videos=1,
                   short_frame_num=3)
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.skipped == {} and len(ds.records) == 2
    assert ds.clip_start(ds.records[1], 9, None) == 0
    assert ds[19]["video"].shape == (2, 3, 16, 16)


def test_kinetics_train_flip_swaps_every_person_of_every_frame(tmp_path, monkeypatch):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    frames = {}
    for k in range(20):
        people = []
        for p, score in enumerate((0.9, 0.6)):
            pose = openpose_person(j2=(0.75, 0.25 + 0.1 * p), j5=(0.25, 0.5 + 0.1 * p))
            people.append((pose, np.full(18, score)))
        frames[k + 1] = people
    write_kinetics_skeleton(info["train"][0]["skeleton_path"], frames)
    # Force a flipped centre crop.
    monkeypatch.setattr(pipeline, "sample_train_crop",
                        lambda hw, shape, rng: ((10, 4, 16, 16), True))
    ds = Kinetics(make_cfg(tmp_path), "train")
    item = ds[0]
    coords = item["pose_coords"].numpy()
    # x -> 35 - x, crop xmin 35 - 18 - 8 = 9; R_Shoulder (2) and L_Shoulder (5) trade places.
    for t in range(2):
        for p in range(2):
            np.testing.assert_allclose(coords[t, p, 5], [(35 - 27 - 9) / 2, 1 + 1.2 * p], atol=1e-4)
            np.testing.assert_allclose(coords[t, p, 2], [(35 - 9 - 9) / 2, 4 + 1.2 * p], atol=1e-4)
            np.testing.assert_allclose(coords[t, p, 0], [(35 - 18 - 9) / 2, 4], atol=1e-4)


def test_train_items_repeat_with_seed_and_vary_without(tmp_path):
    write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    ds = Kinetics(make_cfg(tmp_path), "train")
    torch.manual_seed(0)
    a = ds[0]
    torch.manual_seed(0)
    b = ds[0]
    assert set(a) == set(b) and a["problems"] == b["problems"] == []
    for key in set(a) - {"problems"}:
        assert torch.equal(a[key], b[key])
    others = [ds[0]["pose_coords"] for _ in range(6)]
    assert any(not torch.equal(a["pose_coords"], o) for o in others)


def test_pose_only_reads_one_frame_and_omits_video(tmp_path, monkeypatch):
    write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    reference = Kinetics(make_cfg(tmp_path, frame_per_seg=4), "test")[3]
    calls = []
    real = jpeg_folder.load_frame
    monkeypatch.setattr(jpeg_folder, "load_frame", lambda path: calls.append(path) or real(path))
    ds = Kinetics(make_cfg(tmp_path, mode="pose_only", frame_per_seg=4), "test")
    item = ds[3]
    assert "video" not in item
    assert len(calls) == 1
    assert torch.equal(item["pose_coords"], reference["pose_coords"])
    assert torch.equal(item["pose_scores"], reference["pose_scores"])


def test_class_num_from_cfg_subset_or_max_label_never_categories(tmp_path):
    # Changed on purpose: COCO categories are object categories, not action classes.
    info = write_kinetics(str(tmp_path))
    path = osp.join(info["data_root"], "Kinetics50_val.json")
    with open(path) as f:
        coco = json.load(f)
    coco["categories"] = [{"id": i, "name": f"c{i}"} for i in range(7)]
    with open(path, "w") as f:
        json.dump(coco, f)
    assert Kinetics(make_cfg(tmp_path), "test").class_num == 50  # Kinetics50, not 7
    assert Kinetics(make_cfg(tmp_path, class_num=9), "test").class_num == 9
    os.replace(path, osp.join(info["data_root"], "KineticsTiny_val.json"))
    tiny = Kinetics(make_cfg(tmp_path, subset="Tiny"), "test")
    assert tiny.class_num == 2 and tiny.class_num_reason.startswith("the largest label 1 + 1")
    # A label outside [0, class_num) leaves its video out (it used to stop the whole set).
    ds = Kinetics(make_cfg(tmp_path, subset="Tiny", class_num=1), "test")
    assert ds.skipped == {"label_out_of_range": 2} and len(ds.records) == 2


def test_collate_clips_batches_two_items(tmp_path):
    write_kinetics(str(tmp_path))
    ds = Kinetics(make_cfg(tmp_path), "train")
    batch = next(iter(DataLoader(ds, batch_size=2, shuffle=False, collate_fn=collate_clips)))
    assert batch["problems"] == [] and batch["skipped"] == []
    assert batch["video"].shape == (2, 2, 3, 16, 16)
    assert batch["pose_coords"].shape == (2, 2, 3, 18, 2)
    assert batch["pose_scores"].shape == (2, 2, 3, 18)
    assert batch["label"].tolist() == [0, 0] and batch["label"].dtype == torch.int64
    assert batch["video_id"].tolist() == [1, 2]


def test_pose_frame_factor_gives_more_pose_frames(tmp_path):
    write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    ds = Kinetics(make_cfg(tmp_path, frame_per_seg=4, frame_interval=4, pose_frame_factor=2),
                  "test")
    item = ds[0]
    assert item["video"].shape[0] == 4 and item["pose_coords"].shape[0] == 7


# --------------------------------------------------------------------------- Mimetics
@pytest.mark.parametrize("nested", [False, True])
def test_mimetics_person_score_and_original_pixels(tmp_path, nested):
    info = write_mimetics(str(tmp_path))
    # The json says the original video is 64 x 96 (twice the stored frames): poses are in
    # those pixels, so x / 96 * 36 and y / 64 * 24.
    path = osp.join(info["data_root"], "Mimetics50.json")
    with open(path) as f:
        coco = json.load(f)
    for image in coco["images"]:
        image["height"], image["width"] = 64, 96
    with open(path, "w") as f:
        json.dump(coco, f)
    a = np.tile([48.0, 32.0], (18, 1))
    a[0] = (72, 16)              # -> resized (27, 6)
    b = np.tile([10.0, 10.0], (18, 1))
    frames = [None] * 20
    frames[2] = [(b, np.full(18, 1.0), 0.1), (a, np.full(18, 0.5), 0.4)]
    write_mimetics_poses(info["videos"][0]["pose_path"], frames, nested=nested)
    ds = Mimetics(make_cfg(tmp_path, dataset="Mimetics"), "test")
    assert len(ds) == 20 and ds.class_num == 50  # Mimetics50: Kinetics50's classes
    item = ds[0]  # frames 0 (null) and 2
    assert "video" in item and item["video"].shape == (2, 3, 16, 16)
    assert torch.all(item["pose_scores"][0] == 0)
    # Person a: 0.5 x 0.4 = 0.2 beats person b: 1.0 x 0.1 = 0.1.
    np.testing.assert_allclose(item["pose_scores"][1, 0].numpy(), 0.2, atol=1e-6)
    np.testing.assert_allclose(item["pose_scores"][1, 1].numpy(), 0.1, atol=1e-6)
    np.testing.assert_allclose(item["pose_coords"][1, 0, 0].numpy(), to_grid(27, 6), atol=1e-4)
    np.testing.assert_allclose(item["pose_coords"][1, 0, 1].numpy(), to_grid(18, 12), atol=1e-4)
    np.testing.assert_allclose(item["pose_coords"][1, 1, 0].numpy(), to_grid(3.75, 3.75),
                               atol=1e-4)


def test_mimetics_is_test_only(tmp_path):
    write_mimetics(str(tmp_path))
    with pytest.raises(ValueError, match="test-only"):
        Mimetics(make_cfg(tmp_path, dataset="Mimetics"), "train")


def test_mimetics_frames_past_the_pose_list_have_nobody(tmp_path):
    info = write_mimetics(str(tmp_path), num_classes=1)
    person = (np.tile([24.0, 16.0], (18, 1)), np.ones(18), 1.0)
    write_mimetics_poses(info["videos"][0]["pose_path"], [[person]] * 3)  # 3 of 20 frames
    ds = Mimetics(make_cfg(tmp_path, dataset="Mimetics"), "test")
    assert torch.all(ds[0]["pose_scores"][:, 0] == 1)     # frames 0, 2
    assert torch.all(ds[9]["pose_scores"] == 0)           # frames 17, 19


# --------------------------------------------------------------------------- NTU
def ntu_cfg(tmp_path, **overrides):
    return make_cfg(tmp_path, dataset="NTU", video_shape=(24, 36), **overrides)


def test_ntu_nan_joints_and_short_skeleton_file(tmp_path):
    info = write_ntu(str(tmp_path))
    body = np.tile([24.0, 16.0], (25, 1))
    body[0] = (24, 8)          # -> resized (18, 6)
    body[3] = (np.nan, np.nan)
    # Only 3 skeleton frames for a 20-frame video (the original raised IndexError).
    write_ntu_skeleton(info["test"][0]["skeleton_path"], [[body], [body], [body]])
    ds = NTU(ntu_cfg(tmp_path), "test")
    assert ds.class_num == 60 and len(ds) == 20  # NTU RGB+D 60's own count
    item = ds[0]  # frames 0, 2
    # The NaN joint (the Kinect export's untracked joint) gets coordinate 0 and score 0 as
    # docs/data_format.md says; it is the format's own value, so it is not reported.
    assert item["problems"] == []
    assert item["pose_coords"].shape == (2, 3, 25, 2)
    scores = item["pose_scores"].numpy()
    assert scores[:, 0, 3].tolist() == [0, 0]
    assert np.all(np.delete(scores[:, 0], 3, axis=1) == 1)
    np.testing.assert_allclose(item["pose_coords"][0, 0, 0].numpy(), to_grid(18, 6), atol=1e-4)
    np.testing.assert_allclose(item["pose_coords"][0, 0, 3].numpy(), to_grid(0, 0), atol=1e-4)
    late = ds[9]  # frames 17, 19: past the skeleton file
    assert late["problems"] == []  # a short (complete) file is no problem
    assert torch.all(late["pose_scores"] == 0)
    assert torch.isfinite(late["pose_coords"]).all()


def test_ntu_truncated_skeleton_file(tmp_path):
    # Changed on purpose: a file cut short of the frames its header announces is a
    # bad pose file (its clips keep their frames with no people, and say so), not a short one.
    info = write_ntu(str(tmp_path), num_classes=1)
    body = np.tile([24.0, 16.0], (25, 1))
    path = info["test"][0]["skeleton_path"]
    # Header says 20 frames, the file holds 2 and then half a body.
    write_ntu_skeleton(path, [[body], [body]], header_frames=20)
    with open(path, "a") as f:
        f.write("1\n72057594037931101 0 1 1 1 1 0 0.01 -0.02 2\n25\n0 0 0 0 0 1 2 0 0 0 0 2\n")
    read_ntu_skeleton.cache_clear()
    with pytest.raises(DataError, match=r"^" + re.escape(path) + r": truncated: the file ends at "
                       r"line 61, in frame 2 of the 20 the header announces, body 0 "
                       r"\(expected joint line 1\)$"):
        read_ntu_skeleton(path)
    ds = NTU(ntu_cfg(tmp_path), "test")
    item = ds[0]
    assert torch.all(item["pose_scores"] == 0) and item["video"].shape == (2, 3, 16, 16)
    (problem,) = item["problems"]
    assert (problem.reason, problem.path, problem.action) == ("bad_pose_file", path, POSE_ZEROED)
    assert problem.detail.startswith("truncated: the file ends at line 61")


def test_ntu_frame_folder_and_train_split(tmp_path):
    # Changed on purpose: the documented naming, the int 1 gives `s1`; the official
    # archives' zero-padded name is the alternative the loader falls back to.
    assert setup_folder(1) == "nturgb+d_rgb_s1"
    assert setup_folder(1, padded=True) == "nturgb+d_rgb_s001"
    assert setup_folder("017") == "nturgb+d_rgb_s017"
    assert setup_folder("017", padded=True) == "nturgb+d_rgb_s017"
    info = write_ntu(str(tmp_path), setup_idx="017")
    ds = NTU(ntu_cfg(tmp_path), "train")
    assert len(ds) == 2
    assert ds.records[0]["frame_dir"] == info["train"][0]["frame_dir"]
    assert "nturgb+d_rgb_s017" in ds.records[0]["frame_dir"]
    torch.manual_seed(0)
    item = ds[1]
    assert item["video"].shape == (2, 3, 16, 16) and int(item["label"]) == 1
    np.testing.assert_allclose(item["video"].mean(dim=(0, 2, 3)).numpy(),
                               np.asarray(info["train"][1]["color"]) / 255, atol=4 / 255)


# --------------------------------------------------------------------------- registry
def test_registry(tmp_path):
    assert set(DATASETS) == {"Kinetics", "Mimetics", "NTU", "NTU120", "Skeleton"}
    write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    ds = build_dataset(make_cfg(tmp_path), "Kinetics", "test")
    assert isinstance(ds, Kinetics) and ds.split == "test"
    with pytest.raises(ValueError, match="unknown data set"):
        build_dataset(make_cfg(tmp_path), "UCF101", "test")
    with pytest.raises(ValueError, match="split"):
        build_dataset(make_cfg(tmp_path), "Kinetics", "val")
