"""A video's poses as its loader parsed them, packed into bytes and made a clip's poses again.

Each loader reads its pose file into a table of people per frame and scales it to the resized
frame in its `load_poses` (`data.poses.normalized_poses` for Kinetics' [0, 1] coordinates,
`data.poses.pixel_poses` for Mimetics' and NTU's pixels). A shard keeps that table (the arrays
as parsed, in their own dtype), so that `clip_poses` computes a clip's poses from it with the
same functions and gets the same numbers as from the file.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from data.Kinetics.Kinetics import Kinetics, read_kinetics_skeleton
from data.Mimetics.Mimetics import Mimetics, read_mimetics_poses
from data.NTU.NTU import NTU, read_ntu_skeleton
from data.poses import Poses, normalized_poses, pixel_poses

People = Tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PoseTable:
    """People per frame: `frames[key] = (coords (P, J, 2), scores (P, J))`.

    `kind` 'normalized': keys are the file's frame numbers, 0-based frame k is key
    k + `first_index`, coordinates in [0, 1]; 'pixel': keys are 0-based frames of a list of
    `length` entries, coordinates in the annotation's original pixels.
    """

    kind: str
    frames: Dict[int, People]
    first_index: int = 0
    length: int = 0

    def clip(self, frame_indices: Sequence[int], *, resized_hw: Tuple[int, int],
             original_hw: Tuple[int, int], joint_num: int) -> Poses:
        """The loader's `load_poses` result for these frames: `(F, P, J, 2)`, `(F, P, J)`."""
        if self.kind == "normalized":
            return normalized_poses(self.frames, frame_indices, resized_hw=resized_hw,
                                    joint_num=joint_num, first_index=self.first_index)
        entries: List[Optional[People]] = [self.frames.get(k) for k in range(self.length)]
        return pixel_poses(entries, frame_indices, original_hw=original_hw,
                           resized_hw=resized_hw, joint_num=joint_num)

    def to_bytes(self) -> bytes:
        """An `.npz` of the table (keys, people per key, coordinates, scores, kind)."""
        keys = sorted(self.frames)
        joint_num = next((c.shape[1] for c, _ in self.frames.values()), 0)
        coords = [self.frames[k][0].reshape(-1, joint_num, 2) for k in keys]
        scores = [self.frames[k][1].reshape(-1, joint_num) for k in keys]
        out = io.BytesIO()
        np.savez_compressed(
            out, keys=np.asarray(keys, np.int64),
            counts=np.asarray([len(s) for s in scores], np.int64),
            coords=np.concatenate(coords) if coords else np.zeros((0, 0, 2), np.float32),
            scores=np.concatenate(scores) if scores else np.zeros((0, 0), np.float32),
            header=np.asarray([self.first_index, self.length], np.int64),
            kind=np.asarray(self.kind))
        return out.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "PoseTable":
        """The table `to_bytes` wrote (raises `ValueError`/`OSError` for damaged bytes)."""
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            keys, counts = npz["keys"], npz["counts"]
            coords, scores = npz["coords"], npz["scores"]
            first_index, length = (int(v) for v in npz["header"])
            kind = str(npz["kind"])
        ends = np.cumsum(counts)
        frames = {int(k): (coords[e - n:e], scores[e - n:e])
                  for k, n, e in zip(keys, counts, ends)}
        return cls(kind, frames, first_index, length)


def _kinetics_table(dataset: Any, record: Dict[str, Any]) -> PoseTable:
    table = read_kinetics_skeleton(record["skeleton_path"], dataset.joint_set.joint_num)
    return PoseTable("normalized", dict(table), first_index=dataset.frame_base)


def _list_table(read: Callable[..., list], key: str) -> Callable[[Any, Dict[str, Any]], PoseTable]:
    def table(dataset: Any, record: Dict[str, Any]) -> PoseTable:
        frames = read(record[key], dataset.joint_set.joint_num)
        return PoseTable("pixel", {k: e for k, e in enumerate(frames) if e is not None},
                         length=len(frames))
    return table


# Loader class -> its pose table (subclasses use their base's entry).
TABLE_READERS: Tuple[Tuple[type, Callable[[Any, Dict[str, Any]], PoseTable]], ...] = (
    (Kinetics, _kinetics_table),
    (Mimetics, _list_table(read_mimetics_poses, "pose_path")),
    (NTU, _list_table(read_ntu_skeleton, "skeleton_path")),
)


def pose_table(dataset: Any, record: Dict[str, Any]) -> PoseTable:
    """The video's pose table. First the loader's own `load_poses` runs once, so that a file
    it cannot use raises the very `DataError` it would raise for a clip (kept in the index)."""
    dataset.load_poses(record, [0], (1, 1))
    for cls, read in TABLE_READERS:
        if isinstance(dataset, cls):
            return read(dataset, record)
    raise TypeError(f"no pose table for {type(dataset).__name__}: add it to TABLE_READERS")
