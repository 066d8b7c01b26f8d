"""What the synthetic data set holds: its classes (a motion, a held object and a scene each),
its parameters and the per-video plan (label, scene, motion, the actor's body and placement).

Every video is a pure function of (seed, split, class, slot): `video_rng` gives each its own
random stream, so the plans do not depend on the order they are made in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from tool.synthetic.actions import BodyShape, MotionParams
from tool.synthetic.scenes import SCENES

FORMAT_VERSION = 5  # bump when the generated content changes, so old sets get rebuilt


@dataclass(frozen=True)
class ActionClass:
    """A class = a motion + the object held while doing it + the scene it usually happens in."""

    name: str
    motion: str
    held_prop: Optional[str]
    scene: str


# The first 8 are the default set. Two pairs share a motion and differ only by held object and
# scene (swing_racket/swing_bat, lift_dumbbell/lift_box), so pose alone cannot separate them.
# The pairs sit at 0/1 and 4/5 so that smaller sets (e.g. 4 classes) still mix both kinds.
CLASSES: Tuple[ActionClass, ...] = (
    ActionClass("swing_racket", "swing", "racket", "tennis_court"),
    ActionClass("swing_bat", "swing", "bat", "baseball_field"),
    ActionClass("wave", "wave", None, "beach"),
    ActionClass("jump", "jump", None, "snow"),
    ActionClass("lift_dumbbell", "lift", "dumbbells", "gym"),
    ActionClass("lift_box", "lift", "box", "warehouse"),
    ActionClass("squat", "squat", None, "living_room"),
    ActionClass("kick_ball", "kick", "ball", "soccer_field"),
    ActionClass("punch", "punch", "gloves", "boxing_ring"),
    ActionClass("clap", "clap", None, "stage"),
    ActionClass("arm_circles", "arm_circles", None, "street"),
    ActionClass("bow", "bow", None, "pool"),
)
assert all(c.scene in SCENES for c in CLASSES)

# Part of every video's random-seed key. 'val' and 'mimetics' are the in-context and
# out-of-context test splits; 'valid_in' and 'valid_out' their validation twins (other videos,
# other random streams, the same generator), on which recipes are chosen.
SPLIT_IDS = {"train": 0, "val": 1, "mimetics": 2, "valid_in": 3, "valid_out": 4}
OUT_OF_CONTEXT_SPLITS = ("mimetics", "valid_out")  # the scene names another motion

# The validation splits hold this many times the test splits' videos by default: a recipe is
# chosen on differences of a point or two between stages, which with as few videos as the test
# splits (120 in the quickstart) are one or two videos, so the choice followed chance.
VALID_PER_TEST = 4

BYSTANDER_PROB = 0.25  # videos with a second, idle person


@dataclass(frozen=True)
class GenParams:
    """Everything that determines the output bytes (saved as the completion marker)."""

    seed: int
    num_classes: int
    train_per_class: int
    test_per_class: int
    valid_per_class: int
    frames: int
    height: int
    width: int
    subset: str
    jpeg_quality: int
    version: int = FORMAT_VERSION


@dataclass(frozen=True)
class VideoPlan:
    """The per-video choices (label, scene, motion, the actor's body and placement) that the
    summary exposes; colours, textures and detector noise are drawn while rendering."""

    split: str  # one of SPLIT_IDS
    number: int  # 1-based, unique over the data set: image id and name
    label: int
    slot: int  # index of the video within its class and split
    scene: int  # index of the class whose scene is drawn (== label unless out of context)
    held_prop: Optional[str]
    motion: str
    motion_params: MotionParams
    bystander: bool
    clip_start: int  # seconds, only for the Kinetics-style train file-name suffix
    body: BodyShape  # the actor's proportions
    actor_x: float  # pixel x of the point between the actor's feet
    actor_ground: float  # pixel y of the ground under the actor
    actor_scale: float  # pixels per body unit

    @property
    def name(self) -> str:
        return f"synth{self.number:05d}"

    @property
    def file_name(self) -> str:
        # The Kinetics release names train clips `<id>_<start>_<end>`; its pose labels use `<id>`.
        if self.split == "train":
            return f"{self.name}_{self.clip_start:06d}_{self.clip_start + 10:06d}"
        return self.name


def video_rng(params: GenParams, split: str, label: int, slot: int, *extra: int
              ) -> np.random.Generator:
    """An independent stream per video: the same video whatever the order of generation."""
    return np.random.default_rng([params.seed, SPLIT_IDS[split], label, slot, *extra])


def plan_split(params: GenParams, split: str, first_number: int, per_class: int) -> List[VideoPlan]:
    """Plans of one split, class-major, `per_class` videos per class; numbers start at
    `first_number`."""
    plans = []
    for label in range(params.num_classes):
        cls = CLASSES[label]
        for slot in range(per_class):
            rng = video_rng(params, split, label, slot)
            motion_params = MotionParams.random(rng)
            bystander = bool(rng.random() < BYSTANDER_PROB)
            clip_start = int(rng.integers(0, 300))
            body = BodyShape.random(rng)
            # The whole actor fits the test-time centre crop (about the central 86 % of the
            # height and 64 % of the width at the quickstart's shapes): with the feet lower
            # down, the centre crop cut the ankles and knees off in most videos, and the
            # motions that live in the legs (jump, squat, kick) became guesswork for pose.
            actor_x = params.width * float(rng.uniform(0.38, 0.62))
            actor_ground = params.height * float(rng.uniform(0.80, 0.88))
            actor_scale = params.height * float(rng.uniform(0.52, 0.64))
            out_of_context = split in OUT_OF_CONTEXT_SPLITS
            scene = label
            if out_of_context:
                # Out of context: nothing in the hands (miming), and the scene of a class with
                # another motion, so that the scene contradicts what the body does. (The scene
                # of the class sharing the motion, e.g. a tennis court for a mimed bat swing, is
                # what that class looks like without its object: a pair confusion, not a
                # misleading context, and pose cannot settle it either.)
                others = [c for c in range(params.num_classes) if c != label]
                contrary = [c for c in others if CLASSES[c].motion != cls.motion] or others
                scene = contrary[int(rng.integers(0, len(contrary)))]
            plans.append(VideoPlan(
                split=split, number=first_number + label * per_class + slot, label=label,
                slot=slot, scene=scene, held_prop=None if out_of_context else cls.held_prop,
                motion=cls.motion, motion_params=motion_params, bystander=bystander,
                clip_start=clip_start, body=body, actor_x=actor_x, actor_ground=actor_ground,
                actor_scale=actor_scale))
    return plans


def plan_dataset(params: GenParams) -> Dict[str, List[VideoPlan]]:
    """Plans of the five splits; image ids/names run on from train to val to mimetics, then to
    the validation splits (so adding these left the first three splits' videos unchanged)."""
    n_train = params.num_classes * params.train_per_class
    n_test = params.num_classes * params.test_per_class
    n_valid = params.num_classes * params.valid_per_class
    return {
        "train": plan_split(params, "train", 1, params.train_per_class),
        "val": plan_split(params, "val", 1 + n_train, params.test_per_class),
        "mimetics": plan_split(params, "mimetics", 1 + n_train + n_test, params.test_per_class),
        "valid_in": plan_split(params, "valid_in", 1 + n_train + 2 * n_test,
                               params.valid_per_class),
        "valid_out": plan_split(params, "valid_out", 1 + n_train + 2 * n_test + n_valid,
                                params.valid_per_class),
    }
