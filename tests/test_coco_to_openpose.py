"""COCO-17 keypoints (Keypoint R-CNN) -> OpenPose-18 (the Kinetics poses), on hand-made people."""
from __future__ import annotations

import math

import numpy as np
import pytest

from common.pose_estimation import keypoint_confidence
from data.coco_to_openpose import COCO_17, coco_to_openpose
from data.joint_sets import OPENPOSE_18
from data.skeleton_files import pose_table

# The OpenPose-18 joints in docs/data_format.md's order, each with its COCO-17 index written out by hand
# (COCO: 0 nose, 1 l_eye, 2 r_eye, 3 l_ear, 4 r_ear, 5 l_shoulder, 6 r_shoulder, 7 l_elbow,
# 8 r_elbow, 9 l_wrist, 10 r_wrist, 11 l_hip, 12 r_hip, 13 l_knee, 14 r_knee, 15 l_ankle,
# 16 r_ankle); None is the Thorax.
EXPECTED = [("Nose", 0), ("Thorax", None), ("R_Shoulder", 6), ("R_Elbow", 8), ("R_Wrist", 10),
            ("L_Shoulder", 5), ("L_Elbow", 7), ("L_Wrist", 9), ("R_Hip", 12), ("R_Knee", 14),
            ("R_Ankle", 16), ("L_Hip", 11), ("L_Knee", 13), ("L_Ankle", 15), ("R_Eye", 2),
            ("L_Eye", 1), ("R_Ear", 4), ("L_Ear", 3)]


def coco_person():
    """Joint j at (10 j, 100 + j) with score 0.04 j + 0.1: every joint is told apart."""
    coords = np.array([[10.0 * j, 100.0 + j] for j in range(17)], dtype=np.float32)
    scores = np.array([0.04 * j + 0.1 for j in range(17)], dtype=np.float32)
    return coords, scores


def test_each_joint_lands_where_spec_says():
    coords, scores = coco_person()
    out_coords, out_scores = coco_to_openpose(coords, scores)
    assert out_coords.shape == (18, 2) and out_scores.shape == (18,)
    assert [name for name, _ in EXPECTED] == list(OPENPOSE_18.joint_names)
    for j, (name, coco) in enumerate(EXPECTED):
        if coco is None:
            continue
        assert out_coords[j].tolist() == [10.0 * coco, 100.0 + coco], name
        assert out_scores[j] == pytest.approx(0.04 * coco + 0.1), name


def test_thorax_is_the_shoulder_midpoint_scored_by_the_weaker_shoulder():
    coords, scores = coco_person()
    out_coords, out_scores = coco_to_openpose(coords, scores)
    # Shoulders: COCO 5 (50, 105) score 0.30 and COCO 6 (60, 106) score 0.34.
    assert out_coords[1].tolist() == [55.0, 105.5]
    assert out_scores[1] == pytest.approx(0.30)
    # The weaker one decides whichever side it is on; a missing shoulder gives no Thorax.
    scores[5], scores[6] = 0.9, 0.2
    assert coco_to_openpose(coords, scores)[1][1] == pytest.approx(0.2)
    scores[6] = 0.0
    assert coco_to_openpose(coords, scores)[1][1] == 0.0


def _flip(coords, scores, pairs, width):
    coords = coords.copy()
    scores = scores.copy()
    coords[..., 0] = width - 1 - coords[..., 0]
    for a, b in pairs:
        coords[..., [a, b], :] = coords[..., [b, a], :]
        scores[..., [a, b]] = scores[..., [b, a]]
    return coords, scores


def test_flip_then_convert_equals_convert_then_flip():
    """Mirroring a person in COCO-17 and converting gives the mirrored OpenPose-18 person:
    the left/right joints and the Thorax stay consistent (for every person of every frame)."""
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 64, size=(3, 2, 17, 2)).astype(np.float32)  # (frames, people, ...)
    scores = rng.uniform(0, 1, size=(3, 2, 17)).astype(np.float32)
    width = 64
    a = coco_to_openpose(*_flip(coords, scores, COCO_17.flip_pairs, width))
    b = _flip(*coco_to_openpose(coords, scores), OPENPOSE_18.flip_pairs, width)
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="17"):
        coco_to_openpose(np.zeros((18, 2)), np.zeros(18))
    with pytest.raises(ValueError):
        coco_to_openpose(np.zeros((2, 17, 2)), np.zeros((3, 17)))


def test_keypoint_confidence():
    """person score x sigmoid(logit - 2): 2 (Detectron's drawing threshold) counts half."""
    logits = np.array([[2.0, 100.0, -100.0, 2.0 + math.log(3.0)]])
    conf = keypoint_confidence(logits, np.array([0.8]))
    np.testing.assert_allclose(conf, [[0.4, 0.8, 0.0, 0.6]], atol=1e-6)
    assert conf.dtype == np.float32


def test_pose_table_normalises_by_the_frame_and_counts_frames_from_one():
    coords, scores = coco_person()
    people = [(coords[None], scores[None]), (np.zeros((0, 17, 2)), np.zeros((0, 17)))]
    table = pose_table(people, [4, 5], (200, 400))  # frames 4 and 5 (0-based), H 200, W 400
    assert list(table) == [5]  # frame_index 5; the empty frame is absent
    got_coords, got_scores = table[5]
    assert got_coords.shape == (1, 18, 2)
    assert got_coords[0, 0].tolist() == [0.0, pytest.approx(0.5)]  # nose (0, 100) / (400, 200)
    assert got_coords[0, 1].tolist() == [pytest.approx(55 / 400), pytest.approx(105.5 / 200)]
    assert got_scores[0, 1] == pytest.approx(0.30)
