"""The scenes of the synthetic videos: a background and a scene prop per class context.

Scenes are meant to be *easy* for a small RGB network at 96x96: each has its own dominant
colours and a coarse texture, so that scene -> class is the shortcut an RGB model learns
first (the situation the paper's Mimetics experiment exposes). All randomness comes from the
`numpy.random.Generator` passed in, so a background is a pure function of its generator's seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from tool.synthetic.drawing import BGR, SHIFT, bgr, disc, fx, jitter, line, poly, pt, rect


@dataclass(frozen=True)
class SceneLayout:
    """Per-video geometry shared by a scene's background and its prop."""

    height: int
    width: int
    horizon: int  # y where the back (sky / wall) meets the ground
    prop_x: float  # x centre of the scene prop
    prop_scale: float  # ~1: nominal size


def _speckle(img: np.ndarray, y0: int, y1: int, colour: BGR, count: int,
             rng: np.random.Generator, radius: Tuple[int, int] = (1, 2)) -> None:
    w = img.shape[1]
    if y1 <= y0:
        return
    xs = rng.integers(0, w, size=count)
    ys = rng.integers(y0, y1, size=count)
    rs = rng.integers(radius[0], radius[1] + 1, size=count)
    for x, y, r in zip(xs, ys, rs):
        cv2.circle(img, (int(x), int(y)), int(r), colour, -1)


def _hlines(img: np.ndarray, y0: int, y1: int, period: float, colour: BGR,
            thickness: int = 1, offset: float = 0.0) -> None:
    y = y0 + offset
    while y < y1:
        cv2.line(img, (0, int(y)), (img.shape[1] - 1, int(y)), colour, thickness)
        y += period


def _vbands(img: np.ndarray, y0: int, y1: int, period: float, colour: BGR,
            offset: float = 0.0) -> None:
    """Alternate vertical bands (every other half-period painted)."""
    x = offset - period
    while x < img.shape[1]:
        x0, x1 = int(max(0, x)), int(min(img.shape[1], x + period / 2))
        if x1 > x0:
            img[y0:y1, x0:x1] = colour
        x += period


def _grid(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, step: float, colour: BGR,
          diagonal: bool = False) -> None:
    """A mesh (net, fence) inside a box."""
    sub = img[y0:y1, x0:x1]
    h, w = sub.shape[:2]
    if h <= 0 or w <= 0:
        return
    if diagonal:
        for k in np.arange(-h, w, step):
            cv2.line(sub, (int(k), 0), (int(k + h), h), colour, 1)
            cv2.line(sub, (int(k + h), 0), (int(k), h), colour, 1)
    else:
        for x in np.arange(0, w, step):
            cv2.line(sub, (int(x), 0), (int(x), h), colour, 1)
        for y in np.arange(0, h, step):
            cv2.line(sub, (0, int(y)), (w, int(y)), colour, 1)


