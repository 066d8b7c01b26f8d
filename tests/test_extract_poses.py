"""tool/extract_poses.py: a folder of videos -> kinetics-skeleton pose files, label and annotation
files that the Kinetics loader reads (with tool/video2image.py's frames).

The detector is a randomly initialised Keypoint R-CNN (nothing is downloaded), made small and
fast (64-pixel input, one person, 10 proposals); with `--person_thr 0` it still "finds" people,
which is all the file plumbing needs.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from data.Kinetics.Kinetics import Kinetics, read_kinetics_skeleton
from main.config import build_config
from data.video_decode import decode_video, iter_video_frames
from tool.extract_poses import main
from tool.video2image import extract_tree as extract_frames_tree

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FAST_DETECTOR = ["--random_pose_weights", "--pose_min_size", "64", "--max_people", "1",
                 "--pose_proposals", "10", "--person_thr", "0", "--device", "cpu"]


def encode_video(path: str, frames: int, height: int = 48, width: int = 64, rate: int = 8,
                 seed: int = 0) -> np.ndarray:
    """A small H.264 (or MPEG-4) video of moving noise; returns the frames given to the encoder."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)
    os.makedirs(osp.dirname(path), exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return images


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """`src/walk/a.mp4` (3 frames), `src/jump/b c.mp4` (4), `src/jump/broken.mp4` (random
    bytes), `src/loose.mp4` (1, no class folder), extracted into a Kinetics data root."""
    root = tmp_path_factory.mktemp("extract")
    src = root / "src"
    encode_video(str(src / "walk" / "a.mp4"), 3, seed=1)
    encode_video(str(src / "jump" / "b c.mp4"), 4, seed=2)
    encode_video(str(src / "loose.mp4"), 1, seed=3)
    (src / "jump" / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    data_root = root / "data" / "Kinetics" / "data"
    torch.manual_seed(0)
    result = main(["--src", str(src), "--data_root", str(data_root), "--split", "val",
                   "--subset", "Mine", *FAST_DETECTOR])
    return root, src, data_root, result


def test_writes_pose_label_and_annotation_files(extracted):
    root, src, data_root, result = extracted
    counts = (result["done"], result["skipped"], result["failed"], result["unlabelled"])
    assert counts == (3, 0, 1, 1)
    [(video, reason)] = result["failures"]
    assert video.endswith("broken.mp4") and reason

    skeleton_dir = data_root / "kinetics-skeleton" / "kinetics_val"
    assert sorted(os.listdir(skeleton_dir)) == ["a.json", "b c.json", "loose.json"]
    content = json.loads((skeleton_dir / "a.json").read_text())
    assert [e["frame_index"] for e in content["data"]] == [1, 2, 3]  # 1-based, every frame
    assert content["frame_num"] == 3 and (content["height"], content["width"]) == (256, 341)
    person = content["data"][0]["skeleton"][0]
    assert len(person["pose"]) == 36 and len(person["score"]) == 18
    assert all(0.0 <= s <= 1.0 for s in person["score"])

    labels = json.loads((data_root / "kinetics-skeleton" / "kinetics_val_label.json").read_text())
    # Classes in the order first met (folders sorted): jump, walk; the loose video has none.
    assert labels == {"b c": {"has_skeleton": True, "label": "jump", "label_index": 0},
                      "a": {"has_skeleton": True, "label": "walk", "label_index": 1}}
    assert (data_root / "KineticsMine_classes.txt").read_text() == "jump\nwalk\n"
    coco = json.loads((data_root / "KineticsMine_val.json").read_text())
    assert [(i["seq_name"], i["file_name"], i["frame_num"]) for i in coco["images"]] == [
        ("jump", "b c", 4), ("walk", "a", 3)]
    assert [(a["action_label"], a["action_name"]) for a in coco["annotations"]] == [
        (0, "jump"), (1, "walk")]
    # Written atomically: no temporary file is left anywhere.
    leftovers = [n for _, _, names in os.walk(data_root) for n in names if n.startswith(".")]
    assert leftovers == []


def test_the_kinetics_loader_reads_the_data_set(extracted):
    """With tool/video2image.py's frames (same short side, same frame count), the Kinetics test
    loader reads every labelled video, and its poses are the extracted ones."""
    root, src, data_root, _ = extracted
    frames = extract_frames_tree(str(src), str(data_root / "frames" / "val_256"), workers=1)
    assert frames["failed"] == 1  # the broken video, again
    cfg = build_config(dict(dataset="Kinetics", subset="Mine", data_dir=str(root / "data"),
                            mode="rgb+pose", frame_per_seg=2, frame_interval=2,
                            video_shape=(32,), input_img_shape=(32, 32), input_hm_shape=(8, 8),
                            top_k_pose=2, test_infer_num=2))
    dataset = Kinetics(cfg, "test")
    assert len(dataset.records) == 2 and dataset.skipped == {}
    assert dataset.class_num == 2 and dataset.class_names == {0: "jump", 1: "walk"}
    for record in dataset.records:
        assert len(os.listdir(record["frame_dir"])) == record["frame_num"]
    item = dataset[0]
    assert not item["problems"]
    assert item["video"].shape == (2, 3, 32, 32)
    # One person per frame (max_people 1), the second slot padding.
    assert (item["pose_scores"][:, 0] > 0).any() and (item["pose_scores"][:, 1] == 0).all()
    table = read_kinetics_skeleton(dataset.records[0]["skeleton_path"])
    assert sorted(table) == [1, 2, 3, 4] and table[1][0].shape == (1, 18, 2)


def test_a_rerun_skips_finished_videos_and_reports_the_broken_one(extracted):
    """Resumable: the finished videos are not estimated again (no detector is even built) and
    their files are not rewritten; the unreadable video is reported again, exit status 1."""
    root, src, data_root, _ = extracted
    pose_file = data_root / "kinetics-skeleton" / "kinetics_val" / "a.json"
    before = pose_file.stat().st_mtime_ns
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, "tool", "extract_poses.py"), "--src", str(src),
         "--data_root", str(data_root), "--subset", "Mine", "--pose_weights", "/no/such/file"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "done: 0 videos, skipped (pose file exists): 3, failed: 1" in proc.stdout
    assert "failed: " in proc.stdout and "broken.mp4" in proc.stdout
    assert pose_file.stat().st_mtime_ns == before


def test_missing_weights_is_one_line_naming_both_ways(tmp_path, capsys):
    encode_video(str(tmp_path / "src" / "x" / "v.mp4"), 1)
    with pytest.raises(SystemExit) as stop:
        main(["--src", str(tmp_path / "src"), "--data_root", str(tmp_path / "data"),
              "--device", "cpu", "--pose_weights", str(tmp_path / "missing.pth")])
    assert stop.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "--pose_weights PATH" in lines[0] and "KeypointRCNN_ResNet50_FPN_Weights" in lines[0]
    assert "download.pytorch.org" in lines[0]


def test_torchvision_weights_unavailable_is_one_line(monkeypatch):
    """Offline, torchvision's weights API fails: the message names both ways out."""
    from urllib.error import URLError

    from common.errors import UsageError
    from common.pose_estimation import load_keypoint_rcnn

    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(UsageError) as err:
        load_keypoint_rcnn(weights="default")
    message = str(err.value)
    assert "\n" not in message and "Name or service not known" in message
    assert "--pose_weights PATH" in message
    assert "KeypointRCNN_ResNet50_FPN_Weights.COCO_V1" in message
    assert "keypointrcnn_resnet50_fpn_coco" in message


def test_decoding_matches_video2image(tmp_path):
    """The in-memory frames are video2image's JPEGs before compression: same count and size,
    pixels within JPEG error."""
    encode_video(str(tmp_path / "v.mp4"), 7)
    frames, rate = decode_video(str(tmp_path / "v.mp4"), short_side=32)
    assert frames.shape == (7, 32, 42, 3) and frames.dtype == np.uint8 and rate == 8.0
    extract_frames_tree(str(tmp_path / "v.mp4"), str(tmp_path / "out"), short_side=32, workers=1)
    from data.video_clips import read_frame_folder
    jpegs = read_frame_folder(str(tmp_path / "out" / "v"))
    assert jpegs.shape == frames.shape
    assert np.abs(jpegs.astype(int) - frames.astype(int)).mean() < 12  # noise compresses badly
    assert len(list(iter_video_frames(str(tmp_path / "v.mp4"), fps=4))) == 4  # 8 fps -> 4 fps
