"""What a clip's pixels and joints go through, as a train and an eval preset.

A preset (`ClipPreset`) is a few small steps built from the functional pieces of
`data.transforms`, applied to one clip at a time:

1. `resize`: the size the stored frames are resized to (`cfg.video_shape`);
2. `crop`: one crop box and flip for the whole clip: random multi-scale crop and flip for
   training (`train_crop`), the centre crop for evaluation (`center_crop`); with the resize it
   makes the clip's `ClipCrop` (the 2x3 matrix shared by pixels and joints);
3. `video`: the frames through the crop to the network input (`input_clip`, or the uint8
   pixels with `video_as_bytes`, or written into a batch slot);
4. `poses`: the best people per frame, then the joints through the same flip and crop onto the
   heatmap grid.

`train_preset` / `eval_preset` build the two presets; `preset_for` picks one as a dataset
split does (training augmentation only for the train split with `cfg.train_aug`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from data.pose_geometry import select_top_k_frames, transform_pose
from data.transforms import (center_crop_box, crop_affine, input_clip, input_clip_bytes,
                             resize_shape, sample_train_crop)

Box = Tuple[int, int, int, int]
# `(frames, resized_hw, matrix, do_flip, out_shape) -> (T, 3, h, w)` float32 in [0, 1]: how a
# clip's input is made from its frames (`input_clip`; a benchmark passes its plain loop).
ClipMaker = Callable[[Sequence[np.ndarray], Tuple[int, int], np.ndarray, bool, Tuple[int, int]],
                     np.ndarray]
# `(resized_hw, input_img_shape, rng) -> (box, do_flip)`: where a clip is cropped.
CropStep = Callable[[Tuple[int, int], Tuple[int, int], random.Random], Tuple[Box, bool]]


@dataclass(frozen=True)
class ClipCrop:
    """Where a clip's pixels and joints go, the same for both.

    Attributes:
        resized_hw: `(H, W)` the frames are resized to before the crop.
        box: `(xmin, ymin, w, h)` in resized-frame pixels (before the flip).
        do_flip: whether the clip is mirrored horizontally.
        matrix: `(2, 3)` float32 from (flipped) resized-frame pixels to the network input.
    """

    resized_hw: Tuple[int, int]
    box: Box
    do_flip: bool
    matrix: np.ndarray


def train_crop(resized_hw: Tuple[int, int], input_img_shape: Tuple[int, int],
               rng: random.Random) -> Tuple[Box, bool]:
    """Random multi-scale crop and flip (`sample_train_crop`), drawn from the item's `rng`."""
    return sample_train_crop(resized_hw, input_img_shape, rng)


def center_crop(resized_hw: Tuple[int, int], input_img_shape: Tuple[int, int],
                rng: random.Random) -> Tuple[Box, bool]:
    """The centre crop, never flipped; draws nothing from `rng`."""
    return center_crop_box(resized_hw, input_img_shape), False