def _tennis_court(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((35, 85, 55), rng)
    img[: max(1, hz // 4)] = jitter((20, 45, 30), rng)
    img[hz:] = jitter((45, 100, 175), rng)
    white = jitter((240, 240, 240), rng, 8)
    base = int(hz + rng.uniform(0.6, 0.85) * (h - hz))
    cv2.line(img, (0, base), (w, base), white, 2)
    cv2.line(img, (int(0.18 * w), h), (int(0.32 * w), hz), white, 2)
    cv2.line(img, (int(0.82 * w), h), (int(0.68 * w), hz), white, 2)
    # The net: a dark mesh band across the court with a white tape on top.
    bottom = int(hz + rng.uniform(0.2, 0.35) * (h - hz))
    top = int(bottom - 0.13 * h * lay.prop_scale)
    _grid(img, 0, top, w, bottom, 3, bgr((30, 30, 30)))
    cv2.line(img, (0, top), (w, top), white, 2)
    for x in (2, w - 3):
        cv2.line(img, (x, top - 2), (x, bottom), bgr((90, 90, 90)), 3)


def _baseball_field(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((70, 140, 60), rng)
    img[: max(1, int(hz * 0.35))] = jitter((140, 190, 235), rng)
    img[hz:] = jitter((175, 115, 70), rng)
    _speckle(img, hz, h, jitter((140, 85, 50), rng), (h - hz) * w // 25, rng)
    chalk = jitter((245, 245, 245), rng, 6)
    apex = (int(w * rng.uniform(0.4, 0.6)), h - 2)
    cv2.line(img, apex, (0, hz + 4), chalk, 2)
    cv2.line(img, apex, (w, hz + 4), chalk, 2)
    cv2.fillPoly(img, [np.array([[apex[0] - 5, h - 8], [apex[0] + 5, h - 8], [apex[0], h - 3]],
                                np.int32)], chalk)
    # The backstop: a chain-link fence on one side.
    fw = int(0.32 * w * lay.prop_scale)
    x0 = int(np.clip(lay.prop_x - fw / 2, 0, w - fw))
    top = int(0.12 * h)
    _grid(img, x0, top, x0 + fw, hz + 6, 5, bgr((190, 190, 190)), diagonal=True)
    cv2.rectangle(img, (x0, top), (x0 + fw, hz + 6), bgr((110, 110, 110)), 2)


def _beach(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    sea = int(hz + 0.18 * h)
    img[:hz] = jitter((150, 200, 240), rng)
    img[hz:sea] = jitter((25, 85, 165), rng)
    img[sea:] = jitter((228, 202, 140), rng)
    foam = bgr((235, 245, 250))
    for _ in range(10):
        x, y = int(rng.integers(0, w)), int(rng.integers(hz + 2, sea - 1))
        cv2.line(img, (x, y), (x + int(rng.integers(8, 20)), y), foam, 1)
    _speckle(img, sea, h, jitter((190, 160, 100), rng), (h - sea) * w // 30, rng, (1, 1))
    # A red-and-white beach umbrella.
    cx, s = lay.prop_x, lay.prop_scale
    pole_top, radius = sea - 0.28 * h * s, 0.2 * h * s
    line(img, (cx, sea + 0.1 * h), (cx, pole_top), bgr((90, 70, 50)), 2)
    for k in range(6):
        colour = bgr((220, 30, 40)) if k % 2 == 0 else bgr((245, 245, 245))
        cv2.ellipse(img, pt((cx, pole_top)), (fx(radius), fx(radius * 0.55)), 0,
                    180 + 30 * k, 210 + 30 * k, colour, -1, cv2.LINE_AA, SHIFT)


def _snow(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((200, 212, 228), rng)
    img[hz:] = jitter((244, 246, 252), rng, 6)
    drift = jitter((200, 212, 232), rng, 8)
    for _ in range(6):
        c = (int(rng.integers(0, w)), int(rng.integers(hz, h)))
        cv2.ellipse(img, c, (int(rng.integers(10, 30)), int(rng.integers(2, 5))), 0, 0, 360,
                    drift, -1)
    _speckle(img, 0, hz, bgr((255, 255, 255)), hz * w // 60, rng, (1, 1))
    # A snowy pine tree.
    cx, s = lay.prop_x, lay.prop_scale
    base = hz + 0.1 * h
    rect(img, cx - 2, base - 0.08 * h * s, cx + 2, base, bgr((90, 60, 30)))
    green, cap = jitter((20, 80, 40), rng, 8), bgr((250, 250, 255))
    for k in range(3):
        y1 = base - (0.06 + 0.11 * k) * h * s
        half = (0.12 - 0.03 * k) * h * s
        apex = y1 - 0.16 * h * s
        poly(img, [(cx - half, y1), (cx + half, y1), (cx, apex)], green)
        poly(img, [(cx - half * 0.3, apex + 0.05 * h * s), (cx + half * 0.3,
                     apex + 0.05 * h * s), (cx, apex)], cap)


def _gym(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((58, 58, 66), rng)
    band = int(hz * rng.uniform(0.5, 0.7))
    img[band:band + max(3, h // 25)] = jitter((200, 30, 35), rng)
    img[hz:] = jitter((30, 30, 32), rng, 6)
    step = rng.uniform(9, 13)
    seam = bgr((62, 62, 66))
    for x in np.arange(rng.uniform(0, step), w, step):
        cv2.line(img, (int(x), hz), (int(x), h), seam, 1)
    _hlines(img, hz, h, step, seam)
    # A weight rack: two posts, a bar, black plates.
    cx, s = lay.prop_x, lay.prop_scale
    half, top = 0.16 * w * s, hz - 0.3 * h * s
    metal, plate = bgr((170, 170, 175)), bgr((15, 15, 15))
    for x in (cx - half, cx + half):
        line(img, (x, hz + 0.05 * h), (x, top), metal, 3)
    bar_y = top + 0.07 * h
    line(img, (cx - half * 1.3, bar_y), (cx + half * 1.3, bar_y), metal, 2)
    for x in (cx - half * 1.15, cx + half * 1.15):
        rect(img, x - 2.5, bar_y - 0.09 * h * s, x + 2.5, bar_y + 0.09 * h * s, plate)


def _warehouse(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((150, 165, 178), rng)
    _vbands(img, 0, hz, rng.uniform(7, 10), jitter((118, 130, 142), rng),
            rng.uniform(0, 8))
    img[hz:] = jitter((192, 184, 165), rng)
    _speckle(img, hz, h, jitter((165, 158, 140), rng), (h - hz) * w // 40, rng, (1, 1))
    safety = int(hz + rng.uniform(0.15, 0.3) * (h - hz))
    img[safety:safety + 3] = jitter((235, 200, 30), rng)
    # Stacked cardboard boxes on a pallet.
    cx, s = lay.prop_x, lay.prop_scale
    bw, bh, base = 0.14 * w * s, 0.13 * h * s, hz + 0.06 * h
    rect(img, cx - bw * 1.05, base - 3, cx + bw * 1.05, base + 1, bgr((150, 110, 60)))
    card, tape = jitter((175, 125, 70), rng, 8), bgr((215, 190, 140))
    for row, n in ((0, 2), (1, 1)):
        for k in range(n):
            x0 = cx - bw + k * bw + (bw / 2 if n == 1 else 0)
            y1 = base - 3 - row * bh
            rect(img, x0 + 1, y1 - bh + 1, x0 + bw - 1, y1, card)
            line(img, (x0 + bw / 2, y1 - bh + 1), (x0 + bw / 2, y1), tape, 1)


def _living_room(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((200, 188, 228), rng)
    img[hz:] = jitter((165, 100, 50), rng)
    seam = jitter((110, 60, 25), rng, 8)
    period = rng.uniform(6, 9)
    y = hz + rng.uniform(0, period)
    while y < h:
        cv2.line(img, (0, int(y)), (w, int(y)), seam, 1)
        for x in rng.uniform(0, w, size=2):
            cv2.line(img, (int(x), int(y)), (int(x), int(y + period)), seam, 1)
        y += period
    img[hz - 3:hz] = bgr((245, 240, 235))  # skirting board
    # A sofa against the wall and a picture above it.
    cx, s = lay.prop_x, lay.prop_scale
    sw, sh = 0.24 * w * s, 0.16 * h * s
    fabric = jitter((125, 40, 55), rng, 10)
    rect(img, cx - sw, hz + 2 - sh, cx + sw, hz + 2, fabric)
    rect(img, cx - sw - 4, hz + 2 - sh * 1.4, cx - sw + 2, hz + 2, fabric)
    rect(img, cx + sw - 2, hz + 2 - sh * 1.4, cx + sw + 4, hz + 2, fabric)
    rect(img, cx - sw * 0.4, hz - sh * 2.6, cx + sw * 0.4, hz - sh * 1.7, bgr((70, 50, 30)))
    rect(img, cx - sw * 0.4 + 2, hz - sh * 2.6 + 2, cx + sw * 0.4 - 2, hz - sh * 1.7 - 2,
          jitter((90, 160, 200), rng))


def _soccer_field(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((62, 62, 75), rng)
    crowd = [bgr(c) for c in ((220, 60, 60), (240, 240, 240), (60, 90, 220), (240, 200, 40))]
    for colour in crowd:
        _speckle(img, 0, max(1, hz - 4), colour, hz * w // 80, rng, (1, 1))
    img[hz:] = jitter((60, 168, 60), rng)
    _vbands(img, hz, h, rng.uniform(24, 34), jitter((40, 135, 45), rng), rng.uniform(0, 20))
    white = bgr((245, 245, 245))
    y = int(hz + rng.uniform(0.5, 0.8) * (h - hz))
    cv2.line(img, (0, y), (w, y), white, 2)
    # The goal: white frame with a grey net.
    cx, s = lay.prop_x, lay.prop_scale
    gw, gh = 0.25 * w * s, 0.26 * h * s
    x0, x1, base = int(cx - gw), int(cx + gw), int(hz + 0.06 * h)
    _grid(img, max(0, x0), max(0, int(base - gh)), min(w, x1), base, 4, bgr((200, 200, 200)))
    cv2.line(img, (x0, base), (x0, int(base - gh)), white, 2)
    cv2.line(img, (x1, base), (x1, int(base - gh)), white, 2)
    cv2.line(img, (x0, int(base - gh)), (x1, int(base - gh)), white, 2)


def _boxing_ring(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((25, 20, 38), rng, 8)
    _speckle(img, 0, hz // 2, bgr((250, 240, 200)), 12, rng, (1, 2))
    img[hz:] = jitter((175, 40, 45), rng)
    post_x = int(lay.prop_x)
    cv2.line(img, (post_x, int(hz - 0.35 * h * lay.prop_scale)), (post_x, hz + 4),
             jitter((40, 70, 200), rng), 5)
    for k in range(3):
        y = int(hz - (0.08 + 0.1 * k) * h * lay.prop_scale)
        cv2.line(img, (0, y), (w, y), bgr((235, 235, 235)) if k % 2 else bgr((210, 30, 30)),
                 2)


def _stage(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((58, 20, 80), rng)
    for _ in range(4):
        c = (int(rng.integers(0, w)), int(rng.integers(0, max(1, hz // 2))))
        cv2.circle(img, c, int(rng.integers(5, 11)), bgr((250, 235, 150)), -1, cv2.LINE_AA)
    img[hz:] = jitter((22, 16, 22), rng, 6)
    cv2.line(img, (0, hz), (w, hz), bgr((200, 160, 60)), 2)
    # A microphone stand.
    cx, s = lay.prop_x, lay.prop_scale
    stand = bgr((160, 160, 170))
    line(img, (cx, hz + 0.08 * h), (cx, hz - 0.3 * h * s), stand, 2)
    disc(img, (cx, hz - 0.3 * h * s - 2), 2.5, bgr((20, 20, 20)))


def _street(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((160, 70, 50), rng)
    mortar, row = bgr((205, 190, 175)), rng.uniform(5, 7)
    y, k = rng.uniform(0, row), 0
    while y < hz:
        cv2.line(img, (0, int(y)), (w, int(y)), mortar, 1)
        for x in np.arange((k % 2) * row, w, 2 * row):
            cv2.line(img, (int(x), int(y)), (int(x), int(min(hz, y + row))), mortar, 1)
        y, k = y + row, k + 1
    img[hz:] = jitter((75, 75, 80), rng, 8)
    mid = int(hz + rng.uniform(0.4, 0.7) * (h - hz))
    for x in np.arange(rng.uniform(0, 20), w, 24):
        cv2.line(img, (int(x), mid), (int(x + 12), mid), bgr((240, 200, 30)), 2)
    # A street lamp.
    cx, s = lay.prop_x, lay.prop_scale
    pole = bgr((30, 60, 40))
    line(img, (cx, hz + 0.05 * h), (cx, hz - 0.38 * h * s), pole, 3)
    disc(img, (cx, hz - 0.38 * h * s), 4, bgr((255, 240, 170)))


def _pool(img: np.ndarray, lay: SceneLayout, rng: np.random.Generator) -> None:
    h, w, hz = lay.height, lay.width, lay.horizon
    img[:hz] = jitter((225, 235, 240), rng, 8)
    tile = bgr((150, 190, 215))
    _grid(img, 0, 0, w, hz, 8, tile)
    img[hz:] = jitter((30, 150, 210), rng)
    ripple = bgr((120, 200, 240))
    for _ in range((h - hz) // 2):
        x, y = int(rng.integers(0, w)), int(rng.integers(hz, h))
        cv2.line(img, (x, y), (x + int(rng.integers(4, 12)), y), ripple, 1)
    for y in np.arange(hz + 6, h, rng.uniform(14, 20)):
        for x in range(0, w, 6):
            colour = bgr((220, 30, 30)) if (x // 6) % 2 else bgr((245, 245, 245))
            cv2.line(img, (x, int(y)), (x + 5, int(y)), colour, 2)
    # A pool ladder.
    cx, s = lay.prop_x, lay.prop_scale
    steel = bgr((200, 200, 210))
    for dx in (-5, 5):
        line(img, (cx + dx, hz + 0.05 * h), (cx + dx, hz - 0.2 * h * s), steel, 2)
    for k in range(4):
        y = hz - 0.04 * h * s * k
        line(img, (cx - 5, y), (cx + 5, y), steel, 1)


SceneFn = Callable[[np.ndarray, SceneLayout, np.random.Generator], None]

SCENES: Dict[str, SceneFn] = {
    "tennis_court": _tennis_court,
    "baseball_field": _baseball_field,
    "beach": _beach,
    "snow": _snow,
    "gym": _gym,
    "warehouse": _warehouse,
    "living_room": _living_room,
    "soccer_field": _soccer_field,
    "boxing_ring": _boxing_ring,
    "stage": _stage,
    "street": _street,
    "pool": _pool,
}


def draw_scene(height: int, width: int, scene: str, rng: np.random.Generator) -> np.ndarray:
    """(height, width, 3) uint8 BGR background of `scene`, jittered by `rng`."""
    img = np.zeros((height, width, 3), np.uint8)
    layout = SceneLayout(
        height=height, width=width,
        horizon=int(height * rng.uniform(0.36, 0.5)),
        # The scene prop sits in the left or the right part, the actor usually in the middle.
        prop_x=float(width * (rng.uniform(0.08, 0.3) if rng.random() < 0.5
                              else rng.uniform(0.7, 0.92))),
        prop_scale=float(rng.uniform(0.85, 1.15)),
    )
    SCENES[scene](img, layout, rng)
    # Sensor-like grain so that no two backgrounds are pixel-identical.
    grain = rng.normal(0.0, 3.0, size=img.shape)
    return np.clip(img.astype(np.float32) + grain, 0, 255).astype(np.uint8)

