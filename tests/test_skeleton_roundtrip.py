"""Videos -> tool/extract_poses.py --format pyskl (a given estimator) -> --dataset Skeleton ->
pose_only train.py (one epoch) -> test.py; and the rgb+pose frames of tool/video2image.py."""
from __future__ import annotations

import os
import os.path as osp
import pickle

import numpy as np
import pytest

from common.errors import DataError
from data.Skeleton.Skeleton import Skeleton
from data.Skeleton.skeleton_file import read_skeleton_file
from main import test as test_py
from main import train as train_py
from tests.skeleton_fixtures import skeleton_cfg
from tests.test_extract_poses import FAST_DETECTOR, encode_video
from tool.extract_poses import main as extract_main
from tool.extract_skeleton_file import extract_skeleton_file
from tool.video2image import extract_tree as extract_frames_tree

FRAMES = 5


class GivenEstimator:
    """The test's pose estimator: frame n (counted over every call) has one person whose joint
    j stands at (n + j, 2n + j) with score 0.9, and every third frame a second one at
    (10 + j, 20) with score 0.3."""

    def __init__(self) -> None:
        self.seen = 0
        self.given = []  # per frame: (coords (P, 17, 2), scores (P, 17))

    def __call__(self, frames):
        out = []
        for _ in frames:
            n, j = self.seen, np.arange(17, dtype=np.float32)
            coords = [np.stack([n + j, 2 * n + j], axis=1)]
            scores = [np.full(17, 0.9, np.float32)]
            if n % 3 == 0:
                coords.append(np.stack([10 + j, np.full(17, 20.0, np.float32)], axis=1))
                scores.append(np.full(17, 0.3, np.float32))
            out.append((np.stack(coords), np.stack(scores)))
            self.seen += 1
        self.given.extend(out)
        return out


@pytest.fixture(scope="module")
def skeleton_set(tmp_path_factory):
    """Train videos walk/{a,b}, jump/{c,d}; val videos walk/e, jump/f; one file with both."""
    root = tmp_path_factory.mktemp("roundtrip")
    videos = {"train": {"walk": "ab", "jump": "cd"}, "val": {"walk": "e", "jump": "f"}}
    seed = 0
    for split, classes in videos.items():
        for name, stems in classes.items():
            for stem in stems:
                seed += 1
                encode_video(str(root / split / name / f"{stem}.mp4"), FRAMES, seed=seed)
    out = str(root / "mine.pkl")
    estimators = {}
    for split in ("train", "val"):
        estimators[split] = GivenEstimator()
        result = extract_skeleton_file(str(root / split), out, split=split, short_side=32,
                                       estimator_factory=lambda s=split: estimators[s])
        assert (result["done"], result["failed"], result["unlabelled"]) == \
            (4 if split == "train" else 2, 0, 0)
    return root, out, estimators


def test_the_written_file_holds_the_estimators_coco_keypoints(skeleton_set):
    root, out, estimators = skeleton_set
    with open(out, "rb") as f:
        content = pickle.load(f)
    assert set(content) == {"split", "annotations"}
    assert content["split"] == {"train": ["jump/c", "jump/d", "walk/a", "walk/b"],
                                "val": ["jump/f", "walk/e"]}
    assert open(osp.splitext(out)[0] + "_label_map.txt").read() == "jump\nwalk\n"
    first = content["annotations"][0]
    assert (first["frame_dir"], first["label"], first["total_frames"]) == ("jump/c", 0, FRAMES)
    assert first["img_shape"] == first["original_shape"] == (32, 42)
    assert first["keypoint"].dtype == first["keypoint_score"].dtype == np.float16
    assert first["keypoint"].shape == (2, FRAMES, 17, 2)
    given = estimators["train"].given[:FRAMES]
    for t, (coords, scores) in enumerate(given):
        np.testing.assert_array_equal(first["keypoint"][: len(coords), t],
                                      coords.astype(np.float16))
        np.testing.assert_array_equal(first["keypoint_score"][: len(coords), t],
                                      scores.astype(np.float16))
    # Frames 1, 2, 4 have one person: the second slot is empty.
    assert (first["keypoint_score"][1, [1, 2, 4]] == 0).all()
    assert [a["label"] for a in content["annotations"]] == [0, 0, 1, 1, 0, 1]


