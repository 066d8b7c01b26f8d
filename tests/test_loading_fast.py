"""The fast item path gives the same clips, bit for bit, as the plain per-frame loop.

`data.transforms.input_clip` (and the dataset items built with it) against
`tool.benchmarks.baselines.loading` (resize -> flip -> warp -> / 255 in float32, frame by frame: what the
items were before), over random frame sizes (odd ones too), frames already at the resize target
(the released frames: 256 on the short side), train crops of all 10 scale pairs with and without
flip, test centre crops, crops larger than the frame, NTU's fixed (240, 320). Equality is exact
(`np.array_equal` / `torch.equal`): test-time inputs must not change.
"""
from __future__ import annotations

import os
import os.path as osp
import random

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data.sources.jpeg_folder import (decode_frame, decode_reduction, jpeg_size,
                                      load_clip_frames, load_frame, load_frame_rgb8,
                                      read_frame_bytes)
from common.runtime.clip_pixels import unit_values, video_as_float
from common.runtime.device import move_batch
from data.transforms import (center_crop_box, crop_affine, crop_scale_pairs, input_clip,
                                     input_clip_bytes,
                                     integer_shift, resize_shape, sample_train_crop,
                                     warp_source_box)
from data.Kinetics.Kinetics import Kinetics
from data.NTU.NTU import NTU
from data.samplers import TrainSampler
from data.video_pose_dataset import LoadingOptions
from data.collate import collate_clips, fills_rows
from tool.benchmarks.baselines.loading import (BASELINE_LOADING, baseline_clip,
                                              baseline_input_clip, baseline_read_frames)
from tool.benchmarks.measure import time_items, time_loader
from tests.fixtures_data import make_cfg, write_frames, write_kinetics, write_ntu

SHORT_SIDES = (24, 57, 128, 256)  # video_shape (S,) values drawn from


def _frames(rng: np.random.Generator, count: int, height: int, width: int) -> list:
    """Random uint8 RGB frames (noise: every pixel differs, the hardest case for a warp)."""
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _reference(frames, resized_hw, matrix, do_flip, out_shape) -> np.ndarray:
    """The plain loop on the frames as float32 (what `load_frame` gives)."""
    return baseline_input_clip([f.astype(np.float32) for f in frames], resized_hw, matrix,
                               do_flip, out_shape)


def _assert_same(frames, resized_hw, box, do_flip, out_shape) -> None:
    matrix = crop_affine(box, do_flip, resized_hw[1], out_shape)
    fast = input_clip(frames, resized_hw, matrix, do_flip, out_shape)
    ref = _reference(frames, resized_hw, matrix, do_flip, out_shape)
    assert fast.dtype == np.float32 and fast.flags.c_contiguous
    assert fast.shape == ref.shape == (len(frames), 3) + tuple(out_shape)
    where = f"frames {frames[0].shape}, resized {resized_hw}, box {box}, flip {do_flip}"
    assert np.array_equal(fast, ref), f"{where}: max |diff| {np.abs(fast - ref).max()}"


# --------------------------------------------------------------------------- input_clip
@pytest.mark.parametrize("seed", range(6))
def test_input_clip_equals_baseline_on_random_cases(seed):
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    for _ in range(40):
        height, width = rng.randint(9, 400), rng.randint(9, 400)
        video_shape = rng.choice([(rng.choice(SHORT_SIDES),), (min(height, width),),
                                  (240, 320), (rng.randint(9, 300), rng.randint(9, 300))])
        out_shape = rng.choice([(224, 224), (16, 16), (rng.randint(3, 260), rng.randint(3, 260))])
        resized_hw = resize_shape(height, width, video_shape)
        frames = _frames(gen, rng.randint(1, 3), height, width)
        if rng.random() < 0.3:
            box, do_flip = center_crop_box(resized_hw, out_shape), False
        else:
            box, do_flip = sample_train_crop(resized_hw, out_shape, rng)
        _assert_same(frames, resized_hw, box, do_flip, out_shape)


