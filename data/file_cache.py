"""Parsed files kept in memory, keyed by what the file is on disk, not by its path alone.

Workers read the same pose file again every epoch, so its parse is worth keeping. Keyed by the
path alone, a file written again at the same path (poses extracted again, a data set rebuilt in
place, a folder removed and made anew by the same process) would give its old content back.
The key holds the file's inode, size, and modification and change times as well: any write
changes one of them.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional, Tuple, TypeVar

Parsed = TypeVar("Parsed")


def file_identity(path: str) -> Optional[Tuple[int, ...]]:
    """What changes whenever the file at `path` is written (device, inode, size, modification
    and change times), or None when there is no file to look at."""
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def cached_per_file(maxsize: int = 64) -> Callable[[Callable[..., Parsed]], Callable[..., Parsed]]:
    """Decorate `parse(path, *args)` so that the last `maxsize` results are kept while their
    file is unchanged. A file that cannot be looked at is passed to `parse` uncached, which
    names what is wrong; errors are never kept. The decorated reader has `cache_clear()`.
    """
    def decorate(parse: Callable[..., Parsed]) -> Callable[..., Parsed]:
        @functools.lru_cache(maxsize=maxsize)
        def cached(path: str, identity: tuple, *args: Any, **kwargs: Any) -> Parsed:
            return parse(path, *args, **kwargs)

        @functools.wraps(parse)
        def read(path: str, *args: Any, **kwargs: Any) -> Parsed:
            identity = file_identity(path)
            if identity is None:
                return parse(path, *args, **kwargs)
            return cached(path, identity, *args, **kwargs)

        read.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        read.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return read
    return decorate
