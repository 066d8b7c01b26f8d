"""atomic_write: the target shows the old content or the new, never a partial one."""
import os

import pytest

from common.io.atomic_file import atomic_write


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "a.json"
    with atomic_write(str(path)) as f:
        f.write("one")
    with atomic_write(str(path), "wb") as f:
        f.write(b"two")
    assert path.read_text() == "two" and os.listdir(path.parent) == ["a.json"]


def test_an_error_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(str(tmp_path / "a"), "a"):
            pass


def test_the_temporary_is_named_by_the_caller(tmp_path):
    path = tmp_path / "a.bin"
    with atomic_write(str(path), "wb", tmp_prefix=".tmp_host_12_", tmp_suffix=".pth.tar") as f:
        (name,) = os.listdir(tmp_path)
        assert name.startswith(".tmp_host_12_") and name.endswith(".pth.tar")
        f.write(b"x")
    assert os.listdir(tmp_path) == ["a.bin"]


def test_a_durable_write_is_flushed_to_disk_and_a_batch_write_is_not(tmp_path, monkeypatch):
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: flushed.append(fd) or real_fsync(fd))
    with atomic_write(str(tmp_path / "one.txt")) as f:
        f.write("a")
    assert len(flushed) == 1
    with atomic_write(str(tmp_path / "many.txt"), durable=False) as f:
        f.write("b")
    assert len(flushed) == 1 and (tmp_path / "many.txt").read_text() == "b"
