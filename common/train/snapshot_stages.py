"""What stage a snapshot belongs to, and the snapshots that stages hand each other.

A snapshot records its stage in `mode`; the authors' files do not, so the stage is read off the
weights (`infer_stage`). The entry points refuse a snapshot of another stage (`check_stage`),
`--continue` finds the newest snapshot of the stage being run (`find_resume_snapshot`), and the
merge tool builds rgb+pose's starting point from the rgb_only and pose_only snapshots
(`merge_single_stream_snapshots`).
"""
from __future__ import annotations

import logging
import os.path as osp
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from common.errors import CheckpointError
from common.stages import MERGE_SOURCES, RGB_ONLY, RGB_POSE, STREAM_MODULES
from common.train.checkpoint import (AGREEMENT_PREFIX, _plain, from_authors_layout,
                                     list_partial_snapshots, list_snapshots, load_snapshot,
                                     new_run_info, to_authors_layout)

logger = logging.getLogger("integral_action.checkpoint")


def _at_init(tensor: Tensor, value: float) -> bool:
    return bool(torch.all(tensor == value))


def has_fusion_heads(network: Mapping[str, Tensor]) -> bool:
    """Whether a network holds a trained aggregator (the stage classifiers that a merged
    snapshot keeps under `aggregator.agreement.` do not count)."""
    return any(k.startswith("aggregator.") and not k.startswith(AGREEMENT_PREFIX)
               for k in from_authors_layout(network))


def infer_stage(network: Mapping[str, Tensor]) -> Optional[str]:
    """Best guess at the stage of a snapshot without a `mode` entry (the authors' files).

    rgb_only never runs the pose stream, so Pose2Feat's BatchNorm statistics stay at (0, 1);
    only rgb+pose trains the aggregator, so its LayerNorms move from (1, 0). Returns
    'rgb_only', 'rgb+pose', or None when the weights cannot tell (pose_only or merged).
    """
    net = from_authors_layout(network)
    if not any(k.startswith("pose2feat.") for k in net):
        return None
    if not has_fusion_heads(net):
        return RGB_POSE.name  # only the merge tool writes the streams without the heads
    mean = net.get("pose2feat.conv.1.running_mean")
    var = net.get("pose2feat.conv.1.running_var")
    if mean is not None and var is not None and _at_init(mean, 0.0) and _at_init(var, 1.0):
        return RGB_ONLY.name
    ln_w, ln_b = net.get("aggregator.img_norm.weight"), net.get("aggregator.img_norm.bias")
    if ln_w is not None and ln_b is not None and not (_at_init(ln_w, 1.0) and _at_init(ln_b, 0.0)):
        return RGB_POSE.name
    return None


def snapshot_stage(snap: Mapping[str, Any]) -> Optional[str]:
    """The stage a snapshot was trained in: its `mode` entry, else `infer_stage`."""
    mode = snap.get("mode")
    return mode if mode else infer_stage(snap["network"])


def check_stage(snap: Mapping[str, Any], mode: str, path: str) -> None:
    """Refuse a snapshot of another stage (the original silently gave wrong numbers)."""
    stage = snapshot_stage(snap)
    if stage is None:
        logger.warning("%s does not record its training stage; trusting --mode %s", path, mode)
        return
    if stage != mode:
        raise CheckpointError(
            f"{path} was trained in mode '{stage}' but --mode is '{mode}'. Test it with "
            f"--mode {stage}, or pick the snapshot of the '{mode}' stage.")


def classifier_class_count(snap: Mapping[str, Any], path: str) -> int:
    """The number of classes of a trained snapshot's classifier (what test.py and the demo
    build the network with).

    Raises:
        CheckpointError: the merge tool's output (its fusion heads are untrained), or a
            snapshot without classifier weights.
    """
    if snap.get("merged"):
        raise CheckpointError(f"{path} is the merge tool's output (untrained fusion heads); "
                              "train rgb+pose from it before using it")
    network = from_authors_layout(snap["network"])
    if "classifier.fc.0.weight" not in network:
        raise CheckpointError(f"{path} has no classifier weights")
    return int(network["classifier.fc.0.weight"].shape[0])


