"""main/demo.py: one video -> top-5 classes, the annotated video and the summary PNG; its clips are
the test set's clips.

Snapshots are tiny random networks saved with their config (ResNet-18 streams on 32 x 32 crops,
2 frames per clip), with the classifier's biases set so that the class order is known. Videos are
written with PyAV (64 x 48); poses are given as kinetics-skeleton JSON, except in one test that
runs a small randomly initialised Keypoint R-CNN.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple

import av
import numpy as np
import pytest
import torch
from PIL import Image

from common.train.checkpoint import save_snapshot
from common.model import build_model
from data.Kinetics.Kinetics import Kinetics, read_kinetics_skeleton
from data.collate import collate_clips
from data.joint_sets import OPENPOSE_18
from data.video_clips import read_frame_folder, sample_test_clips
from data.sampling import clip_span, test_start_frames
from main.config import build_config
from main.demo import main
from tests.fixtures_data import make_cfg, write_json, write_kinetics
from tests.test_extract_poses import encode_video

CLASSES = ["run", "jump", "wave", "clap", "kick", "sit"]
# Classifier biases: 'wave' first, then 'kick', 'jump', ... (the weights are near 0).
BIASES = [0.0, 1.0, 3.0, -1.0, 2.0, 0.5]
TINY = dict(frame_per_seg=2, frame_interval=4, video_shape=(32,), input_img_shape=(32, 32),
            input_hm_shape=(8, 8), top_k_pose=2, pretrained="none")
FRAMES = 24


def save_tiny_snapshot(path: str, cfg: Any, class_num: int = len(CLASSES), *,
                       authors_format: bool = False) -> str:
    torch.manual_seed(0)
    model = build_model(cfg, class_num, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    model.init_weights("none")
    with torch.no_grad():
        model.classifier.fc[0].bias.copy_(torch.tensor(BIASES[:class_num]))
    if authors_format:  # {'epoch', 'network', 'optimizer'} only: no mode, no config
        state = {"epoch": 1, "optimizer": {},
                 "network": {f"module.{k}": v for k, v in model.state_dict().items()}}
        torch.save(state, path)
    else:
        save_snapshot(path, model, None, 1, cfg.mode, config=dict(cfg))
    return path


def write_poses(path: str, frame_num: int, people: int = 3, seed: int = 0) -> str:
    """A kinetics-skeleton file: `people` random people in every frame."""
    rng = np.random.default_rng(seed)
    data = [{"frame_index": k + 1, "skeleton": [
        {"pose": [round(float(v), 4) for v in rng.uniform(0.2, 0.8, 36)],
         "score": [round(float(v), 4) for v in rng.uniform(0.3, 1.0, 18)]}
        for _ in range(people)]} for k in range(frame_num)]
    write_json(path, {"data": data, "label": "unknown", "label_index": -1})
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    video = str(root / "my clip.mp4")
    encode_video(video, FRAMES, rate=8)
    poses = write_poses(str(root / "poses.json"), FRAMES)
    labels = root / "names.txt"
    labels.write_text("".join(f"{name}\n" for name in CLASSES))
    snaps = {}
    for mode, extra in (("rgb+pose", dict(stream_agreement=True)), ("rgb_only", {}),
                        ("pose_only", {})):
        cfg = build_config(dict(mode=mode, **TINY, **extra))
        snaps[mode] = save_tiny_snapshot(str(root / f"{mode}.pth.tar"), cfg)
    return {"root": root, "video": video, "poses": poses, "labels": str(labels), "snaps": snaps}


def run_demo(argv: Sequence[str], capsys) -> Tuple[Dict[str, Any], List[str]]:
    summary = main(list(argv))
    return summary, capsys.readouterr().out.splitlines()


def test_rgb_pose_end_to_end(inputs, capsys):
    out_dir = str(inputs["root"] / "vis")
    summary, lines = run_demo(
        ["--video", inputs["video"], "--ckpt", inputs["snaps"]["rgb+pose"], "--poses",
         inputs["poses"], "--labels", inputs["labels"], "--device", "cpu", "--out_dir", out_dir,
         "--test_infer_num", "4"], capsys)

    # The top-5, printed in order, with the names of --labels.
    start = lines.index("top-5:")
    printed = [line.split() for line in lines[start + 1:start + 6]]
    assert [p[1] for p in printed] == ["wave", "kick", "jump", "sit", "run"]
    probs = np.array(summary["probs"])
    assert [float(p[2]) for p in printed] == pytest.approx(
        sorted(probs, reverse=True)[:5], abs=1e-4)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    # One gate value (and one agreement) per sampled clip, printed and saved.
    gate_line = next(line for line in lines if line.startswith("pose gate per clip"))
    assert len(gate_line.split(":")[1].split()) == 4 and len(summary["gates"]) == 4
    assert all(0.0 < g < 1.0 for g in summary["gates"])
    assert len(summary["agreements"]) == 4
    # The clips are the test set's: 4 start frames spread over the 24 frames.
    assert [c["start"] for c in summary["clips"]] == test_start_frames(FRAMES, clip_span(2, 4), 4)

    files = summary["files"]
    assert files["video"] == osp.join(out_dir, "my clip_demo.mp4")
    with av.open(files["video"]) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == FRAMES and decoded[0].shape == (256, 342, 3)  # 341 padded to even
    with Image.open(files["summary"]) as image:
        assert image.format == "PNG" and image.size[0] > 600
    saved = json.load(open(files["prediction"]))
    assert saved["top5"][0]["name"] == "wave" and saved["gates"] == summary["gates"]
    assert sorted(n for n in os.listdir(out_dir) if not n.startswith(".")) == [
        "my clip_demo.mp4", "my clip_prediction.json", "my clip_summary.png"]


def test_clips_are_the_test_loaders_clips(tmp_path, capsys):
    """On a Kinetics-format data set, the demo's clips of a video (read from its frame folder
    and pose file) are the Kinetics test loader's items bit for bit, and the demo's
    probabilities and gates are what the network gives on the loader's items."""
    write_kinetics(str(tmp_path), num_classes=2, videos_per_class=1, frame_num=20,
                   frame_size=(32, 48), subset="Tiny", people_per_frame=4)
    cfg = make_cfg(tmp_path, subset="Tiny", test_infer_num=3, pretrained="none")
    dataset = Kinetics(cfg, "test")
    snap = save_tiny_snapshot(str(tmp_path / "snap.pth.tar"), cfg, class_num=2)
    model = build_model(cfg, 2, OPENPOSE_18.limbs, OPENPOSE_18.joint_num)
    model.load_state_dict({k[len("module."):]: v for k, v in
                           torch.load(snap, weights_only=True)["network"].items()})
    model.eval()
    for v, record in enumerate(dataset.records):
        frames = read_frame_folder(record["frame_dir"])
        table = read_kinetics_skeleton(record["skeleton_path"])
        items, plans, geometry = sample_test_clips(frames, table, cfg)
        assert [p.start for p in plans] == test_start_frames(20, dataset.span, 3)
        assert geometry.resized_hw == (24, 36) and geometry.box == (10, 4, 16, 16)
        expected = [dataset[v * 3 + c] for c in range(3)]
        for mine, theirs in zip(items, expected):
            assert set(mine) == {"video", "pose_coords", "pose_scores"}
            for key in mine:
                assert torch.equal(mine[key], theirs[key]), key

        summary, _ = run_demo(["--frames", record["frame_dir"], "--poses", record["skeleton_path"],
                               "--ckpt", snap, "--device", "cpu",
                               "--out_dir", str(tmp_path / "vis"),
                               "--video_format", "none", "--data_dir", str(tmp_path),
                               "--test_infer_num", "3"], capsys)
        with torch.no_grad():
            out = model(collate_clips(expected))
        probs = torch.softmax(out["logits"], 1).numpy()
        np.testing.assert_allclose(summary["probs"], probs.mean(0), atol=1e-5)
        np.testing.assert_allclose(summary["gates"], out["gate"].view(3, -1).mean(1).numpy(),
                                   atol=1e-5)
        # Class names from the data set's annotation file (action_name).
        assert summary["class_names_from"].endswith("KineticsTiny_val.json")
        assert {t["name"] for t in summary["top5"]} == {"action_00", "action_01"}


