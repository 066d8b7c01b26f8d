"""Drawing primitives of the synthetic videos: colours and anti-aliased, sub-pixel shapes.

Everything draws with OpenCV on uint8 BGR arrays (what `cv2.imwrite` expects). Colours are
written as RGB tuples for readability and converted by `bgr`.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

RGB = Tuple[int, int, int]
BGR = Tuple[int, int, int]

# Sub-pixel drawing: OpenCV takes fixed-point coordinates with this many fractional bits,
# so slow motions move smoothly instead of snapping to whole pixels.
SHIFT = 4
ONE = 1 << SHIFT


def bgr(rgb: Sequence[float]) -> BGR:
    """An RGB colour, clipped to 0..255, as OpenCV's BGR tuple."""
    r, g, b = (int(min(255, max(0, round(c)))) for c in rgb)
    return (b, g, r)


def jitter(rgb: RGB, rng: np.random.Generator, amount: int = 14) -> BGR:
    """A scene colour varied per video: typical, never constant."""
    return bgr(np.asarray(rgb) + rng.integers(-amount, amount + 1, size=3))


def fx(v: float) -> int:
    """A pixel coordinate in OpenCV's fixed point (`SHIFT` fractional bits)."""
    return int(round(v * ONE))


def pt(xy: Sequence[float]) -> Tuple[int, int]:
    """A point `(x, y)` in OpenCV's fixed point."""
    return (fx(xy[0]), fx(xy[1]))


def line(img: np.ndarray, a: Sequence[float], b: Sequence[float], colour: BGR,
          thickness: int) -> None:
    """An anti-aliased line from `a` to `b` (pixels)."""
    cv2.line(img, pt(a), pt(b), colour, max(1, int(thickness)), cv2.LINE_AA, SHIFT)


def disc(img: np.ndarray, c: Sequence[float], radius: float, colour: BGR) -> None:
    """A filled circle of `radius` pixels around `c`."""
    cv2.circle(img, pt(c), max(1, fx(radius)), colour, -1, cv2.LINE_AA, SHIFT)


def poly(img: np.ndarray, points: Sequence[Sequence[float]], colour: BGR) -> None:
    """A filled polygon through `points` (pixels)."""
    pts = np.array([pt(p) for p in points], dtype=np.int32)
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, SHIFT)


def rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour: BGR) -> None:
    """A filled axis-aligned rectangle with corners `(x0, y0)`, `(x1, y1)` (pixels)."""
    poly(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour)
