"""Frames from encoded video files (data/sources/video_file.py), against the JPEG/PNG frames
tool/video2image.py writes from the same videos.

Short videos whose frames are known (each frame its own colour ramp) are written with PyAV:
losslessly (libx264rgb at crf 0 in .mp4, FFV1 in .mkv and .avi) and lossily (H.264 with
B-frames in .mp4, MPEG-4 in .avi), with a key frame every 8 frames so that clips start inside
a group of pictures and cross key frames. The tiny Kinetics layout of tests/fixtures_data.py is
turned into videos by encoding each frame folder's decoded JPEGs losslessly (FFV1) where the
folder was: its items must then equal the folders' items bit for bit.
"""
from __future__ import annotations

import gc
import logging
import os
import os.path as osp
import pickle
import shutil
from typing import Dict, List, Optional, Sequence

import av
import cv2
import numpy as np
import pytest
import torch

from common.errors import DataError
from common.report.problems import SKIPPED, ProblemTally
from data.Kinetics.Kinetics import Kinetics
from data.NTU.NTU import NTU
from data.sources import JpegFolder, find_video_file, frames_location
from data.sources.base import FrameError
from data.sources.jpeg_folder import load_frame_rgb8
from data.sources.locate import clip_name_variants, detect_frames_from
from data.sources.video_file import VideoFile
from main import train as train_entry
from tests.fixtures_data import make_cfg, write_kinetics, write_ntu
from tool.video2image import extract_frames

FRAMES = 30
HEIGHT, WIDTH = 40, 72
GOP = 8
# (container extension, codec, pixel format, encoder options, lossless)
CODECS = {
    "x264rgb.mp4": ("libx264rgb", "rgb24", {"crf": "0"}, True),
    "ffv1.mkv": ("ffv1", "bgr0", {}, True),
    "ffv1.avi": ("ffv1", "bgr0", {}, True),
    "h264.mp4": ("libx264", "yuv420p", {"crf": "23", "bf": "2"}, False),
    "mpeg4.avi": ("mpeg4", "yuv420p", {}, False),
}
# Clips: from a key frame, from inside a group of pictures across key frames, the last frames.
CLIPS = ([0, 2, 4], [5, 13, 21], [9], [26, 27, 28, 29], [3, 1])


