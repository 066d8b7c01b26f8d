"""How many frames each stream of the network sees in one clip.

The RGB stream sees `frame_per_seg` frames; the pose stream sees the same span with
`pose_frame_factor` times the density. The model, the fusion and the loaders all take the count
from `pose_frame_count`, so the three can never disagree.
"""
from __future__ import annotations


def pose_frame_count(*, frame_per_seg: int, pose_frame_factor: int) -> int:
    """Frames of the pose stream per clip: `(T - 1) * factor + 1` (factor 1: the T RGB frames).

    The pose frames span the RGB frames' first to last frame, `factor` pose frames per RGB step.
    """
    if frame_per_seg < 1 or pose_frame_factor < 1:
        raise ValueError(f"frame_per_seg ({frame_per_seg}) and pose_frame_factor "
                         f"({pose_frame_factor}) must be at least 1")
    return (frame_per_seg - 1) * pose_frame_factor + 1
