"""--dataset Skeleton: COCO-17 keypoints as the model's OpenPose-18 (hand-computed values),
people by score, rescaling to frames of another size, classes, label maps and the config rules."""
from __future__ import annotations

import numpy as np
import pytest

from common.errors import DataError, UsageError
from data.Skeleton.Skeleton import Skeleton, people_by_score
from main.config import build_config
from tests.fixtures_data import write_frames
from tests.test_video_source import encode
from tool.video2image import extract_frames
from tests.skeleton_fixtures import TINY, make_entry, skeleton_cfg, write_file


def known_entry() -> dict:
    """One person in a 480 x 640 video of 4 frames: Nose (320, 240) 0.8, L_Shoulder (200, 100)
    0.9, R_Shoulder (400, 140) 0.6, L_Wrist (100, 300) 0.5, every other joint 0."""
    entry = make_entry("known", 2, frames=4, people=1, img_hw=(480, 640))
    entry["keypoint"][:] = 0
    entry["keypoint_score"][:] = 0
    for coco, (x, y), score in ((0, (320, 240), 0.8), (5, (200, 100), 0.9),
                                (6, (400, 140), 0.6), (9, (100, 300), 0.5)):
        entry["keypoint"][0, :, coco] = (x, y)
        entry["keypoint_score"][0, :, coco] = score
    return entry


def test_openpose_joints_match_hand_computed_values(tmp_path):
    path = write_file(tmp_path / "a.pkl", [known_entry()])
    dataset = Skeleton(skeleton_cfg(tmp_path, path, video_shape=(240,)), "train")
    record = dataset.records[0]
    coords, scores = dataset.load_poses(record, [0, 2], (240, 320))
    assert coords.shape == (2, 1, 18, 2) and scores.shape == (2, 1, 18)
    f16 = lambda v: float(np.float16(v))  # noqa: E731 (the file's precision)
    # OpenPose-18 index: (x, y) in 240 x 320 pixels (half the file's), score.
    expected = {0: ((160, 120), f16(0.8)),            # Nose
                1: ((150, 60), f16(0.6)),             # Thorax: shoulders' midpoint, weaker one
                2: ((200, 70), f16(0.6)),             # R_Shoulder = COCO 6
                5: ((100, 50), f16(0.9)),             # L_Shoulder = COCO 5
                7: ((50, 150), f16(0.5))}             # L_Wrist = COCO 9
    for joint in range(18):
        (x, y), score = expected.get(joint, ((0, 0), 0.0))
        np.testing.assert_allclose(coords[:, 0, joint], [[x, y]] * 2, atol=1e-4)
        np.testing.assert_allclose(scores[:, 0, joint], [score] * 2, atol=1e-6)
    # Normalised by the frame: the same joints at the same place whatever the resize.
    normalised = coords[0, 0] / np.array([320, 240], np.float32)
    np.testing.assert_allclose(normalised[[0, 1, 2]], [[0.5, 0.5], [0.46875, 0.25],
                                                       [0.625, 0.29166666]], atol=1e-6)


def test_people_are_ordered_by_mean_score_and_capped():
    keypoint = np.arange(3 * 2 * 17 * 2, dtype=np.float16).reshape(3, 2, 17, 2)
    score = np.empty((3, 2, 17), np.float16)
    score[0], score[1], score[2] = 0.2, 0.9, 0.5
    score[2, 0, 0] = np.nan  # a NaN score counts 0, never poisons the order
    kept_coords, kept_scores = people_by_score(keypoint, score, keep=2)
    np.testing.assert_array_equal(kept_coords, keypoint[[1, 2]])
    assert kept_scores.dtype == np.float16 and kept_scores.shape == (2, 2, 17)
    np.testing.assert_array_equal(kept_scores[0], score[1])


def test_the_loader_keeps_the_best_people_of_each_video(tmp_path):
    entry = make_entry("a", 0, people=3)
    entry["keypoint_score"][[0, 1, 2]] = np.array([0.3, 0.1, 0.7], np.float16)[:, None, None]
    path = write_file(tmp_path / "a.pkl", [entry])
    dataset = Skeleton(skeleton_cfg(tmp_path, path, top_k_pose=2), "train")
    _, scores = dataset.people[0]
    np.testing.assert_allclose(scores.astype(np.float32).mean(axis=(1, 2)),
                               [np.float16(0.7), np.float16(0.3)])


@pytest.mark.parametrize("stored_hw", [(32, 48), (64, 96)])
def test_frames_of_another_size_get_rescaled_keypoints(tmp_path, stored_hw):
    """Frames stored at half the file's img_shape (NTU's re-encoded videos) and at full size
    give the rgb+pose items the same poses as pose_only, which reads no frame."""
    entries = [make_entry("v", 1, img_hw=(64, 96), seed=3)]
    path = write_file(tmp_path / "a.pkl", entries)
    write_frames(str(tmp_path / "frames" / "v"),
                 np.full((8, *stored_hw, 3), 120, np.uint8))
    pose_only = Skeleton(skeleton_cfg(tmp_path, path), "test")
    rgb = Skeleton(skeleton_cfg(tmp_path, path, mode="rgb+pose",
                                frame_root=str(tmp_path / "frames")), "test")
    coords, _ = rgb.load_poses(rgb.records[0], [0], rgb.preset.resize(stored_hw))
    kp = entries[0]["keypoint"].astype(np.float32)
    # Resized to 32 x 48 either way: half the file's pixels.
    best = int(np.argmax(entries[0]["keypoint_score"].astype(np.float32).mean(axis=(1, 2))))
    np.testing.assert_allclose(coords[0, 0, 0], kp[best, 0, 0] / 2, atol=1e-5)
    for index in range(len(rgb)):
        a, b = pose_only[index], rgb[index]
        assert not b["problems"] and b["video"].shape == (2, 3, 32, 32)
        np.testing.assert_allclose(a["pose_coords"], b["pose_coords"], atol=1e-5)
        np.testing.assert_array_equal(a["pose_scores"], b["pose_scores"])