@pytest.mark.parametrize("do_flip", [False, True])
@pytest.mark.parametrize("scales", crop_scale_pairs())
def test_every_scale_pair_with_and_without_flip(scales, do_flip):
    # The released frames: already 256 on the short side, so no resize at all; and an odd size
    # that needs one. Offsets drawn as sample_train_crop draws them (inclusive ranges).
    rng = random.Random(hash(scales) % 1000 + do_flip)
    gen = np.random.default_rng(7)
    for height, width in ((256, 340), (257, 343), (180, 241)):
        resized_hw = resize_shape(height, width, (256,))
        crop_w, crop_h = int(scales[0] * 224), int(scales[1] * 224)
        frames = _frames(gen, 2, height, width)
        for _ in range(3):
            box = (rng.randint(0, max(0, resized_hw[1] - crop_w)),
                   rng.randint(0, max(0, resized_hw[0] - crop_h)), crop_w, crop_h)
            _assert_same(frames, resized_hw, box, do_flip, (224, 224))
        # The extreme offsets: the crop touching the frame's edges.
        for box in ((0, 0, crop_w, crop_h),
                    (resized_hw[1] - crop_w, resized_hw[0] - crop_h, crop_w, crop_h)):
            _assert_same(frames, resized_hw, box, do_flip, (224, 224))


@pytest.mark.parametrize("frame_hw,video_shape", [
    ((256, 340), (256,)),   # the released Kinetics frames: no resize
    ((340, 256), (256,)),   # portrait
    ((256, 256), (256,)),
    ((255, 341), (256,)),   # resized up, odd
    ((481, 641), (256,)),   # resized down
    ((240, 320), (240, 320)),   # NTU, already at its fixed shape
    ((1080, 1920), (240, 320)),  # NTU, original size
    ((100, 133), (100,)),   # frame smaller than the 224 crop: padded with 0
    ((150, 90), (240, 320)),
])
def test_test_centre_crop_and_train_crops(frame_hw, video_shape):
    gen = np.random.default_rng(sum(frame_hw))
    rng = random.Random(sum(frame_hw))
    resized_hw = resize_shape(*frame_hw, video_shape)
    frames = _frames(gen, 2, *frame_hw)
    _assert_same(frames, resized_hw, center_crop_box(resized_hw, (224, 224)), False, (224, 224))
    for _ in range(4):
        box, do_flip = sample_train_crop(resized_hw, (224, 224), rng)
        _assert_same(frames, resized_hw, box, do_flip, (224, 224))


def test_crops_that_leave_the_frame():
    gen = np.random.default_rng(3)
    frames = _frames(gen, 2, 31, 45)
    for box in ((-20, -10, 100, 90), (30, 20, 40, 40), (-200, 0, 50, 50), (60, 40, 16, 16),
                (-3, -3, 16, 16), (40, 25, 16, 16), (5, 5, 1000, 3)):
        for do_flip in (False, True):
            for out_shape in ((16, 16), (33, 21), (box[3], box[2])):
                _assert_same(frames, (31, 45), box, do_flip, out_shape)


def test_float32_frames_give_the_same_clip():
    # Frames handed over as float32 (any reader's) go the same way.
    gen = np.random.default_rng(4)
    frames = _frames(gen, 2, 40, 60)
    rng = random.Random(4)
    for video_shape in ((40,), (32,)):
        resized_hw = resize_shape(40, 60, video_shape)
        for _ in range(5):
            box, do_flip = sample_train_crop(resized_hw, (16, 16), rng)
            matrix = crop_affine(box, do_flip, resized_hw[1], (16, 16))
            fast = input_clip([f.astype(np.float32) for f in frames], resized_hw, matrix,
                              do_flip, (16, 16))
            assert np.array_equal(fast, _reference(frames, resized_hw, matrix, do_flip,
                                                   (16, 16)))


