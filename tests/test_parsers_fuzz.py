"""Property tests: every pose and annotation parser, fed random bytes, random JSON and
structured-but-wrong variants of its own format, either returns a valid result or raises a
`DataError` whose message starts with the file's path. Nothing else (no KeyError, TypeError,
JSONDecodeError or float() ValueError that a user could not trace back to a file).
"""
import json
import os
import os.path as osp
import tempfile
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import DataError
from common.report.problems import Problem
from data.Kinetics.Kinetics import Kinetics, read_kinetics_labels, read_kinetics_skeleton
from data.Mimetics.Mimetics import read_mimetics_poses
from data.NTU.NTU import read_ntu_skeleton
from data.annotations import CocoVideos, load_coco_videos
from main.config import build_config
from tests.fixtures_data import write_kinetics

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Keys of the formats, so that random objects often look like the real thing.
KEYS = ["data", "frame_index", "skeleton", "pose", "score", "images", "annotations",
        "categories", "id", "image_id", "action_label", "frame_num", "file_name", "seq_name",
        "height", "width", "setup_idx", "skeleton_file_name", "has_skeleton", "label"]

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children,
                                        max_size=5)),
    max_leaves=25)
numbers = (st.floats(allow_nan=True, allow_infinity=True)
           | st.integers(-10**6, 10**6) | st.just(1e39))


def number_list(size):
    """Mostly the right length, sometimes not, sometimes not numbers at all."""
    return (st.lists(numbers, min_size=size, max_size=size) | st.lists(numbers, max_size=size + 3)
            | json_values)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz"))


def write_file(folder, data, suffix):
    """A new file per example (the readers cache by path)."""
    handle, path = tempfile.mkstemp(dir=folder, suffix=suffix)
    with os.fdopen(handle, "wb") as f:
        f.write(data)
    return path


def clear_caches():
    for reader in (read_kinetics_skeleton, read_mimetics_poses, read_ntu_skeleton):
        reader.cache_clear()


def parse_or_data_error(parser, path):
    """The parser's result, or None after checking that its DataError names the file."""
    clear_caches()
    try:
        return parser(path)
    except DataError as err:
        assert str(err).startswith(f"{path}: "), str(err)
        assert "\n" not in str(err)
        return None


# --------------------------------------------------------------------------- result checks
def check_people(coords, scores, joints):
    assert coords.dtype == np.float32 and scores.dtype == np.float32
    assert coords.ndim == 3 and coords.shape[1:] == (joints, 2)
    assert scores.shape == coords.shape[:2]


def check_kinetics(table):
    assert isinstance(table, dict)
    for frame_index, (coords, scores) in table.items():
        assert isinstance(frame_index, int)
        check_people(coords, scores, 18)


def check_frames(frames, joints):
    assert isinstance(frames, list)
    for entry in frames:
        if entry is not None:
            check_people(entry[0], entry[1], joints)


def check_coco(coco, path):
    assert isinstance(coco, CocoVideos) and coco.path == path
    ids = [image["id"] for image, _ in coco.videos]
    assert len(set(ids)) == len(ids) and all(isinstance(i, (int, float)) for i in ids)
    for image, ann in coco.videos:
        assert isinstance(image, dict) and (ann is None or isinstance(ann, dict))
    for problem in coco.rejected + coco.stray_annotations:
        assert isinstance(problem, Problem) and problem.path == path


def check_labels(labels):
    assert isinstance(labels, dict)


PARSERS = {
    "kinetics_skeleton": (read_kinetics_skeleton, check_kinetics),
    "mimetics_poses": (read_mimetics_poses, lambda r: check_frames(r, 18)),
    "ntu_skeleton": (read_ntu_skeleton, lambda r: check_frames(r, 25)),
    "coco": (load_coco_videos, None),
    "kinetics_labels": (read_kinetics_labels, check_labels),
}


def run_parser(name, folder, data, suffix=".json"):
    parser, check = PARSERS[name]
    path = write_file(folder, data, suffix)
    result = parse_or_data_error(parser, path)
    if result is not None:
        if name == "coco":
            check_coco(result, path)
        else:
            check(result)
    return result


# --------------------------------------------------------------------------- random input
@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(scratch, name, data):
    run_parser(name, scratch, data)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(value=json_values)
