"""NTU RGB+D 120: the NTU RGB+D 60 loader on the larger release, split by sample name.

Layout under `<data_dir>/NTU120/data/` (no annotation file: the folders are the release's own):
    frames/nturgb+d_rgb_s{setup}/SsssCcccPpppRrrrAaaa[_rgb]/%06d.jpg   setups 1..32, named
                                  `s1` or the official archives' zero-padded `s001` (decided
                                  once, as for NTU RGB+D 60)
    nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton   both official skeleton archives
                                  (S001-S017 and S018-S032) in one folder

Classes: 120 (A001 -> label 0 ... A120 -> 119). `--protocol xsub` (the default: the release's
53 training subjects) or `xset` (even setups train, odd ones test); the 535 samples the release
lists as having missing or incomplete skeletons are left out and counted. See
data/NTU/protocols.py and data/NTU/release_folders.py.
"""
from __future__ import annotations

from data.NTU.NTU import NTU
from data.NTU.protocols import NTU120 as NTU120_RELEASE, Release


class NTU120(NTU):
    """NTU RGB+D 120 'train' or 'test' of `cfg.protocol` (xsub or xset)."""

    release: Release = NTU120_RELEASE