# --------------------------------------------------------------------------- the exact tricks
def test_resize_to_the_same_size_is_a_copy():
    # Why a frame already at the target size may skip cv2.resize.
    gen = np.random.default_rng(5)
    for height, width in ((256, 340), (1, 1), (17, 3), (240, 320)):
        frame = (gen.random((height, width, 3)) * 255).astype(np.float32)
        assert np.array_equal(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR),
                              frame)


def test_integer_shift_only_for_whole_pixel_unit_crops():
    assert integer_shift(crop_affine((5, 7, 224, 224), False, 340, (224, 224))) == (5, 7)
    # Flipped: centre 340 - 1 - 117 = 222, so the box starts at 110 in the flipped frame.
    assert integer_shift(crop_affine((5, 7, 224, 224), True, 340, (224, 224))) == (110, 7)
    assert integer_shift(crop_affine((-12, 0, 224, 224), False, 200, (224, 224))) == (-12, 0)
    assert integer_shift(crop_affine((5, 7, 196, 224), False, 340, (224, 224))) is None
    assert integer_shift(crop_affine((5, 7, 147, 147), False, 340, (224, 224))) is None
    assert integer_shift(np.array([[1, 0, -2.5], [0, 1, 0]], np.float32)) is None


def test_warp_source_box_holds_every_pixel_the_warp_reads():
    # Poison everything outside the box with NaN: a warp that read it would turn NaN.
    rng = random.Random(6)
    gen = np.random.default_rng(6)
    for _ in range(60):
        height, width = rng.randint(20, 300), rng.randint(20, 300)
        out_shape = (rng.randint(4, 224), rng.randint(4, 224))
        box, _ = sample_train_crop((height, width), out_shape, rng)
        matrix = crop_affine(box, False, width, out_shape)
        x0, y0, x1, y1 = warp_source_box(matrix, out_shape, (height, width))
        frame = (gen.random((height, width, 4)) * 255).astype(np.float32)
        poisoned = np.full_like(frame, np.nan)
        poisoned[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
        args = (matrix.astype(np.float64), (out_shape[1], out_shape[0]))
        kw = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        assert np.array_equal(cv2.warpAffine(poisoned, *args, **kw),
                              cv2.warpAffine(frame, *args, **kw))
    # A crop entirely outside the frame reads nothing.
    x0, y0, x1, y1 = warp_source_box(crop_affine((500, 0, 16, 16), False, 40, (16, 16)),
                                     (16, 16), (30, 40))
    assert x0 >= x1


def test_four_channel_warp_equals_three_channel_warp():
    # Why the fast path warps RGBA: per channel OpenCV does the same arithmetic.
    gen = np.random.default_rng(8)
    rng = random.Random(8)
    for _ in range(30):
        frame = (gen.random((256, 340, 3)) * 255).astype(np.float32)
        box, _ = sample_train_crop((256, 340), (224, 224), rng)
        m = crop_affine(box, False, 340, (224, 224)).astype(np.float64)
        three = cv2.warpAffine(frame, m, (224, 224), flags=cv2.INTER_LINEAR)
        four = cv2.warpAffine(cv2.cvtColor(frame, cv2.COLOR_RGB2RGBA), m, (224, 224),
                              flags=cv2.INTER_LINEAR)
        assert np.array_equal(three, four[..., :3])


# --------------------------------------------------------------------------- frames
def _jpeg(tmp_path, name, image, *params) -> str:
    path = str(tmp_path / name)
    assert cv2.imwrite(path, image, list(params))
    return path


def test_rgb8_decode_equals_bgr_decode_then_swap(tmp_path):
    gen = np.random.default_rng(9)
    colour = cv2.GaussianBlur(gen.integers(0, 256, (37, 53, 3), dtype=np.uint8), (5, 5), 1)
    gray = colour[..., 0].copy()
    for name, image, params in (("a.jpg", colour, (cv2.IMWRITE_JPEG_QUALITY, 90)),
                                ("b.jpg", gray, (cv2.IMWRITE_JPEG_QUALITY, 75)),
                                ("c.jpg", colour, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
                                ("d.png", colour, ())):
        path = _jpeg(tmp_path, name, image, *params)
        bgr = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        rgb = load_frame_rgb8(path)
        assert rgb.dtype == np.uint8 and np.array_equal(rgb, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        assert np.array_equal(load_frame(path), rgb.astype(np.float32))


def test_jpeg_size_reads_the_header(tmp_path):
    gen = np.random.default_rng(10)
    for height, width, params in ((1, 1, ()), (37, 53, ()),
                                  (256, 340, (cv2.IMWRITE_JPEG_QUALITY, 90)),
                                  (61, 7, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))):
        path = _jpeg(tmp_path, f"{height}x{width}.jpg",
                     gen.integers(0, 256, (height, width, 3), dtype=np.uint8), *params)
        raw = read_frame_bytes(path)
        assert jpeg_size(raw) == (height, width) == decode_frame(raw, path).shape[:2]
    png = _jpeg(tmp_path, "x.png", np.zeros((4, 5, 3), np.uint8))
    assert jpeg_size(read_frame_bytes(png)) is None
    assert jpeg_size(b"\xff\xd8") is None and jpeg_size(b"garbage") is None
    assert jpeg_size(b"\xff\xd8\xff\xe0\x00\x10JFIF") is None  # cut before the frame header


def test_decode_reduction_needs_twice_the_target():
    assert decode_reduction((256, 340), (256, 340)) == 1
    assert decode_reduction((511, 700), (256, 340)) == 1
    assert decode_reduction((512, 680), (256, 340)) == 2
    assert decode_reduction((1080, 1920), (240, 320)) == 4
    assert decode_reduction((2160, 3840), (240, 320)) == 8


def test_load_clip_frames_reads_in_order_and_reports_the_first_bad_frame(tmp_path):
    gen = np.random.default_rng(11)
    write_frames(str(tmp_path), gen.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8))
    paths = [str(tmp_path / ("%06d.jpg" % k)) for k in (1, 2, 3)]
    frames, size = load_clip_frames(paths)
    assert size == (20, 30) and [f.shape for f in frames] == [(20, 30, 3)] * 3
    base, base_size = baseline_read_frames(paths)
    assert base_size == size and all(np.array_equal(a.astype(np.float32), b)
                                     for a, b in zip(frames, base))
    (tmp_path / "000002.jpg").write_bytes(b"not a jpeg")
    os.remove(paths[2])
    for reader in (load_clip_frames, baseline_read_frames):
        with pytest.raises(OSError) as err:
            reader(paths)
        assert (err.value.reason, err.value.path) == ("corrupt_frame", paths[1])


# --------------------------------------------------------------------------- dataset items
def _assert_items_equal(a, b):
    assert set(a) == set(b) and a["problems"] == b["problems"]
    for key in set(a) - {"problems"}:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("frame_size,video_shape", [
    ((24, 37), (24,)),    # frames already at the resize target
    ((31, 45), (24,)),    # resized down, odd sizes
    ((20, 27), (24,)),    # resized up
])
def test_kinetics_items_equal_baseline_items(tmp_path, frame_size, video_shape):
    write_kinetics(str(tmp_path), frame_size=frame_size)
    for split in ("test", "train"):
        cfg = make_cfg(tmp_path, video_shape=video_shape)
        fast = Kinetics(cfg, split)
        base = Kinetics(cfg, split, loading=BASELINE_LOADING)
        for index in range(len(fast)):
            key = (index, 12345) if split == "train" else index  # a fixed train stream
            _assert_items_equal(fast[key], base[key])


def test_kinetics_items_with_crops_larger_than_the_frame(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(12, 15))
    cfg = make_cfg(tmp_path, video_shape=(12,), input_img_shape=(20, 18))
    for split in ("test", "train"):
        fast, base = Kinetics(cfg, split), Kinetics(cfg, split, loading=BASELINE_LOADING)
        for index in range(len(fast)):
            key = (index, 99) if split == "train" else index
            _assert_items_equal(fast[key], base[key])


def test_ntu_fixed_video_shape_items_equal_baseline_items(tmp_path):
    write_ntu(str(tmp_path))
    cfg = make_cfg(tmp_path, dataset="NTU", video_shape=(24, 32))
    for split in ("test", "train"):
        fast, base = NTU(cfg, split), NTU(cfg, split, loading=BASELINE_LOADING)
        for index in range(len(fast)):
            key = (index, 7) if split == "train" else index
            _assert_items_equal(fast[key], base[key])


def test_baseline_clip_is_the_item_video(tmp_path):
    # The benchmark's plain loop (cv2.imread per frame) gives the item's 'video' exactly.
    write_kinetics(str(tmp_path), frame_size=(31, 45))
    ds = Kinetics(make_cfg(tmp_path), "train")
    resized_hw = resize_shape(31, 45, (24,))
    for index in range(len(ds)):
        item = ds[(index, 5)]
        record = ds.records[index]
        # The item's start frame and crop, drawn as the item draws them (same generator).
        rng = ds.item_rng(index, 5)
        start = ds.clip_start(record, 0, rng)
        box, do_flip = sample_train_crop(resized_hw, (16, 16), rng)
        paths = [osp.join(record["frame_dir"], "%06d.jpg" % (start + 2 * i + 1))
                 for i in range(2)]
        clip = baseline_clip(paths, resized_hw, crop_affine(box, do_flip, resized_hw[1],
                                                            (16, 16)), do_flip, (16, 16))
        assert torch.equal(torch.from_numpy(clip), item["video"])


def test_dataloader_with_workers_gives_the_same_batches(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(31, 45))
    cfg = make_cfg(tmp_path)
    fast, base = Kinetics(cfg, "test"), Kinetics(cfg, "test", loading=BASELINE_LOADING)
    batches = [list(DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate_clips))
               for ds in (fast, base)]
    assert len(batches[0]) == len(batches[1])
    for a, b in zip(*batches):
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["label"], b["label"])


