"""Frames stored as a folder of JPEG files per video (`JpegFolder`), and reading them.

Frames are JPEGs named `%06d.jpg`, counted from 1 on disk: frame k (0-based, the index every
sampling function uses) is the file `k + 1`.

`JpegFolder` is the `FrameSource` of such folders. `load_frame_rgb8` is what a dataset item
reads (uint8 RGB: the float conversion happens later, only on the part of the frame a crop
needs); `load_frame` is the same frame as float32.
`load_clip_frames` reads the frames of one clip and can, on request (`fast_decode`), let the
JPEG decoder scale large frames down by 2, 4 or 8: faster, but not the same pixels.
"""
from __future__ import annotations

import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from common.errors import DataError
from data.sources.base import FrameError, FrameSource
from data.sources.decoder_warnings import DecoderOutput, catching_decoder_output
from data.transforms import resize_shape

FRAME_NAME = "%06d.jpg"
# JPEG start-of-image and end-of-image markers.
JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
# How far from the end the end-of-image marker may sit (some writers pad the file).
EOI_SEARCH_BYTES = 64
# The extracted frames are stored upright and the poses were computed on the stored pixels.
DECODE_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
# libjpeg's DCT scaling (`fast_decode`): factor -> flags (BGR; swapped to RGB after).
REDUCED_DECODE_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}
# JPEG start-of-frame markers (baseline, extended, progressive, lossless...; not DHT 0xC4,
# JPG 0xC8, DAC 0xCC): their segment holds the frame's height and width.
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                         0xCE, 0xCF})
# Markers without a length field: TEM, RST0..7 (SOI/EOI are handled apart).
STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


def frame_path(frame_dir: str, frame_index: int) -> str:
    """Path of 0-based frame `frame_index` in `frame_dir` (file number `frame_index + 1`)."""
    return osp.join(frame_dir, FRAME_NAME % (frame_index + 1))


