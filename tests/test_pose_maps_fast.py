"""The windowed pose-map renderer (common.nets.pose_maps) against the dense baseline.

The dense formulation (tool.benchmarks.baselines.pose_maps_dense) is docs/data_format.md's
formulas evaluated on every pixel; the fast renderer must give the same maps to 1e-5 on random
and on edge cases. No timing here: tool/benchmark.py measures speed.
"""
import math

import pytest
import torch

from common.nets.pose_maps import (_render, render_joint_heatmaps, render_part_affinity_fields,
                                   render_pose_maps)
from tool.benchmarks.baselines.pose_maps_dense import (render_joint_heatmaps_dense,
                                                       render_part_affinity_fields_dense,
                                                       render_pose_maps_dense)
from data.joint_sets import NTU_25, OPENPOSE_18

TOL = 1e-5
OPENPOSE_LIMBS = torch.tensor(OPENPOSE_18.limbs)
# The renderer's default options, for `_render`, which takes them keyword-only.
MAP_OPTIONS = {"hm_sigma": 0.5, "paf_sigma": 1.0, "score_thr": 0.1}

# A standing person in a unit box, OpenPose-18 joint order: realistic limb lengths/directions.
_TEMPLATE = torch.tensor([
    [0.50, 0.08], [0.50, 0.20], [0.38, 0.20], [0.33, 0.36], [0.30, 0.50], [0.62, 0.20],
    [0.67, 0.36], [0.70, 0.50], [0.42, 0.52], [0.42, 0.74], [0.42, 0.95], [0.58, 0.52],
    [0.58, 0.74], [0.58, 0.95], [0.47, 0.06], [0.53, 0.06], [0.44, 0.07], [0.56, 0.07]])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def assert_same_as_dense(coords, scores, limbs, hm_shape, hm_sigma=0.5, paf_sigma=1.0,
                         score_thr=0.1, tol=TOL):
    """All three public functions agree with their dense counterparts; returns the fast maps."""
    options = {"hm_sigma": hm_sigma, "paf_sigma": paf_sigma, "score_thr": score_thr}
    fast = render_pose_maps(coords, scores, limbs, hm_shape, **options)
    dense = render_pose_maps_dense(coords, scores, limbs, hm_shape, **options)
    assert max_diff(fast, dense) <= tol
    heat = render_joint_heatmaps(coords, scores, hm_shape, sigma=hm_sigma, score_thr=score_thr)
    assert max_diff(heat, render_joint_heatmaps_dense(coords, scores, hm_shape, sigma=hm_sigma,
                                                      score_thr=score_thr)) <= tol
    paf = render_part_affinity_fields(coords, scores, limbs, hm_shape, paf_sigma=paf_sigma,
                                      score_thr=score_thr)
    assert max_diff(paf, render_part_affinity_fields_dense(coords, scores, limbs, hm_shape,
                                                           paf_sigma=paf_sigma,
                                                           score_thr=score_thr)) <= tol
    # render_pose_maps is exactly the concatenation of the two parts.
    assert torch.equal(fast, torch.cat((heat, paf), dim=1))
    # The GPU's synchronisation-free variant (every entry drawn with a 0/1 weight), on the CPU.
    every = _render(coords, scores, limbs, hm_shape, hm_sigma=hm_sigma, paf_sigma=paf_sigma,
                    score_thr=score_thr, compact=False)
    assert max_diff(every, dense) <= tol
    return fast


def paper_clip(seed, frames=8, people=5, real=2, hm_shape=(56, 56), drop=0.1):
    """The paper's input: `real` template people, the rest padded (coordinates 1, score 0)."""
    g = torch.Generator().manual_seed(seed)
    h, w = hm_shape
    coords = torch.ones(frames, people, 18, 2)
    scores = torch.zeros(frames, people, 18)
    for p in range(real):
        size = h * (0.5 + 0.4 * torch.rand(1, generator=g))
        centre = torch.tensor([w, h]) * (0.3 + 0.4 * torch.rand(2, generator=g))
        for t in range(frames):
            coords[t, p] = ((_TEMPLATE - 0.5) * size + centre
                            + torch.randn(18, 2, generator=g))
            s = 0.2 + 0.8 * torch.rand(18, generator=g)
            s[torch.rand(18, generator=g) < drop] = 0.05  # dropped joints
            scores[t, p] = s
    return coords, scores