# --------------------------------------------------------------------------- clips as bytes
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_video_as_float_is_numpys_division_for_every_byte(device):
    # Every value, in a tensor large enough for the vectorised kernels, in the clip's layout.
    values = torch.arange(256, dtype=torch.uint8).repeat(96)  # 2 * 4 * 3 * 32 * 32 values
    video = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(0))]
    video = video.view(2, 4, 3, 32, 32).to(device)
    expected = torch.from_numpy(video.cpu().numpy().astype(np.float32) / np.float32(255.0))
    out = video_as_float(video)
    assert out.dtype == torch.float32 and out.device == video.device
    assert torch.equal(out.cpu(), expected)
    assert torch.equal(unit_values(torch.device(device)).cpu(),
                       torch.from_numpy(np.arange(256, dtype=np.float32) / np.float32(255)))
    floats = torch.rand(2, 3, device=device)
    assert video_as_float(floats) is floats  # float clips pass through untouched


@pytest.mark.parametrize("seed", range(4))
def test_input_clip_bytes_divided_by_255_is_input_clip(seed):
    rng = np.random.default_rng(seed)
    made = 0
    for _ in range(40):
        height, width = int(rng.integers(8, 40)), int(rng.integers(8, 40))
        frames = _frames(rng, int(rng.integers(1, 4)), height, width)
        resized = (height, width) if rng.random() < 0.7 else (height + 3, width + 1)
        out_shape = (int(rng.integers(4, 48)), int(rng.integers(4, 48)))
        if rng.random() < 0.6:  # the test centre crop (whole pixels, may exceed the frame)
            box, do_flip = center_crop_box(resized, out_shape), bool(rng.random() < 0.3)
        else:
            box, do_flip = sample_train_crop(resized, out_shape, random.Random(seed))
        matrix = crop_affine(box, do_flip, resized[1], out_shape)
        clip = input_clip(frames, resized, matrix, do_flip, out_shape)
        pixels = input_clip_bytes(frames, resized, matrix, do_flip, out_shape)
        whole = integer_shift(matrix) is not None and resized == (height, width)
        assert (pixels is not None) == whole, (resized, (height, width), box)
        if pixels is not None:
            made += 1
            assert pixels.dtype == np.uint8 and pixels.flags.c_contiguous
            assert np.array_equal(pixels / np.float32(255.0), clip)
            assert torch.equal(video_as_float(torch.from_numpy(pixels)), torch.from_numpy(clip))
    assert made >= 10  # the case the bytes exist for was exercised
    # Float frames never come as bytes.
    frames = [f.astype(np.float32) for f in _frames(rng, 2, 20, 20)]
    matrix = crop_affine(center_crop_box((20, 20), (10, 10)), False, 20, (10, 10))
    assert input_clip_bytes(frames, (20, 20), matrix, False, (10, 10)) is None


