"""The synthetic data generator: determinism, the real on-disk formats, and the project loaders.

A tiny set (4 classes x 3 videos per split, 16 frames of 48x64) is generated three times:
twice with seed 0 (one and two worker processes) and once with seed 1.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, List

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from data.joint_sets import OPENPOSE_18
from common.errors import UsageError
from tool.make_synthetic_dataset import generate_dataset, main
from tool.synthetic.dataset import checked_params
from tool.synthetic.plan import CLASSES, GenParams, plan_dataset, plan_split
from tool.synthetic.actions import BodyShape, MotionParams, action_pose

TINY = dict(num_classes=4, train_per_class=3, test_per_class=3, valid_per_class=2, frames=16,
            height=48, width=64)
THORAX = OPENPOSE_18.joint_names.index("Thorax")


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> Dict[str, Dict[str, Any]]:
    root = tmp_path_factory.mktemp("synth")
    return {
        "a": generate_dataset(str(root / "a"), seed=0, workers=1, **TINY),
        "b": generate_dataset(str(root / "b"), seed=0, workers=2, **TINY),
        "c": generate_dataset(str(root / "c"), seed=1, workers=1, **TINY),
    }


def _tree(root: str) -> Dict[str, bytes]:
    files = {}
    for base, _, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def _load(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def _coco(path: str) -> COCO:
    return COCO(path)


def _exact_actor_joints(video: Dict[str, Any], frame: int) -> np.ndarray:
    """(18, 2) pixel joints of the actor, recomputed from the summary (no detector noise)."""
    joints = action_pose(video["motion"], frame, MotionParams(**video["motion_params"]),
                         BodyShape(**video["body"]))
    actor = video["actor"]
    return np.stack([actor["centre_x"] + actor["scale"] * joints[:, 0],
                     actor["ground_y"] + actor["scale"] * joints[:, 1]], axis=1)


# ------------------------------------------------------------------------------ determinism

def test_same_seed_is_byte_identical_whatever_the_workers(sets):
    tree_a, tree_b = _tree(sets["a"]["out_dir"]), _tree(sets["b"]["out_dir"])
    assert sorted(tree_a) == sorted(tree_b)
    differing = [p for p in tree_a if tree_a[p] != tree_b[p]]
    assert differing == []
    # Five splits: train, the two test splits (3 per class each), the two validation splits (2).
    assert sum(p.endswith(".jpg") for p in tree_a) == 4 * (3 + 3 + 3 + 2 + 2) * 16


# The digest of the seed-0 tiny set: every file's relative path and bytes, in path order. Any
# change to what the generator writes changes it; when that change is meant, bump FORMAT_VERSION
# in the generator and update this digest.
TINY_SEED0_DIGEST = "ed9ec72f91fc90fb8cd5ee5629c64c8f1be583adff4dfd0ff1b505285aea16bf"


def _tree_digest(tree: Dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(tree):
        digest.update(path.replace(os.sep, "/").encode() + b"\0")
        digest.update(hashlib.sha256(tree[path]).digest())
    return digest.hexdigest()


def test_seed0_set_matches_its_pinned_digest(sets):
    assert _tree_digest(_tree(sets["a"]["out_dir"])) == TINY_SEED0_DIGEST


def test_other_seed_differs(sets):
    tree_a, tree_c = _tree(sets["a"]["out_dir"]), _tree(sets["c"]["out_dir"])
    poses = [p for p in tree_a if p.endswith(".json") and ("kinetics_train/" in p
                                                          or "pose_results" in p)]
    assert poses and all(tree_a[p] != tree_c.get(p) for p in poses)
    video = sets["a"]["videos"]["val"][0]
    frame = os.path.relpath(os.path.join(video["frame_dir"], "000001.jpg"), sets["a"]["out_dir"])
    assert tree_a[frame] != tree_c[frame]


def test_complete_set_is_skipped_and_parameter_change_rebuilds(tmp_path, capsys):
    small = ["--num_classes", "2", "--train_per_class", "1", "--test_per_class", "1",
             "--frames", "4", "--height", "32", "--width", "40", "--workers", "1"]
    first = main(["--out", str(tmp_path)] + small)
    marker = first["paths"]["marker"]
    assert not first["skipped"] and os.path.isfile(marker)
    stamp = os.path.getmtime(marker)
    second = main(["--out", str(tmp_path)] + small)
    assert second["skipped"] and os.path.getmtime(marker) == stamp
    assert "already complete" in capsys.readouterr().out
    # Same summary content either way (it is computed from the plans, not from the files).
    assert second["videos"] == first["videos"]
    third = main(["--out", str(tmp_path), "--seed", "3"] + small)
    assert not third["skipped"] and _load(marker)["seed"] == 3
    fourth = main(["--out", str(tmp_path), "--seed", "3", "--valid_per_class", "2"] + small)
    assert not fourth["skipped"] and _load(marker)["valid_per_class"] == 2
    assert fourth["counts"]["valid_in"] == 4 and third["counts"]["valid_in"] == 8


SMALL = ["--num_classes", "2", "--train_per_class", "1", "--test_per_class", "1",
         "--frames", "4", "--height", "32", "--width", "40", "--workers", "1"]


def test_refuses_a_folder_holding_another_data_set(tmp_path, capsys):
    # A real Kinetics release under <out>/Kinetics/data: its label file has the very name the
    # generator writes. Nothing may be written, and the message says what to do.
    real = tmp_path / "Kinetics" / "data" / "kinetics-skeleton" / "kinetics_val_label.json"
    real.parent.mkdir(parents=True)
    real.write_text('{"real": {"has_skeleton": true}}')
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path)] + SMALL)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {tmp_path / 'Kinetics' / 'data'} already holds files and {tmp_path} "
                   "has no synthetic_dataset.json of this generator: it may be a real data set, "
                   "which the synthetic one would overwrite; choose an empty folder for --out")
    assert real.read_text() == '{"real": {"has_skeleton": true}}'
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["Kinetics", "data", "kinetics-skeleton", "kinetics_val_label.json"])
    # A real NTU set next to where the synthetic Kinetics would go is refused as well.
    ntu = tmp_path / "other" / "NTU" / "data"
    ntu.mkdir(parents=True)
    (ntu / "NTU_test.json").write_text("{}")
    with pytest.raises(UsageError, match=r"NTU/data already holds files"):
        generate_dataset(str(tmp_path / "other"), workers=1, num_classes=2, train_per_class=1,
                         test_per_class=1, frames=4, height=32, width=40)


def test_rebuilds_its_own_output_even_interrupted_or_from_an_older_version(tmp_path):
    first = main(["--out", str(tmp_path)] + SMALL)
    owner = json.loads((tmp_path / "synthetic_dataset.json").read_text())
    assert owner["written_by"] == "tool/make_synthetic_dataset.py"
    # Interrupted rebuild: the "complete" marker is gone, the files are there.
    os.remove(first["paths"]["marker"])
    again = main(["--out", str(tmp_path)] + SMALL)
    assert not again["skipped"] and os.path.isfile(again["paths"]["marker"])
    # Output of a version without the owner marker: its "complete" marker is proof enough.
    os.remove(tmp_path / "synthetic_dataset.json")
    third = main(["--out", str(tmp_path), "--seed", "5"] + SMALL)
    assert not third["skipped"] and (tmp_path / "synthetic_dataset.json").is_file()


def test_rejects_bad_parameters(tmp_path):
    with pytest.raises(ValueError):
        generate_dataset(str(tmp_path), num_classes=len(CLASSES) + 1)
    with pytest.raises(ValueError):
        generate_dataset(str(tmp_path), num_classes=1)


# ------------------------------------------------------------------------------ class design

def test_classes_pairs_share_a_motion_and_differ_by_object_and_scene(sets):
    s = sets["a"]
    assert s["class_names"] == [c.name for c in CLASSES[:4]]
    assert all(" " not in name for name in s["class_names"])
    by_motion: Dict[str, List[int]] = {}
    for label, motion in enumerate(s["motions"]):
        by_motion.setdefault(motion, []).append(label)
    pairs = [labels for labels in by_motion.values() if len(labels) > 1]
    assert pairs == [[0, 1]]  # swing_racket / swing_bat in the 4-class set
    a, b = pairs[0]
    assert s["held_props"][a] != s["held_props"][b]
    assert s["scenes"][a] != s["scenes"][b]
    # The default 8 classes hold two such pairs and six motions.
    default_motions = [c.motion for c in CLASSES[:8]]
    assert len(set(default_motions)) == 6
    assert len({c.scene for c in CLASSES}) == len(CLASSES)
    # The pair draws its motion parameters from the same family: same motion function, same
    # ranges; the joints of a given parameter set are the same whichever class uses them.
    for video in s["videos"]["train"] + s["videos"]["val"] + s["videos"]["mimetics"]:
        p = video["motion_params"]
        assert 12.0 <= p["period"] <= 24.0 and 0.0 <= p["phase"] < 1.0
        assert 0.8 <= p["amplitude"] <= 1.2
    va = next(v for v in s["videos"]["train"] if v["label"] == a)
    vb = dict(next(v for v in s["videos"]["train"] if v["label"] == b))
    vb.update(motion_params=va["motion_params"], body=va["body"], actor=va["actor"])
    np.testing.assert_array_equal(_exact_actor_joints(va, 5), _exact_actor_joints(vb, 5))


def test_scene_in_context_and_out_of_context(sets):
    s = sets["a"]
    for split in ("train", "val"):
        for video in s["videos"][split]:
            assert video["scene"] == video["label"]
            assert video["held_prop"] == CLASSES[video["label"]].held_prop
    for video in s["videos"]["mimetics"]:
        assert video["scene"] != video["label"] and 0 <= video["scene"] < 4
        # The scene contradicts the motion: never that of the class sharing the motion.
        assert CLASSES[video["scene"]].motion != video["motion"]
        assert video["held_prop"] is None  # miming: no object
        assert video["scene_name"] == CLASSES[video["scene"]].scene
    # Out-of-context frames really do show another scene: their mean colour is far from the
    # in-context val videos of their own class and close to those of the drawn scene's class.
    def mean_colour(video: Dict[str, Any]) -> np.ndarray:
        return cv2.imread(os.path.join(video["frame_dir"], "000001.jpg")).reshape(-1, 3).mean(0)

    val = {label: np.mean([mean_colour(v) for v in s["videos"]["val"] if v["label"] == label],
                          axis=0) for label in range(4)}
    for video in s["videos"]["mimetics"]:
        colour = mean_colour(video)
        nearest = min(val, key=lambda label: np.linalg.norm(colour - val[label]))
        assert nearest == video["scene"]


def test_validation_splits_are_other_videos_of_the_same_kind(sets):
    # Their own number of videos per class, none of the test splits', drawn from other random
    # streams; the out-of-context one mimes in another motion's scene, the in-context one does
    # not. Image ids run on without a gap or an overlap.
    v = sets["a"]["videos"]
    assert sets["a"]["counts"] == {"train": 12, "val": 12, "mimetics": 12, "valid_in": 8,
                                   "valid_out": 8}
    for valid, test in (("valid_in", "val"), ("valid_out", "mimetics")):
        assert [x["label"] for x in v[valid]] == [label for label in range(4) for _ in range(2)]
        assert not {x["name"] for x in v[valid]} & {x["name"] for x in v[test]}
        firsts = {x["label"]: x["motion_params"] for x in v[test][::3]}  # slot 0 of each class
        assert all(x["motion_params"] != firsts[x["label"]] for x in v[valid][::2])
    ids = [x["image_id"] for split in ("train", "val", "mimetics", "valid_in", "valid_out")
           for x in v[split]]
    assert ids == list(range(1, 53))
    assert all(x["scene"] == x["label"] and x["held_prop"] == CLASSES[x["label"]].held_prop
               for x in v["valid_in"])
    assert all(CLASSES[x["scene"]].motion != CLASSES[x["label"]].motion and x["held_prop"] is None
               for x in v["valid_out"])


def test_validation_splits_default_to_four_times_the_test_splits():
    params = checked_params(seed=0, num_classes=2, train_per_class=1, test_per_class=3,
                            frames=4, height=32, width=40, subset="Synth", jpeg_quality=90)
    assert params.valid_per_class == 12
    counts = {split: len(plans) for split, plans in plan_dataset(params).items()}
    assert counts == {"train": 2, "val": 6, "mimetics": 6, "valid_in": 24, "valid_out": 24}
    with pytest.raises(UsageError, match="--valid_per_class"):
        checked_params(seed=0, num_classes=2, train_per_class=1, test_per_class=3,
                       valid_per_class=0, frames=4, height=32, width=40, subset="Synth",
                       jpeg_quality=90)


def test_two_class_set_still_takes_the_other_scene():
    # The two first classes share a motion: with no class of another motion left, the
    # out-of-context scene falls back to the other class rather than to the video's own.
    params = GenParams(seed=0, num_classes=2, train_per_class=1, test_per_class=4,
                       valid_per_class=4, frames=16, height=48, width=64, subset="Synth",
                       jpeg_quality=90)
    plans = plan_split(params, "mimetics", 0, params.test_per_class)
    assert [(p.label, p.scene) for p in plans] == [(0, 1)] * 4 + [(1, 0)] * 4


# ------------------------------------------------------------------------------ Kinetics format

@pytest.mark.parametrize("split", ["train", "val"])
def test_kinetics_format(sets, split):
    s = sets["a"]
    h, w, frames = TINY["height"], TINY["width"], TINY["frames"]
    root = s["paths"]["kinetics_dir"]
    coco = _coco(s["paths"][f"kinetics_{split}_json"])
    assert coco.dataset["categories"] == [{"id": i, "name": CLASSES[i].name} for i in range(4)]
    labels = _load(os.path.join(root, "kinetics-skeleton", f"kinetics_{split}_label.json"))
    # The val label file also lists the in-context validation videos, which share its folders.
    assert len(coco.imgs) == 4 * 3 and len(labels) == 4 * 3 + (0 if split == "train" else 4 * 2)
    for image_id, image in coco.imgs.items():
        assert set(image) == {"id", "seq_name", "file_name", "height", "width", "frame_num"}
        assert (image["height"], image["width"], image["frame_num"]) == (h, w, frames)
        (ann,) = coco.imgToAnns[image_id]
        assert set(ann) == {"id", "image_id", "action_label", "action_name", "category_id"}
        assert ann["action_name"] == image["seq_name"] == CLASSES[ann["action_label"]].name
        assert ann["category_id"] == ann["action_label"]
        name = image["file_name"]
        if split == "train":
            # Train folders carry the release's `_<start>_<end>` suffix; the pose keys do not.
            match = re.fullmatch(r"(synth\d{5})_(\d{6})_(\d{6})", name)
            assert match and int(match.group(3)) - int(match.group(2)) == 10
            key = match.group(1)
        else:
            assert re.fullmatch(r"synth\d{5}", name)
            key = name
        assert labels[key] == {"has_skeleton": True, "label": ann["action_name"],
                               "label_index": ann["action_label"]}
        frame_dir = os.path.join(root, "frames", f"{split}_256", image["seq_name"], name)
        assert sorted(os.listdir(frame_dir)) == [f"{k:06d}.jpg" for k in range(1, frames + 1)]
        assert cv2.imread(os.path.join(frame_dir, "000001.jpg")).shape == (h, w, 3)

        skeleton = _load(os.path.join(root, "kinetics-skeleton", f"kinetics_{split}",
                                      f"{key}.json"))
        assert skeleton["label"] == ann["action_name"]
        assert skeleton["label_index"] == ann["action_label"]
        assert [d["frame_index"] for d in skeleton["data"]] == list(range(1, frames + 1))
        for entry in skeleton["data"]:
            assert 1 <= len(entry["skeleton"]) <= 2
            for person in entry["skeleton"]:
                xy = np.array(person["pose"]).reshape(18, 2)
                score = np.array(person["score"])
                assert score.shape == (18,)
                assert xy.min() >= 0.0 and xy.max() <= 1.0  # normalised by width/height
                assert np.all(xy[score == 0] == 0.0)
                assert np.all((score == 0) | ((score >= 0.5) & (score <= 1.0)))


def test_kinetics_frame_index_is_one_based(sets):
    """`frame_index` n holds the pose drawn into JPEG n (0-based frame n - 1)."""
    s = sets["a"]
    h, w = TINY["height"], TINY["width"]
    errors = {0: [], 1: []}
    for video in s["videos"]["train"]:
        data = _load(video["pose_file"])["data"]
        for entry in data[:-1]:
            actor = entry["skeleton"][0]  # the actor comes first
            xy = np.array(actor["pose"]).reshape(18, 2) * [w, h]
            seen = np.array(actor["score"]) > 0
            for shift in (0, 1):
                exact = _exact_actor_joints(video, entry["frame_index"] - 1 + shift)
                errors[shift].append(np.abs(xy - exact)[seen].mean())
    # Only the detector noise (0.012 body units ~ 0.4 px here) separates pose and drawing.
    assert np.mean(errors[0]) < 0.6
    assert np.mean(errors[0]) < np.mean(errors[1])


def test_second_person_is_there_sometimes(tmp_path):
    summary = generate_dataset(str(tmp_path), seed=0, num_classes=2, train_per_class=12,
                               test_per_class=1, frames=2, height=32, width=40, workers=1)
    flags = [v["bystander"] for v in summary["videos"]["train"]]
    assert 0 < sum(flags) < len(flags)
    for video in summary["videos"]["train"]:
        people = len(_load(video["pose_file"])["data"][0]["skeleton"])
        assert people == 1 + video["bystander"]


# ------------------------------------------------------------------------------ Mimetics format

def test_mimetics_format(sets):
    s = sets["a"]
    h, w, frames = TINY["height"], TINY["width"], TINY["frames"]
    root = s["paths"]["mimetics_dir"]
    coco = _coco(s["paths"]["mimetics_json"])
    kinetics = _coco(s["paths"]["kinetics_val_json"])
    assert coco.dataset["categories"] == kinetics.dataset["categories"]  # one label space
    assert len(coco.imgs) == 4 * 3
    summary_videos = {v["image_id"]: v for v in s["videos"]["mimetics"]}
    for image_id, image in coco.imgs.items():
        (ann,) = coco.imgToAnns[image_id]
        assert ann["action_name"] == image["seq_name"] == CLASSES[ann["action_label"]].name
        assert re.fullmatch(r"synth\d{5}", image["file_name"])
        frame_dir = os.path.join(root, "frames", image["seq_name"], image["file_name"])
        assert sorted(os.listdir(frame_dir)) == [f"{k:06d}.jpg" for k in range(1, frames + 1)]
        poses = _load(os.path.join(root, "pose_results", image["seq_name"], image["file_name"],
                                   "data.json"))
        assert set(poses) == {"pose", "score"}
        assert len(poses["pose"]) == len(poses["score"]) == frames  # 0-based, one per frame
        video = summary_videos[image_id]
        for k, (pose, person_scores) in enumerate(zip(poses["pose"], poses["score"])):
            assert pose is not None and len(pose) % 54 == 0
            people = np.array(pose).reshape(-1, 18, 3)
            assert person_scores == [1.0] * len(people)
            seen = people[..., 2] > 0
            xy = people[..., :2]
            # Original-frame pixels, not normalised.
            assert np.all(xy[seen][:, 0] < w) and np.all(xy[seen][:, 1] < h)
            assert np.all(xy[~seen] == 0.0) and xy[seen].max() > 1.0
            exact = _exact_actor_joints(video, k)
            assert np.abs(xy[0][seen[0]] - exact[seen[0]]).mean() < 1.5


# ------------------------------------------------------------------------------ project loaders

def _loader_config(out_dir: str, subset: str = "Synth"):
    config = pytest.importorskip("main.config")
    return config.build_config({
        "data_dir": out_dir, "subset": subset, "mode": "rgb+pose", "frame_per_seg": 4,
        "frame_interval": 4, "video_shape": (48,), "input_img_shape": (48, 48),
        "input_hm_shape": (12, 12), "pretrained": "none",
    })


@pytest.mark.parametrize("name,split,summary_split,subset", [
    ("Kinetics", "train", "train", "Synth"), ("Kinetics", "test", "val", "Synth"),
    ("Mimetics", "test", "mimetics", "Synth"),
    # The validation splits: the same loaders, the subset of their own.
    ("Kinetics", "test", "valid_in", "SynthValid"), ("Mimetics", "test", "valid_out", "SynthValid"),
])
def test_project_loaders_read_the_set(sets, name, split, summary_split, subset):
    pytest.importorskip("torch")
    registry = pytest.importorskip("data.registry")
    s = sets["a"]
    cfg = _loader_config(s["out_dir"], subset)
    ds = registry.build_dataset(cfg, name, split)
    assert ds.class_num == 4 and not ds.skipped
    assert len(ds.records) == len(s["videos"][summary_split])
    item = ds[0]
    videos = {v["image_id"]: v for v in s["videos"][summary_split]}
    video = videos[int(item["video_id"])]
    assert int(item["label"]) == video["label"]
    assert tuple(item["video"].shape) == (4, 3, 48, 48)
    assert 0.0 <= float(item["video"].min()) and float(item["video"].max()) <= 1.0
    coords, scores = item["pose_coords"].numpy(), item["pose_scores"].numpy()
    assert coords.shape == (4, cfg.top_k_pose, 18, 2) and scores.shape == coords.shape[:3]
    assert np.all(scores[:, 0].max(axis=1) > 0)  # someone is found in every frame
    assert np.all(scores[:, 2:] == 0)  # at most two people, the rest padding
    assert np.all(np.isfinite(coords))
    if split == "test":
        # Test clip 0 starts at frame 0 and is centre-cropped (x offset (64 - 48) / 2 = 8,
        # grid = pixels / 4): the actor's Thorax is inside the grid and some detected
        # person's Thorax lies within a cell of where the actor was drawn.
        for t, frame in enumerate(range(0, 16, 4)):
            exact = _exact_actor_joints(video, frame)[THORAX]
            expected = np.array([(exact[0] - 8) / 4, exact[1] / 4])
            assert np.all((expected >= 0) & (expected < 12))
            seen = scores[t, :, THORAX] > 0
            if seen.any():
                dist = np.linalg.norm(coords[t, seen, THORAX] - expected, axis=1).min()
                assert dist < 1.0


def test_the_set_is_flushed_to_disk_once_before_it_is_marked_complete(tmp_path, monkeypatch):
    # One flush of everything (frames and pose files alike) before the completion marker,
    # instead of one per pose file: a crash after the marker cannot leave files missing.
    from tool.synthetic import dataset as dataset_module
    events = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    marker = tmp_path / "synthetic_params.json"
    monkeypatch.setattr(dataset_module.os, "sync",
                        lambda: events.append(("sync", marker.exists())), raising=False)
    summary = generate_dataset(str(tmp_path), seed=0, num_classes=2, train_per_class=1,
                               test_per_class=1, valid_per_class=1, frames=2, height=32,
                               width=40, workers=1)
    assert sum(summary["counts"].values()) == 10 and marker.exists()
    assert events.count(("sync", False)) == 1 and ("sync", True) not in events
    # Durable writes: the owner marker, the 5 annotation files, the 2 label files, the marker.
    assert events.count("fsync") == 9
    assert events.index(("sync", False)) == len(events) - 2  # then only the marker's own