def random_poses(seed, frames, people, joints, hm_shape, margin=4.0):
    """Uniform joints over the map grown by `margin`, some on integer pixels, some scores at
    the threshold exactly."""
    g = torch.Generator().manual_seed(seed)
    h, w = hm_shape
    coords = (torch.rand(frames, people, joints, 2, generator=g)
              * torch.tensor([w + 2 * margin, h + 2 * margin]) - margin)
    on_grid = torch.rand(frames, people, joints, 1, generator=g) < 0.3
    coords = torch.where(on_grid, coords.round(), coords)
    scores = torch.rand(frames, people, joints, generator=g)
    scores[torch.rand(frames, people, joints, generator=g) < 0.1] = 0.1
    return coords, scores


# --------------------------------------------------------------------------- random cases
@pytest.mark.parametrize("seed", range(4))
def test_paper_shapes(seed):
    coords, scores = paper_clip(seed)
    maps = assert_same_as_dense(coords, scores, OPENPOSE_LIMBS, (56, 56))
    assert maps.shape == (8, 52, 56, 56) and maps.dtype == torch.float32


@pytest.mark.parametrize("hm_shape", [(56, 56), (24, 32), (32, 24), (7, 40), (40, 7), (5, 6)])
@pytest.mark.parametrize("seed", range(3))
def test_random_openpose(seed, hm_shape):
    coords, scores = random_poses(seed, 6, 3, 18, hm_shape)
    assert_same_as_dense(coords, scores, OPENPOSE_LIMBS, hm_shape)


@pytest.mark.parametrize("seed", range(2))
def test_random_ntu_many_frames(seed):
    coords, scores = random_poses(10 + seed, 40, 2, 25, (24, 32))
    maps = assert_same_as_dense(coords, scores, torch.tensor(NTU_25.limbs), (24, 32))
    assert maps.shape == (40, NTU_25.pose_channels, 24, 32)


@pytest.mark.parametrize("seed", range(6))
def test_random_limbs_tiny_maps(seed):
    """Maps smaller than the windows (1..4 pixels a side) and arbitrary joint pairs."""
    g = torch.Generator().manual_seed(100 + seed)
    hm_shape = tuple(int(v) for v in torch.randint(1, 5, (2,), generator=g))
    coords, scores = random_poses(100 + seed, 4, 3, 6, hm_shape)
    limbs = torch.randint(0, 6, (10, 2), generator=g)
    assert_same_as_dense(coords, scores, limbs, hm_shape)


@pytest.mark.parametrize("hm_sigma,paf_sigma", [(1.0, 0.5), (2.0, 2.0), (0.3, 3.0)])
def test_other_sigmas(hm_sigma, paf_sigma):
    coords, scores = random_poses(7, 5, 3, 18, (24, 32))
    assert_same_as_dense(coords, scores, OPENPOSE_LIMBS, (24, 32), hm_sigma, paf_sigma)


# --------------------------------------------------------------------------- edge cases
def one_frame(joints, scores):
    """(1, P, J, 2), (1, P, J) from nested lists [person][joint]."""
    return torch.tensor(joints, dtype=torch.float32)[None], torch.tensor(scores)[None]


def test_zero_length_limbs_cover_nothing():
    coords, scores = one_frame([[[3.0, 4.0], [3.0, 4.0], [7.0, 4.0]]], [[1.0, 1.0, 1.0]])
    limbs = torch.tensor([[0, 1], [1, 0], [1, 2]])
    paf = assert_same_as_dense(coords, scores, limbs, (10, 12))[0, 3:]
    assert paf[:4].abs().sum() == 0  # limbs 0 and 1 are zero-length
    assert paf[4, 4, 3:8].eq(1).all()  # limb 2 is drawn


