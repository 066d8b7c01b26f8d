"""Values of the clip transforms (data/transforms.py) and of frame reading."""
import random

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.sources.jpeg_folder import frame_path, load_frame
from data.transforms import (
    center_crop_box,
    crop_affine,
    crop_scale_pairs,
    resize_shape,
    sample_train_crop,
    warp_frames,
)
from data.pose_geometry import select_top_k, transform_pose
from data.joint_sets import NTU_25, OPENPOSE_18


# --------------------------------------------------------------------------- resize / crops
@pytest.mark.parametrize("hw, video_shape, expected", [
    ((240, 320), (256,), (256, 341)),     # 320 / 240 * 256 = 341.33 -> 341 (truncated)
    ((320, 240), (256,), (341, 256)),     # portrait: the width is the shorter side
    ((256, 256), (256,), (256, 256)),
    ((360, 640), (256,), (256, 455)),     # 455.11
    ((32, 48), (24,), (24, 36)),
    ((1080, 1920), (240, 320), (240, 320)),  # fixed size (NTU)
    ((32, 48), (240, 320), (240, 320)),
])
def test_resize_shape(hw, video_shape, expected):
    assert resize_shape(hw[0], hw[1], video_shape) == expected


def test_resize_shape_rejects_bad_video_shape():
    with pytest.raises(ValueError):
        resize_shape(10, 10, (1, 2, 3))


def test_crop_scale_pairs_are_the_ten_neighbour_pairs():
    pairs = crop_scale_pairs()
    assert len(pairs) == 10
    assert set(pairs) == {
        (1.0, 1.0), (1.0, 0.875),
        (0.875, 1.0), (0.875, 0.875), (0.875, 0.75),
        (0.75, 0.875), (0.75, 0.75), (0.75, 0.66),
        (0.66, 0.75), (0.66, 0.66),
    }


def test_center_crop_box():
    assert center_crop_box((256, 341), (224, 224)) == (58, 16, 224, 224)  # 170 - 112, 128 - 112
    assert center_crop_box((24, 36), (16, 16)) == (10, 4, 16, 16)
    assert center_crop_box((240, 320), (224, 224)) == (48, 8, 224, 224)


def test_sample_train_crop_sizes_offsets_and_flip_rate():
    rng = random.Random(0)
    sizes, flips = set(), 0
    xs, ys = set(), set()
    draws = 4000
    for _ in range(draws):
        (x, y, w, h), flip = sample_train_crop((256, 341), (224, 224), rng)
        sizes.add((w, h))
        xs.add((x, w))
        ys.add((y, h))
        assert 0 <= x <= 341 - w and 0 <= y <= 256 - h
        flips += flip
    # int(scale * 224): 224, 196, 168, 147 (0.66 * 224 = 147.84).
    expected = {(int(sw * 224), int(sh * 224)) for sw, sh in crop_scale_pairs()}
    assert sizes == expected
    assert (147, 147) in sizes and (224, 196) in sizes and (224, 168) not in sizes
    # Inclusive offset range: both ends are reached for the full-size crop.
    assert (0, 224) in xs and (341 - 224, 224) in xs
    assert (0, 224) in ys and (256 - 224, 224) in ys
    assert 0.45 < flips / draws < 0.55


