"""The NTU RGB+D releases (60 and 120) and their evaluation protocols, from the sample names.

Every NTU sample is named `SsssCcccPpppRrrrAaaa`: setup, camera, performer (subject),
replication and action, each a 3-digit number counted from 1 (`S001C002P003R002A013`). Which
split a sample belongs to follows from its name alone:

- `xsub` (cross-subject): the release's list of training subjects trains, the others test.
- `xview` (cross-view, NTU RGB+D 60): cameras 2 and 3 train, camera 1 tests.
- `xset` (cross-setup, NTU RGB+D 120): even setup numbers train, odd ones test.

Each release also lists the samples whose skeletons are missing or incomplete
(`missing_skeletons_ntu{60,120}.txt` beside this file, one sample name a line, as the dataset's
authors publish them); the loaders leave those out and count them.

This module reads no data set and imports nothing heavy: main/config.py checks `--protocol`
against `PROTOCOLS` before any data is read.
"""
from __future__ import annotations

import functools
import os.path as osp
import re
from dataclasses import dataclass
from typing import FrozenSet, Mapping, Optional, Tuple

from common.errors import DataError

# The cross-subject training subjects (performer ids) of the two releases: NTU RGB+D 60's
# twenty, which NTU RGB+D 120 keeps and extends (Shahroudy et al. 2016; Liu et al. 2019).
NTU60_TRAIN_SUBJECTS: FrozenSet[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU120_TRAIN_SUBJECTS: FrozenSet[int] = NTU60_TRAIN_SUBJECTS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103))
XVIEW_TRAIN_CAMERAS: FrozenSet[int] = frozenset((2, 3))
CAMERAS = 3
DEFAULT_PROTOCOL = "xsub"

# A sample name, alone or as a frame folder / skeleton file name (`<name>_rgb`, `<name>.skeleton`).
SAMPLE_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class Release:
    """One NTU RGB+D release: its size, protocols and list of samples without skeletons."""

    dataset: str             # the `--dataset` name
    title: str               # for messages
    setups: int              # setups S001..S{setups}
    actions: int             # classes A001..A{actions}
    protocols: Tuple[str, ...]
    train_subjects: FrozenSet[int]
    missing_list: str        # file name beside this module


NTU60 = Release("NTU", "NTU RGB+D 60", 17, 60, ("xsub", "xview"), NTU60_TRAIN_SUBJECTS,
                "missing_skeletons_ntu60.txt")
NTU120 = Release("NTU120", "NTU RGB+D 120", 32, 120, ("xsub", "xset"), NTU120_TRAIN_SUBJECTS,
                 "missing_skeletons_ntu120.txt")
RELEASES: Mapping[str, Release] = {r.dataset: r for r in (NTU60, NTU120)}
# `--dataset` -> the protocols it takes (main/config.py's check).
PROTOCOLS: Mapping[str, Tuple[str, ...]] = {r.dataset: r.protocols for r in RELEASES.values()}


@dataclass(frozen=True)
class Sample:
    """The numbers of a sample name (each counted from 1)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def name(self) -> str:
        return (f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
                f"R{self.replication:03d}A{self.action:03d}")

    @property
    def label(self) -> int:
        """The 0-based action label (A001 -> 0)."""
        return self.action - 1

    @property
    def video_id(self) -> int:
        """The name's digits as one integer (`S001C002P003R002A013` -> 1002003002013): unique,
        and readable back from test.py's result file."""
        return int("".join(f"{n:03d}" for n in (self.setup, self.camera, self.performer,
                                                  self.replication, self.action)))


def parse_sample(text: str) -> Optional[Sample]:
    """The sample a name, frame folder (`<name>_rgb` too) or skeleton file names; None when
    `text` does not start with a sample name."""
    match = SAMPLE_NAME.match(text)
    return Sample(*(int(g) for g in match.groups())) if match else None


def in_release(sample: Sample, release: Release) -> bool:
    """Whether the sample's setup, camera and action exist in `release`."""
    return (1 <= sample.setup <= release.setups and 1 <= sample.camera <= CAMERAS
            and 1 <= sample.action <= release.actions)


def sample_split(sample: Sample, release: Release, protocol: str) -> str:
    """'train' or 'test': the split `protocol` puts the sample in."""
    if protocol not in release.protocols:
        raise ValueError(f"{protocol!r} is not a protocol of {release.title} "
                         f"({', '.join(release.protocols)})")
    if protocol == "xsub":
        train = sample.performer in release.train_subjects
    elif protocol == "xview":
        train = sample.camera in XVIEW_TRAIN_CAMERAS
    else:  # xset
        train = sample.setup % 2 == 0
    return "train" if train else "test"


@functools.lru_cache(maxsize=None)
def missing_skeletons(release: Release) -> FrozenSet[str]:
    """The names of the release's samples with missing or incomplete skeletons (its list file:
    one name a line; blank lines and `#` comments ignored).

    Raises:
        DataError: the list file is missing or holds a line that is not a sample name.
    """
    path = osp.join(osp.dirname(osp.abspath(__file__)), release.missing_list)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise DataError(f"{path}: cannot read the list of samples without skeletons "
                        f"({err.strerror}); reinstall the package") from None
    names = []
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not SAMPLE_NAME.fullmatch(text):
            raise DataError(f"{path}: line {n}: {text!r} is not a sample name "
                            "(SsssCcccPpppRrrrAaaa)")
        names.append(text)
    return frozenset(names)
