"""Where a training run starts: its first epoch, the snapshot it loads, its seed, and the
states it restores from that snapshot (weights, optimizer, gradient scaler, random generators).

Nothing here reads the command line or the data; `main/train.py` hands in the config.
"""
from __future__ import annotations

import logging
import os
import random
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch
from torch import nn

from common.runtime.distributed import DistInfo, broadcast_object
from common.stages import STREAM_MODULES, Stage
from common.train.checkpoint import (CheckpointError, list_partial_snapshots, list_snapshots,
                                     load_network, load_snapshot, load_stage_heads, new_run_info,
                                     remove_partial_snapshots, snapshot_path)
from common.train.snapshot_stages import find_resume_snapshot, has_fusion_heads, snapshot_stage
from common.train.epoch import EpochProgress
from common.train.rng_state import restore_rng_state

logger = logging.getLogger("integral_action.train")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class StartPoint:
    """Where a run starts: its first epoch, the snapshot it loads (if any) and its identity.

    Attributes:
        epoch: the first epoch to train.
        path, snap: the snapshot the run starts from (None: ImageNet/random initialisation).
        merged: `snap` is the merge tool's output (only the streams are loaded).
        run: the run's identity (`new_run_info`), kept when a run is resumed.
        progress: how far the epoch of a mid-epoch snapshot (`--save_every`) had gone.
    """

    def __init__(self, epoch: int, path: Optional[str] = None,
                 snap: Optional[Dict[str, Any]] = None, run: Optional[Mapping[str, Any]] = None
                 ) -> None:
        self.epoch = epoch
        self.path = path
        self.snap = snap
        self.merged = bool(snap is not None and (snap.get("merged")
                                                 or not has_fusion_heads(snap["network"])))
        self.run = dict(run) if run else new_run_info()
        self.progress = EpochProgress.from_state(snap.get("progress") if snap else None)

    @property
    def resumed(self) -> bool:
        """The run continues a snapshot of its own stage (not a fresh or merged start)."""
        return self.snap is not None and not self.merged


def find_start(cfg: Any, stage: Stage) -> StartPoint:
    """Decide where training starts, before anything heavy is built.

    Single-stream stages start from ImageNet weights unless --continue. rgb+pose always starts
    from a snapshot: the merged `snapshot_0` (or `init_snapshot`), or with --continue the most
    recent run of the stage (`find_resume_snapshot`; the merged snapshot counts as one).
    """
    if cfg.continue_train:
        return _resume_start(cfg, stage)
    if stage.starts_from_merge:
        path = cfg.init_snapshot or snapshot_path(cfg.model_dir, 0)
        if not os.path.isfile(path):
            raise CheckpointError(
                f"rgb+pose starts from the merged snapshot {path}, which does not exist. Train "
                "rgb_only and pose_only, then run tool/merge_rgb_only_pose_only.py.")
        snap = load_snapshot(path)
        _check_snapshot_stage(path, snap, stage)
        return StartPoint(int(snap.get("epoch", 0)) + 1, path, snap)
    return StartPoint(0)


def _check_snapshot_stage(path: str, snap: Mapping[str, Any], stage: Stage) -> None:
    if snapshot_stage(snap) not in (stage.name, None):
        raise CheckpointError(f"{path} is a '{snapshot_stage(snap)}' snapshot, not '{stage.name}'")


def _resume_start(cfg: Any, stage: Stage) -> StartPoint:
    """The start of a `--continue` run: the last snapshot of the stage's most recent run."""
    found = find_resume_snapshot(cfg.model_dir, stage.name)
    if found is None:
        others = [f"snapshot_{e} ({snapshot_stage(load_snapshot(p, mmap=True)) or 'unknown'})"
                  for e, p in list_snapshots(cfg.model_dir)][:6]
        hint = f"; it holds {', '.join(others)}" if others else " (it holds no snapshot)"
        raise CheckpointError(f"--continue: no snapshot of stage '{stage.name}' in "
                              f"{cfg.model_dir}{hint}. Start the stage without --continue")
    path, snap = found
    _check_snapshot_stage(path, snap, stage)
    # An epoch's snapshot resumes with the next epoch; a mid-epoch one within its epoch.
    partial = bool(snap.get("progress"))
    start = StartPoint(int(snap.get("epoch", 0)) + (0 if partial else 1), path, snap)
    if not start.merged and snap.get("run"):
        start.run = dict(snap["run"])  # the resumed run keeps its identity
    return start


