"""tool/video2image.py: frame extraction with PyAV, safe for any file name.

Small videos (12 frames of 48x64, a different flat colour per frame) are encoded with PyAV once
and copied under awkward names: spaces, quotes and `;` with shell commands in them, several dots,
non-UTF-8 bytes, plus a truncated and a garbage file. Everything runs on the CPU in a few seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Tuple

import av
import cv2
import numpy as np
import pytest

import tool.video2image as v2i
from tool.video2image import apply_rotation, extract_frames, extract_tree, main, resize_short_side

FRAMES = 12
RATE = 10
HEIGHT, WIDTH = 48, 64
# The shell-looking names: if any of them reached a shell, the `touch` would create the marker
# (relative to the working folder, which the tests set to tmp_path) and `rm -rf x` delete `x`.
INJECTION_NAMES = ["it's; touch injected_marker; rm -rf x.mp4",
                   "$(touch injected_marker) `touch injected_marker` && rm -rf x.mp4",
                   'quote" | touch injected_marker.mp4']


def _codec() -> str:
    """libx264 when this PyAV build has it, else mpeg4, which every FFmpeg build has."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _colour(index: int) -> Tuple[int, int, int]:
    """BGR colour of encoded frame `index`; every channel moves with the index so a frame that
    is off by one, or a B/R swap, shows up in the mean colour."""
    return (30 + 17 * index, 220 - 15 * index, 60 + 10 * index)