@pytest.mark.parametrize("offset", [-1.2, -2.0, -2.7, -3.5, 0.4])
def test_joints_just_outside_the_map(offset):
    """A joint within the Gaussian's reach outside the map: the window is partly off the map."""
    h, w = 9, 11
    joints = [[[offset, 4.3], [w - 1 - offset, 4.0], [5.0, offset], [5.5, h - 1 - offset]]]
    coords, scores = one_frame(joints, [[1.0, 1.0, 1.0, 1.0]])
    limbs = torch.tensor([[0, 1], [2, 3], [0, 2]])
    maps = assert_same_as_dense(coords, scores, limbs, (h, w))
    if offset > -2.8:  # still within the 1e-7 reach of sigma 0.5: something is drawn
        assert maps[0, :4].amax(dim=(1, 2)).gt(1e-7).all()


def test_joints_far_outside_the_map():
    joints = [[[-1e3, 5.0], [5.0, 5.0], [1e4, -1e4], [30.5, 40.5], [3.0, -50.0]]]
    coords, scores = one_frame(joints, [[1.0] * 5])
    limbs = torch.tensor([[0, 1], [1, 2], [3, 4], [0, 2], [4, 1]])
    maps = assert_same_as_dense(coords, scores, limbs, (12, 16))
    assert maps[0, 0].abs().sum() == 0 and maps[0, 2:4].abs().sum() == 0
    assert maps[0, 5].abs().sum() > 0  # the limb from the far joint crosses the map


def test_limbs_spanning_the_map():
    """The map's diagonals and limbs reaching far past both ends (the longest windows)."""
    h, w = 24, 32
    joints = [[[0.0, 0.0], [w - 1.0, h - 1.0], [w - 1.0, 0.0], [0.0, h - 1.0],
               [-40.0, 11.5], [70.0, 12.0], [15.2, -30.0], [16.0, 60.0]]]
    coords, scores = one_frame(joints, [[1.0] * 8])
    limbs = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7], [1, 0]])
    paf = assert_same_as_dense(coords, scores, limbs, (h, w))[0, 8:]
    diagonal = torch.tensor([w - 1.0, h - 1.0]) / math.hypot(w - 1, h - 1)
    for i in range(h):  # every row of the diagonal limb has its pixel on the line
        j = round(i * (w - 1) / (h - 1))
        assert torch.allclose(paf[0:2, i, j], diagonal)
        assert torch.allclose(paf[8:10, i, j], -diagonal)
    assert paf[4, 11:13].ne(0).all()  # the horizontal limb crosses the whole map


@pytest.mark.parametrize("hm_shape", [(7, 40), (40, 7), (2, 9)])
def test_axis_aligned_limbs_on_thin_maps(hm_shape):
    """Limbs along x and along y on maps whose short side is shorter than the windows."""
    h, w = hm_shape
    joints = [[[1.0, 0.0], [1.0, h - 1.0], [0.0, 1.0], [w - 1.0, 1.0], [3.0, -5.0],
               [3.0, h + 5.0], [-5.0, 0.5], [w + 5.0, 0.5]]]
    coords, scores = one_frame(joints, [[1.0] * 8])
    limbs = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7], [1, 0], [0, 3]])
    assert_same_as_dense(coords, scores, limbs, hm_shape)


def test_coordinates_near_the_float_range():
    """Finite but huge coordinates: nothing is drawn out of place, nothing becomes NaN."""
    joints = [[[1e37, 5.0], [5.0, 5.0], [-3e38, 3e38], [5.0, 1e30], [4.0, 2.0]]]
    coords, scores = one_frame(joints, [[1.0] * 5])
    limbs = torch.tensor([[0, 1], [1, 2], [2, 3], [1, 3], [0, 2], [1, 4]])
    far_only = torch.tensor([[0, 2], [2, 3]])
    for compact in (True, False):
        maps = _render(coords, scores, limbs, (9, 13), **MAP_OPTIONS, compact=compact)
        assert torch.isfinite(maps).all()
        near = _render(coords[:, :, [1, 4]], scores[:, :, [1, 4]], torch.tensor([[0, 1]]),
                       (9, 13), **MAP_OPTIONS, compact=compact)
        assert torch.equal(maps[0, [1, 4]], near[0, :2])  # the heatmaps of the near joints
        assert torch.equal(maps[0, 5 + 10:5 + 12], near[0, 2:4])  # limb 1 -> 4
        assert _render(coords, scores, far_only, (9, 13), hm_sigma=None, paf_sigma=1.0,
                       score_thr=0.1, compact=compact).eq(0).all()


