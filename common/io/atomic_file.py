"""Writing a file so that its name never shows a half-written file.

The content goes to a hidden temporary file beside the target, is flushed to disk, and is then
renamed over the target: a crash or an error leaves the previous file (or none), never a
truncated one, and the temporary is removed on an error. The file gets the permissions of an
ordinary new file (0666 minus the umask). Snapshots (`common.train.checkpoint.atomic_save`)
name their temporaries after the host and pid, so that a later run can tell a dead process's
leftovers from a live one's.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import uuid
from typing import IO, Iterator, Optional


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", *, encoding: Optional[str] = None,
                 tmp_prefix: Optional[str] = None, tmp_suffix: str = ".tmp",
                 durable: bool = True) -> Iterator[IO]:
    """`with atomic_write(path) as f: ...` writes `path` all at once (see the module note).

    Args:
        path: the file to write; its folder is created when missing.
        mode: 'w' (text) or 'wb' (bytes).
        encoding: for text mode.
        tmp_prefix, tmp_suffix: the temporary is `<tmp_prefix><random><tmp_suffix>` beside
            `path`; the default prefix is `.<name>.<pid>-` (hidden, and per process).
        durable: flush the content to disk before the rename. False leaves that to the caller,
            who writes many files and flushes them all at once before it marks them complete
            (`os.sync()`): one flush instead of one per file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if tmp_prefix is None:
        tmp_prefix = f".{osp.basename(path)[:40]}.{os.getpid()}-"
    # Unique per process and call, and created exclusively ('x'), so that concurrent writers
    # never share a temporary.
    tmp = osp.join(folder, f"{tmp_prefix}{uuid.uuid4().hex[:8]}{tmp_suffix}")
    try:
        with open(tmp, mode.replace("w", "x"), encoding=encoding) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