def _encode(path: str, height: int = HEIGHT, width: int = WIDTH, frames: int = FRAMES,
            noise: bool = False, faststart: bool = False) -> None:
    """Write `frames` flat-colour frames with PyAV (to a plain name: callers copy the bytes to
    awkward names, so the encoder's own name handling is not what is tested).

    `noise` adds random pixels so the frame data, not the header, makes up most of the file;
    `faststart` puts the mp4 index first, as streamed downloads do, so a file cut in the middle
    still opens and decodes its first frames."""
    options = {"movflags": "faststart"} if faststart else {}
    rng = np.random.default_rng(0)
    with av.open(path, mode="w", options=options) as container:
        stream = container.add_stream(_codec(), rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if stream.codec_context.name == "libx264":
            stream.options = {"crf": "12"}
        for i in range(frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = _colour(i % FRAMES)
            if noise:
                image = rng.integers(0, 256, image.shape, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Dict[str, bytes]:
    """The encoded bytes of a landscape (48x64) and a portrait (64x48) clip."""
    root = tmp_path_factory.mktemp("clips")
    out = {}
    for key, (h, w) in {"landscape": (HEIGHT, WIDTH), "portrait": (WIDTH, HEIGHT)}.items():
        path = str(root / f"{key}.mp4")
        _encode(path, h, w)
        with open(path, "rb") as f:
            out[key] = f.read()
    return out


def _put(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _frame_files(folder: str) -> List[str]:
    return sorted(os.listdir(folder))


def _mean_bgr(path: str) -> np.ndarray:
    image = cv2.imread(path)
    assert image is not None, path
    return image.reshape(-1, 3).mean(axis=0)


def _assert_colours(folder: str, source_indices: List[int]) -> None:
    """JPEG k (1-based) has the mean colour of encoded frame source_indices[k - 1]."""
    for k, index in enumerate(source_indices, start=1):
        mean = _mean_bgr(os.path.join(folder, "%06d.jpg" % k))
        assert np.abs(mean - np.array(_colour(index))).max() < 10, (folder, k, mean, index)


@pytest.fixture
def no_shell(monkeypatch):
    """Any attempt to start a shell or a process fails the test (extraction runs in-process)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args!r}")
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "popen", refuse)


def test_extract_frames_counts_names_colours(tmp_path, clips, no_shell):
    video = _put(str(tmp_path / "a b.mp4"), clips["landscape"])
    out = str(tmp_path / "frames" / "a b")
    count = extract_frames(video, out, short_side=0)
    assert count == FRAMES
    assert _frame_files(out) == ["%06d.jpg" % k for k in range(1, FRAMES + 1)]
    assert cv2.imread(os.path.join(out, "000001.jpg")).shape == (HEIGHT, WIDTH, 3)
    _assert_colours(out, list(range(FRAMES)))
    # nothing but the finished folder is left beside it
    assert os.listdir(tmp_path / "frames") == ["a b"]


@pytest.mark.parametrize("key, short_side", [("landscape", 20), ("portrait", 20),
                                             ("landscape", 36), ("landscape", 100)])
def test_short_side_resize(tmp_path, clips, key, short_side):
    video = _put(str(tmp_path / "v.mp4"), clips[key])
    out = str(tmp_path / "v")
    assert extract_frames(video, out, short_side=short_side) == FRAMES
    h, w = (HEIGHT, WIDTH) if key == "landscape" else (WIDTH, HEIGHT)
    long_side = int(max(h, w) / min(h, w) * short_side)  # truncated, like the original
    expected = (short_side, long_side) if h <= w else (long_side, short_side)
    for name in _frame_files(out):
        assert cv2.imread(os.path.join(out, name)).shape[:2] == expected
    _assert_colours(out, list(range(FRAMES)))  # flat colours survive any resize


def test_resize_helper_rule():
    image = np.zeros((48, 64, 3), np.uint8)
    assert resize_short_side(image, 20).shape[:2] == (20, 26)  # int(64 / 48 * 20) = int(26.67)
    assert resize_short_side(image.transpose(1, 0, 2), 20).shape[:2] == (26, 20)
    assert resize_short_side(image, 0) is image
    assert resize_short_side(image, 48) is image


def test_rotation_helper_turns_counterclockwise():
    image = np.zeros((4, 6), np.uint8)
    image[0, 0] = 255  # top-left
    turned = apply_rotation(image, 90)
    assert turned.shape == (6, 4) and turned[5, 0] == 255  # ends bottom-left
    assert turned.flags["C_CONTIGUOUS"]
    assert apply_rotation(image, -90)[0, 3] == 255  # clockwise: ends top-right
    assert apply_rotation(image, 0) is image


def test_fps_resampling_keeps_frames_by_timestamp(tmp_path, clips):
    video = _put(str(tmp_path / "v.mp4"), clips["landscape"])
    out = str(tmp_path / "half")
    assert extract_frames(video, out, short_side=0, fps=RATE / 2) == FRAMES // 2
    _assert_colours(out, list(range(0, FRAMES, 2)))
    # a higher rate than the video's keeps every frame once, never duplicates
    assert extract_frames(video, str(tmp_path / "more"), short_side=0, fps=3 * RATE) == FRAMES


def test_injection_names_run_nothing(tmp_path, clips, monkeypatch, no_shell):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").write_text("must survive")
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name in INJECTION_NAMES:
        _put(str(src / name), clips["landscape"])
    result = extract_tree(str(src), str(dst), short_side=0, workers=1)
    assert result["done"] == len(INJECTION_NAMES) and result["failed"] == 0, result
    assert not (tmp_path / "injected_marker").exists()
    assert (tmp_path / "x").read_text() == "must survive"
    for name in INJECTION_NAMES:
        folder = dst / name[:-len(".mp4")]
        assert _frame_files(str(folder)) == ["%06d.jpg" % k for k in range(1, FRAMES + 1)]


def test_tree_mirrors_layout_and_reports_corrupt_files(tmp_path, clips, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src, dst = tmp_path / "train", tmp_path / "train_256"
    good = {
        "abseiling/a b.mp4": "abseiling/a b",
        "abseiling/name.with.dots.mp4": "abseiling/name.with.dots",
        "ice skating/UPPER.MP4": "ice skating/UPPER",
        "ice skating/deep/er/vidéo 日本.mkv": "ice skating/deep/er/vidéo 日本",
        "it's; touch injected_marker; rm -rf x.mp4": "it's; touch injected_marker; rm -rf x",
    }
    for rel in good:
        _put(str(src / rel), clips["landscape"])
    data = clips["landscape"]
    _put(str(src / "abseiling" / "truncated.mp4"), data[: len(data) // 3])
    _put(str(src / "abseiling" / "garbage.avi"), bytes(range(256)) * 8)
    _put(str(src / "abseiling" / "empty.webm"), b"")
    _put(str(src / "abseiling" / "notes.txt"), b"not a video")

    result = extract_tree(str(src), str(dst), short_side=36, workers=2)
    assert (result["done"], result["skipped"], result["failed"]) == (len(good), 0, 3), result
    assert result["frames"] == len(good) * FRAMES
    failed = {os.path.basename(path) for path, _ in result["failures"]}
    assert failed == {"truncated.mp4", "garbage.avi", "empty.webm"}
    assert all(reason for _, reason in result["failures"])

    for rel_out in good.values():
        folder = str(dst / rel_out)
        assert _frame_files(folder) == ["%06d.jpg" % k for k in range(1, FRAMES + 1)]
        assert cv2.imread(os.path.join(folder, "000001.jpg")).shape[:2] == (36, 48)
    # the full stem is kept (the original cut at the first dot) and the failures left nothing:
    # no frame folder and no hidden temporary folder
    assert sorted(os.listdir(dst / "abseiling")) == ["a b", "name.with.dots"]
    assert sorted(os.listdir(dst)) == sorted(["abseiling", "ice skating",
                                              "it's; touch injected_marker; rm -rf x"])
    assert not (tmp_path / "injected_marker").exists()

    # a second run skips what exists (and leaves it untouched), and retries the failures
    stamp = os.stat(dst / "abseiling" / "a b" / "000001.jpg").st_mtime_ns
    again = extract_tree(str(src), str(dst), short_side=36, workers=1)
    assert (again["done"], again["skipped"], again["failed"]) == (0, len(good), 3), again
    assert os.stat(dst / "abseiling" / "a b" / "000001.jpg").st_mtime_ns == stamp

    # --overwrite redoes the folders, here at another size, with nothing left over
    redo = extract_tree(str(src), str(dst), short_side=0, workers=1, overwrite=True)
    assert (redo["done"], redo["skipped"], redo["failed"]) == (len(good), 0, 3), redo
    assert cv2.imread(str(dst / "abseiling" / "a b" / "000001.jpg")).shape[:2] == (HEIGHT, WIDTH)
    assert sorted(os.listdir(dst / "abseiling")) == ["a b", "name.with.dots"]


def test_interrupted_extraction_leaves_no_folder(tmp_path, clips, monkeypatch):
    video = _put(str(tmp_path / "v.mp4"), clips["landscape"])
    out = str(tmp_path / "frames" / "v")
    real_write = v2i._write_jpeg
    calls = []

    def write_then_fail(path, image, quality):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # what Ctrl-C in the middle of a video looks like
        real_write(path, image, quality)

    monkeypatch.setattr(v2i, "_write_jpeg", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        extract_frames(video, out)
    assert os.listdir(tmp_path / "frames") == []  # neither the folder nor a partial one
    monkeypatch.setattr(v2i, "_write_jpeg", real_write)
    assert extract_frames(video, out, short_side=0) == FRAMES  # so the next run redoes it
    assert extract_frames(video, out) == 0  # and the one after skips it


def test_truncated_download_with_index_first_fails(tmp_path):
    """A cut mp4 whose index comes first still decodes its first frames; FFmpeg only logs the
    missing data, so the declared frame count is what reveals the truncation."""
    whole = str(tmp_path / "whole.mp4")
    _encode(whole, frames=30, noise=True, faststart=True)
    data = open(whole, "rb").read()
    cut = _put(str(tmp_path / "cut.mp4"), data[: len(data) // 2])
    assert extract_frames(whole, str(tmp_path / "whole"), short_side=0) == 30
    with pytest.raises(ValueError, match="truncated"):
        extract_frames(cut, str(tmp_path / "out" / "cut"), short_side=0)
    assert os.listdir(tmp_path / "out") == []


def test_same_stem_collision_is_reported(tmp_path, clips):
    src = tmp_path / "src"
    _put(str(src / "clip.avi"), clips["landscape"])
    _put(str(src / "clip.mp4"), clips["portrait"])
    result = extract_tree(str(src), str(tmp_path / "dst"), short_side=0, workers=1)
    assert (result["done"], result["failed"]) == (1, 1), result
    assert result["failures"][0][0].endswith("clip.mp4")


@pytest.mark.skipif(sys.platform != "linux", reason="names that are not UTF-8 need Linux")
def test_non_utf8_file_name(tmp_path, clips):
    src = os.path.join(str(tmp_path), "src")
    name = os.fsdecode(b"bad\xff\xfe name")
    try:
        _put(os.path.join(src, name + ".mp4"), clips["landscape"])
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses names that are not UTF-8")
    result = extract_tree(src, os.path.join(str(tmp_path), "dst"), short_side=0, workers=1)
    assert (result["done"], result["failed"]) == (1, 0), result
    folder = os.path.join(str(tmp_path), "dst", name)
    assert _frame_files(folder) == ["%06d.jpg" % k for k in range(1, FRAMES + 1)]


def test_cli_single_file(tmp_path, clips, capsys):
    video = _put(str(tmp_path / "in" / "one.two.MOV"), clips["landscape"])
    result = main(["--src", video, "--dst", str(tmp_path / "out"), "--short_side", "24",
                   "--fps", "none", "--quality", "90", "--workers", "1"])
    assert (result["done"], result["failed"]) == (1, 0)
    folder = str(tmp_path / "out" / "one.two")
    assert len(_frame_files(folder)) == FRAMES
    assert cv2.imread(os.path.join(folder, "000001.jpg")).shape[:2] == (24, 32)
    assert "done: 1 videos" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--src", video, "--dst", str(tmp_path / "out"), "--fps", "-3"])


def test_script_runs_from_any_folder(tmp_path, clips):
    """`python tool/video2image.py` works as a script (its one sys.path line finds the repo)."""
    video = _put(str(tmp_path / "a b.mp4"), clips["landscape"])
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "tool", "video2image.py")
    done = subprocess.run([sys.executable, script, "--src", video, "--dst", str(tmp_path / "o"),
                           "--short_side", "0"], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(os.listdir(tmp_path / "o" / "a b")) == FRAMES