def test_all_scores_below_threshold():
    coords, scores = paper_clip(3)
    scores = scores.clamp(max=0.05)
    maps = assert_same_as_dense(coords, scores, OPENPOSE_LIMBS, (56, 56))
    assert maps.abs().sum() == 0


def test_scores_at_the_threshold():
    """score == thr: not drawn as a heatmap (> thr), drawn as a limb end (>= thr)."""
    coords, scores = one_frame([[[2.0, 3.0], [8.0, 3.0]]], [[0.1, 0.1]])
    maps = assert_same_as_dense(coords, scores, torch.tensor([[0, 1]]), (7, 10))
    assert maps[0, :2].abs().sum() == 0
    assert maps[0, 2, 3, 2:9].eq(1).all()


def test_overlapping_people():
    """Two people with a joint on the same spot (heatmap clipped at 1) and crossing limbs
    (PAF = mean direction), plus a third person on the same limb in the same direction."""
    joints = [[[4.0, 4.0], [4.0, 4.0], [1.0, 4.0], [9.0, 4.0]],
              [[4.0, 4.0], [4.3, 4.2], [5.0, 0.0], [5.0, 9.0]],
              [[0.0, 0.0], [0.0, 0.0], [2.0, 4.0], [8.0, 4.0]]]
    coords, scores = one_frame(joints, [[1.0] * 4] * 3)
    maps = assert_same_as_dense(coords, scores, torch.tensor([[2, 3]]), (10, 10))
    assert maps[0, 0, 4, 4] == 1.0  # 1 + 1 clipped
    assert maps[0, 1, 4, 4] == 1.0  # 1 + exp(-2 * 0.13) clipped
    # (5, 4) is on all three limbs: mean of (1, 0), (0, 1), (1, 0).
    assert torch.allclose(maps[0, 4:6, 4, 5], torch.tensor([2 / 3, 1 / 3]))
    assert torch.allclose(maps[0, 4:6, 7, 5], torch.tensor([0.0, 1.0]))  # person 1 only


def test_non_finite_coordinates_are_never_drawn():
    """NaN/inf joints are ignored whatever their score; in the dense maps a NaN poisons."""
    coords, scores = paper_clip(5)
    clean_scores = scores.clone()
    coords[0, 0, 3] = float("nan")  # a drawn joint's coordinate
    coords[1, 1, 4, 0] = float("inf")
    coords[2, 3] = float("nan")  # a padded person
    clean_scores[0, 0, 3] = clean_scores[1, 1, 4] = 0.0
    clean = coords.nan_to_num(0.0, 0.0, 0.0)
    expected = render_pose_maps_dense(clean, clean_scores, OPENPOSE_LIMBS, (56, 56))
    for compact in (True, False):
        maps = _render(coords, scores, OPENPOSE_LIMBS, (56, 56), **MAP_OPTIONS, compact=compact)
        assert torch.isfinite(maps).all()
        assert max_diff(maps, expected) <= TOL
    # The reason for the difference: the dense formulation multiplies NaN by score 0.
    assert not torch.isfinite(render_pose_maps_dense(coords, scores, OPENPOSE_LIMBS,
                                                     (56, 56))).all()


