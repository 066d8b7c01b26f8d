"""A tiny NTU data set in the release's own layout (no annotation file), for tests.

`write_ntu_release` writes what unpacking the official archives and extracting the RGB frames
gives: `<root>/<dataset>/data/frames/nturgb+d_rgb_s001/<SsssCcccPpppRrrrAaaa>[_rgb]/%06d.jpg`
(the archives' zero-padded setup folders) and `nturgb+d_skeletons/<name>.skeleton`, whose
colour coordinates are pixels of the Kinect's 1920 x 1080 colour frame, while the JPEGs are
extracted smaller (same aspect). Content is drawn from a seeded Generator; each action has its
colour and its people's place, as in tests/fixtures_data.py.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, Iterable, Sequence, Tuple

import numpy as np

from tests.fixtures_data import (CLASS_COLORS, NTU_JOINTS, make_frames, make_people,
                                 write_frames, write_ntu_skeleton)

COLOUR_HW = (1080, 1920)  # the pixels of the skeleton files' colour coordinates


def sample_name(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


def write_ntu_release(root: str, names: Iterable[str], *, dataset: str = "NTU120",
                      frame_num: int = 4, frame_size: Tuple[int, int] = (18, 32),
                      seed: int = 0, padded_folders: bool = True, rgb_suffix: bool = False,
                      without_skeleton: Sequence[str] = ()) -> Dict[str, Any]:
    """Frames and `.skeleton` files of the samples `names` (one body each).

    `without_skeleton`: names whose `.skeleton` file is not written. Returns `{'data_root',
    'videos': {name: {'label', 'color', 'frame_dir', 'skeleton_path', 'body'}}}` with `body` the
    (25, 2) colour-pixel joints of every frame.
    """
    rng = np.random.default_rng(seed)
    data_root = osp.join(root, dataset, "data")
    videos: Dict[str, Dict[str, Any]] = {}
    for name in names:
        setup, action = int(name[1:4]), int(name[17:20])
        label = action - 1
        folder = f"nturgb+d_rgb_s{setup:03d}" if padded_folders else f"nturgb+d_rgb_s{setup}"
        frame_dir = osp.join(data_root, "frames", folder, name + ("_rgb" if rgb_suffix else ""))
        color = CLASS_COLORS[label % len(CLASS_COLORS)]
        write_frames(frame_dir, make_frames(rng, frame_num, frame_size, color))
        coords, _ = make_people(rng, 1, NTU_JOINTS, ((label % 7 + 1) / 8, 0.5), 0.1)
        body = coords[0] * np.array([COLOUR_HW[1], COLOUR_HW[0]])
        skeleton_path = osp.join(data_root, "nturgb+d_skeletons", f"{name}.skeleton")
        if name not in without_skeleton:
            write_ntu_skeleton(skeleton_path, [[body]] * frame_num)
        videos[name] = {"label": label, "color": color, "frame_dir": frame_dir,
                        "skeleton_path": skeleton_path, "body": body}
    return {"data_root": data_root, "videos": videos}