def test_rgb_only_and_pose_only_snapshots(inputs, capsys):
    out_dir = str(inputs["root"] / "single")
    # No --labels and no data set under --data_dir: class indices stand for the names.
    summary, lines = run_demo(["--video", inputs["video"], "--ckpt", inputs["snaps"]["rgb_only"],
                               "--device", "cpu", "--out_dir", out_dir, "--test_infer_num", "2",
                               "--name", "rgb", "--data_dir", str(inputs["root"])], capsys)
    assert summary["mode"] == "rgb_only" and "gates" not in summary
    assert summary["poses_from"].startswith("none")  # rgb_only estimates no poses
    start = lines.index("top-5:")
    assert [line.split()[1] for line in lines[start + 1:start + 6]] == ["2", "4", "1", "5", "0"]
    assert not any(line.startswith("pose gate") for line in lines)

    summary, lines = run_demo(["--video", inputs["video"], "--ckpt", inputs["snaps"]["pose_only"],
                               "--poses", inputs["poses"], "--labels", inputs["labels"],
                               "--device", "cpu", "--out_dir", out_dir, "--test_infer_num", "2",
                               "--video_format", "gif", "--name", "pose"], capsys)
    assert summary["mode"] == "pose_only" and summary["top5"][0]["name"] == "wave"
    with Image.open(summary["files"]["video"]) as gif:
        assert gif.format == "GIF" and gif.n_frames == FRAMES


