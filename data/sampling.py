"""Which frames a clip takes, and the random generator of a dataset item.

A clip is `T = frame_per_seg` image frames `frame_interval` apart, starting at a start frame
(random for training, evenly spread for testing), and `(T - 1) * pose_frame_factor + 1` pose
frames over the same span. All frame numbers here are 0-based.

Randomness (train only): each item draws from its own `random.Random` (`item_rng`), so that an
item's crop, flip and start frame do not depend on the worker or process that loads it.
"""
from __future__ import annotations

import random
from typing import List, Optional

import torch

from common.clip_frames import pose_frame_count


def clip_span(frame_per_seg: int, frame_interval: int) -> int:
    """Frames covered by one clip, first to last inclusive: `(T - 1) * interval + 1`."""
    return (frame_per_seg - 1) * frame_interval + 1


def train_start_frame(frame_num: int, span: int, rng: random.Random) -> int:
    """Uniform random start frame in `[0, frame_num - span]` (inclusive)."""
    return rng.randint(0, frame_num - span)


def test_start_frames(frame_num: int, span: int, n: int) -> List[int]:
    """Start frames of the n test clips of a video, evenly spread from the first frame on.

    `int((frame_num - 1 - (span - 1)) * t / (n - 1))` for t = 0..n-1 (the original's formula;
    the last clip ends on the last frame). The formula is undefined for n = 1: a single test
    clip is then taken from the middle of the video, `(frame_num - span) // 2`, for the same
    reason a single crop is the centre crop.
    """
    last_start = frame_num - 1 - (span - 1)
    if n == 1:
        return [last_start // 2]
    return [int(last_start * t / (n - 1)) for t in range(n)]


# The name starts with "test": keep pytest from collecting it when a test module imports it.
test_start_frames.__test__ = False  # type: ignore[attr-defined]


def clip_frame_indices(start: int, frame_per_seg: int, frame_interval: int) -> List[int]:
    """0-based frame numbers of the T image frames of a clip: `start + i * interval`."""
    return [start + i * frame_interval for i in range(frame_per_seg)]


def pose_frame_indices(
    start: int, frame_per_seg: int, frame_interval: int, pose_frame_factor: int
) -> List[int]:
    """0-based frame numbers of the pose frames: every `interval // factor` frames, over the
    same span as the image frames, `(T - 1) * factor + 1` of them (factor 1: the same frames)."""
    step = frame_interval // pose_frame_factor
    count = pose_frame_count(frame_per_seg=frame_per_seg, pose_frame_factor=pose_frame_factor)
    return [start + i * step for i in range(count)]


def item_rng(index: int, *, stream: Optional[int], train: bool) -> random.Random:
    """The random generator of item `index`.

    With `stream` (from `data.samplers.TrainSampler`: the run's seed and the epoch) it is
    seeded from `(stream, index)` alone: the item's randomness does not depend on the worker
    or process that loads it, which is what lets a run resume exactly, even mid-epoch. Without
    (a plain integer index), from `torch.initial_seed()` (different in every DataLoader worker,
    fixed by `torch.manual_seed`), the index, and for training one draw from torch's global
    generator (so that a new epoch sees new crops).
    """
    if stream is not None:
        return random.Random((int(stream) << 64) | index)
    draw = int(torch.randint(0, 2**31 - 1, ()).item()) if train else 0
    # Bit-disjoint fields, so different (seed, draw, index) never give the same seed.
    return random.Random((torch.initial_seed() << 96) | (draw << 64) | index)