def check_no_overwrite(cfg: Any, stage: Stage, start: StartPoint) -> None:
    """Refuse to write over snapshots that this run did not write (unless --overwrite).

    The epochs this run will save are `start.epoch .. end_epoch - 1`; a snapshot already there
    belongs to another run (a resumed run's own snapshots all lie before `start.epoch`).
    """
    files = list_snapshots(cfg.model_dir)
    if not start.resumed:
        # A mid-epoch snapshot is an interrupted run's too (a resumed run replaces its own).
        files += [(e, p) for e, _, p in list_partial_snapshots(cfg.model_dir)]
    taken = [(e, p) for e, p in sorted(files) if start.epoch <= e < cfg.end_epoch]
    if not taken or cfg.overwrite:
        if taken:
            logger.warning("--overwrite: snapshot_%d..%d in %s will be replaced by this run",
                           taken[0][0], taken[-1][0], cfg.model_dir)
        if taken and not start.resumed:
            remove_partial_snapshots(cfg.model_dir, before=(cfg.end_epoch, 0))
        return
    stages = sorted({str(snapshot_stage(load_snapshot(p, mmap=True))) for _, p in taken})
    first, last = taken[0][0], taken[-1][0]
    what = f"snapshot_{first}" if first == last else f"snapshot_{first}..snapshot_{last}"
    how = ("add --continue to resume the run that wrote them" if not cfg.continue_train
           else "they belong to another run")
    raise CheckpointError(
        f"{cfg.model_dir} already holds {what} ({len(taken)} file(s), stage {'/'.join(stages)}), "
        f"which this {stage.name} run (epochs {start.epoch}..{cfg.end_epoch - 1}) would overwrite. "
        f"To keep them: {how}, or write this run elsewhere with --output_dir DIR (or "
        "--model_dir DIR). To replace them on purpose: add --overwrite")


def run_seed(cfg: Any, start: StartPoint, info: DistInfo) -> int:
    """The seed of the run: `--seed`, else the resumed run's own (so that an unseeded run still
    resumes exactly), else a fresh random one that every rank shares."""
    if cfg.seed is not None:
        return int(cfg.seed)
    if start.resumed and start.snap.get("seed") is not None:
        return int(start.snap["seed"])
    return int(broadcast_object(random.SystemRandom().randrange(2**31), info))


def restore_state(model: nn.Module, cfg: Any, start: StartPoint) -> Optional[Dict[str, Any]]:
    """Load the start snapshot into the model; returns the optimizer state to restore or None.

    A merged snapshot carries only the two streams (and the stages' classifiers for
    `stream_agreement`); the aggregator and classifier keep their fresh initialisation, and the
    optimizer starts afresh.
    """
    if start.snap is None:
        return None
    if start.merged:
        load_network(model, start.snap["network"], modules=STREAM_MODULES)
        if cfg.stream_agreement:
            load_stage_heads(model, start.snap["network"], start.path)
        logger.info("rgb+pose starts from merged snapshot %s (streams loaded; aggregator and "
                    "classifier freshly initialised)", start.path)
        return None
    load_network(model, start.snap["network"])
    where = (f"epoch {start.epoch} after {start.progress.iteration} iterations"
             if start.progress.iteration else f"epoch {start.epoch}")
    logger.info("resuming from %s (epoch %d): training continues at %s", start.path,
                start.snap["epoch"], where)
    return start.snap.get("optimizer") or None


def restore_run_state(start: StartPoint, scaler: torch.amp.GradScaler,
                      generator: torch.Generator, info: DistInfo) -> None:
    """The gradient scaler and this rank's random generators, as the snapshot saved them."""
    snap = start.snap
    if snap.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(snap["scaler"])
    states = snap.get("rng")
    if not states:
        logger.warning("%s holds no random generator states (an older or the authors' "
                       "snapshot): the run continues, but not bit for bit as it would have",
                       start.path)
        return
    if len(states) != info.world_size:
        logger.warning("%s was written by %d process(es), this run has %d: the data order and "
                       "augmentation continue exactly, dropout and context augmentation draw "
                       "new random numbers", start.path, len(states), info.world_size)
        return
    restore_rng_state(states[info.rank], generator)
    logger.info("random generator states restored")
