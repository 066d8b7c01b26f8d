"""What a stage's folder already holds, and so what its next step has to do.

A stage is trained afresh, resumed (`--continue`) or left as it is from the snapshots in its
folder (`decide_train`); the merge is redone when its snapshot is missing or older than a stage
it was made from (`merge_reason`); a test is rerun unless its metrics file still holds for the
snapshot it tested (`recorded_test`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from common.errors import CheckpointError, UsageError
from common.io.logger import logger_level
from common.train.checkpoint import list_snapshots, load_snapshot, snapshot_path
from common.train.snapshot_stages import find_resume_snapshot
from main.config import FIELD_BY_NAME
from main.config_values import same_value, show_value
from tool.recipe.plan import StagePlan

# What a stage's snapshots must agree on with its recipe to be kept: how the network is built,
# fed and trained. (Not pose_fallback, a rule of evaluation that each test applies; not the
# fields of the run's start and length, which --continue may change.)
_KEPT_GROUPS = ("network", "input", "training")
_NOT_COMPARED = ("pose_fallback", "end_epoch", "pretrained", "init_snapshot")


@contextlib.contextmanager
def _checkpoint_log_muted() -> Iterator[None]:
    """Looking at a stage's snapshots is not part of any run: keep the checkpoint module's
    notes out of the log file of the run that happened to configure logging last."""
    with logger_level("integral_action.checkpoint", logging.WARNING):
        yield


def saved_at(path: str) -> Optional[float]:
    """When a snapshot was written: its own `saved_at` (kept when files are copied), else the
    file's modification time; None if there is no such file."""
    if not osp.isfile(path):
        return None
    try:
        value = load_snapshot(path, mmap=True).get("saved_at")
    except CheckpointError:
        value = None
    return float(value) if isinstance(value, (int, float)) else osp.getmtime(path)


@dataclass
class TrainStep:
    """What a train call of a stage will do.

    Attributes:
        action: 'fresh', 'restart', 'resume' or 'done'.
        flags: the flags it adds to train.py's command line (`--continue`, `--overwrite`).
        first_epoch: the first epoch it trains (for the progress line).
        note: why, when it is not obvious.
    """

    action: str
    flags: Tuple[str, ...] = ()
    first_epoch: int = 0
    note: str = ""


def _later_snapshots(plan: StagePlan, first: int) -> List[int]:
    """Epochs of snapshots that a run training `first..last` would write over."""
    return sorted(e for e, _ in list_snapshots(plan.cfg.model_dir) if first <= e <= plan.last_epoch)


def decide_train(plan: StagePlan, restart: bool, merged_now: bool) -> TrainStep:
    """How to call train.py for a stage, from its folder's snapshots.

    Args:
        restart: the stage starts over (`--overwrite`, no `--continue`).
        merged_now: rgb+pose: the merge has just (been planned to be) redone, so the stage starts
            from the new merged snapshot, replacing snapshots trained from an older one.
    """
    first = plan.first_epoch
    if restart:
        return TrainStep("restart", ("--overwrite",), first)
    if merged_now:
        flags = ("--overwrite",) if _later_snapshots(plan, first) else ()
        return TrainStep("fresh", flags, first, "from the new merged snapshot")
    with _checkpoint_log_muted():
        found = find_resume_snapshot(plan.cfg.model_dir, plan.name)
    if found is None:
        return TrainStep("fresh", (), first)
    path, snap = found
    epoch = int(snap.get("epoch", 0))
    if snap.get("merged"):
        # The newest rgb+pose "run" is the merge itself: train from it. Trained snapshots still
        # there come from an older merge, which this one replaced.
        flags = ("--overwrite",) if _later_snapshots(plan, first) else ()
        return TrainStep("fresh", flags, first, "from the merged snapshot")
    check_same_recipe(plan, snap, path)
    if path != snapshot_path(plan.cfg.model_dir, epoch):
        start = epoch  # a mid-epoch snapshot: train.py finishes that epoch
    else:
        start = epoch + 1
    if start > plan.last_epoch:
        return TrainStep("done", ("--continue",), start)
    # Snapshots at or after the resume point come from an earlier run that the resumed one
    # replaced (a restart that was interrupted): the resumed run writes over them.
    flags = ("--continue", "--overwrite") if _later_snapshots(plan, start) else ("--continue",)
    return TrainStep("resume", flags, start, f"from {osp.basename(path)}")


def check_same_recipe(plan: StagePlan, snap: Dict[str, Any], path: str) -> None:
    """Refuse to keep or resume a stage whose snapshot was trained by another recipe.

    Raises:
        UsageError: one line naming the snapshot, the first field that differs and both values.
    """
    saved = snap.get("config") or {}
    for name, value in saved.items():
        field = FIELD_BY_NAME.get(name)
        if field is None or field.group not in _KEPT_GROUPS or name in _NOT_COMPARED \
                or value is None or name not in plan.cfg:
            continue
        if not same_value(plan.cfg[name], value):
            raise UsageError(
                f"{path} was trained with {name} {show_value(value)}, the recipe asks for "
                f"{show_value(plan.cfg[name])}: start the stage over (--restart {plan.name}) or "
                "give it another folder")


def merge_reason(plan: StagePlan, sources: Sequence[StagePlan], restart: bool,
                 changed: Set[str]) -> Optional[str]:
    """Why the merge has to run for the fusion stage `plan`, or None when it is up to date."""
    if plan.cfg.init_snapshot:
        return None  # the user names the starting point; nothing to merge
    if restart:
        return "rgb+pose starts over"
    target = plan.merge_target()
    trained_fusion = False
    if not osp.isfile(target):
        with _checkpoint_log_muted():
            found = find_resume_snapshot(plan.cfg.model_dir, plan.name)
        # A stage trained from a merge that has since been deleted needs none.
        trained_fusion = found is not None and not found[1].get("merged")
        if not trained_fusion:
            return "no merged snapshot yet"
    redone = [s.name for s in sources if s.name in changed]
    if redone:
        return f"{' and '.join(redone)} trained now"
    if trained_fusion:
        return None
    with _checkpoint_log_muted():
        snap = load_snapshot(target, mmap=True)
    if not snap.get("merged"):
        return None
    when = saved_at(target) or 0.0
    newer = [s.name for s in sources if (saved_at(s.snapshot()) or 0.0) > when]
    if newer:
        return f"{' and '.join(newer)} newer than the merged snapshot"
    return None


def recorded_test(plan: StagePlan, dataset: str) -> Optional[Dict[str, Any]]:
    """The summary of an earlier test of this stage's last epoch on `dataset`, if it still holds:
    same mode, data set, subset and epoch, the same evaluation rule (`pose_fallback`), written
    after the snapshot it tested."""
    path = plan.metrics_path(dataset)
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or (summary.get("mode"), summary.get("dataset"),
                                         summary.get("epoch")) != (plan.name, dataset,
                                                                   plan.last_epoch):
        return None
    # A test by another rule of evaluation, or of another subset, is not this one's.
    if summary.get("subset", plan.cfg.subset) != plan.cfg.subset or \
            summary.get("pose_fallback", 0.0) != plan.cfg.pose_fallback:
        return None
    tested = saved_at(plan.snapshot())
    if tested is None or osp.getmtime(path) < tested:
        return None
    return summary
