"""Actions defined purely by joint motion: a cycle phase -> an 18-joint OpenPose body pose.

A person is seen from the front. Coordinates are in *body units* (a standing person is about
0.9 units from ankle to the top of the head), x to the image right, y down, origin on the
ground between the feet. The person's right side is on the image left, as for someone facing
the camera, so `R_Shoulder` has a negative x.

Each motion is a function `(u, amplitude, body) -> Posture`, where `u` is the position in the
motion cycle (1.0 = one full cycle). `action_pose` turns it into joints for a frame number
given the per-video `MotionParams` (period, phase, amplitude, mirror). Two classes that share
a motion (e.g. `swing_racket` and `swing_bat`) use the very same function and the same
parameter distributions, so that pose alone cannot tell them apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from data.joint_sets import OPENPOSE_18

# OpenPose-18 joint indices, by name, so the geometry below reads as anatomy.
J = {name: i for i, name in enumerate(OPENPOSE_18.joint_names)}
NUM_JOINTS = OPENPOSE_18.joint_num

Point = Tuple[float, float]


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths in body units; drawn per video so people differ a little."""

    torso: float = 0.30  # thorax (neck) to the hip centre
    shoulder: float = 0.10  # half shoulder width
    hip: float = 0.065  # half hip width
    upper_arm: float = 0.15
    forearm: float = 0.14
    thigh: float = 0.22
    shin: float = 0.22
    neck: float = 0.09  # thorax to nose

    @staticmethod
    def random(rng: np.random.Generator) -> "BodyShape":
        """Proportions jittered by up to +-8 % per segment (not class-dependent)."""
        base = BodyShape()
        factors = rng.uniform(0.92, 1.08, size=8)
        return BodyShape(*(float(v * f) for v, f in zip(
            (base.torso, base.shoulder, base.hip, base.upper_arm, base.forearm,
             base.thigh, base.shin, base.neck), factors)))


@dataclass(frozen=True)
class MotionParams:
    """How one video performs its motion: speed, start, size and which side leads."""

    period: float  # frames per motion cycle
    phase: float  # cycle position at frame 0, in [0, 1)
    amplitude: float  # scales the motion range (1 = nominal)
    mirror: bool  # True: performed with the other arm/leg (the pose mirrored left-right)

    def cycle(self, frame: float) -> float:
        return frame / self.period + self.phase

    @staticmethod
    def random(rng: np.random.Generator, min_period: float = 12.0,
               max_period: float = 24.0) -> "MotionParams":
        """The same distribution for every motion, so a motion's parameters carry no label."""
        return MotionParams(
            period=float(rng.uniform(min_period, max_period)),
            phase=float(rng.uniform(0.0, 1.0)),
            amplitude=float(rng.uniform(0.8, 1.2)),
            mirror=bool(rng.random() < 0.5),
        )


@dataclass(frozen=True)
class Posture:
    """Joint angles of one frame (radians), before they are turned into positions.

    Limb angles are *mirrored abduction* angles: 0 points straight down, pi/2 points sideways
    away from the body, pi points straight up, for both sides alike. Elbow/knee angles are added
    to the upper segment's angle. An optional hand target (in the upright torso frame, hip
    centre at the origin) replaces the arm angles with two-link inverse kinematics.
    """

    lean: float = 0.0  # upper-body rotation about the hip centre (+ = towards image right)
    torso_scale: float = 1.0  # < 1: bending towards the camera (foreshortened torso)
    r_shoulder: float = 0.15
    r_elbow: float = 0.1
    l_shoulder: float = 0.15
    l_elbow: float = 0.1
    r_hand: Optional[Point] = None
    l_hand: Optional[Point] = None
    elbow_hint: Point = (1.0, 0.6)  # preferred elbow direction for IK (x mirrored per side)
    r_hip: float = 0.06
    r_knee: float = 0.0
    l_hip: float = 0.06
    l_knee: float = 0.0
    r_thigh_scale: float = 1.0  # < 1: thigh pointing towards the camera (squat)
    l_thigh_scale: float = 1.0
    airborne: float = 0.0  # height of the feet above the ground (jumps)


