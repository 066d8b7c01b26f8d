"""Faults the data does not show by itself: damaged JPEG pixels the decoder only warns about,
annotations that contradict themselves, pose files that count frames from 0.

Frames are the fixtures' 32 x 48 JPEGs written by OpenCV (tests/fixtures_data.py); a damaged one
is made by cutting or altering the bytes of its entropy-coded scan. Clips are T = 2 frames
every 2 frames (test clip 0 = frames 0 and 2), as in tests/test_bad_data.py.
"""
import logging
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

from common.errors import DataError
from common.report.problems import POSE_ZEROED, SKIPPED, ProblemTally
from data.collate import collate_clips
from data.Kinetics.Kinetics import Kinetics, decide_frame_base
from data.sources.decoder_warnings import catching_decoder_output, damage_warning
from data.sources.jpeg_folder import DECODE_FLAGS, decode_frame, frame_path, load_clip_frames
from tests.fixtures_data import make_cfg, write_kinetics, write_kinetics_skeleton
from tests.test_bad_data import data_log, edit_json, messages  # noqa: F401 (a fixture)

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
    with catching_decoder_output() as output:
        os.write(2, b"a note\n")
        assert output.damage() is None
        assert capfd.readouterr().err == ""  # caught for now...
        os.write(2, b"Corrupt JPEG data: bad ICC marker\nCorrupt JPEG data: bad Huffman code\n")
        assert output.damage() == "Corrupt JPEG data: bad Huffman code"
        assert output.damage() is None  # each warning is read once
    assert capfd.readouterr().err == "a note\nCorrupt JPEG data: bad ICC marker\n"  # ...passed on
    assert damage_warning("Premature end of JPEG file\n\n") == ("Premature end of JPEG file", [])
    with pytest.raises(RuntimeError), catching_decoder_output():
        os.write(2, b"said before a failure\n")
        raise RuntimeError
    assert capfd.readouterr().err == "said before a failure\n"
    with catching_decoder_output() as output:
        assert output.damage() is None  # the capture starts empty again


def test_damage_is_reported_from_loader_workers(tmp_path):
    # Forked workers each catch their own decoder's output (no file shared with the parent).
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=2)
    path = frame_path(info["val"][1]["frame_dir"], 0)
    damage_frame(path, stray_marker)
    ds = Kinetics(make_cfg(tmp_path), "test")
    ds[0]  # the parent decodes first, before the workers are forked
    batches = list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_clips))
    problems = [p for b in batches for p in b["problems"]]
    assert [(p.reason, p.path) for p in problems] == [("corrupt_frame", path)]
    assert problems[0].detail.startswith(DAMAGED)


# --------------------------------------------------------------------------- annotations
def edit_annotations(info, change):
    path = osp.join(info["data_root"], "Kinetics50_val.json")
    edit_json(path, change)
    return path


def test_two_labels_for_one_video_leave_it_out_naming_both(tmp_path, data_log):
    info = write_kinetics(str(tmp_path))  # 4 videos, labels 0, 0, 1, 1
    path = edit_annotations(info, lambda c: c["annotations"].append(
        {"id": 9, "image_id": 2, "action_label": 1, "action_name": "action_01"}))
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert [r["video_id"] for r in ds.records] == [1, 3, 4]
    assert ds.skipped == {"conflicting_labels": 1} and ds.annotated == 4
    detail = "video 2: annotations[1] gives action_label 0, annotations[4] gives 1"
    assert messages(data_log, logging.WARNING) == [
        f"data problem: {path}: {detail} (conflicting_labels, skipped)"]
    with pytest.raises(DataError, match=re.escape(f"{path}: {detail} (conflicting_labels")):
        Kinetics(make_cfg(tmp_path, strict=True), "test")


def test_a_file_whose_every_video_has_two_labels_stops_in_one_line(tmp_path):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=2)
    path = edit_annotations(info, lambda c: c["annotations"].extend(
        [dict(a, action_label=a["action_label"] + 1) for a in c["annotations"]]))
    with pytest.raises(DataError) as err:
        Kinetics(make_cfg(tmp_path), "test")
    assert str(err.value) == (f"{path}: no usable video (2 video entries; left out: "
                              "conflicting_labels: 2)")


def test_exact_repeats_are_kept_once_counted_and_logged(tmp_path, data_log):
    info = write_kinetics(str(tmp_path))

    def repeat(content):
        content["images"].append(dict(content["images"][0]))  # video 1 written twice
        content["annotations"].append(dict(content["annotations"][2], id=7))  # label of 3 again

    path = edit_annotations(info, repeat)
    ds = Kinetics(make_cfg(tmp_path, strict=True), "test")  # loses nothing: not an error
    assert [r["video_id"] for r in ds.records] == [1, 2, 3, 4]
    assert [r["label"] for r in ds.records] == [0, 0, 1, 1]
    assert ds.skipped == {"repeated_entry": 1} and ds.annotated == 5
    assert messages(data_log, logging.WARNING) == []
    assert f"{path}: 2 entries repeat an earlier one exactly, each video kept once: images[4] " \
           "repeats images[0] (id 1); annotations[4] repeats the action_label of " \
           "annotations[2] (video 3)" in messages(data_log)
    summary = [m for m in messages(data_log) if m.startswith("Kinetics test")]
    assert summary[0].startswith("Kinetics test: kept 4 of 5 annotated videos")
    assert summary[0].endswith("left out: repeated_entry: 1")


