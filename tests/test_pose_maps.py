"""Pose-map rendering pinned on hand-computed values."""
import math

import torch

from common.nets.pose_maps import (render_joint_heatmaps, render_part_affinity_fields,
                                   render_pose_maps)


def _one_person(joints, scores, p=1):
    coords = torch.tensor(joints, dtype=torch.float32).view(1, p, -1, 2)
    return coords, torch.tensor(scores, dtype=torch.float32).view(1, p, -1)


def test_heatmap_peak_and_values():
    coords, scores = _one_person([[3.0, 5.0]], [1.0])
    hm = render_joint_heatmaps(coords, scores, (8, 10), sigma=0.5)
    assert hm.shape == (1, 1, 8, 10)
    # Pixel (i, j) has x = j, y = i: the peak is at row 5, column 3.
    assert hm[0, 0, 5, 3] == 1.0
    assert torch.argmax(hm[0, 0]).item() == 5 * 10 + 3
    # One pixel away: exp(-1 / (2 * 0.25)) = exp(-2).
    assert math.isclose(hm[0, 0, 5, 4].item(), math.exp(-2), rel_tol=1e-6)
    assert math.isclose(hm[0, 0, 6, 4].item(), math.exp(-4), rel_tol=1e-6)


def test_heatmap_subpixel_and_threshold():
    coords, scores = _one_person([[2.5, 1.0], [4.0, 4.0]], [0.9, 0.1])
    hm = render_joint_heatmaps(coords, scores, (6, 6), sigma=0.5, score_thr=0.1)
    assert math.isclose(hm[0, 0, 1, 2].item(), math.exp(-0.25 / 0.5), rel_tol=1e-6)
    # A score equal to the threshold is not drawn (strictly greater is needed).
    assert hm[0, 1].abs().sum() == 0


def test_heatmap_sums_people_and_clips_at_one():
    coords = torch.tensor([[[[2.0, 2.0]], [[3.0, 2.0]]]])  # two people, one joint
    scores = torch.ones(1, 2, 1)
    hm = render_joint_heatmaps(coords, scores, (5, 6), sigma=0.5)
    assert hm[0, 0, 2, 2] == 1.0  # 1 + exp(-2) clipped
    assert math.isclose(hm[0, 0, 2, 4].item(), math.exp(-2) + math.exp(-8), rel_tol=1e-6)
    assert math.isclose(hm[0, 0, 3, 2].item(), math.exp(-2) + math.exp(-4), rel_tol=1e-6)


def test_paf_direction_and_extent():
    # A horizontal limb from (1, 2) to (5, 2): unit vector (1, 0).
    coords, scores = _one_person([[1.0, 2.0], [5.0, 2.0]], [1.0, 1.0])
    paf = render_part_affinity_fields(coords, scores, torch.tensor([[0, 1]]), (6, 8), paf_sigma=1.0)
    assert paf.shape == (1, 2, 6, 8)
    on = paf[0, 0] != 0
    expected = torch.zeros(6, 8, dtype=torch.bool)
    expected[1:4, 1:6] = True  # rows y in [1, 3] (|dy| <= 1), columns x in [1, 5]
    assert torch.equal(on, expected)
    assert torch.all(paf[0, 0][expected] == 1.0)
    assert torch.all(paf[0, 1] == 0)


def test_paf_diagonal_and_threshold():
    coords, scores = _one_person([[0.0, 0.0], [3.0, 4.0]], [1.0, 0.5])
    paf = render_part_affinity_fields(coords, scores, torch.tensor([[0, 1]]), (6, 6))
    # (3, 4) lies on the limb's end: v = (0.6, 0.8).
    assert math.isclose(paf[0, 0, 4, 3].item(), 0.6, rel_tol=1e-6)
    assert math.isclose(paf[0, 1, 4, 3].item(), 0.8, rel_tol=1e-6)
    # Pixel (x=3, y=0): along = 1.8 in [0, 5], across = |0.8*3 - 0.6*0| = 2.4 > 1 -> off.
    assert paf[0, 0, 0, 3] == 0
    # Pixel (x=1, y=1): along = 1.4, across = |0.8 - 0.6| = 0.2 -> on.
    assert math.isclose(paf[0, 0, 1, 1].item(), 0.6, rel_tol=1e-6)
    # Joint score 0.1 is enough for a limb (>=), 0.09 is not.
    scores[0, 0, 1] = 0.1
    assert render_part_affinity_fields(coords, scores, torch.tensor([[0, 1]]), (6, 6)).abs().sum() > 0
    scores[0, 0, 1] = 0.09
    assert render_part_affinity_fields(coords, scores, torch.tensor([[0, 1]]), (6, 6)).abs().sum() == 0


def test_paf_averages_people_and_zero_length():
    # Person 0 points right, person 1 points up, over the same pixels; person 2 has a zero limb.
    coords = torch.tensor([[[[1.0, 2.0], [4.0, 2.0]],
                            [[2.0, 3.0], [2.0, 0.0]],
                            [[5.0, 4.0], [5.0, 4.0]]]])
    scores = torch.ones(1, 3, 2)
    paf = render_part_affinity_fields(coords, scores, torch.tensor([[0, 1]]), (5, 6))
    # Pixel (x=2, y=2) is on both limbs: mean of (1, 0) and (0, -1).
    assert math.isclose(paf[0, 0, 2, 2].item(), 0.5, rel_tol=1e-6)
    assert math.isclose(paf[0, 1, 2, 2].item(), -0.5, rel_tol=1e-6)
    # Pixel (x=4, y=2) only on person 0's limb.
    assert paf[0, 0, 2, 4].item() == 1.0 and paf[0, 1, 2, 4].item() == 0.0
    # The zero-length limb of person 2 covers nothing, not even its own joint's pixel.
    assert paf[0, :, 4, 5].abs().sum() == 0


def test_pose_maps_channel_order():
    coords, scores = _one_person([[1.0, 1.0], [1.0, 4.0], [4.0, 4.0]], [1, 1, 1])
    limbs = torch.tensor([[0, 1], [1, 2]])
    maps = render_pose_maps(coords, scores, limbs, (6, 6))
    assert maps.shape == (1, 3 + 4, 6, 6)
    assert maps[0, 0, 1, 1] == 1 and maps[0, 1, 4, 1] == 1 and maps[0, 2, 4, 4] == 1
    # limb 0 (down): x channel 3 is 0, y channel 4 is +1; limb 1 (right): channel 5 = +1.
    assert maps[0, 3, 2, 1] == 0 and maps[0, 4, 2, 1] == 1
    assert maps[0, 5, 4, 2] == 1 and maps[0, 6, 4, 2] == 0