def test_dataloader_sending_bytes_gives_the_same_batches(tmp_path):
    # Frames stored at the test size: the centre crop copies whole pixels, so the workers send
    # uint8. One video's frames are larger (resized: float): its batch mixes both and is float.
    info = write_kinetics(str(tmp_path), frame_size=(24, 36), videos_per_class=3)
    resized_video = info["val"][0]
    for name in sorted(os.listdir(resized_video["frame_dir"])):
        path = osp.join(resized_video["frame_dir"], name)
        cv2.imwrite(path, cv2.resize(cv2.imread(path), (45, 30)))
    cfg = make_cfg(tmp_path)
    sending = Kinetics(cfg, "test", loading=LoadingOptions(video_as_bytes=True))
    plain = Kinetics(cfg, "test", loading=BASELINE_LOADING)
    runs = [list(DataLoader(ds, batch_size=10, num_workers=2, collate_fn=collate_clips))
            for ds in (sending, plain)]
    dtypes = [batch["video"].dtype for batch in runs[0]]
    assert torch.uint8 in dtypes and torch.float32 in dtypes  # both kinds of batch occurred
    assert all(batch["video"].dtype == torch.float32 for batch in runs[1])
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs):
        a, b = move_batch(a, torch.device("cpu")), move_batch(b, torch.device("cpu"))
        assert a["video"].dtype == torch.float32
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["label"], b["label"])
        assert torch.equal(a["pose_coords"], b["pose_coords"])