def _direction(angle: float, side: float) -> np.ndarray:
    """Unit vector of a mirrored abduction angle; side -1 = person's right (image left)."""
    return np.array([side * math.sin(angle), math.cos(angle)])


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return points @ rot.T


def _reach(shoulder: np.ndarray, target: np.ndarray, upper: float, lower: float,
           hint: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two-link IK: elbow and wrist for a hand target; an unreachable target straightens the arm."""
    delta = target - shoulder
    dist = float(np.hypot(*delta))
    unit = delta / dist if dist > 1e-6 else np.array([0.0, 1.0])
    dist = min(max(dist, abs(upper - lower) + 1e-3), upper + lower - 1e-4)
    cos_a = (upper ** 2 + dist ** 2 - lower ** 2) / (2.0 * upper * dist)
    ang = math.acos(min(1.0, max(-1.0, cos_a)))
    perp = np.array([-unit[1], unit[0]])
    candidates = [shoulder + upper * (unit * math.cos(ang) + sgn * perp * math.sin(ang))
                  for sgn in (1.0, -1.0)]
    # Of the two mirror-image elbow solutions take the one bending the natural way.
    elbow = max(candidates, key=lambda e: float(np.dot(e - shoulder, hint)))
    return elbow, shoulder + unit * dist


def posture_to_joints(posture: Posture, body: BodyShape) -> np.ndarray:
    """(18, 2) joint positions in body units, feet on the ground (y = 0) unless airborne."""
    p = posture
    joints = np.zeros((NUM_JOINTS, 2))
    torso = body.torso * p.torso_scale
    # Upper body in an upright frame with the hip centre at the origin; leaned afterwards.
    upper = {
        "Thorax": np.array([0.0, -torso]),
        "R_Shoulder": np.array([-body.shoulder, -torso + 0.01]),
        "L_Shoulder": np.array([body.shoulder, -torso + 0.01]),
    }
    nose = upper["Thorax"] + np.array([0.0, -body.neck])
    upper["Nose"] = nose
    upper["R_Eye"] = nose + np.array([-0.022, -0.02])
    upper["L_Eye"] = nose + np.array([0.022, -0.02])
    upper["R_Ear"] = nose + np.array([-0.045, -0.005])
    upper["L_Ear"] = nose + np.array([0.045, -0.005])
    for side, tag, sh_ang, el_ang, hand in (
            (-1.0, "R", p.r_shoulder, p.r_elbow, p.r_hand),
            (1.0, "L", p.l_shoulder, p.l_elbow, p.l_hand)):
        shoulder = upper[f"{tag}_Shoulder"]
        if hand is not None:
            hint = np.array([side * p.elbow_hint[0], p.elbow_hint[1]])
            elbow, wrist = _reach(shoulder, np.asarray(hand, dtype=float), body.upper_arm,
                                  body.forearm, hint)
        else:
            elbow = shoulder + body.upper_arm * _direction(sh_ang, side)
            wrist = elbow + body.forearm * _direction(sh_ang + el_ang, side)
        upper[f"{tag}_Elbow"] = elbow
        upper[f"{tag}_Wrist"] = wrist
    names = list(upper)
    leaned = _rotate(np.stack([upper[n] for n in names]), p.lean)
    for name, xy in zip(names, leaned):
        joints[J[name]] = xy
    # Legs hang from the (unleaned) pelvis.
    for side, tag, hip_ang, knee_ang, scale in (
            (-1.0, "R", p.r_hip, p.r_knee, p.r_thigh_scale),
            (1.0, "L", p.l_hip, p.l_knee, p.l_thigh_scale)):
        hip = np.array([side * body.hip, 0.0])
        knee = hip + body.thigh * scale * _direction(hip_ang, side)
        ankle = knee + body.shin * _direction(hip_ang + knee_ang, side)
        joints[J[f"{tag}_Hip"]] = hip
        joints[J[f"{tag}_Knee"]] = knee
        joints[J[f"{tag}_Ankle"]] = ankle
    # Stand the lower foot on the ground, then lift the whole body for jumps.
    ground = max(joints[J["R_Ankle"], 1], joints[J["L_Ankle"], 1])
    joints[:, 1] -= ground + p.airborne
    return joints


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Left-right mirror about x = 0 with the joint labels swapped (anatomy stays consistent)."""
    out = joints.copy()
    out[:, 0] *= -1.0
    for a, b in OPENPOSE_18.flip_pairs:
        out[[a, b]] = out[[b, a]]
    return out


# ----------------------------------------------------------------------------------------------
# The motions. `u` is the cycle position; `s = sin(2 pi u)` oscillates once per cycle.
# ----------------------------------------------------------------------------------------------

def _wave(u: float, amp: float, body: BodyShape) -> Posture:
    """Right forearm raised above the shoulder, swaying from side to side."""
    s = math.sin(2 * math.pi * u)
    upper = 2.2
    forearm = math.pi - 0.1 + 0.6 * amp * s
    return Posture(lean=0.03 * s, r_shoulder=upper, r_elbow=forearm - upper,
                   l_shoulder=0.15, l_elbow=0.1)


def _jump(u: float, amp: float, body: BodyShape) -> Posture:
    """Crouch, then jump with the arms thrown up and the legs apart."""
    s = math.sin(2 * math.pi * u)
    air, crouch = max(0.0, s), max(0.0, -s)
    arms = min(2.9, 0.3 + 2.4 * air * amp)
    legs = 0.06 + 0.25 * air * amp
    return Posture(r_shoulder=arms, r_elbow=0.2, l_shoulder=arms, l_elbow=0.2,
                   r_hip=legs + 0.1 * crouch, l_hip=legs + 0.1 * crouch,
                   r_knee=-0.1 * crouch, l_knee=-0.1 * crouch,
                   r_thigh_scale=1.0 - 0.3 * crouch, l_thigh_scale=1.0 - 0.3 * crouch,
                   airborne=0.17 * air * amp)


def _squat(u: float, amp: float, body: BodyShape) -> Posture:
    """Knees out and hips down (thighs towards the camera), hands clasped in front of the chest.

    The clasped hands keep every frame of a squat apart from a kick, whose arms are held out to
    the sides: with the arms out too (data format v2) a pose network trained for a few epochs
    mistook most squats for kicks.
    """
    depth = min(1.1, (0.5 - 0.5 * math.cos(2 * math.pi * u)) * amp)
    hip = 0.08 + 0.55 * depth
    hands_y = -0.2 - 0.03 * depth
    # The knee angle keeps the shin about vertical while the thigh splays out.
    return Posture(r_hand=(-0.03, hands_y), l_hand=(0.03, hands_y), elbow_hint=(1.0, 0.3),
                   r_hip=hip, l_hip=hip, r_knee=0.05 - hip, l_knee=0.05 - hip,
                   r_thigh_scale=1.0 - 0.55 * depth, l_thigh_scale=1.0 - 0.55 * depth)


def _lift(u: float, amp: float, body: BodyShape) -> Posture:
    """Both hands from the belly to above the head and back (a press), elbows out."""
    rise = (0.5 - 0.5 * math.cos(2 * math.pi * u)) * min(amp, 1.1)
    y = -0.12 - 0.45 * rise
    return Posture(r_hand=(-0.11, y), l_hand=(0.11, y), elbow_hint=(1.0, 0.4),
                   r_hip=0.1, l_hip=0.1)


def _swing(u: float, amp: float, body: BodyShape) -> Posture:
    """Two-handed side swing: the joined hands sweep from high on one side to low on the other."""
    theta = 1.25 * min(amp, 1.1) * math.sin(2 * math.pi * u)
    st = math.sin(theta)
    grip = (0.30 * st, -0.12 - 0.12 * st)
    return Posture(lean=0.12 * st, r_hand=(grip[0], grip[1] + 0.015),
                   l_hand=(grip[0], grip[1] - 0.015), elbow_hint=(0.0, 1.0),
                   r_hip=0.2, l_hip=0.2, r_knee=-0.1, l_knee=-0.1)


def _kick(u: float, amp: float, body: BodyShape) -> Posture:
    """Right leg drawn back (knee bent) then kicked high, body leaning away, arms out."""
    s = math.sin(2 * math.pi * u)
    kick, windup = max(0.0, s), max(0.0, -s)
    return Posture(lean=0.2 * kick, r_shoulder=0.6 + 0.4 * kick, r_elbow=0.3,
                   l_shoulder=0.6 + 0.4 * kick, l_elbow=0.3,
                   r_hip=0.1 + 1.25 * kick * amp + 0.25 * windup,
                   r_knee=-0.15 * kick - 1.3 * windup, l_hip=0.06)


def _punch(u: float, amp: float, body: BodyShape) -> Posture:
    """Boxing: fists at the face, the right then the left arm shooting out sideways."""
    s = math.sin(2 * math.pi * u)
    right, left = max(0.0, s) * min(amp, 1.1), max(0.0, -s) * min(amp, 1.1)
    guard_sh, guard_el, out_sh = 0.35, 2.3, math.pi / 2
    return Posture(r_shoulder=guard_sh + (out_sh - guard_sh) * right,
                   r_elbow=guard_el * (1.0 - right),
                   l_shoulder=guard_sh + (out_sh - guard_sh) * left,
                   l_elbow=guard_el * (1.0 - left), r_hip=0.15, l_hip=0.15)


def _clap(u: float, amp: float, body: BodyShape) -> Posture:
    """Hands in front of the chest meeting and parting."""
    gap = 0.015 + 0.16 * amp * (0.5 + 0.5 * math.cos(2 * math.pi * u))
    return Posture(r_hand=(-gap, -0.24), l_hand=(gap, -0.24), elbow_hint=(1.0, 0.6))


def _arm_circles(u: float, amp: float, body: BodyShape) -> Posture:
    """Both arms held out, the hands drawing small circles."""
    c, s = math.cos(2 * math.pi * u), math.sin(2 * math.pi * u)
    r = 0.09 * amp
    y = -body.torso + 0.01 + r * s
    reach = body.shoulder + 0.22
    return Posture(r_hand=(-(reach + r * c), y), l_hand=(reach + r * c, y),
                   elbow_hint=(0.0, 1.0))


def _bow(u: float, amp: float, body: BodyShape) -> Posture:
    """Bending forward towards the camera: the torso foreshortens, the head drops."""
    depth = min(1.0, (0.5 - 0.5 * math.cos(2 * math.pi * u)) * amp)
    return Posture(torso_scale=1.0 - 0.45 * depth, r_shoulder=0.1 + 0.2 * depth,
                   l_shoulder=0.1 + 0.2 * depth)


def _idle(u: float, amp: float, body: BodyShape) -> Posture:
    """A bystander: standing, arms hanging, a slight sway."""
    s = math.sin(2 * math.pi * u)
    return Posture(lean=0.04 * s, r_shoulder=0.15 + 0.03 * s, l_shoulder=0.15 - 0.03 * s)


MotionFn = Callable[[float, float, BodyShape], Posture]

MOTIONS: Dict[str, MotionFn] = {
    "wave": _wave,
    "jump": _jump,
    "squat": _squat,
    "lift": _lift,
    "swing": _swing,
    "kick": _kick,
    "punch": _punch,
    "clap": _clap,
    "arm_circles": _arm_circles,
    "bow": _bow,
    "idle": _idle,
}


def action_pose(motion: str, frame: float, params: MotionParams, body: BodyShape) -> np.ndarray:
    """(18, 2) joints in body units of `motion` at `frame` (0-based) of a video."""
    posture = MOTIONS[motion](params.cycle(frame), params.amplitude, body)
    joints = posture_to_joints(posture, body)
    return mirror_joints(joints) if params.mirror else joints


def idle_params(rng: np.random.Generator) -> MotionParams:
    """A slow sway for bystanders (periods well above the action periods)."""
    return replace(MotionParams.random(rng, 30.0, 50.0), amplitude=1.0)
