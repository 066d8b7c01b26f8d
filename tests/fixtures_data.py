"""Tiny data sets in the real on-disk formats, for tests (Kinetics, Mimetics, NTU).

Every writer puts its files under `<root>/<Name>/data/` (so `cfg.data_dir = root`), draws all
content from a seeded numpy Generator (same arguments -> same bytes), and returns a dict that
describes what it wrote. Frames are real JPEGs (`%06d.jpg`, 1-based). Each video is filled
with a class colour plus a little noise, and its people stand at a class-dependent place, so a
model can learn the classes from either stream.

The single-file writers (`write_frames`, `write_kinetics_skeleton`, `write_mimetics_poses`,
`write_ntu_skeleton`) let a test replace one video's poses with hand-made ones.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from main.config import build_config

OPENPOSE_JOINTS = 18
NTU_JOINTS = 25

# RGB colours of the classes (cycled when there are more classes).
CLASS_COLORS = ((200, 60, 40), (40, 180, 70), (50, 70, 210), (220, 200, 40), (160, 60, 200),
                (60, 200, 200), (240, 140, 180), (120, 120, 120))


def make_cfg(tmp_path: Any, **overrides: Any) -> Any:
    """The config the loader tests read these data sets with: 2 frames every 2nd, 16 x 16 crops
    of frames resized to 24 px, 8 x 8 pose maps, 3 people, 10 test clips (overrides win)."""
    base = dict(dataset="Kinetics", data_dir=str(tmp_path), frame_per_seg=2, frame_interval=2,
                input_img_shape=(16, 16), input_hm_shape=(8, 8), video_shape=(24,),
                top_k_pose=3, test_infer_num=10, mode="rgb+pose", train_aug=True)
    base.update(overrides)
    return build_config(base)


# --------------------------------------------------------------------------- single files
def write_json(path: str, obj: Any) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def write_frames(frame_dir: str, frames: np.ndarray) -> None:
    """Write `(N, H, W, 3)` uint8 RGB frames as `000001.jpg` ... into `frame_dir`."""
    os.makedirs(frame_dir, exist_ok=True)
    for k, frame in enumerate(frames):
        path = osp.join(frame_dir, "%06d.jpg" % (k + 1))
        if not cv2.imwrite(path, cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise IOError(f"could not write {path}")


def make_frames(rng: np.random.Generator, frame_num: int, frame_size: Tuple[int, int],
                color: Sequence[int], noise: int = 8) -> np.ndarray:
    """`(frame_num, H, W, 3)` uint8 frames: a uniform colour plus uniform noise in +-noise."""
    height, width = frame_size
    base = np.broadcast_to(np.asarray(color, dtype=np.int16), (frame_num, height, width, 3))
    jitter = rng.integers(-noise, noise + 1, size=base.shape, dtype=np.int16) if noise else 0
    return np.clip(base + jitter, 0, 255).astype(np.uint8)


def make_people(rng: np.random.Generator, people: int, joint_num: int,
                center: Tuple[float, float], spread: float) -> Tuple[np.ndarray, np.ndarray]:
    """`people` random poses around `center`: coords `(P, J, 2)`, scores `(P, J)` in [0.3, 1]."""
    coords = np.asarray(center) + rng.uniform(-spread, spread, size=(people, joint_num, 2))
    scores = rng.uniform(0.3, 1.0, size=(people, joint_num))
    return coords, scores


def write_kinetics_skeleton(path: str, frames: Mapping[int, Sequence[Tuple[Any, Any]]]) -> None:
    """kinetics-skeleton file: `frames = {frame_index (1-based): [(pose (18, 2) in [0, 1],
    score (18,)), ...]}`."""
    data = []
    for frame_index in sorted(frames):
        data.append({
            "frame_index": int(frame_index),
            "skeleton": [
                {"pose": [round(float(v), 5) for v in np.asarray(pose).reshape(-1)],
                 "score": [round(float(v), 5) for v in np.asarray(score).reshape(-1)]}
                for pose, score in frames[frame_index]
            ],
        })
    write_json(path, {"data": data, "label": "unknown", "label_index": -1})


def write_mimetics_poses(path: str, frames: Sequence[Optional[Sequence[Tuple[Any, Any, float]]]],
                         nested: bool = False) -> None:
    """Mimetics `data.json`: `frames[i]` = None or `[(coords (18, 2) px, joint scores (18,),
    person score), ...]`; `pose[i]` flat over people (or one list per person if `nested`)."""
    pose, score = [], []
    for people in frames:
        if people is None:
            pose.append(None)
            score.append(None)
            continue
        per_person = [
            [round(float(v), 4) for v in
             np.concatenate([np.asarray(c, float), np.asarray(s, float)[:, None]], 1).reshape(-1)]
            for c, s, _ in people
        ]
        pose.append(per_person if nested else [v for p in per_person for v in p])
        score.append([float(ps) for _, _, ps in people])
    write_json(path, {"pose": pose, "score": score})


def write_ntu_skeleton(path: str, frames: Sequence[Sequence[Any]],
                       header_frames: Optional[int] = None) -> None:
    """Official `.skeleton` text: `frames[i]` = list of bodies, each `(25, 2)` colour-pixel
    coordinates (NaN allowed). `header_frames` overrides the frame count of line 1."""
    lines = [str(len(frames) if header_frames is None else header_frames)]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for b, body in enumerate(bodies):
            lines.append(f"7205759403792{b:04d} 0 1 1 1 1 0 0.01 -0.02 2")
            lines.append(str(NTU_JOINTS))
            for j, (cx, cy) in enumerate(np.asarray(body, dtype=float)):
                # x y z depthX depthY colorX colorY oW oX oY oZ state
                lines.append(f"{0.1 * j:.4f} {0.2:.4f} 3.1 {cx / 6:.3f} {cy / 5:.3f} "
                             f"{cx:.4f} {cy:.4f} 0.1 0.2 0.3 0.4 2".replace("nan", "NaN"))
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- data sets
def _class_center(label: int, num_classes: int) -> Tuple[float, float]:
    """Normalised (x, y) around which the people of a class stand."""
    return (label + 1) / (num_classes + 1), 0.5


def _categories(num_classes: int) -> List[Dict[str, Any]]:
    return [{"id": c, "name": f"action_{c:02d}"} for c in range(num_classes)]


def write_kinetics(root: str, num_classes: int = 2, videos_per_class: int = 2,
                   frame_num: int = 20, frame_size: Tuple[int, int] = (32, 48), seed: int = 0,
                   subset: str = "50", people_per_frame: int = 2, short_videos: int = 0,
                   short_frame_num: int = 2, no_skeleton_videos: int = 0,
                   with_categories: bool = True) -> Dict[str, Any]:
    """Kinetics{subset}_{train,val}.json, frames and kinetics-skeleton files for both splits.

    Train frame folders carry the `_<start>_<end>` suffix the skeleton release lacks; video ids
    contain a `_` of their own. Besides `num_classes * videos_per_class` normal videos per split,
    `short_videos` have `short_frame_num` frames and `no_skeleton_videos` are marked
    `has_skeleton: false` (and get no skeleton file); both are labelled class 0.

    Returns `{'data_root', 'subset', 'class_num', 'train': [video], 'val': [video]}`, each video
    a dict: id, seq_name, file_name, skeleton_name, label, frame_num, height, width, color,
    kind ('normal' | 'short' | 'no_skeleton'), frame_dir, skeleton_path.
    """
    rng = np.random.default_rng(seed)
    data_root = osp.join(root, "Kinetics", "data")
    height, width = frame_size
    info: Dict[str, Any] = {"data_root": data_root, "subset": str(subset), "class_num": num_classes}
    for part in ("train", "val"):
        plan = [(c, "normal") for c in range(num_classes) for _ in range(videos_per_class)]
        plan += [(0, "short")] * short_videos + [(0, "no_skeleton")] * no_skeleton_videos
        images, annotations, labels_json, videos = [], [], {}, []
        for i, (label, kind) in enumerate(plan):
            video_id = i + 1
            name = f"yt{part}{i:03d}_{chr(97 + i % 26)}"
            file_name = f"{name}_{10 * i:06d}_{10 * i + 10:06d}" if part == "train" else name
            seq_name = f"action_{label:02d}"
            n = short_frame_num if kind == "short" else frame_num
            color = CLASS_COLORS[label % len(CLASS_COLORS)]
            frame_dir = osp.join(data_root, "frames", f"{part}_256", seq_name, file_name)
            write_frames(frame_dir, make_frames(rng, n, frame_size, color))
            skeleton_path = osp.join(data_root, "kinetics-skeleton", f"kinetics_{part}",
                                     f"{name}.json")
            has_skeleton = kind != "no_skeleton"
            if has_skeleton:
                center = _class_center(label, num_classes)
                frames = {}
                for k in range(n):
                    coords, scores = make_people(rng, people_per_frame, OPENPOSE_JOINTS, center,
                                                 0.1)
                    frames[k + 1] = list(zip(coords, scores))  # frame_index counts from 1
                write_kinetics_skeleton(skeleton_path, frames)
            labels_json[name] = {"has_skeleton": has_skeleton, "label": seq_name,
                                 "label_index": label}
            images.append({"id": video_id, "seq_name": seq_name, "file_name": file_name,
                           "height": height, "width": width, "frame_num": n})
            annotations.append({"id": video_id, "image_id": video_id, "action_label": label,
                                "action_name": seq_name})
            videos.append({"id": video_id, "seq_name": seq_name, "file_name": file_name,
                           "skeleton_name": name, "label": label, "frame_num": n,
                           "height": height, "width": width, "color": color, "kind": kind,
                           "frame_dir": frame_dir,
                           "skeleton_path": skeleton_path if has_skeleton else None})
        coco = {"images": images, "annotations": annotations}
        if with_categories:
            coco["categories"] = _categories(num_classes)
        write_json(osp.join(data_root, f"Kinetics{subset}_{part}.json"), coco)
        write_json(osp.join(data_root, "kinetics-skeleton", f"kinetics_{part}_label.json"),
                   labels_json)
        info[part] = videos
    return info


def write_mimetics(root: str, num_classes: int = 2, videos_per_class: int = 1,
                   frame_num: int = 20, frame_size: Tuple[int, int] = (32, 48), seed: int = 0,
                   subset: str = "50", people_per_frame: int = 2, null_every: int = 5,
                   with_categories: bool = True) -> Dict[str, Any]:
    """Mimetics{subset}.json, frames and pose_results in original pixels (the frames' size).

    Every `null_every`-th frame (0, null_every, ...) has `pose[i] = null`; 0 disables that.
    Returns `{'data_root', 'subset', 'class_num', 'videos': [video]}` with video dicts: id,
    seq_name, file_name, label, frame_num, height, width, color, frame_dir, pose_path.
    """
    rng = np.random.default_rng(seed)
    data_root = osp.join(root, "Mimetics", "data")
    height, width = frame_size
    images, annotations, videos = [], [], []
    for i in range(num_classes * videos_per_class):
        label = i // videos_per_class
        video_id = i + 1
        seq_name, file_name = f"action_{label:02d}", f"mime{i:03d}"
        color = CLASS_COLORS[label % len(CLASS_COLORS)]
        frame_dir = osp.join(data_root, "frames", seq_name, file_name)
        write_frames(frame_dir, make_frames(rng, frame_num, frame_size, color))
        cx, cy = _class_center(label, num_classes)
        frames = []
        for k in range(frame_num):
            if null_every and k % null_every == 0:
                frames.append(None)
                continue
            coords, scores = make_people(rng, people_per_frame, OPENPOSE_JOINTS, (cx, cy), 0.1)
            coords = coords * np.array([width, height])
            frames.append([(c, s, float(rng.uniform(0.5, 1.0))) for c, s in zip(coords, scores)])
        pose_path = osp.join(data_root, "pose_results", seq_name, file_name, "data.json")
        write_mimetics_poses(pose_path, frames)
        images.append({"id": video_id, "seq_name": seq_name, "file_name": file_name,
                       "height": height, "width": width, "frame_num": frame_num})
        annotations.append({"id": video_id, "image_id": video_id, "action_label": label,
                            "action_name": seq_name})
        videos.append({"id": video_id, "seq_name": seq_name, "file_name": file_name,
                       "label": label, "frame_num": frame_num, "height": height, "width": width,
                       "color": color, "frame_dir": frame_dir, "pose_path": pose_path})
    coco = {"images": images, "annotations": annotations}
    if with_categories:
        coco["categories"] = _categories(num_classes)
    write_json(osp.join(data_root, f"Mimetics{subset}.json"), coco)
    return {"data_root": data_root, "subset": str(subset), "class_num": num_classes,
            "videos": videos}


def write_ntu(root: str, num_classes: int = 2, videos_per_class: int = 1, frame_num: int = 20,
              frame_size: Tuple[int, int] = (32, 48), seed: int = 0, bodies: int = 1,
              setup_idx: Any = 1, with_categories: bool = False,
              padded_folders: bool = False) -> Dict[str, Any]:
    """NTU_{train,test}.json, frames and `.skeleton` files (colour pixels of the frame size).

    `setup_idx` is written into the json as given; the frame folder is
    `nturgb+d_rgb_s{setup_idx}` as docs/data_format.md names it (the int 1 -> `s1`, a str as is), or with
    `padded_folders` the official archives' zero-padded `s001`.
    NTU annotations carry `action_label` only; by default there are no categories.
    Returns `{'data_root', 'class_num', 'train': [video], 'test': [video]}` with video dicts: id,
    file_name, skeleton_file_name, label, frame_num, height, width, color, frame_dir,
    skeleton_path.
    """
    rng = np.random.default_rng(seed)
    data_root = osp.join(root, "NTU", "data")
    height, width = frame_size
    setup = str(setup_idx)
    if padded_folders and setup.isdigit():
        setup = f"{int(setup):03d}"
    folder = f"nturgb+d_rgb_s{setup}"
    info: Dict[str, Any] = {"data_root": data_root, "class_num": num_classes}
    for part in ("train", "test"):
        images, annotations, videos = [], [], []
        for i in range(num_classes * videos_per_class):
            label = i // videos_per_class
            video_id = i + 1
            file_name = f"S001C001P{i:03d}R00{1 if part == 'train' else 2}A{label + 1:03d}"
            skeleton_file_name = f"{file_name}.skeleton"
            color = CLASS_COLORS[label % len(CLASS_COLORS)]
            frame_dir = osp.join(data_root, "frames", folder, f"{file_name}_rgb")
            write_frames(frame_dir, make_frames(rng, frame_num, frame_size, color))
            cx, cy = _class_center(label, num_classes)
            frames = []
            for _ in range(frame_num):
                coords, _ = make_people(rng, bodies, NTU_JOINTS, (cx, cy), 0.1)
                frames.append(list(coords * np.array([width, height])))
            skeleton_path = osp.join(data_root, "nturgb+d_skeletons", skeleton_file_name)
            write_ntu_skeleton(skeleton_path, frames)
            images.append({"id": video_id, "setup_idx": setup_idx, "file_name": f"{file_name}_rgb",
                           "skeleton_file_name": skeleton_file_name, "height": height,
                           "width": width, "frame_num": frame_num})
            annotations.append({"id": video_id, "image_id": video_id, "action_label": label})
            videos.append({"id": video_id, "file_name": f"{file_name}_rgb",
                           "skeleton_file_name": skeleton_file_name, "label": label,
                           "frame_num": frame_num, "height": height, "width": width,
                           "color": color, "frame_dir": frame_dir, "skeleton_path": skeleton_path})
        coco = {"images": images, "annotations": annotations}
        if with_categories:
            coco["categories"] = _categories(num_classes)
        write_json(osp.join(data_root, f"NTU_{part}.json"), coco)
        info[part] = videos
    return info