def test_same_id_with_other_content_is_still_a_duplicate_id(tmp_path, data_log):
    info = write_kinetics(str(tmp_path))
    path = edit_annotations(info, lambda c: c["images"].append(
        dict(c["images"][0], frame_num=12)))
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.skipped == {"duplicate_id": 1} and len(ds.records) == 4
    assert messages(data_log, logging.WARNING) == [
        f"data problem: {path}: images[4]: id 1 is already the id of images[0] (duplicate_id, "
        "skipped)"]


# --------------------------------------------------------------------------- frame_index base
def person(x):
    return np.tile([x, 0.5], (18, 1)), np.full(18, 0.8)


def write_numbered_skeletons(info, first_index, videos=None):
    """Each video's pose file: one person per frame at x = 0.1 * (frame + 1) for 0-based frame
    `frame`, written with frame_index `frame + first_index`."""
    for video in videos or info["val"]:
        write_kinetics_skeleton(video["skeleton_path"], {
            k + first_index: [person(0.1 * (k + 1))] for k in range(video["frame_num"])})


def pose_x(item):
    """The resized-frame x of joint 0 of person 0 in each pose frame (grid -> pixels: x2 + 10,
    then / 36 for the fraction of the width)."""
    return [round(float((item["pose_coords"][t, 0, 0, 0] * 2 + 10) / 36), 4)
            for t in range(item["pose_coords"].shape[0])]


@pytest.mark.parametrize("first_index", [0, 1])
def test_frame_index_base_is_decided_at_start_up_and_logged(tmp_path, data_log, first_index):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=2)
    write_numbered_skeletons(info, first_index)
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.frame_base == first_index
    # Clip 0 = frames 0 and 2: the people written for frames 0 and 2, whatever the numbering.
    item = ds[0]
    assert item["problems"] == [] and pose_x(item) == [0.1, 0.3]
    paths = [v["skeleton_path"] for v in info["val"]]
    (decision,) = [m for m in messages(data_log) if m.startswith("Kinetics pose files")]
    assert decision == {
        0: "Kinetics pose files (test): frame_index counts from 0: frame k is frame_index k "
           f"(frame_index 0 in 2 of the 2 pose files read at start-up: {paths[0]}, {paths[1]})",
        1: "Kinetics pose files (test): frame_index counts from 1 (the kinetics-skeleton "
           "convention): frame k is frame_index k + 1 (no frame_index 0 in the 2 pose files "
           f"read at start-up: {paths[0]} ... {paths[1]})"}[first_index]


def test_start_up_reads_a_bounded_sample_and_a_later_contradiction_is_reported(
        tmp_path, monkeypatch, data_log):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=3)
    write_numbered_skeletons(info, 0, videos=info["val"][2:])  # only the third counts from 0
    paths = [v["skeleton_path"] for v in info["val"]]
    assert decide_frame_base(paths)[0] == 0  # the default sample (8 files) holds all three
    monkeypatch.setattr(Kinetics, "frame_base_sample", 2)
    ds = Kinetics(make_cfg(tmp_path), "test")
    assert ds.frame_base == 1  # decided from the first two files only
    (decision,) = [m for m in messages(data_log) if m.startswith("Kinetics pose files")]
    assert decision.endswith(f"in the 2 pose files read at start-up: {paths[0]} ... {paths[1]})")
    item = next(ds[i] for i in range(len(ds)) if int(ds[i]["video_id"]) == 3)
    (problem,) = item["problems"]
    assert (problem.reason, problem.path, problem.action) == (
        "bad_pose_file", paths[2], POSE_ZEROED)
    assert problem.detail == ("frame_index 0, but this data set's pose files count frames from "
                              "1 (decided at start-up, see the log): its poses would be one "
                              "frame off; number its frames like the others")


def test_unreadable_pose_files_are_passed_over_by_the_decision(tmp_path):
    info = write_kinetics(str(tmp_path), num_classes=1, videos_per_class=2)
    with open(info["val"][0]["skeleton_path"], "w") as f:
        f.write('{"data": [')
    write_numbered_skeletons(info, 0, videos=info["val"][1:])
    paths = [v["skeleton_path"] for v in info["val"]]
    base, decision = decide_frame_base(paths)
    assert base == 0 and decision.endswith(f"in 1 of the 1 pose files read at start-up: "
                                           f"{paths[1]})")
    assert decide_frame_base(paths[:1]) == (1, (
        "frame_index counts from 1 (the kinetics-skeleton convention; none of the 1 pose files "
        "tried at start-up could be read)"))
