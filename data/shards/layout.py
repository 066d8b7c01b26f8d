"""Names and the index of a shard set (see docs/shards.md).

A shard set is a folder (or a URL) holding `index.json` and `shard-000000.tar`, ... Each tar is
a plain tar file in the WebDataset layout: the members of one sample (one video) follow each
other and share a key (the video's position in the index, 8 digits, no dot); what follows the
key's first dot is the member's kind:

    <key>.json         the video's record (as in the index; for other readers of the tars)
    <key>.poses.npz    its poses (absent when its pose file could not be read)
    <key>.000001.jpg   frame 0 (1-based numbers, as the frame files on disk), ...
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from common.errors import DataError

INDEX_NAME = "index.json"
FORMAT = "integral-action-shards"
VERSION = 1
SHARD_NAME = "shard-%06d.tar"
KEY_DIGITS = 8


class ShardError(DataError):
    """A shard set that cannot be used as it is: a truncated or unreadable tar, a missing
    member, a missing or foreign index. The message names the file."""


def sample_key(position: int) -> str:
    """The WebDataset key of the index's `position`-th sample."""
    return f"{position:0{KEY_DIGITS}d}"


def meta_member(key: str) -> str:
    return f"{key}.json"


def poses_member(key: str) -> str:
    return f"{key}.poses.npz"


def frame_member(key: str, frame_index: int) -> str:
    """The member of 0-based frame `frame_index` (numbered from 1, as on disk)."""
    return f"{key}.{frame_index + 1:06d}.jpg"


@dataclass
class ShardIndex:
    """What `index.json` holds: the packed split's start-up facts and its samples.

    Attributes:
        dataset, subset, split: what was packed (`--dataset`, `--subset`, 'train'/'test').
        protocol: NTU's and NTU120's `--protocol` when packed (None for other data sets, and
            in indexes written before it was recorded: read as the release's default).
        span: frames a clip spanned when packing (videos shorter than that were left out).
        class_num, class_num_reason, class_names: as the loader decided them.
        annotated, annotation_path, skipped: the loader's start-up counts.
        shards: per shard `{'name', 'bytes', 'samples'}`.
        samples: per video its record (`video_id`, `label`, `frame_num`, `height`, `width`,
            `frame_dir`, `pose_path`: the source's paths, named in problems), `shard`,
            `missing_frames` (0-based frames the source lacked) and `pose_error` (None, or
            the loader's error for its pose file: then it has no poses member).
    """

    dataset: str
    subset: str
    split: str
    span: int
    class_num: int
    class_num_reason: str
    annotated: int
    annotation_path: str
    skipped: Dict[str, int] = field(default_factory=dict)
    class_names: Dict[int, str] = field(default_factory=dict)
    shards: List[Dict[str, Any]] = field(default_factory=list)
    samples: List[Dict[str, Any]] = field(default_factory=list)
    protocol: Optional[str] = None

    def to_json(self) -> str:
        body = dict(self.__dict__, class_names={str(k): v for k, v in self.class_names.items()})
        return json.dumps({"format": FORMAT, "version": VERSION, **body}, indent=0)

    @classmethod
    def from_json(cls, text: str, where: str) -> "ShardIndex":
        """Parse `index.json` (read from `where`, named in errors)."""
        try:
            content = json.loads(text)
        except ValueError as err:
            raise ShardError(f"{where}: not a shard index ({err})") from None
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise ShardError(f"{where}: not a shard index of this project (make it with "
                             "tool/make_shards.py)")
        if content.get("version") != VERSION:
            raise ShardError(f"{where}: shard index version {content.get('version')}, this "
                             f"code reads version {VERSION}; remake the shards")
        body = {k: v for k, v in content.items() if k not in ("format", "version")}
        try:
            index = cls(**body)
        except TypeError as err:
            raise ShardError(f"{where}: damaged shard index ({err})") from None
        index.class_names = {int(k): v for k, v in index.class_names.items()}
        return index

    def expected_members(self, position: int) -> List[str]:
        """The members sample `position` must have in its shard."""
        sample = self.samples[position]
        key = sample_key(position)
        missing = set(sample["missing_frames"])
        names = [meta_member(key)] + ([poses_member(key)] if sample["pose_error"] is None
                                      else [])
        return names + [frame_member(key, k) for k in range(sample["frame_num"])
                        if k not in missing]
