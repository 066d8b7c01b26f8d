"""The people of the synthetic videos: stick figures drawn from pixel joints, and the objects
held in their hands (what tells apart two classes that share a motion).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from tool.synthetic.actions import J
from tool.synthetic.drawing import BGR, RGB, SHIFT, bgr, disc, fx, jitter, line, poly, pt, rect


_SKIN_TONES: Tuple[RGB, ...] = ((250, 215, 180), (225, 180, 140), (190, 140, 100),
                                (140, 95, 65), (95, 65, 45))


@dataclass(frozen=True)
class FigureStyle:
    """Per-person colours (random, unrelated to the class) and placement in the frame."""

    shirt: BGR
    pants: BGR
    skin: BGR
    hair: BGR
    centre_x: float  # pixel x of the point between the feet
    ground_y: float  # pixel y of the ground under the feet
    scale: float  # pixels per body unit

    @staticmethod
    def random(rng: np.random.Generator, centre_x: float, ground_y: float,
               scale: float) -> "FigureStyle":
        def vivid() -> BGR:
            hsv = np.array([[[rng.integers(0, 180), rng.integers(90, 256),
                              rng.integers(70, 256)]]], np.uint8)
            b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
            return (int(b), int(g), int(r))

        skin = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
        hair = ((30, 20, 15), (90, 60, 30), (200, 170, 90), (120, 120, 120))[
            int(rng.integers(4))]
        return FigureStyle(shirt=vivid(), pants=vivid(), skin=jitter(skin, rng, 10),
                           hair=bgr(hair), centre_x=centre_x, ground_y=ground_y, scale=scale)

    def to_pixels(self, joints: np.ndarray) -> np.ndarray:
        """Body units (origin between the feet, y down) -> (18, 2) frame pixels."""
        return np.stack([self.centre_x + self.scale * joints[:, 0],
                         self.ground_y + self.scale * joints[:, 1]], axis=1)


def draw_person(img: np.ndarray, px: np.ndarray, style: FigureStyle) -> None:
    """A thick-limbed figure from (18, 2) pixel joints: legs, torso, arms, head (back to front)."""
    s = style.scale
    limb = max(2, int(round(0.055 * s)))
    shoe = bgr((30, 30, 30))
    for side in ("R", "L"):
        hip, knee, ankle = px[J[f"{side}_Hip"]], px[J[f"{side}_Knee"]], px[J[f"{side}_Ankle"]]
        line(img, hip, knee, style.pants, limb + 1)
        line(img, knee, ankle, style.pants, limb)
        toe = ankle + np.array([(-1.0 if side == "R" else 1.0) * 0.05 * s, 0.01 * s])
        line(img, ankle, toe, shoe, limb)
    torso = [px[J["R_Shoulder"]], px[J["L_Shoulder"]], px[J["L_Hip"]], px[J["R_Hip"]]]
    poly(img, torso, style.shirt)
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 0)):
        line(img, torso[a], torso[b], style.shirt, limb)
    head = (px[J["R_Ear"]] + px[J["L_Ear"]]) / 2.0 - np.array([0.0, 0.015 * s])
    line(img, px[J["Thorax"]], head, style.skin, limb)
    for side in ("R", "L"):
        sh, el, wr = px[J[f"{side}_Shoulder"]], px[J[f"{side}_Elbow"]], px[J[f"{side}_Wrist"]]
        line(img, sh, el, style.shirt, limb)
        line(img, el, wr, style.skin, max(2, limb - 1))
        disc(img, wr, 0.035 * s, style.skin)
    radius = 0.065 * s
    disc(img, head, radius, style.skin)
    cv2.ellipse(img, pt(head), (fx(radius), fx(radius)), 0, 190, 350, style.hair, -1,
                cv2.LINE_AA, SHIFT)
    if radius >= 4.0:  # eyes only where they are more than a smudge
        for eye in (px[J["R_Eye"]], px[J["L_Eye"]]):
            disc(img, eye, max(0.8, 0.012 * s), bgr((20, 20, 20)))




HELD_PROPS = ("racket", "bat", "dumbbells", "box", "ball", "gloves")


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 1e-6 else np.array([0.0, 1.0])


def draw_held_prop(img: np.ndarray, prop: Optional[str], px: np.ndarray, scale: float) -> None:
    """Draw `prop` attached to the hands (or foot) of the pixel pose `px`; None draws nothing."""
    if prop is None:
        return
    s = scale
    wrists = px[[J["R_Wrist"], J["L_Wrist"]]]
    elbows = px[[J["R_Elbow"], J["L_Elbow"]]]
    grip = wrists.mean(axis=0)
    # A two-handed grip points the object along the mean forearm direction.
    direction = _unit(_unit(wrists[0] - elbows[0]) + _unit(wrists[1] - elbows[1]))
    if prop == "racket":
        neck = grip + direction * 0.11 * s
        line(img, grip - direction * 0.02 * s, neck, bgr((30, 30, 30)), max(2, int(0.03 * s)))
        centre = neck + direction * 0.08 * s
        angle = math.degrees(math.atan2(direction[1], direction[0]))
        axes = (fx(0.085 * s), fx(0.06 * s))
        cv2.ellipse(img, pt(centre), axes, angle, 0, 360, bgr((235, 240, 200)), -1,
                    cv2.LINE_AA, SHIFT)
        cv2.ellipse(img, pt(centre), axes, angle, 0, 360, bgr((215, 25, 30)),
                    max(1, int(0.025 * s)), cv2.LINE_AA, SHIFT)
    elif prop == "bat":
        tip = grip + direction * 0.4 * s
        line(img, grip - direction * 0.03 * s, tip, bgr((205, 160, 100)),
              max(2, int(0.04 * s)))
        disc(img, tip, 0.03 * s, bgr((205, 160, 100)))
        disc(img, grip - direction * 0.03 * s, 0.02 * s, bgr((60, 40, 30)))
    elif prop == "dumbbells":
        for w in wrists:
            ends = (w - np.array([0.07 * s, 0.0]), w + np.array([0.07 * s, 0.0]))
            line(img, ends[0], ends[1], bgr((150, 150, 155)), max(1, int(0.02 * s)))
            for e in ends:
                rect(img, e[0] - 0.018 * s, e[1] - 0.045 * s, e[0] + 0.018 * s,
                      e[1] + 0.045 * s, bgr((20, 20, 20)))
    elif prop == "box":
        half_w = abs(wrists[1, 0] - wrists[0, 0]) / 2.0 + 0.05 * s
        top, bottom = grip[1] - 0.08 * s, grip[1] + 0.07 * s
        rect(img, grip[0] - half_w, top, grip[0] + half_w, bottom, bgr((180, 128, 70)))
        line(img, (grip[0], top), (grip[0], bottom), bgr((220, 195, 145)),
              max(1, int(0.02 * s)))
    elif prop == "ball":
        ankles = px[[J["R_Ankle"], J["L_Ankle"]]]
        foot = ankles[int(np.argmin(ankles[:, 1]))]  # the raised (kicking) foot
        centre = foot + np.array([0.0, 0.05 * s])
        disc(img, centre, 0.05 * s, bgr((250, 250, 250)))
        disc(img, centre, 0.018 * s, bgr((20, 20, 20)))
    elif prop == "gloves":
        for w in wrists:
            disc(img, w, 0.045 * s, bgr((200, 20, 25)))
    else:
        raise ValueError(f"unknown held prop {prop!r}")