def test_frames_may_be_a_video_file_where_the_folder_would_be(tmp_path):
    """<frame_root>/<frame_dir>.mkv instead of the folder: the items of the JPEG folder that
    video2image.py extracts from it, the poses exactly, the pixels within JPEG's error."""
    entries = [make_entry("v", 1, img_hw=(64, 96), seed=3)]
    path = write_file(tmp_path / "a.pkl", entries)
    frames = [np.full((64, 96, 3), 40 + 20 * k, np.uint8) for k in range(8)]
    encode(str(tmp_path / "video" / "v.mkv"), frames)
    extract_frames(str(tmp_path / "video" / "v.mkv"), str(tmp_path / "jpeg" / "v"))
    items = {}
    for root in ("video", "jpeg"):
        data = Skeleton(skeleton_cfg(tmp_path, path, mode="rgb+pose",
                                     frame_root=str(tmp_path / root)), "test")
        assert not data.skipped and len(data) > 0
        items[root] = [data[i] for i in range(len(data))]
    for a, b in zip(items["video"], items["jpeg"]):
        assert not a["problems"] and not b["problems"]
        assert float((a["video"] - b["video"]).abs().mean()) < 3 / 255
        np.testing.assert_array_equal(a["pose_coords"], b["pose_coords"])


def test_a_missing_frame_folder_is_skipped_and_counted(tmp_path):
    path = write_file(tmp_path / "a.pkl", [make_entry("v", 0), make_entry("w", 1)])
    write_frames(str(tmp_path / "frames" / "v"), np.full((8, 64, 96, 3), 50, np.uint8))
    dataset = Skeleton(skeleton_cfg(tmp_path, path, mode="rgb+pose",
                                    frame_root=str(tmp_path / "frames")), "train")
    assert [r["frame_dir"] for r in dataset.records] == [str(tmp_path / "frames" / "v")]
    assert dataset.skipped == {"missing_frame_folder": 1}


def test_classes_come_from_the_whole_file_and_the_label_map(tmp_path):
    path = write_file(tmp_path / "a.pkl", [make_entry("a", 0), make_entry("b", 4),
                                           make_entry("c", 1)],
                      {"xsub_train": ["a", "c", "gone"], "xsub_val": ["b"]})
    dataset = Skeleton(skeleton_cfg(tmp_path, path, split="xsub_train"), "train")
    assert dataset.class_num == 5 and "largest label 4" in dataset.class_num_reason
    assert [r["label"] for r in dataset.records] == [0, 1]
    assert dataset.skipped == {"no_annotation": 1}  # 'gone' has no entry
    assert Skeleton(skeleton_cfg(tmp_path, path, split="xsub_train", class_num=7),
                    "train").class_num == 7
    labels = tmp_path / "label_map.txt"
    labels.write_text("drink\neat\n\nbrush\nclap\nwave\n")
    named = Skeleton(skeleton_cfg(tmp_path, path, split="xsub_val", label_map=str(labels)),
                     "test")
    assert named.class_names == {0: "drink", 1: "eat", 2: "brush", 3: "clap", 4: "wave"}
    labels.write_text("drink\neat\n")
    with pytest.raises(DataError) as err:
        Skeleton(skeleton_cfg(tmp_path, path, label_map=str(labels), split="xsub_val"), "test")
    assert str(err.value).startswith(f"{labels}: 2 class names, but the data has 5 classes")


def test_float32_files_read_like_float16_ones(tmp_path):
    half = make_entry("a", 0, seed=5)
    full = make_entry("a", 0, seed=5, dtype=np.float32)
    items = []
    for name, entry in (("h.pkl", half), ("f.pkl", full)):
        dataset = Skeleton(skeleton_cfg(tmp_path, write_file(tmp_path / name, [entry])), "test")
        items.append(dataset[0])
    np.testing.assert_allclose(items[0]["pose_coords"], items[1]["pose_coords"], atol=0.05)


@pytest.mark.parametrize("values, words", [
    (dict(dataset="Skeleton", mode="pose_only"), "--dataset Skeleton needs --ann_file"),
    (dict(dataset="Skeleton", mode="rgb+pose", ann_file="a.pkl"),
     "--mode rgb+pose with --dataset Skeleton needs --frame_root"),
    (dict(dataset="Kinetics", mode="pose_only", ann_file="a.pkl", split="x"),
     "--ann_file, --split: read by --dataset Skeleton only"),
])
def test_config_rules(values, words):
    with pytest.raises(UsageError) as err:
        build_config(dict(TINY, **values))
    assert str(err.value).startswith(words)


def test_train_all_refuses_skeleton_rather_than_test_on_the_training_split(tmp_path):
    from tool.recipe.plan import plan_stages

    with pytest.raises(UsageError) as err:
        plan_stages(str(tmp_path), ["--dataset", "Skeleton", "--ann_file", "a.pkl", "--split",
                                    "xsub_train", "--frame_root", "frames"])
    assert "--dataset Skeleton reads one --split per call" in str(err.value)
