"""Where a shard set's files are, and reading them: a folder read in place, or a URL
(anything fsspec opens: `s3://`, `gs://`, `http(s)://`, `file://`...) whose files are fetched
once into a local cache folder, each process only the shards it reads.

Members are read by offset (`os.pread`-like: seek and read), from a table of each shard's
members built once per process by walking the tar's headers (`member_table`); a loader's
workers, forked after the tables were built, inherit them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import os.path as osp
import tarfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

from common.errors import UsageError
from data.shards.layout import INDEX_NAME, ShardError, ShardIndex

logger = logging.getLogger("integral_action.data")

# name -> (offset of the data in the tar, size)
MemberTable = Dict[str, Tuple[int, int]]


def is_url(location: str) -> bool:
    """A location with a scheme (`s3://...`, `file://...`) rather than a plain path."""
    return "://" in location


def url_filesystem(url: str) -> Tuple[Any, str]:
    """fsspec's filesystem for `url`, and the path within it."""
    try:
        import fsspec  # noqa: PLC0415  (a dependency of torch; only URLs need it)
        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        raise UsageError(f"{url}: reading shards from a URL needs fsspec and the package of "
                         f"its protocol ({err})") from None
    except ValueError as err:
        raise UsageError(f"{url}: not a URL fsspec can open ({err})") from None


def member_table(path: str) -> MemberTable:
    """Every member of the tar `path`, walking its headers only.

    Raises:
        ShardError: the tar cannot be read (truncated inside a header, not a tar).
    """
    table: MemberTable = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                table[info.name] = (info.offset_data, info.size)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ShardError(f"{path}: damaged shard, not a readable tar ({err}); fetch or "
                         "make it again") from None
    return table


class ShardStore:
    """The files of one shard set.

    Args:
        location: the folder or URL that holds `index.json` and the shards.
        cache_dir: where a URL's files are fetched to (a folder per URL below it).
    """

    def __init__(self, location: str, *, cache_dir: str) -> None:
        self.location = location.rstrip("/")
        self.remote = is_url(location)
        self.folder = (osp.join(cache_dir, hashlib.sha1(self.location.encode()).hexdigest()[:16])
                       if self.remote else self.location)
        self.index = ShardIndex.from_json(self._read_index(), self._where(INDEX_NAME))
        self._tables: Dict[int, MemberTable] = {}
        self._positions: Optional[Dict[int, List[int]]] = None

    def _where(self, name: str) -> str:
        return f"{self.location}/{name}"

    def _read_index(self) -> str:
        if self.remote:
            self._fetch(INDEX_NAME, size=None)
        path = osp.join(self.folder, INDEX_NAME)
        if not osp.isfile(path):
            raise ShardError(f"{path}: no shard index; point --shards at a folder made by "
                             "tool/make_shards.py")
        with open(path) as f:
            return f.read()

    def _fetch(self, name: str, size: Optional[int]) -> None:
        """Copy `name` from the URL into the cache, unless a copy of `size` bytes is there
        (the index is always fetched anew); atomically, so a killed fetch leaves nothing."""
        target = osp.join(self.folder, name)
        if size is not None and osp.isfile(target) and osp.getsize(target) == size:
            return
        os.makedirs(self.folder, exist_ok=True)
        fs, root = url_filesystem(self.location)
        partial = f"{target}.{os.getpid()}.part"
        try:
            fs.get_file(f"{root.rstrip('/')}/{name}", partial)
        except (OSError, ValueError) as err:
            raise ShardError(f"{self._where(name)}: cannot fetch ({err})") from None
        os.replace(partial, target)

    def path(self, shard: int) -> str:
        return osp.join(self.folder, self.index.shards[shard]["name"])

    def prepare(self, shards: Iterable[int]) -> int:
        """Fetch (for a URL) and check the given shards: size as the index says, every member
        of every sample present. Returns their bytes.

        Raises:
            ShardError: one line naming the shard: missing, truncated, or a member missing.
        """
        total = 0
        for shard in sorted(set(shards)):
            entry = self.index.shards[shard]
            if self.remote:
                self._fetch(entry["name"], entry["bytes"])
            path = self.path(shard)
            if not osp.isfile(path):
                raise ShardError(f"{path}: shard missing; copy the whole shard set")
            size = osp.getsize(path)
            if size != entry["bytes"]:
                raise ShardError(f"{path}: truncated or changed shard ({size} bytes, the index "
                                 f"says {entry['bytes']}); fetch or make it again")
            self._check_members(shard)
            total += size
        return total

    def positions(self, shard: int) -> List[int]:
        """The index positions of the samples in `shard`."""
        if self._positions is None:
            self._positions = {}
            for position, sample in enumerate(self.index.samples):
                self._positions.setdefault(sample["shard"], []).append(position)
        return self._positions.get(shard, [])

    def _check_members(self, shard: int) -> None:
        table = self.table(shard)
        for position in self.positions(shard):
            for name in self.index.expected_members(position):
                if name not in table:
                    raise ShardError(f"{self.path(shard)}: damaged shard, member {name} is "
                                     "missing; fetch or make it again")

    def table(self, shard: int) -> MemberTable:
        """The shard's member table (built on first use in this process)."""
        if shard not in self._tables:
            self._tables[shard] = member_table(self.path(shard))
        return self._tables[shard]

    def read(self, shard: int, name: str) -> bytes:
        """The bytes of member `name` of `shard`.

        Raises:
            ShardError: no such member, or the shard ends before its data does.
        """
        path = self.path(shard)
        try:
            offset, size = self.table(shard)[name]
        except KeyError:
            raise ShardError(f"{path}: damaged shard, member {name} is missing; fetch or "
                             "make it again") from None
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise ShardError(f"{path}: truncated shard ({name} needs {size} bytes at {offset}, "
                             f"{len(data)} there); fetch or make it again")
        return data