def test_random_json(scratch, name, value):
    run_parser(name, scratch, json.dumps(value).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(value=json_values, cut=st.integers(0, 200))
def test_truncated_json(scratch, name, value, cut):
    text = json.dumps(value).encode()
    run_parser(name, scratch, text[: min(cut, max(0, len(text) - 1))])


# --------------------------------------------------------------------------- own formats
kinetics_person = st.fixed_dictionaries({"pose": number_list(36), "score": number_list(18)})
kinetics_entry = st.fixed_dictionaries({
    "frame_index": st.integers(-1, 30) | json_values,
    "skeleton": st.lists(kinetics_person, max_size=3) | json_values,
})
kinetics_files = st.fixed_dictionaries({"data": st.lists(kinetics_entry, max_size=4)
                                        | json_values})


@FUZZ
@given(content=kinetics_files)
def test_kinetics_skeleton_variants(scratch, content):
    run_parser("kinetics_skeleton", scratch, json.dumps(content).encode())


mimetics_pose = (st.none() | number_list(54) | st.lists(number_list(54), max_size=3)
                 | number_list(108))
mimetics_files = st.fixed_dictionaries(
    {"pose": st.lists(mimetics_pose, max_size=4) | json_values},
    optional={"score": st.lists(st.none() | numbers | st.lists(numbers, max_size=3)
                                | json_values, max_size=5) | json_values})


@FUZZ
@given(content=mimetics_files)
def test_mimetics_pose_variants(scratch, content):
    run_parser("mimetics_poses", scratch, json.dumps(content).encode())


tokens = (st.sampled_from(["NaN", "-nan(ind)", "1.#QNAN", "inf", "-1", "0", "25", "x", "1e40"])
          | st.floats(allow_nan=True, allow_infinity=True).map(repr)
          | st.integers(-3, 30).map(str))


@st.composite
def ntu_files(draw):
    """A .skeleton text built like the real one, then damaged: wrong counts, odd tokens,
    cut short, or with extra lines."""
    frames = draw(st.integers(0, 3))
    lines = [draw(st.just(str(frames)) | tokens)]
    for _ in range(frames):
        bodies = draw(st.integers(0, 2))
        lines.append(draw(st.just(str(bodies)) | tokens))
        for _ in range(bodies):
            lines.append("72057594037931101 0 1 1 1 1 0 0.01 -0.02 2")
            joints = draw(st.sampled_from([25, 25, 25, 24, 0]))
            lines.append(str(joints))
            for _ in range(joints):
                fields = ["0.1", "0.2", "3.0", "250.5", "200.5", draw(tokens), draw(tokens),
                          "0.9", "0.1", "0.2", "0.3", "2"]
                lines.append(" ".join(fields[:draw(st.sampled_from([12, 12, 12, 6, 7]))]))
    cut = draw(st.integers(0, len(lines)))
    lines = lines[:cut] if draw(st.booleans()) else lines
    lines += draw(st.lists(st.text(max_size=12), max_size=2))
    return "\n".join(lines)


@FUZZ
@given(text=ntu_files())
def test_ntu_skeleton_variants(scratch, text):
    run_parser("ntu_skeleton", scratch, text.encode("utf-8", "surrogatepass"), ".skeleton")


field_values = (st.integers(-2, 40) | st.sampled_from(["a", "b", "a_000001_000011", "../x", ""])
                | json_values)
coco_image = st.dictionaries(st.sampled_from(["id", "frame_num", "file_name", "seq_name",
                                              "height", "width"]), field_values, max_size=6)
coco_annotation = st.dictionaries(st.sampled_from(["id", "image_id", "action_label",
                                                   "category_id"]), field_values, max_size=4)
coco_files = st.fixed_dictionaries(
    {"images": st.lists(coco_image | json_values, max_size=6),
     "annotations": st.lists(coco_annotation | json_values, max_size=6)},
    optional={"categories": json_values})


@FUZZ
@given(content=coco_files)
def test_coco_variants(scratch, content):
    run_parser("coco", scratch, json.dumps(content).encode())


@FUZZ
@given(content=st.dictionaries(st.sampled_from(["a", "b", "c"]) | st.text(max_size=4),
                               st.fixed_dictionaries({}, optional={
                                   "has_skeleton": st.booleans() | json_values,
                                   "label_index": json_values}) | json_values, max_size=4))
def test_kinetics_label_variants(scratch, content):
    run_parser("kinetics_labels", scratch, json.dumps(content).encode())


# --------------------------------------------------------------------------- whole start-up
@pytest.fixture(scope="module")
def kinetics_root(tmp_path_factory):
    """A real little Kinetics set; the fuzz writes other annotation files beside it."""
    root = tmp_path_factory.mktemp("kinetics_fuzz")
    write_kinetics(str(root), num_classes=2, videos_per_class=1, frame_num=6)
    return str(root)


@st.composite
def near_valid_kinetics_coco(draw):
    """The two videos of `kinetics_root` (frames and poses on disk), each field sometimes
    replaced by something else, sometimes dropped, plus stray entries."""
    images, annotations = [], []
    for i, (seq_name, file_name) in enumerate([("action_00", "ytval000_a"),
                                              ("action_01", "ytval001_b")]):
        image = {"id": i + 1, "seq_name": seq_name, "file_name": file_name, "frame_num": 6,
                 "height": 32, "width": 48}
        annotation = {"id": i + 1, "image_id": i + 1, "action_label": i}
        for entry in (image, annotation):
            for key in list(entry):
                change = draw(st.sampled_from(["keep"] * 8 + ["drop", "replace"]))
                if change == "drop":
                    del entry[key]
                elif change == "replace":
                    entry[key] = draw(field_values)
        images.append(image)
        annotations.append(annotation)
    images += draw(st.lists(coco_image | json_values, max_size=2))
    annotations += draw(st.lists(coco_annotation | json_values, max_size=2))
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}]}


@FUZZ
@given(content=near_valid_kinetics_coco() | coco_files, strict=st.booleans())
def test_kinetics_start_up_and_items(kinetics_root, content, strict):
    """The whole loader: a data set, or one DataError naming the annotation file; then every
    item is a dict with its problems (usable or not), never an exception."""
    subset = uuid.uuid4().hex[:12]
    data_root = osp.join(kinetics_root, "Kinetics", "data")
    ann_path = osp.join(data_root, f"Kinetics{subset}_val.json")
    with open(ann_path, "w") as f:
        json.dump(content, f)
    cfg = build_config(dict(dataset="Kinetics", data_dir=kinetics_root, subset=subset,
                            frame_per_seg=2, frame_interval=2, input_img_shape=(16, 16),
                            input_hm_shape=(8, 8), video_shape=(24,), top_k_pose=2,
                            test_infer_num=2, mode="rgb+pose", strict=strict))
    try:
        ds = Kinetics(cfg, "test")
    except DataError as err:
        assert str(err).startswith(f"{ann_path}: "), str(err)
        return
    finally:
        os.remove(ann_path)
    assert len(ds.records) + sum(ds.skipped.values()) == ds.annotated
    for index in range(len(ds)):
        item = ds[index]
        assert isinstance(item["problems"], list)
        assert ("label" in item) or set(item) == {"video_id", "clip_index", "problems"}
