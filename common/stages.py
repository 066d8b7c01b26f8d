"""The three training stages as one table of facts.

What a stage trains, what it needs from the data, where it starts, its default learning rate and
what the merge tool takes from its snapshot are stated here once; the model, the loaders, the
config, resume, merge and test look them up instead of comparing mode strings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from common.errors import UsageError

# Every snapshot holds these five parts, whatever its stage (as the authors' checkpoints do).
MODULE_NAMES = ("img_backbone", "pose_backbone", "pose2feat", "aggregator", "classifier")


@dataclass(frozen=True)
class Stage:
    """One training stage.

    Attributes:
        name: the `--mode` value.
        trains: the top-level modules whose parameters the stage optimises.
        needs_video: the stage reads the RGB frames.
        needs_pose: the stage renders pose maps (runs the pose stream).
        default_lr: the learning rate when `--lr` is not given (the paper's).
        feature: what the classifier sees: 'img' (the RGB stream's width), 'pose' (the pose
            stream's) or 'fusion' (the aggregator's output).
        starts_from_merge: training starts from the merge tool's snapshot (epoch 0) rather
            than from ImageNet weights.
        merge_provides: the modules the merge tool takes from this stage's snapshot.
        agreement_head: the name under which the merge tool keeps this stage's classifier
            (`aggregator.agreement.<name>`, for `--stream_agreement`); None if it keeps none.
    """

    name: str
    trains: Tuple[str, ...]
    needs_video: bool
    needs_pose: bool
    default_lr: float
    feature: str
    starts_from_merge: bool = False
    merge_provides: Tuple[str, ...] = ()
    agreement_head: Optional[str] = None

    @property
    def frozen(self) -> Tuple[str, ...]:
        """The modules the stage keeps as loaded (the complement of `trains`)."""
        return tuple(m for m in MODULE_NAMES if m not in self.trains)

    @property
    def slug(self) -> str:
        """The name as a file-name part ('rgb+pose' -> 'rgb_pose')."""
        return self.name.replace("+", "_")


RGB_ONLY = Stage("rgb_only", trains=("img_backbone", "classifier"), needs_video=True,
                 needs_pose=False, default_lr=5e-3, feature="img",
                 merge_provides=("img_backbone",), agreement_head="img_fc")
POSE_ONLY = Stage("pose_only", trains=("pose2feat", "pose_backbone", "classifier"),
                  needs_video=False, needs_pose=True, default_lr=5e-3, feature="pose",
                  merge_provides=("pose_backbone", "pose2feat"), agreement_head="pose_fc")
RGB_POSE = Stage("rgb+pose", trains=("aggregator", "classifier"), needs_video=True,
                 needs_pose=True, default_lr=5e-4, feature="fusion", starts_from_merge=True)

STAGES: Dict[str, Stage] = {s.name: s for s in (RGB_ONLY, POSE_ONLY, RGB_POSE)}
MODES: Tuple[str, ...] = tuple(STAGES)
# The single-stream stages whose snapshots the merge tool combines, in merge order.
MERGE_SOURCES: Tuple[Stage, ...] = tuple(s for s in STAGES.values() if s.merge_provides)
# The modules the merge tool writes: the two streams.
STREAM_MODULES: Tuple[str, ...] = tuple(m for s in MERGE_SOURCES for m in s.merge_provides)


def get_stage(mode: str) -> Stage:
    """The stage called `mode`; a `UsageError` naming the known ones otherwise."""
    try:
        return STAGES[mode]
    except KeyError:
        raise UsageError(f"unknown mode {mode!r}; the stages are {', '.join(MODES)}") from None