def _run_key(snap: Mapping[str, Any], path: str) -> Tuple[str, float]:
    """(run id, save time) of a snapshot; files without a run (the authors', older ones) form
    one run, `legacy`, dated by the file's modification time."""
    run = snap.get("run") or {}
    saved = snap.get("saved_at")
    return (str(run.get("id") or "legacy"),
            float(saved) if isinstance(saved, (int, float)) else osp.getmtime(path))


def find_resume_snapshot(model_dir: str, mode: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The snapshot `--continue` resumes: the last one of the most recent run of this stage.

    Among the snapshots of the stage (a merged snapshot counts as rgb+pose), the one saved last
    names the run that was interrupted; its highest epoch is where that run stopped. The
    original took the highest number in the folder, whichever stage or run wrote it: a leftover
    pose_only `snapshot_29` was resumed instead of the merged `snapshot_0`, and after a restart
    from epoch 0 a finished earlier run's `snapshot_29` instead of the new run's latest.
    """
    # Position in training of each file: (epoch, 1, 0) for an epoch's snapshot, which comes
    # after every mid-epoch one of the same epoch, (epoch, 0, iteration) for those.
    runs: Dict[str, List[Tuple[Tuple[int, int, int], float, str]]] = {}
    files = [(e, (e, 1, 0), p) for e, p in list_snapshots(model_dir)]
    files += [(e, (e, 0, i), p) for e, i, p in list_partial_snapshots(model_dir)]
    for epoch, position, path in files:
        try:
            snap = load_snapshot(path, mmap=True)
        except CheckpointError as err:
            logger.warning("skipping unreadable snapshot: %s", err)
            continue
        stage = snapshot_stage(snap)
        if not (stage == mode or (stage is None and not snap.get("merged") and mode != RGB_POSE.name)):
            logger.info("not resuming from %s (stage %s, this run is %s)", path, stage, mode)
            continue
        run_id, saved = _run_key(snap, path)
        runs.setdefault(run_id, []).append((position, saved, path))
    if not runs:
        return None
    latest = max(runs.values(), key=lambda items: max(saved for _, saved, _ in items))
    _, _, path = max(latest)
    if len(runs) > 1:
        logger.info("%d runs of stage %s in %s; resuming the most recent one", len(runs), mode,
                    model_dir)
    return path, load_snapshot(path)


def merge_single_stream_snapshots(rgb_snap: Mapping[str, Any], pose_snap: Mapping[str, Any],
                                  rgb_path: str = "rgb_only", pose_path: str = "pose_only"
                                  ) -> Dict[str, Any]:
    """The starting point of the rgb+pose stage: `img_backbone.*` from the rgb_only snapshot,
    `pose_backbone.*` and `pose2feat.*` from the pose_only one, epoch 0, rgb_only's optimizer
    entry carried along (as the original). The aggregator and classifier are left out: rgb+pose
    initialises them afresh. Each stage's own classifier is kept as
    `aggregator.agreement.{img_fc,pose_fc}.*` (what `--stream_agreement` needs; the paper's
    model does not load them)."""
    rgb_stage, pose_stage = MERGE_SOURCES
    sources = ((rgb_snap, rgb_stage, rgb_path), (pose_snap, pose_stage, pose_path))
    for snap, want, path in sources:
        stage = snapshot_stage(snap)
        if snap.get("merged") or (stage is not None and stage != want.name):
            raise CheckpointError(
                f"{path} is a '{'merged' if snap.get('merged') else stage}' snapshot; the merge "
                f"needs a '{want.name}' snapshot there")
    network: Dict[str, Tensor] = {}
    for snap, stage, _ in sources:
        net = from_authors_layout(snap["network"])
        network.update({k: v for k, v in net.items()
                        if k.startswith(tuple(m + "." for m in stage.merge_provides))})
        for param in ("weight", "bias"):
            key = f"classifier.fc.0.{param}"
            if key in net:
                network[f"{AGREEMENT_PREFIX}{stage.agreement_head}.{param}"] = net[key]
    for module in STREAM_MODULES:
        if not any(k.startswith(module + ".") for k in network):
            raise CheckpointError(f"merged snapshot would have no '{module}' weights")
    merged = {
        "epoch": 0,
        "network": to_authors_layout(network),
        "optimizer": rgb_snap.get("optimizer", {}),
        "mode": RGB_POSE.name,
        "merged": True,
        "config": _plain(rgb_snap.get("config", {})),
        "run": new_run_info(),
        "saved_at": time.time(),
    }
    return merged
