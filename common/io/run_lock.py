"""Output folders made safe before a run does any work: each one exists and can be written, and
one run at a time writes a stage's folder.

The lock is an advisory `fcntl.flock` on a lock file inside the folder. The kernel releases it
when its holder ends, however it ends (even SIGKILL), so a lock file left by a dead run never
blocks; only the holder's description it holds (host, pid, start time) may then be stale, and
the next run rewrites it. flock works between processes of one machine; on a network file system
it depends on the server (NFSv4 and Lustre support it).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import os.path as osp
import shutil
import socket
import time
from typing import Iterator, Optional, Sequence

from common.errors import OutputError


def ensure_writable_folder(path: str, *, option: str = "--output_dir") -> None:
    """Create `path` (and its parents) or find it writable; else an `OutputError` naming it.

    Args:
        option: the command line option a user changes to write elsewhere (for the message).
    """
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"{path} cannot be an output folder: a file is in its place (or in "
                          f"the place of a folder above it); move the file, or pick another "
                          f"{option}") from None
    except OSError as err:
        raise OutputError(f"cannot create the output folder {path}: {err.strerror}; pick "
                          f"another {option}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"the output folder {path} is not writable (permission denied); "
                          f"fix its permissions, or pick another {option}")


def ensure_writable_folders(paths: Sequence[str], *, option: str = "--output_dir") -> None:
    """`ensure_writable_folder` for each of `paths`."""
    for path in paths:
        ensure_writable_folder(path, option=option)


def describe_free_space(path: str) -> str:
    """'12.3 GiB free on <folder>' for the file system of `path` (or of its nearest existing
    folder)."""
    folder = osp.dirname(osp.abspath(path)) if not osp.isdir(path) else path
    while folder and not osp.isdir(folder):
        folder = osp.dirname(folder)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return f"free space on {folder} unknown"
    return f"{free / 2**30:.1f} GiB free on {folder}"


# errno of a write that failed for want of room or rights (not a bug of the program).
WRITE_FAILURES = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file size limit is reached",
                  errno.EDQUOT: "the disk quota is exceeded", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.EROFS: "the file system is read-only"}


def write_failure(err: BaseException, path: str) -> Optional[OutputError]:
    """The one-line error for a failed write of `path`, or None when `err` is not such a
    failure (then it is a bug and keeps its traceback)."""
    cause = err if isinstance(err, OSError) else err.__cause__ or err.__context__
    if not isinstance(cause, OSError) or cause.errno not in WRITE_FAILURES:
        return None
    return OutputError(f"cannot write {path}: {WRITE_FAILURES[cause.errno]} "
                       f"({describe_free_space(path)}); the files written before are intact: "
                       "make room, or write elsewhere with --output_dir DIR, and run again "
                       "(training: with --continue)")


@contextlib.contextmanager
def run_lock(path: str, *, subject: str, what: str = "run") -> Iterator[str]:
    """Hold an exclusive lock on the lock file `path` while the `with` block runs.

    Raises `OutputError` at once when another process holds it: "<subject> is in use by another
    <what> (<its host, pid, start time>; ...)". Yields the lock file's path.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise OutputError(f"cannot create the lock file {path}: {err.strerror}; pick another "
                          "--output_dir") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "unknown"
            raise OutputError(f"{subject} is in use by another {what} ({holder}; lock file "
                              f"{path}): wait for it to end, or write this run elsewhere with "
                              "--output_dir DIR") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f"host {socket.gethostname()}, pid {os.getpid()}, started "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}\n").encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays (deleting it would race a new holder)