def test_poses_from_keypoint_rcnn(inputs, capsys):
    """Without --poses the demo runs Keypoint R-CNN (random weights here) on the frames the
    clips use, and saves them as a kinetics-skeleton file the Kinetics reader reads."""
    torch.manual_seed(0)
    summary, _ = run_demo(["--video", inputs["video"], "--ckpt", inputs["snaps"]["rgb+pose"],
                           "--device", "cpu", "--out_dir", str(inputs["root"] / "est"),
                           "--test_infer_num", "2", "--video_format", "none",
                           "--random_pose_weights", "--pose_min_size", "64", "--max_people", "1",
                           "--pose_proposals", "10", "--person_thr", "0"], capsys)
    used = sorted({k for clip in summary["clips"] for k in clip["pose_frames"]})
    assert summary["poses_from"] == f"Keypoint R-CNN on {len(used)} frames"
    table = read_kinetics_skeleton(summary["files"]["poses"])
    assert sorted(table) == [k + 1 for k in used]  # 1-based, only the frames the clips use
    assert all(coords.shape == (1, 18, 2) for coords, _ in table.values())


@pytest.mark.parametrize("case", ["mode", "authors", "short", "weights", "video"])
def test_errors_are_one_line(inputs, tmp_path, capsys, case):
    snaps = inputs["snaps"]
    argv = ["--video", inputs["video"], "--ckpt", snaps["rgb+pose"], "--device", "cpu",
            "--poses", inputs["poses"], "--out_dir", str(tmp_path)]
    if case == "mode":
        argv += ["--mode", "rgb_only"]
        expected = "trained in mode 'rgb+pose' but --mode is 'rgb_only'"
    elif case == "authors":
        cfg = build_config(dict(mode="pose_only", **TINY))
        path = save_tiny_snapshot(str(tmp_path / "authors.pth.tar"), cfg, authors_format=True)
        state = torch.load(path, weights_only=True)
        # Moved BatchNorm statistics and untouched LayerNorms: the stage cannot be inferred.
        state["network"]["module.pose2feat.conv.1.running_mean"] += 0.1
        torch.save(state, path)
        argv[3] = path
        expected = "pass --mode"
    elif case == "short":
        cfg = build_config(dict(mode="rgb+pose", **{**TINY, "frame_interval": 30}))
        argv[3] = save_tiny_snapshot(str(tmp_path / "long.pth.tar"), cfg)
        expected = "the video has 24 frames, fewer than one clip needs (31"
    elif case == "weights":
        argv = argv[:6] + ["--out_dir", str(tmp_path), "--pose_weights", str(tmp_path / "no.pth")]
        expected = "--pose_weights PATH"
    else:
        (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(2000))
        argv[1] = str(tmp_path / "bad.mp4")
        expected = "bad.mp4: cannot read the video"
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_labels_must_name_every_class(inputs, tmp_path, capsys):
    snap = inputs["snaps"]["rgb_only"]
    argv = ["--video", inputs["video"], "--ckpt", snap, "--device", "cpu",
            "--out_dir", str(tmp_path), "--test_infer_num", "2", "--video_format", "none"]
    # Fewer names than classes: the names would be shifted or missing, so it stops.
    short = tmp_path / "short.txt"
    short.write_text("".join(f"{name}\n" for name in CLASSES[:4]))
    with pytest.raises(SystemExit) as stop:
        main(argv + ["--labels", str(short)])
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --labels {short} has 4 class names but {snap} has 6 classes (no name "
                   "for class 4, 5): give one name per class (a text file: line i = class i)"]
    # More names: the first six are used, and a warning says so.
    long = tmp_path / "long.txt"
    long.write_text("".join(f"{name}\n" for name in CLASSES + ["swim", "fly"]))
    summary = main(argv + ["--labels", str(long)])
    assert summary["top5"][0]["name"] == "wave"
    assert {t["name"] for t in summary["top5"]} <= set(CLASSES)
    assert capsys.readouterr().err.splitlines() == [
        f"warning: --labels {long} has 8 class names but {snap} has 6 classes: using the names "
        "of classes 0-5, ignoring the other 2"]