def read_frame_bytes(path: str) -> bytes:
    """The bytes of one frame file, checked for what decoding would not notice
    (`check_frame_bytes`).

    Raises:
        FrameError: 'missing_frame' when the file does not exist; 'corrupt_frame' when it is
            empty or a JPEG without its end-of-image marker (a truncated file, which OpenCV
            would decode into a half-grey image with only a warning on stderr).
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FrameError(path, "missing_frame", "frame file not found") from None
    except OSError as err:
        raise FrameError(path, "corrupt_frame", f"cannot read ({err.strerror or err})") from None
    return check_frame_bytes(raw, path)


def check_frame_bytes(raw: bytes, path: str) -> bytes:
    """`raw` (a frame's bytes, named `path` in errors) unless it is empty or a JPEG without its
    end-of-image marker: then `FrameError` 'corrupt_frame'. Any frame source applies it
    before decoding."""
    if not raw:
        raise FrameError(path, "corrupt_frame", "empty file")
    if raw.startswith(JPEG_SOI) and JPEG_EOI not in raw[-EOI_SEARCH_BYTES:]:
        raise FrameError(path, "corrupt_frame", f"truncated JPEG ({len(raw)} bytes, no "
                                                "end-of-image marker)")
    return raw


def decode_frame(raw: bytes, path: str, reduce: int = 1) -> np.ndarray:
    """Decode frame bytes (from `read_frame_bytes`) to `(H, W, 3)` uint8 RGB.

    `reduce` 2, 4 or 8 decodes at that fraction of the size (libjpeg's DCT scaling, sides
    rounded up): faster, other pixels than decoding and resizing. EXIF orientation is ignored.

    Raises:
        FrameError: 'corrupt_frame' when the bytes are not a decodable image, or when the
            decoder reports damaged data (a cut or corrupt scan, which it would otherwise
            return as partly grey or garbled pixels with only a warning on stderr).
    """
    with catching_decoder_output() as output:
        return _checked_decode(raw, path, reduce, output)


def _checked_decode(raw: bytes, path: str, reduce: int, output: DecoderOutput) -> np.ndarray:
    """`decode_frame` inside a `catching_decoder_output` block (`output`)."""
    image = _imdecode(np.frombuffer(raw, dtype=np.uint8), reduce)
    damage = output.damage()
    if image is None:
        raise FrameError(path, "corrupt_frame", f"not a decodable image ({len(raw)} bytes)")
    if damage is not None:
        raise FrameError(path, "corrupt_frame", f"damaged JPEG data (the decoder says "
                                                f"'{damage}')")
    return image


def _imdecode(buffer: np.ndarray, reduce: int) -> Optional[np.ndarray]:
    """OpenCV's decode of `buffer` as RGB (`decode_frame`), None when it cannot decode it."""
    if reduce == 1:
        # libjpeg(-turbo) writes RGB directly: the same pixels as BGR + cvtColor, one pass less.
        return cv2.imdecode(buffer, DECODE_FLAGS)
    image = cv2.imdecode(buffer, REDUCED_DECODE_FLAGS[reduce])
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_frame_rgb8(path: str) -> np.ndarray:
    """Read one frame as `(H, W, 3)` uint8 RGB (errors as `load_frame`)."""
    return decode_frame(read_frame_bytes(path), path)


def load_frame(path: str) -> np.ndarray:
    """Read one frame as `(H, W, 3)` float32 RGB in [0, 255].

    EXIF orientation is ignored (the extracted frames are stored upright, and the poses were
    computed on the stored pixels).

    Raises:
        FrameError: 'missing_frame' when the file does not exist; 'corrupt_frame' when it is
            empty, a JPEG without its end-of-image marker (a truncated file, which OpenCV would
            decode into a half-grey image with only a warning on stderr), not decodable, or
            reported damaged by the decoder.
    """
    return load_frame_rgb8(path).astype(np.float32)


def jpeg_size(raw: bytes) -> Optional[Tuple[int, int]]:
    """`(height, width)` from a JPEG's start-of-frame header, without decoding; None when the
    bytes are no JPEG or the header cannot be parsed (or leaves the height to a DNL marker)."""
    if not raw.startswith(JPEG_SOI):
        return None
    pos, end = 2, len(raw)
    while pos + 4 <= end:
        if raw[pos] != 0xFF:
            return None
        marker = raw[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan data begins: no frame header
            return None
        length = (raw[pos + 2] << 8) | raw[pos + 3]
        if length < 2:
            return None
        if marker in SOF_MARKERS:
            if length < 7 or pos + 9 > end:
                return None
            height = (raw[pos + 5] << 8) | raw[pos + 6]
            width = (raw[pos + 7] << 8) | raw[pos + 8]
            return (height, width) if height and width else None
        pos += 2 + length
    return None


def decode_reduction(frame_hw: Tuple[int, int], target_hw: Tuple[int, int]) -> int:
    """The largest DCT scaling factor (8, 4, 2; else 1) that leaves a `frame_hw` frame at least
    `target_hw` on both sides."""
    for factor in (8, 4, 2):
        if frame_hw[0] // factor >= target_hw[0] and frame_hw[1] // factor >= target_hw[1]:
            return factor
    return 1


def load_clip_frames(
    paths: Sequence[str], fast_decode_shape: Optional[Sequence[int]] = None, *,
    read: Callable[[str], bytes] = read_frame_bytes,
) -> Tuple[List[np.ndarray], Tuple[int, int]]:
    """Read the frames of one clip, in order (the first bad one raises `FrameError`).

    Args:
        paths: the frame files (or whatever names `read` understands).
        fast_decode_shape: None (the default): decode every frame at its stored size. Else
            the clip's `video_shape`: a frame at least twice the size it is resized to is
            decoded at 1/2, 1/4 or 1/8 of its size (see `decode_reduction`), read from the
            first frame's JPEG header. Faster, but not the same pixels (off by default).
        read: a frame's checked bytes (`read_frame_bytes`; another source's, e.g. a shard's).
    Returns:
        `(frames, (H, W))`: `(H_i, W_i, 3)` uint8 RGB frames and the stored size of the first
        frame (what the resize target is computed from, whatever size it was decoded at).
    """
    frames: List[np.ndarray] = []
    stored_hw: Optional[Tuple[int, int]] = None
    reduce = 1
    # One capture of the decoder's output for the whole clip (see `decode_frame`).
    with catching_decoder_output() as output:
        for n, path in enumerate(paths):
            raw = read(path)
            if n == 0 and fast_decode_shape is not None:
                header_hw = jpeg_size(raw)
                if header_hw is not None:
                    stored_hw = header_hw
                    reduce = decode_reduction(header_hw, resize_shape(*header_hw,
                                                                      fast_decode_shape))
            frames.append(_checked_decode(raw, path, reduce, output))
            if n == 0 and reduce == 1:
                stored_hw = (int(frames[0].shape[0]), int(frames[0].shape[1]))
    if stored_hw is None:
        raise ValueError("load_clip_frames needs at least one frame")
    return frames, stored_hw



def require_folder(path: str, what: str) -> None:
    """Raise `DataError` `<path>: <what> not found; ...` unless `path` is a directory (a data
    set whose frame root is missing has no usable clip at all)."""
    if not osp.isdir(path):
        raise DataError(f"{path}: {what} not found; extract the frames (tool/video2image.py) "
                        "or point --data_dir at the data set")


class JpegFolder(FrameSource):
    """Frames extracted as `%06d.jpg` files, one folder per video (`video` is the folder)."""

    def read(self, video: str, indices: Sequence[int], *,
             fast_decode_shape: Optional[Sequence[int]] = None
             ) -> Tuple[List[np.ndarray], Tuple[int, int]]:
        """`load_clip_frames` of the frames' files: uint8 RGB frames, `(H, W)` of the first."""
        return load_clip_frames([frame_path(video, k) for k in indices], fast_decode_shape)

    def frame_size(self, video: str, index: int) -> Tuple[int, int]:
        """Decodes the frame (a corrupt one raises as in `read`)."""
        height, width = load_frame(frame_path(video, index)).shape[:2]
        return int(height), int(width)