class ClipPreset:
    """The steps of one clip (see the module docstring).

    Args:
        crop: `train_crop` or `center_crop` (or any `CropStep`).
        video_shape: `(S,)` shorter side or `(h, w)`, the resize of the stored frames.
        input_img_shape: `(in_h, in_w)` of the network input.
        input_hm_shape: `(hm_h, hm_w)` of the heatmap grid the joints end on.
        top_k_pose: people kept per frame.
        flip_pairs: left/right joint index pairs of the joint set.
        make_clip: frames -> network input (`input_clip`).
        video_as_bytes: give a clip made only of whole pixels as its uint8 values
            (`input_clip_bytes`; `common.runtime.clip_pixels.video_as_float` makes it float).
    """

    def __init__(self, *, crop: CropStep, video_shape: Sequence[int],
                 input_img_shape: Tuple[int, int], input_hm_shape: Tuple[int, int],
                 top_k_pose: int, flip_pairs: Sequence[Tuple[int, int]],
                 make_clip: ClipMaker = input_clip, video_as_bytes: bool = False) -> None:
        self.crop = crop
        self.video_shape = tuple(video_shape)
        self.input_img_shape = tuple(input_img_shape)
        self.input_hm_shape = tuple(input_hm_shape)
        self.top_k_pose = int(top_k_pose)
        self.flip_pairs = tuple(flip_pairs)
        self.make_clip = make_clip
        self.video_as_bytes = video_as_bytes

    def resize(self, stored_hw: Tuple[int, int]) -> Tuple[int, int]:
        """`(H, W)` that frames stored at `stored_hw` are resized to."""
        return resize_shape(stored_hw[0], stored_hw[1], self.video_shape)

    def clip_crop(self, resized_hw: Tuple[int, int], rng: random.Random) -> ClipCrop:
        """The clip's crop and flip (drawn from `rng` for training) and their matrix."""
        box, do_flip = self.crop(resized_hw, self.input_img_shape, rng)
        matrix = crop_affine(box, do_flip, resized_hw[1], self.input_img_shape)
        return ClipCrop(resized_hw, box, do_flip, matrix)

    def video(self, frames: Sequence[np.ndarray], crop: ClipCrop, *,
              out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The network input of a clip from its T frames.

        Returns:
            `(T, 3, in_h, in_w)` float32 RGB in [0, 1] (pixels / 255, no mean/std: the released
            checkpoints expect this); `out` itself when given (a C-contiguous float32 slot of a
            batch tensor, every element written); uint8 pixel values with `video_as_bytes`
            where the clip is made of whole pixels.
        """
        args = (frames, crop.resized_hw, crop.matrix, crop.do_flip, self.input_img_shape)
        if self.video_as_bytes:
            pixels = input_clip_bytes(*args)
            if pixels is not None:
                return torch.from_numpy(pixels)
        if out is not None:
            input_clip(*args, out=out.numpy())
            return out
        # Resize, flip, crop, / 255 (`input_clip`: the same pixels as doing each in turn).
        return torch.from_numpy(self.make_clip(*args))

    def poses(self, coords: np.ndarray, scores: np.ndarray,
              crop: ClipCrop) -> Tuple[torch.Tensor, torch.Tensor]:
        """The `top_k_pose` best people of each frame, through the clip's flip and crop.

        Args:
            coords: `(Tp, P, J, 2)` finite, in resized-frame pixels; scores: `(Tp, P, J)`.
        Returns:
            `(coords (Tp, K, J, 2) on the heatmap grid, scores (Tp, K, J))` float32; padded
            people have score 0 (and coords 1.0 before the transform).
        """
        coords, scores = select_top_k_frames(coords, scores, self.top_k_pose)
        coords, scores = transform_pose(
            coords, scores, matrix=crop.matrix, do_flip=crop.do_flip,
            resized_width=crop.resized_hw[1], flip_pairs=self.flip_pairs,
            input_img_shape=self.input_img_shape, input_hm_shape=self.input_hm_shape)
        return torch.from_numpy(coords), torch.from_numpy(scores)


def train_preset(cfg: Any, *, flip_pairs: Sequence[Tuple[int, int]],
                 make_clip: ClipMaker = input_clip, video_as_bytes: bool = False) -> ClipPreset:
    """`cfg`'s clip steps with the random crop and flip of training."""
    return _preset(cfg, crop=train_crop, flip_pairs=flip_pairs, make_clip=make_clip,
                   video_as_bytes=video_as_bytes)


def eval_preset(cfg: Any, *, flip_pairs: Sequence[Tuple[int, int]],
                make_clip: ClipMaker = input_clip, video_as_bytes: bool = False) -> ClipPreset:
    """`cfg`'s clip steps with the centre crop of evaluation."""
    return _preset(cfg, crop=center_crop, flip_pairs=flip_pairs, make_clip=make_clip,
                   video_as_bytes=video_as_bytes)


def preset_for(cfg: Any, split: str, *, flip_pairs: Sequence[Tuple[int, int]],
               make_clip: ClipMaker = input_clip, video_as_bytes: bool = False) -> ClipPreset:
    """The preset of a dataset split: `train_preset` for 'train' with `cfg.train_aug`,
    `eval_preset` otherwise."""
    build = train_preset if split == "train" and bool(cfg.train_aug) else eval_preset
    return build(cfg, flip_pairs=flip_pairs, make_clip=make_clip, video_as_bytes=video_as_bytes)


def _preset(cfg: Any, *, crop: CropStep, flip_pairs: Sequence[Tuple[int, int]],
            make_clip: ClipMaker, video_as_bytes: bool) -> ClipPreset:
    return ClipPreset(crop=crop, video_shape=cfg.video_shape,
                      input_img_shape=cfg.input_img_shape, input_hm_shape=cfg.input_hm_shape,
                      top_k_pose=int(cfg.top_k_pose), flip_pairs=flip_pairs,
                      make_clip=make_clip, video_as_bytes=video_as_bytes)