def test_sample_train_crop_repeats_with_the_same_seed():
    a = [sample_train_crop((24, 36), (16, 16), random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


@settings(max_examples=60, deadline=None)
@given(h=st.integers(16, 80), w=st.integers(16, 80), seed=st.integers(0, 2**32 - 1))
def test_sample_train_crop_stays_inside(h, w, seed):
    (x, y, cw, ch), _ = sample_train_crop((h, w), (16, 16), random.Random(seed))
    assert 0 <= x and x + cw <= w and 0 <= y and y + ch <= h


def test_crop_affine_values():
    m = crop_affine((10, 4, 16, 8), False, 36, (16, 16))
    assert m.dtype == np.float32 and m.shape == (2, 3)
    np.testing.assert_allclose(m, [[1, 0, -10], [0, 2, -8]])
    # Flip: centre x 18 -> 36 - 1 - 18 = 17, so xmin becomes 9.
    m = crop_affine((10, 4, 16, 8), True, 36, (16, 16))
    np.testing.assert_allclose(m, [[1, 0, -9], [0, 2, -8]])
    # Scale: a 147-pixel crop onto 224.
    m = crop_affine((5, 7, 147, 147), False, 341, (224, 224))
    s = 224 / 147
    np.testing.assert_allclose(m, [[s, 0, -5 * s], [0, s, -7 * s]], rtol=1e-6)


# --------------------------------------------------------------------------- frames
def _ramp(h, w):
    """(1, h, w, 3) float32 with distinct values per pixel and channel."""
    img = np.arange(h * w * 3, dtype=np.float32).reshape(1, h, w, 3)
    return img


def test_warp_frames_identity_crop_and_flip():
    frames = np.concatenate([_ramp(6, 8), _ramp(6, 8) + 1000])
    box = (0, 0, 8, 6)
    out = warp_frames(frames, crop_affine(box, False, 8, (6, 8)), False, (6, 8))
    assert out.shape == (2, 6, 8, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, frames, atol=1e-3)
    # The reference convention mirrors the box centre cx = xmin + w/2 (a pixel edge) with
    # W - 1 - cx, so a flipped crop sits one pixel to the left in the mirrored frame: output
    # column c shows mirrored column c - 1, and column 0 falls outside (black).
    flipped = warp_frames(frames, crop_affine(box, True, 8, (6, 8)), True, (6, 8))
    np.testing.assert_allclose(flipped[:, :, 1:], frames[:, :, ::-1][:, :, :-1], atol=1e-3)
    np.testing.assert_array_equal(flipped[:, :, 0], 0)


def test_warp_frames_crop_moves_the_right_pixels():
    frames = _ramp(10, 12)
    box = (3, 2, 4, 5)  # integer box, same size out: a pure translation
    out = warp_frames(frames, crop_affine(box, False, 12, (5, 4)), False, (5, 4))
    np.testing.assert_allclose(out[0], frames[0, 2:7, 3:7], atol=1e-3)
    # Flipped: centre 5 -> 12 - 1 - 5 = 6, mirrored columns 4..7 = original columns 7..4.
    out = warp_frames(frames, crop_affine(box, True, 12, (5, 4)), True, (5, 4))
    np.testing.assert_allclose(out[0], frames[0, 2:7, 4:8][:, ::-1], atol=1e-3)


def test_warp_frames_outside_is_black():
    frames = np.full((1, 4, 4, 3), 100, np.float32)
    out = warp_frames(frames, crop_affine((2, 0, 4, 4), False, 4, (4, 4)), False, (4, 4))
    assert np.all(out[0, :, 3:] == 0) and np.all(out[0, :, :2] == 100)


def test_load_frame_rgb_and_errors(tmp_path):
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 0] = 30   # blue
    bgr[..., 1] = 100  # green
    bgr[..., 2] = 200  # red
    cv2.imwrite(str(tmp_path / "000001.jpg"), bgr)
    assert frame_path(str(tmp_path), 0) == str(tmp_path / "000001.jpg")
    img = load_frame(frame_path(str(tmp_path), 0))
    assert img.shape == (8, 10, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img.mean(axis=(0, 1)), [200, 100, 30], atol=2)
    missing = str(tmp_path / "000002.jpg")
    with pytest.raises(IOError, match="000002.jpg"):
        load_frame(missing)
    (tmp_path / "000003.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(IOError, match="000003.jpg"):
        load_frame(str(tmp_path / "000003.jpg"))


# --------------------------------------------------------------------------- poses
def _distinct_pose(frames, people, joints):
    coords = np.zeros((frames, people, joints, 2), np.float32)
    for f in range(frames):
        for p in range(people):
            for j in range(joints):
                coords[f, p, j] = (j + 0.25 * p + 0.01 * f, 100 + j + 0.5 * p + 0.02 * f)
    scores = (np.arange(frames * people * joints, dtype=np.float32).reshape(frames, people, joints)
              + 1) / 1000
    return coords, scores


def test_transform_pose_flips_every_person_of_every_frame():
    # The original swapped the pairs only of the first person of the first frame.
    F, P, J, W = 3, 2, OPENPOSE_18.joint_num, 36
    coords, scores = _distinct_pose(F, P, J)
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    out_c, out_s = transform_pose(coords, scores, matrix=identity, do_flip=True, resized_width=W,
                                  flip_pairs=OPENPOSE_18.flip_pairs, input_img_shape=(16, 16),
                                  input_hm_shape=(16, 16))
    swap = list(range(J))
    for a, b in OPENPOSE_18.flip_pairs:
        swap[a], swap[b] = b, a
    for f in range(F):
        for p in range(P):
            for j in range(J):
                src = coords[f, p, swap[j]]
                np.testing.assert_allclose(out_c[f, p, j], [W - 1 - src[0], src[1]], rtol=1e-6)
                assert out_s[f, p, j] == scores[f, p, swap[j]]
    # The last person of the last frame specifically (the original left it unswapped).
    np.testing.assert_allclose(out_c[2, 1, 5], [W - 1 - coords[2, 1, 2, 0], coords[2, 1, 2, 1]])
    np.testing.assert_allclose(out_c[2, 1, 2], [W - 1 - coords[2, 1, 5, 0], coords[2, 1, 5, 1]])
    # Inputs untouched.
    c2, s2 = _distinct_pose(F, P, J)
    np.testing.assert_array_equal(coords, c2)
    np.testing.assert_array_equal(scores, s2)


def test_transform_pose_ntu_flip_pairs():
    coords, scores = _distinct_pose(2, 2, NTU_25.joint_num)
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    out_c, out_s = transform_pose(coords, scores, matrix=identity, do_flip=True, resized_width=10,
                                  flip_pairs=NTU_25.flip_pairs, input_img_shape=(8, 8),
                                  input_hm_shape=(8, 8))
    for a, b in NTU_25.flip_pairs:
        np.testing.assert_allclose(out_c[1, 1, a], [9 - coords[1, 1, b, 0], coords[1, 1, b, 1]])
        np.testing.assert_array_equal(out_s[:, :, b], scores[:, :, a])
    # Unpaired (centre-line) joints keep their index, only x mirrors.
    np.testing.assert_allclose(out_c[1, 1, 0], [9 - coords[1, 1, 0, 0], coords[1, 1, 0, 1]])


def test_known_pixel_to_heatmap_grid():
    # Frame resized to 24 x 36, centre crop 16 x 16 at (10, 4), heatmap grid 8 x 8.
    box = center_crop_box((24, 36), (16, 16))
    coords = np.full((1, 1, 18, 2), 0, np.float32)
    coords[0, 0, 0] = (14, 6)
    coords[0, 0, 2] = (27, 20)   # R_Shoulder
    coords[0, 0, 5] = (12, 10)   # L_Shoulder
    scores = np.ones((1, 1, 18), np.float32)
    m = crop_affine(box, False, 36, (16, 16))
    out, _ = transform_pose(coords, scores, matrix=m, do_flip=False, resized_width=36,
                            flip_pairs=OPENPOSE_18.flip_pairs, input_img_shape=(16, 16),
                            input_hm_shape=(8, 8))
    np.testing.assert_allclose(out[0, 0, 0], [2, 1])      # (14 - 10, 6 - 4) / 2
    np.testing.assert_allclose(out[0, 0, 2], [8.5, 8])    # (27 - 10, 20 - 4) / 2
    # Flipped: x -> 35 - x, crop xmin 35 - 18 - 8 = 9; joints 2 and 5 trade places.
    m = crop_affine(box, True, 36, (16, 16))
    out, _ = transform_pose(coords, scores, matrix=m, do_flip=True, resized_width=36,
                            flip_pairs=OPENPOSE_18.flip_pairs, input_img_shape=(16, 16),
                            input_hm_shape=(8, 8))
    np.testing.assert_allclose(out[0, 0, 0], [(35 - 14 - 9) / 2, 1])   # 6
    np.testing.assert_allclose(out[0, 0, 5], [(35 - 27 - 9) / 2, 8])   # -0.5: outside, kept
    np.testing.assert_allclose(out[0, 0, 2], [(35 - 12 - 9) / 2, 3])   # 7


def test_known_pixel_scaled_crop():
    # 147-pixel crop at (5, 7) onto 224, grid 56: x' = (x - 5) * 224/147 * 56/224.
    m = crop_affine((5, 7, 147, 147), False, 341, (224, 224))
    coords = np.array([[[[152.0, 7.0]]]], np.float32)
    out, _ = transform_pose(coords, np.ones((1, 1, 1), np.float32), matrix=m, do_flip=False,
                            resized_width=341, flip_pairs=(), input_img_shape=(224, 224),
                            input_hm_shape=(56, 56))
    np.testing.assert_allclose(out[0, 0, 0], [56, 0], atol=1e-4)


def test_image_and_pose_stay_aligned():
    # A bright pixel and a joint at the same place land on the same output pixel.
    h, w = 24, 36
    frames = np.zeros((1, h, w, 3), np.float32)
    frames[0, 9, 17] = 255
    coords = np.array([[[[17.0, 9.0]]]], np.float32)
    box = (13, 5, 16, 16)
    # No flip: (17 - 13, 9 - 5). Flip: x 35 - 17 = 18, box centre 21 -> 14, xmin 6 -> 12.
    for flip, expected in ((False, (4, 4)), (True, (12, 4))):
        m = crop_affine(box, flip, w, (16, 16))
        img = warp_frames(frames, m, flip, (16, 16))
        iy, ix = np.unravel_index(np.argmax(img[0, ..., 0]), (16, 16))
        assert (ix, iy) == expected
        assert img[0, iy, ix, 0] == pytest.approx(255, abs=1e-3)
        out, _ = transform_pose(coords, np.ones((1, 1, 1), np.float32), matrix=m, do_flip=flip,
                                resized_width=w, flip_pairs=(), input_img_shape=(16, 16),
                                input_hm_shape=(16, 16))
        np.testing.assert_allclose(out[0, 0, 0], expected, atol=1e-4)


def test_select_top_k_order_padding_truncation():
    coords = np.stack([np.full((3, 2), p, np.float32) for p in range(4)])  # person p at (p, p)
    scores = np.array([[0.2, 0.2, 0.2], [0.9, 0.9, 0.6], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]],
                      np.float32)
    c, s = select_top_k(coords, scores, 3)
    assert c.shape == (3, 3, 2) and s.shape == (3, 3)
    # means 0.2, 0.8, 0.5, 0.5: person 1, then the tie 2 before 3 (stable); person 0 dropped.
    np.testing.assert_array_equal(c[:, 0, 0], [1, 2, 3])
    np.testing.assert_allclose(s[0], [0.9, 0.9, 0.6], rtol=1e-6)
    c, s = select_top_k(coords[:2], scores[:2], 5)
    np.testing.assert_array_equal(c[:, 0, 0], [1, 0, 1, 1, 1])  # padded people at 1.0
    np.testing.assert_array_equal(s[2:], 0)
    c, s = select_top_k(np.zeros((0, 3, 2)), np.zeros((0, 3)), 2)
    np.testing.assert_array_equal(c, 1.0)
    np.testing.assert_array_equal(s, 0.0)