# ------------------------------------------------------------------ batches written in place
@pytest.mark.parametrize("seed", range(3))
def test_input_clip_into_out_writes_every_element(seed):
    # `out` starts as NaN: whatever the crop (warp, whole-pixel copy, padded, outside the frame)
    # every element must be written, with the values of a fresh clip.
    rng = np.random.default_rng(100 + seed)
    for _ in range(30):
        height, width = int(rng.integers(8, 40)), int(rng.integers(8, 40))
        frames = _frames(rng, int(rng.integers(1, 4)), height, width)
        resized = (height, width) if rng.random() < 0.5 else (height + 5, width + 2)
        out_shape = (int(rng.integers(4, 48)), int(rng.integers(4, 48)))
        if rng.random() < 0.5:
            box, do_flip = center_crop_box(resized, out_shape), bool(rng.random() < 0.5)
        else:
            box, do_flip = sample_train_crop(resized, out_shape, random.Random(seed))
        matrix = crop_affine(box, do_flip, resized[1], out_shape)
        fresh = input_clip(frames, resized, matrix, do_flip, out_shape)
        out = np.full((len(frames), 3) + out_shape, np.nan, dtype=np.float32)
        assert input_clip(frames, resized, matrix, do_flip, out_shape, out=out) is out
        assert np.array_equal(out, fresh), (resized, box, do_flip)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        input_clip(frames, resized, matrix, do_flip, out_shape,
                   out=np.zeros((len(frames), 3) + out_shape, dtype=np.float64))


