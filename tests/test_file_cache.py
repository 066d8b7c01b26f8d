"""Parsed pose files are kept while their file is unchanged, and read again once it changes."""
import json
import os
import shutil

import pytest

from common.errors import DataError
from data.file_cache import cached_per_file
from data.Kinetics.Kinetics import read_kinetics_skeleton


def write_skeleton(path, first_index):
    """A kinetics-skeleton file of one person on two frames; the same size whatever the index."""
    person = {"pose": [0.5] * 36, "score": [0.9] * 18}
    data = [{"frame_index": first_index + t, "skeleton": [person]} for t in range(2)]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"data": data, "label": "a", "label_index": 0}, f)


def test_an_unchanged_file_is_parsed_once():
    calls = []

    @cached_per_file(maxsize=4)
    def parse(path):
        calls.append(path)
        return object()

    first = parse(__file__)
    assert parse(__file__) is first and calls == [__file__]
    parse.cache_clear()
    assert parse(__file__) is not first and len(calls) == 2


def test_a_file_written_again_at_its_path_is_read_again(tmp_path):
    path = str(tmp_path / "video" / "a.json")
    write_skeleton(path, 0)
    assert read_kinetics_skeleton(path).first_index == 0
    size = os.path.getsize(path)
    # The same size and, set back by hand, the same modification time: still read again.
    stat = os.stat(path)
    write_skeleton(path, 1)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.path.getsize(path) == size
    assert read_kinetics_skeleton(path).first_index == 1
    # The folder removed and made anew by the same process (a data set rebuilt in place).
    shutil.rmtree(tmp_path / "video")
    write_skeleton(path, 0)
    assert read_kinetics_skeleton(path).first_index == 0


def test_a_missing_file_is_an_error_each_time_and_never_kept(tmp_path):
    path = str(tmp_path / "gone.json")
    for _ in range(2):
        with pytest.raises(DataError, match="gone.json"):
            read_kinetics_skeleton(path)
    write_skeleton(path, 1)
    assert read_kinetics_skeleton(path).first_index == 1