def test_padded_people_change_nothing():
    """Padded people (score 0, any coordinate) leave the maps bit for bit as without them."""
    coords, scores = paper_clip(6, people=5, real=2)
    coords[:, 2:] = torch.randn(8, 3, 18, 2) * 30  # padding anywhere, even on the map
    coords[:, 4] = float("nan")
    with_padding = render_pose_maps(coords, scores, OPENPOSE_LIMBS, (56, 56))
    without = render_pose_maps(coords[:, :2], scores[:, :2], OPENPOSE_LIMBS, (56, 56))
    assert torch.equal(with_padding, without)
    # The GPU variant draws them with weight 0: the same maps to rounding.
    every = _render(coords, scores, OPENPOSE_LIMBS, (56, 56), **MAP_OPTIONS, compact=False)
    assert max_diff(every, without) <= 1e-6


def test_no_frames_and_no_people():
    coords, scores = torch.zeros(0, 5, 18, 2), torch.zeros(0, 5, 18)
    maps = assert_same_as_dense(coords, scores, OPENPOSE_LIMBS, (56, 56))
    assert maps.shape == (0, 52, 56, 56)
    maps = render_pose_maps(torch.zeros(3, 0, 18, 2), torch.zeros(3, 0, 18), OPENPOSE_LIMBS,
                            (8, 8))
    assert maps.shape == (3, 52, 8, 8) and maps.abs().sum() == 0


def test_float64_input():
    """float64 is drawn in float64: the PAFs agree to rounding, the heatmaps up to the Gaussian
    tail the windows leave out (< 1e-7 a person)."""
    coords, scores = random_poses(8, 4, 3, 18, (24, 32))
    coords, scores = coords.double(), scores.double()
    maps = assert_same_as_dense(coords, scores, OPENPOSE_LIMBS, (24, 32), tol=3 * 1e-7)
    assert maps.dtype == torch.float64
    dense = render_pose_maps_dense(coords, scores, OPENPOSE_LIMBS, (24, 32))
    assert max_diff(maps[:, 18:], dense[:, 18:]) <= 1e-12


def test_half_input_is_drawn_in_float32():
    coords, scores = paper_clip(9)
    half = render_pose_maps(coords.half(), scores.half(), OPENPOSE_LIMBS, (56, 56))
    assert half.dtype == torch.float16
    full = render_pose_maps(coords.half().float(), scores.half().float(), OPENPOSE_LIMBS,
                            (56, 56))
    assert torch.equal(half, full.half())


def test_no_autograd_and_autocast():
    coords, scores = paper_clip(10)
    coords.requires_grad_(True)
    maps = render_pose_maps(coords, scores, OPENPOSE_LIMBS, (56, 56))
    assert not maps.requires_grad
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        under_amp = render_pose_maps(coords, scores, OPENPOSE_LIMBS, (56, 56))
    assert under_amp.dtype == torch.float32 and torch.equal(under_amp, maps)


def test_limbs_as_int32_and_non_contiguous_inputs():
    coords, scores = paper_clip(11)
    expected = render_pose_maps(coords, scores, OPENPOSE_LIMBS, (56, 56))
    coords_t = coords.transpose(0, 1).contiguous().transpose(0, 1)  # same values, other strides
    scores_t = scores.transpose(0, 1).contiguous().transpose(0, 1)
    limbs = OPENPOSE_LIMBS.int().t().contiguous().t()
    assert torch.equal(render_pose_maps(coords_t, scores_t, limbs, (56, 56)), expected)


# Every device there is: the CPU always, and on a machine with a GPU the CUDA path too.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_device_matches_dense(device):
    coords, scores = paper_clip(12)
    limbs = OPENPOSE_LIMBS.to(device)
    fast = render_pose_maps(coords.to(device), scores.to(device), limbs, (56, 56))
    assert fast.device.type == device
    dense = render_pose_maps_dense(coords, scores, OPENPOSE_LIMBS, (56, 56))
    assert max_diff(fast.cpu(), dense) <= TOL
    coords, scores = random_poses(13, 6, 3, 18, (24, 32))
    fast = render_pose_maps(coords.to(device), scores.to(device), limbs, (24, 32))
    dense = render_pose_maps_dense(coords, scores, OPENPOSE_LIMBS, (24, 32))
    assert max_diff(fast.cpu(), dense) <= TOL