def test_train_one_epoch_then_test_from_the_file(skeleton_set, tmp_path):
    root, out, _ = skeleton_set
    common = ["--mode", "pose_only", "--dataset", "Skeleton", "--ann_file", out,
              "--label_map", osp.splitext(out)[0] + "_label_map.txt",
              "--output_dir", str(tmp_path / "run"), "--frame_per_seg", "2",
              "--frame_interval", "2", "--video_shape", "32", "--input_img_shape", "32,32",
              "--input_hm_shape", "8,8", "--test_batch_size", "4", "--num_thread", "0",
              "--test_infer_num", "2", "--gpu", "cpu", "--progress_bar", "false"]
    snapshot = train_py.main([*common, "--split", "train", "--end_epoch", "1",
                              "--train_batch_size", "2", "--pretrained", "none", "--seed", "0"])
    assert snapshot.endswith("snapshot_0.pth.tar")
    metrics = test_py.main([*common, "--split", "val", "--test_epoch", "0"])
    assert metrics["dataset"] == "Skeleton" and metrics["videos"] == 2
    assert metrics["annotated"] == 2 and metrics["left_out_at_start"] == {}
    assert metrics["data_problems"] == {}
    assert 0.0 <= metrics["top1"] <= 100.0 and np.isfinite(metrics["mean_class_accuracy"])


def test_rgb_pose_reads_video2image_frames_by_frame_dir(skeleton_set, tmp_path):
    root, out, _ = skeleton_set
    frames = extract_frames_tree(str(root / "val"), str(tmp_path / "frames"), short_side=32,
                                 workers=1)
    assert frames["failed"] == 0
    dataset = Skeleton(skeleton_cfg(tmp_path, out, split="val", mode="rgb+pose",
                                    frame_root=str(tmp_path / "frames")), "test")
    assert len(dataset.records) == 2 and dataset.skipped == {}
    item = dataset[0]
    assert not item["problems"] and item["video"].shape == (2, 3, 32, 32)
    assert (item["pose_scores"][:, 0] > 0).all()


def test_the_command_line_writes_and_then_extends_the_file(tmp_path, capsys):
    """The real command line (a random, tiny Keypoint R-CNN): written, then a rerun with
    another split skips the videos it has and adds the split."""
    encode_video(str(tmp_path / "src" / "wave" / "v.mp4"), 2, seed=7)
    out = str(tmp_path / "cli.pkl")
    args = ["--format", "pyskl", "--out", out, "--src", str(tmp_path / "src"), *FAST_DETECTOR]
    assert extract_main([*args, "--split", "train"])["done"] == 1
    again = extract_main([*args, "--split", "val"])
    assert (again["done"], again["skipped"]) == (0, 1)
    skeleton = read_skeleton_file(out)
    assert skeleton.splits == {"train": ["wave/v"], "val": ["wave/v"]}
    assert len(skeleton.annotations) == 1
    assert skeleton.annotations[0]["keypoint"].shape[1:] == (2, 17, 2)
    with pytest.raises(SystemExit) as stop:
        extract_main(["--format", "pyskl", "--src", str(tmp_path / "src")])
    assert stop.value.code == 2
    assert "--format pyskl needs --out FILE.pkl" in capsys.readouterr().err


def test_extending_a_file_without_its_label_map_is_refused(tmp_path):
    # Its labels would be numbered anew from the videos met: "walk" would become class 0.
    encode_video(str(tmp_path / "a" / "jump" / "c.mp4"), FRAMES, seed=1)
    encode_video(str(tmp_path / "b" / "walk" / "e.mp4"), FRAMES, seed=2)
    out = str(tmp_path / "mine.pkl")
    label_map = str(tmp_path / "mine_label_map.txt")
    extract_skeleton_file(str(tmp_path / "a"), out, split="train", short_side=32,
                          estimator_factory=GivenEstimator)
    before = open(out, "rb").read()
    os.remove(label_map)
    with pytest.raises(DataError) as err:
        extract_skeleton_file(str(tmp_path / "b"), out, split="val", short_side=32,
                              estimator_factory=GivenEstimator)
    assert str(err.value) == (f"{out}: its label map {label_map} is missing, so the labels of "
                              "its entries cannot be kept; put the label map back, or write "
                              "to a new --out")
    assert open(out, "rb").read() == before and not osp.exists(label_map)
    with open(label_map, "w") as f:  # back: the new class is appended after the old one
        f.write("jump\n")
    extract_skeleton_file(str(tmp_path / "b"), out, split="val", short_side=32,
                          estimator_factory=GivenEstimator)
    assert open(label_map).read() == "jump\nwalk\n"
    assert [a["label"] for a in read_skeleton_file(out).annotations] == [0, 1]