def pattern(index: int) -> np.ndarray:
    """`(H, W, 3)` uint8 RGB frame `index`: a horizontal ramp whose colour moves with the index
    (so a frame off by one, or a swapped channel, shows up everywhere)."""
    ramp = np.linspace(0, 120, WIDTH, dtype=np.float32)[None, :, None]
    base = np.array([20 + 6 * index, 200 - 5 * index, 40 + 3 * index], np.float32)
    return np.clip(np.broadcast_to(base + ramp, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)


def encode(path: str, frames: Sequence[np.ndarray], kind: str = "ffv1.mkv") -> str:
    """Write RGB `frames` to `path` with the codec of `CODECS[kind]` (none: a container with a
    video stream and no frame); returns `path`."""
    codec, pix_fmt, options, _ = CODECS[kind]
    os.makedirs(osp.dirname(path) or ".", exist_ok=True)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames[0].shape[:2] if len(frames) else (HEIGHT, WIDTH)
        stream.pix_fmt = pix_fmt
        stream.options = dict(options, g=str(GOP))
        stream.codec_context.gop_size = GOP
        container.start_encoding()  # the header even when no frame follows
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def read_pngs(folder: str) -> List[np.ndarray]:
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return [cv2.cvtColor(cv2.imread(osp.join(folder, n)), cv2.COLOR_BGR2RGB) for n in names]


@pytest.mark.parametrize("kind", sorted(CODECS))
def test_clips_equal_video2image_png_frames_bit_for_bit(tmp_path, kind):
    video = encode(str(tmp_path / f"v.{kind.split('.')[1]}"), [pattern(i) for i in range(FRAMES)],
                   kind)
    # 24 px short side: the frames are shrunk, as video2image shrinks them.
    assert extract_frames(video, str(tmp_path / "png"), short_side=24, ext="png") == FRAMES
    written = read_pngs(str(tmp_path / "png"))
    source = VideoFile(short_side=24, cache_size=2)
    assert source.frame_count(video) == FRAMES
    for clip in CLIPS:
        frames, hw = source.read(video, clip)
        assert hw == (24, 43)
        for k, frame in zip(clip, frames):
            assert np.array_equal(frame, written[k]), (kind, clip, k)
    if CODECS[kind][3]:  # lossless: the very pixels encoded
        frames, _ = VideoFile(short_side=0).read(video, [0, 17, 29])
        assert all(np.array_equal(f, pattern(k)) for f, k in zip(frames, [0, 17, 29]))


def test_jpeg_frames_equal_the_video_within_jpeg_error(tmp_path):
    video = encode(str(tmp_path / "v.mp4"), [pattern(i) for i in range(FRAMES)], "h264.mp4")
    extract_frames(video, str(tmp_path / "jpg"), short_side=24)
    extract_frames(video, str(tmp_path / "png"), short_side=24, ext="png")
    pngs = read_pngs(str(tmp_path / "png"))
    clip = [5, 13, 21, 29]
    from_video, _ = VideoFile(short_side=24).read(video, clip)
    from_jpeg, _ = JpegFolder().read(str(tmp_path / "jpg"), clip)
    for k, v, j in zip(clip, from_video, from_jpeg):
        assert np.array_equal(v, pngs[k])
        error = np.abs(v.astype(np.int16) - j.astype(np.int16))
        assert 0 < error.max() <= 12 and error.mean() < 1.5  # JPEG quality 95's error
        # ...and nowhere near the next frame's pixels.
        assert np.abs(v.astype(np.int16) - pngs[(k + 1) % FRAMES]).mean() > 3


def test_locations_folder_video_ntu_name_and_clip_time_variants(tmp_path):
    folder = tmp_path / "abc_000010_000020"
    folder.mkdir()
    assert frames_location(str(folder), "auto") == str(folder)
    assert frames_location(str(folder), "video") is None
    video = encode(str(tmp_path / "abc_10_20.mp4"), [pattern(0)], "x264rgb.mp4")
    assert frames_location(str(folder), "video") == video  # the times without the zeros
    assert frames_location(str(folder), "jpeg") == str(folder)
    assert clip_name_variants("abc_10_20") == ["abc_000010_000020"]
    assert clip_name_variants("plain") == []
    ntu = encode(str(tmp_path / "S001C001P001R001A001_rgb.avi"), [pattern(0)], "ffv1.avi")
    assert find_video_file(str(tmp_path / "S001C001P001R001A001")) == ntu
    assert find_video_file(str(tmp_path / "nothing")) is None
    with pytest.raises(FrameError, match="no video file") as err:
        VideoFile().read(str(tmp_path / "nothing"), [0])
    assert err.value.reason == "missing_frame"


def test_open_videos_are_bounded_per_process_and_never_pickled(tmp_path):
    paths = [encode(str(tmp_path / f"{n}.mkv"), [pattern(i) for i in range(10)])
             for n in "abc"]
    source = VideoFile(short_side=0, cache_size=2)
    for path in paths:
        source.read(path, [3, 4])
    state = source._process_state()
    assert list(state.open) == paths[1:]  # a evicted (and closed), b and c open
    assert len(state.indexes) == 3  # indexes outlive the open files
    source.read(paths[1], [9])
    assert list(state.open) == [paths[2], paths[1]]  # b most recently used
    copy = pickle.loads(pickle.dumps(source))
    assert copy._state is None and copy.cache_size == 2
    assert np.array_equal(copy.read(paths[0], [7])[0][0], pattern(7))
    unopened = VideoFile(short_side=0, cache_size=0)
    assert unopened.read(paths[0], [1])[1] == (HEIGHT, WIDTH)
    assert len(unopened._process_state().open) == 0


# ------------------------------------------------------------------ data sets of videos
def folders_to_videos(frame_dirs: Sequence[str], kind: str = "ffv1.mkv",
                      rename: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Replace each frame folder by a lossless video of its decoded JPEGs, named after it
    (`rename`: folder name -> another video stem). Returns folder -> video."""
    videos = {}
    for frame_dir in frame_dirs:
        names = sorted(os.listdir(frame_dir))
        frames = [load_frame_rgb8(osp.join(frame_dir, n)) for n in names]
        stem = (rename or {}).get(osp.basename(frame_dir), osp.basename(frame_dir))
        ext = "." + kind.split(".")[1]
        videos[frame_dir] = encode(osp.join(osp.dirname(frame_dir), stem + ext), frames, kind)
        shutil.rmtree(frame_dir)
    return videos


@pytest.fixture
def kinetics_pair(tmp_path):
    """The same tiny Kinetics set twice: JPEG folders under `jpeg/`, videos under `video/`
    (one train video named with its times unpadded)."""
    info = write_kinetics(str(tmp_path / "jpeg"), num_classes=2, videos_per_class=2,
                          frame_num=20, frame_size=(32, 48))
    shutil.copytree(tmp_path / "jpeg", tmp_path / "video")
    dirs = [v["frame_dir"].replace(str(tmp_path / "jpeg"), str(tmp_path / "video"))
            for part in ("train", "val") for v in info[part]]
    first = info["train"][0]["file_name"]  # yttrain000_a_000000_000010
    videos = folders_to_videos(dirs, rename={first: first.replace("_000000_000010", "_0_10")})
    return tmp_path / "jpeg", tmp_path / "video", videos


def items(dataset) -> List[dict]:
    """Every item; train items seeded alike (their crops draw from torch's generator)."""
    torch.manual_seed(0)
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("split", ["test", "train"])
def test_kinetics_items_from_videos_equal_items_from_folders(kinetics_pair, split, caplog):
    jpeg_root, video_root, _ = kinetics_pair
    with caplog.at_level(logging.INFO, logger="integral_action.data"):
        from_video = Kinetics(make_cfg(video_root, video_short_side=0), split)
    from_jpeg = Kinetics(make_cfg(jpeg_root, video_short_side=0), split)
    assert isinstance(from_video.frames, VideoFile)
    assert isinstance(from_jpeg.frames, JpegFolder)
    assert f"Kinetics frames ({split}): frames from video files (0 of 4 videos looked at have " \
           "a frame folder, 4 a video file" in caplog.text
    assert len(from_video) == len(from_jpeg) > 0
    for a, b in zip(items(from_video), items(from_jpeg)):
        assert not a["problems"] and not b["problems"]
        assert torch.equal(a["video"], b["video"])
        assert torch.equal(a["pose_coords"], b["pose_coords"])
        assert torch.equal(a["label"], b["label"])


def test_ntu_release_videos_stand_for_their_frame_folders(tmp_path):
    # The fixture's folders are named as the release's videos: `S..._rgb/` <-> `S..._rgb.avi`.
    info = write_ntu(str(tmp_path / "jpeg"), frame_num=20)
    shutil.copytree(tmp_path / "jpeg", tmp_path / "video")
    dirs = [v["frame_dir"].replace(str(tmp_path / "jpeg"), str(tmp_path / "video"))
            for v in info["test"]]
    videos = folders_to_videos(dirs, kind="ffv1.avi")
    assert all(v.endswith("_rgb.avi") for v in videos.values())
    sets = [NTU(make_cfg(root, dataset="NTU", video_shape=(24, 36), video_short_side=0), "test")
            for root in (tmp_path / "video", tmp_path / "jpeg")]
    assert isinstance(sets[0].frames, VideoFile) and isinstance(sets[1].frames, JpegFolder)
    for a, b in zip(*(items(d) for d in sets)):
        assert not a["problems"] and torch.equal(a["video"], b["video"])
        assert torch.equal(a["pose_coords"], b["pose_coords"])


@pytest.mark.parametrize("dataset", ["Kinetics", "NTU"])
def test_pose_only_items_over_video_files_equal_those_over_folders(tmp_path, dataset):
    # pose_only reads no pixels, only the frame size: it must come from the video file.
    if dataset == "Kinetics":
        info = write_kinetics(str(tmp_path / "jpeg"), num_classes=2, videos_per_class=1,
                              frame_num=12, frame_size=(32, 48))
        kind, part, loader = "h264.mp4", "val", Kinetics
    else:
        info = write_ntu(str(tmp_path / "jpeg"), frame_num=12)
        kind, part, loader = "ffv1.avi", "test", NTU
    shutil.copytree(tmp_path / "jpeg", tmp_path / "video")
    folders_to_videos([v["frame_dir"].replace(str(tmp_path / "jpeg"), str(tmp_path / "video"))
                       for v in info[part]], kind=kind)
    sets = [loader(make_cfg(root, dataset=dataset, mode="pose_only"), "test")
            for root in (tmp_path / "video", tmp_path / "jpeg")]
    assert isinstance(sets[0].frames, VideoFile) and isinstance(sets[1].frames, JpegFolder)
    assert len(sets[0]) == len(sets[1]) > 0
    for a, b in zip(*(items(d) for d in sets)):
        assert a["problems"] == [] and "video" not in a
        assert torch.equal(a["pose_coords"], b["pose_coords"])
        assert torch.equal(a["label"], b["label"])


def test_auto_picks_jpeg_for_folders_and_the_flag_overrides_it(kinetics_pair, caplog):
    jpeg_root, video_root, _ = kinetics_pair
    with caplog.at_level(logging.INFO, logger="integral_action.data"):
        dataset = Kinetics(make_cfg(jpeg_root), "test")
    assert isinstance(dataset.frames, JpegFolder)
    assert "Kinetics frames (test): frames from JPEG folders (4 of 4 videos looked at have a " \
           "frame folder, 0 a video file)" in caplog.text
    forced = Kinetics(make_cfg(jpeg_root, frames_from="video"), "test")
    assert isinstance(forced.frames, VideoFile)
    problem = forced[0]["problems"][0]  # no video beside the folders: a missing frame
    assert problem.reason == "missing_frame" and problem.action == SKIPPED
    assert detect_frames_from([]) == ("jpeg", "frames from JPEG folders (0 of 0 videos looked "
                                              "at have a frame folder, 0 a video file)")


def test_bad_videos_are_skipped_counted_and_stop_a_strict_run(kinetics_pair, tmp_path):
    _, video_root, videos = kinetics_pair
    val = sorted(v for d, v in videos.items() if "val_256" in d)
    with open(val[0], "rb") as f:
        data = f.read()
    with open(val[0], "wb") as f:  # cut: the frames after the cut are not there
        f.write(data[: len(data) // 3])
    with open(val[1], "w") as f:  # a text file named like a video
        f.write("not a video\n")
    encode(val[2], [])  # no frame at all
    frames = [np.zeros((32, 48, 3), np.uint8)] * 6  # fewer frames than the annotation's 20
    encode(val[3], frames)
    dataset = Kinetics(make_cfg(video_root, video_short_side=0), "test")
    tally, problems = ProblemTally(), []
    for item in items(dataset):
        tally.add(item["problems"])
        problems += item["problems"]
        assert ("label" in item) == (not item["problems"])
    by_file: Dict[str, set] = {}
    for problem in problems:
        by_file.setdefault(problem.path, set()).add(problem.reason)
    assert set(by_file) == set(val)
    assert by_file[val[1]] == by_file[val[2]] == {"corrupt_frame"}
    # FFmpeg finds no frame to probe the stream with: the file ends before one.
    assert {p.detail for p in problems if p.path == val[2]} == {
        "not a readable video (EOFError: End of file)"}
    assert {p.detail for p in problems if p.path == val[1]} == {
        "not a readable video (InvalidDataError: Invalid data found when processing input)"}
    assert by_file[val[3]] == {"missing_frame"}
    short_video = [p.detail for p in problems if p.path == val[3]]
    assert "the video has 6 frames" in short_video[0]
    # Clips of the cut video before the cut still load; those after it are skipped.
    assert 0 < sum(p.path == val[0] for p in problems) < dataset.test_infer_num
    assert tally.total == len(problems)
    with pytest.raises(DataError, match=osp.basename(val[1])):
        ProblemTally(strict=True).add(dataset[dataset.test_infer_num * 1]["problems"]
                                      + dataset[dataset.test_infer_num * 2]["problems"]
                                      + dataset[dataset.test_infer_num * 3]["problems"])


def train_args(root, out, *extra):
    return ["--mode", "rgb_only", "--data_dir", str(root), "--output_dir", str(out),
            "--frame_per_seg", "2", "--frame_interval", "2", "--video_shape", "32",
            "--input_img_shape", "32,32", "--input_hm_shape", "8,8", "--train_batch_size", "2",
            "--pretrained", "none", "--num_thread", "0", "--progress_bar", "false",
            "--end_epoch", "1", "--max_iters_per_epoch", "1", "--seed", "3",
            "--video_short_side", "0", *extra]


def test_a_kinetics_set_of_videos_trains_as_its_frame_folders(kinetics_pair, tmp_path):
    jpeg_root, video_root, _ = kinetics_pair
    train_entry.main(train_args(video_root, tmp_path / "v"))
    train_entry.main(train_args(jpeg_root, tmp_path / "j", "--frames_from", "jpeg"))
    log = open(tmp_path / "v" / "log" / "train_rgb_only.txt").read()
    assert "frames from video files" in log
    a, b = (torch.load(tmp_path / side / "model_dump" / "snapshot_0.pth.tar",
                       map_location="cpu", weights_only=True) for side in "vj")
    for key in a["network"]:
        assert torch.equal(a["network"][key], b["network"][key]), key


def test_benchmark_case_times_videos_against_their_jpeg_folders(tmp_path):
    from tool.benchmarks import video_loading
    from tool.benchmarks.data import benchmark_data

    data_dir = benchmark_data(str(tmp_path), smoke=True)
    result = video_loading.run(device=torch.device("cpu"), repeats=1, smoke=True,
                               data_dir=data_dir, workers=0)
    assert [row["split"] for row in result["rows"]] == ["test", "train"]
    for row in result["rows"]:
        assert row["ours_clips_per_s"] > 0 and row["baseline_clips_per_s"] > 0
        # The same clips, H.264's loss apart (far below a clip of another video).
        assert 0 < row["mean_abs_diff_255"] < 12
    assert 0 < result["video_mib"] < result["jpeg_mib"]
    videos = video_loading.frame_folders(data_dir + "_video")
    assert videos == []  # every Kinetics folder became a video


def test_videos_open_in_the_parent_are_closed_before_loader_workers_fork(tmp_path):
    # A forked worker that inherited an open decoder would hang freeing it.
    from torch.utils.data import DataLoader

    paths = [encode(str(tmp_path / f"{n}.mp4"), [pattern(i) for i in range(12)], "h264.mp4")
             for n in "ab"]

    class Clips(torch.utils.data.Dataset):
        def __init__(self) -> None:
            # One open video: the other is closed when evicted, left to the cycle collector.
            self.source = VideoFile(short_side=0, cache_size=1)

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> torch.Tensor:
            gc.collect()  # what freed an inherited decoder in a worker
            return torch.from_numpy(self.source.read(paths[i % 2], [i, i + 5])[0][1].copy())

    data = Clips()
    gc.disable()  # the evicted video stays garbage until the fork
    try:
        expected = [data[i] for i in range(4)]  # the parent opens both videos
        assert len(data.source._process_state().open) == 1
    finally:
        gc.enable()
    loader = DataLoader(data, batch_size=None, num_workers=2, timeout=60,
                        multiprocessing_context="fork")
    assert all(torch.equal(a, b) for a, b in zip(loader, expected))
    assert len(data.source._process_state().open) == 0  # closed before the fork, reopened later
    assert torch.equal(data[1], expected[1])


def test_a_video_that_cannot_be_opened_is_a_frame_error(tmp_path, monkeypatch):
    # Root reads chmod-000 files, so the permission error is the `open` call's own.
    import builtins
    from data.sources import video_index
    path = encode(str(tmp_path / "a.mkv"), [pattern(k) for k in range(3)])

    def denied(name, *args, **kwargs):
        if name == path:
            raise PermissionError(13, "Permission denied", name)
        return builtins.open(name, *args, **kwargs)
    monkeypatch.setattr(video_index, "open", denied, raising=False)
    with pytest.raises(FrameError) as exc:
        VideoFile(short_side=0).read(path, [0])
    assert (exc.value.path, exc.value.reason, exc.value.detail) == (
        path, "corrupt_frame", "cannot read (Permission denied)")
    os.makedirs(tmp_path / "b.mkv")  # a folder where the file was: no OSError either
    with pytest.raises(FrameError) as exc:
        video_index.OpenVideo(str(tmp_path / "b.mkv"), short_side=0)
    assert (exc.value.reason, exc.value.detail) == ("corrupt_frame", "cannot read (Is a directory)")
