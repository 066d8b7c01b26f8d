"""Faults the data does not show by itself: damaged JPEG pixels the decoder only warns about.

Frames are the fixtures' 32 x 48 JPEGs written by OpenCV (tests/fixtures_data.py); a damaged one
is made by cutting or altering the bytes of its entropy-coded scan. Clips are T = 2 frames
every 2 frames (test clip 0 = frames 0 and 2), as in tests/test_bad_data.py.
"""
import os

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

from common.errors import DataError
from common.report.problems import SKIPPED, ProblemTally
from data.collate import collate_clips
from data.Kinetics.Kinetics import Kinetics
from data.sources.decoder_warnings import catch_decoder_output, damage_warning
from data.sources.jpeg_folder import DECODE_FLAGS, decode_frame, frame_path, load_clip_frames
from tests.fixtures_data import make_cfg, write_kinetics

UNUSABLE_KEYS = {"video_id", "clip_index", "problems"}
DAMAGED = "damaged JPEG data (the decoder says 'Corrupt JPEG data: "


def scan_bounds(raw):
    """`(start, end)` of the entropy-coded data of a baseline JPEG (after SOS, before EOI)."""
    sos = raw.index(b"\xff\xda")
    start = sos + 2 + ((raw[sos + 2] << 8) | raw[sos + 3])
    return start, len(raw) - 2


def cut_scan(raw):
    """The scan cut in half, the end-of-image marker kept (libjpeg: premature end of data)."""
    start, end = scan_bounds(raw)
    return raw[: (start + end) // 2] + b"\xff\xd9"


def stray_marker(raw):
    """A marker (0xFFC8, not allowed inside a scan) written into the middle of the scan."""
    start, end = scan_bounds(raw)
    mid = (start + end) // 2
    return raw[:mid] + b"\xff\xc8" + raw[mid + 2:]


def flipped_bytes(raw):
    """16 bytes of the scan XOR-ed (the Huffman decoding loses its way)."""
    start, end = scan_bounds(raw)
    mid = (start + end) // 2
    damaged = bytearray(raw)
    for i in range(mid - 8, mid + 8):
        damaged[i] ^= 0x5A
    return bytes(damaged)


DAMAGES = {"cut_scan": cut_scan, "stray_marker": stray_marker, "flipped_bytes": flipped_bytes}


def damage_frame(path, damage):
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(damage(raw))
    return raw


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_jpeg_is_skipped_with_its_path_or_an_error_under_strict(tmp_path, capfd, damage):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    path = frame_path(info["val"][0]["frame_dir"], 2)  # clip 0 = frames 0 and 2
    damage_frame(path, damage)
    ds = Kinetics(make_cfg(tmp_path), "test")
    item = ds[0]
    assert set(item) == UNUSABLE_KEYS
    (problem,) = item["problems"]
    assert (problem.reason, problem.path, problem.action) == ("corrupt_frame", path, SKIPPED)
    assert problem.detail.startswith(DAMAGED) and problem.detail.endswith("')")
    assert ds[1]["problems"] == [] and "label" in ds[1]  # clip 1 (frames 1, 3) is intact
    # The decoder's warning became the problem: none of it reached the terminal.
    assert "Corrupt JPEG" not in capfd.readouterr().err
    with pytest.raises(DataError, match=rf"^{path}: damaged JPEG data .*corrupt_frame, "
                                        r"skipped.*--strict"):
        ProblemTally(strict=True).add(item["problems"])
    # pose_only reads the first frame for its size: damaged there, the clip is skipped too.
    damage_frame(frame_path(info["val"][0]["frame_dir"], 0), damage)
    item = Kinetics(make_cfg(tmp_path, mode="pose_only"), "test")[0]
    assert set(item) == UNUSABLE_KEYS and item["problems"][0].reason == "corrupt_frame"


@pytest.mark.parametrize("reduce", [1, 2])
def test_damage_is_reported_at_reduced_decoding_too(tmp_path, reduce):
    frame = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    raw = cv2.imencode(".jpg", frame)[1].tobytes()
    with pytest.raises(DataError, match=r"^x\.jpg: damaged JPEG data"):
        decode_frame(stray_marker(raw), "x.jpg", reduce)
    with open(tmp_path / "000001.jpg", "wb") as f:
        f.write(stray_marker(raw))
    with pytest.raises(DataError, match="damaged JPEG data"):
        load_clip_frames([str(tmp_path / "000001.jpg")], fast_decode_shape=(16,))


def test_intact_jpeg_decodes_to_opencvs_pixels(tmp_path, capfd):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=1)
    path = frame_path(info["val"][0]["frame_dir"], 0)
    with open(path, "rb") as f:
        raw = f.read()
    expected = cv2.imdecode(np.frombuffer(raw, np.uint8), DECODE_FLAGS)
    assert np.array_equal(decode_frame(raw, path), expected)
    item = Kinetics(make_cfg(tmp_path), "test")[0]
    assert item["problems"] == [] and "label" in item
    assert capfd.readouterr().err == ""


def test_other_stderr_output_is_passed_on_not_swallowed(capfd):
    result, said = catch_decoder_output(lambda: os.write(2, b"a note\n") and 7)
    assert result == 7 and said == "a note\n"
    assert capfd.readouterr().err == ""  # caught...
    assert damage_warning(said) is None
    assert capfd.readouterr().err == "a note\n"  # ...and passed on
    said = "Corrupt JPEG data: bad ICC marker\nCorrupt JPEG data: bad Huffman code\n"
    assert damage_warning(said) == "Corrupt JPEG data: bad Huffman code"
    assert capfd.readouterr().err == "Corrupt JPEG data: bad ICC marker\n"
    assert catch_decoder_output(lambda: 1) == (1, "")  # the capture starts empty again


def test_damage_is_reported_from_loader_workers(tmp_path):
    # Forked workers each catch their own decoder's output (no file shared with the parent).
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=2)
    path = frame_path(info["val"][1]["frame_dir"], 0)
    damage_frame(path, stray_marker)
    ds = Kinetics(make_cfg(tmp_path), "test")
    ds[0]  # the parent decodes first: its capture file exists before the fork
    batches = list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_clips))
    problems = [p for b in batches for p in b["problems"]]
    assert [(p.reason, p.path) for p in problems] == [("corrupt_frame", path)]
    assert problems[0].detail.startswith(DAMAGED)