def test_fills_rows_only_for_exact_consecutive_slots():
    batch = torch.arange(4 * 6, dtype=torch.float32).view(4, 2, 3)
    assert fills_rows([batch[k] for k in range(4)], batch)
    assert not fills_rows([batch[k] for k in (0, 1, 3)], batch)      # a slot left out
    assert not fills_rows([batch[k] for k in (1, 0, 2, 3)], batch)   # out of order
    assert not fills_rows([batch[k] for k in range(3)], batch)       # the batch is larger
    assert not fills_rows([batch[k].clone() for k in range(4)], batch)  # separate tensors


@pytest.mark.parametrize("split", ["test", "train"])
def test_getitems_equals_getitem_and_the_batch_is_not_copied(tmp_path, split):
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=3)
    ds = Kinetics(make_cfg(tmp_path), split)
    keys = [(i, 77) if split == "train" else i for i in range(min(len(ds), 6))]
    items = ds.__getitems__(keys)
    for key, item in zip(keys, items):
        _assert_items_equal(item, ds[key])
    batch = collate_clips(items)
    assert batch["video"].untyped_storage().data_ptr() == \
        items[0]["video"].untyped_storage().data_ptr()  # the clips' own batch, no stack
    assert torch.equal(batch["video"], torch.stack([ds[key]["video"] for key in keys]))
    # The plain loop of the baseline makes each clip its own array.
    base = Kinetics(make_cfg(tmp_path), split, loading=BASELINE_LOADING)
    for key, item in zip(keys, base.__getitems__(keys)):
        _assert_items_equal(item, ds[key])


def test_getitems_with_an_unusable_item_stacks_the_usable_ones(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(24, 36))
    ds = Kinetics(make_cfg(tmp_path), "test")
    broken = ds.records[0]["frame_dir"]
    for name in os.listdir(broken):
        os.remove(osp.join(broken, name))  # every clip of video 0 is unusable
    keys = list(range(ds.test_infer_num - 2, ds.test_infer_num + 3))  # 2 broken, 3 good
    items = ds.__getitems__(keys)
    assert ["label" in item for item in items] == [False, False, True, True, True]
    batch = collate_clips(items)
    assert batch["video"].shape[0] == 3 and len(batch["skipped"]) == 2
    assert torch.equal(batch["video"], torch.stack([ds[k]["video"] for k in keys[2:]]))


def test_train_dataloader_with_workers_gives_the_same_batches(tmp_path):
    write_kinetics(str(tmp_path), frame_size=(31, 45), videos_per_class=3)
    cfg = make_cfg(tmp_path)
    fast, base = Kinetics(cfg, "train"), Kinetics(cfg, "train", loading=BASELINE_LOADING)
    runs = [list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_clips,
                            sampler=TrainSampler(ds, seed=3)))
            for ds in (fast, base)]
    assert len(runs[0]) == len(runs[1]) > 1
    for a, b in zip(*runs):
        for key in ("video", "pose_coords", "pose_scores", "label", "video_id"):
            assert torch.equal(a[key], b[key]), key


def test_fast_decode_is_off_by_default_and_keeps_poses_and_shapes(tmp_path):
    # Frames 4x the target: with fast_decode the decoder shrinks them (other pixels, close);
    # the resize target, the crop and the poses stay the same.
    write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1, frame_size=(96, 144))
    plain = Kinetics(make_cfg(tmp_path), "test")
    cfg = make_cfg(tmp_path)
    cfg.fast_decode = True
    fast = Kinetics(cfg, "test")
    a, b = plain[0], fast[0]
    assert torch.equal(a["pose_coords"], b["pose_coords"])
    assert a["video"].shape == b["video"].shape
    assert not torch.equal(a["video"], b["video"])
    assert (a["video"] - b["video"]).abs().mean() < 0.05
    assert getattr(make_cfg(tmp_path), "fast_decode", False) is False


def test_timing_functions_run(tmp_path):
    write_kinetics(str(tmp_path))
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert time_items(ds, items=2, repeats=1) > 0
    assert time_loader(ds, workers=0, batches=1, batch_size=2, warmup=1) > 0
    assert time_loader(ds, workers=1, batches=1, batch_size=2, warmup=1, opencv_threads=1) > 0
