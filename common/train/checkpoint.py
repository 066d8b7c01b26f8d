"""Snapshots in the authors' format, loaded safely and strictly.

A snapshot is `{'epoch': int, 'network': state_dict, 'optimizer': state_dict}` with every network
key prefixed by `module.` (the original saved a DataParallel wrapper), so files move freely
between this project and the authors' code. This project adds three keys the original ignores:
`mode` (the training stage), `merged` (True for the merge tool's output) and `config`.

Loading always uses `torch.load(..., weights_only=True)` (a checkpoint from the internet cannot run
code) with `map_location`, and is strict: a missing or unexpected key is an error, never a
silently random layer.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import re
import socket
import time
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from common.errors import CheckpointError
from common.io.atomic_file import atomic_write
from common.io.run_lock import write_failure
from common.stages import MERGE_SOURCES, RGB_ONLY, RGB_POSE, STREAM_MODULES

__all__ = ["CheckpointError", "STREAM_MODULES"]  # re-exported for the entry points

logger = logging.getLogger("integral_action.checkpoint")

PREFIX = "module."
SNAPSHOT_RE = re.compile(r"^snapshot_(\d+)\.pth\.tar$")
# Mid-epoch snapshots (`--save_every`): `.pth`, not `.pth.tar`, so that the authors' code, which
# globs `*.pth.tar` and reads an epoch number from each name, never sees them.
PARTIAL_RE = re.compile(r"^snapshot_(\d+)_iter(\d+)\.pth$")
# The merge tool also keeps each stage's classifier here, for `--stream_agreement`.
AGREEMENT_PREFIX = "aggregator.agreement."
# Temporary files of `atomic_save`: `.tmp_<host>_<pid>_<random>.pth.tar`, so that a later run can
# tell the leftovers of a dead process from the file another live process is writing.
TMP_PREFIX = ".tmp_"
# The host part has no '_' (`_tmp_name_prefix` replaces it); the random part may have one.
TMP_RE = re.compile(r"^\.tmp_(?P<host>[^_]+)_(?P<pid>\d+)_.+\.pth\.tar$")
# A temporary of another machine (a shared file system) counts as stale after this long.
FOREIGN_TMP_STALE_S = 6 * 3600


def snapshot_path(model_dir: str, epoch: int) -> str:
    return osp.join(model_dir, f"snapshot_{epoch}.pth.tar")


def partial_snapshot_path(model_dir: str, epoch: int, iteration: int) -> str:
    """The mid-epoch snapshot of `epoch` after `iteration` batches."""
    return osp.join(model_dir, f"snapshot_{epoch}_iter{iteration}.pth")


def _numbered_files(model_dir: str, pattern: re.Pattern
                   ) -> List[Tuple[Tuple[int, ...], str]]:
    """(the numbers `pattern` captures, path) of each file of the folder whose name it matches,
    highest numbers first; none when the folder does not exist."""
    if not osp.isdir(model_dir):
        return []
    found = []
    for name in os.listdir(model_dir):
        match = pattern.match(name)
        if match:
            found.append((tuple(int(g) for g in match.groups()), osp.join(model_dir, name)))
    return sorted(found, reverse=True)


def list_partial_snapshots(model_dir: str) -> List[Tuple[int, int, str]]:
    """(epoch, iteration, path) of every mid-epoch snapshot in the folder, newest first."""
    return [(epoch, iteration, path)
            for (epoch, iteration), path in _numbered_files(model_dir, PARTIAL_RE)]


def remove_partial_snapshots(model_dir: str, *, before: Tuple[int, int]) -> List[str]:
    """Delete the mid-epoch snapshots older than position `before` = (epoch, iteration): a
    later snapshot of the run supersedes them. Returns the removed paths."""
    removed = []
    for epoch, iteration, path in list_partial_snapshots(model_dir):
        if (epoch, iteration) < tuple(before):
            os.remove(path)
            removed.append(path)
    return removed


def to_authors_layout(state: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Add the `module.` prefix (idempotent)."""
    return {k if k.startswith(PREFIX) else PREFIX + k: v for k, v in state.items()}


def from_authors_layout(state: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Drop the `module.` prefix (idempotent)."""
    return {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in state.items()}


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DataParallel / DistributedDataParallel."""
    return model.module if hasattr(model, "module") else model


def _plain(value: Any) -> Any:
    """Config values as plain Python containers (weights_only loading accepts only those)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _tmp_name_prefix() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
    return f"{TMP_PREFIX}{host}_{os.getpid()}_"


def atomic_save(obj: Dict[str, Any], path: str) -> None:
    """torch.save through `common.io.atomic_file.atomic_write`: a temporary file beside `path`,
    fsync, then a rename over it.

    A crash during the write leaves the previous file (or none) instead of a truncated one, and
    at worst a temporary (`.tmp_<host>_<pid>_<random>.pth.tar`) that `remove_stale_temporaries`
    recognises later. The file gets the permissions of an ordinary new file (0666 minus the
    umask), so that colleagues on a shared machine can read the snapshots.

    A write that fails for want of room or rights (ENOSPC, EFBIG, EDQUOT, EACCES, EROFS) raises
    `OutputError`, one line naming the file and the free space; the previous file is untouched.
    """
    try:
        with atomic_write(path, "wb", tmp_prefix=_tmp_name_prefix(), tmp_suffix=".pth.tar") as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as err:
        # torch.save's zip writer reports a failed write as a RuntimeError caused by the OSError.
        failure = write_failure(err, path)
        if failure is None:
            raise
        raise failure from None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder: str) -> List[str]:
    """Delete the temporaries that a killed `atomic_save` left in `folder`; returns their paths.

    A temporary is stale when the process that wrote it (same host) no longer runs, or, for one
    written on another host, when it is older than `FOREIGN_TMP_STALE_S`. Each removal is logged.
    """
    if not osp.isdir(folder):
        return []
    host = _tmp_name_prefix()[len(TMP_PREFIX):].split("_")[0]
    removed = []
    for name in sorted(os.listdir(folder)):
        match = TMP_RE.match(name)
        if not match:
            continue
        path = osp.join(folder, name)
        if match.group("host") == host:
            stale = not _process_alive(int(match.group("pid")))
        else:
            stale = time.time() - osp.getmtime(path) > FOREIGN_TMP_STALE_S
        if stale:
            size = osp.getsize(path)
            os.remove(path)
            removed.append(path)
            logger.warning("removed %s (%.1f MB), the unfinished save of an interrupted run",
                           path, size / 2**20)
    return removed


def new_run_info() -> Dict[str, Any]:
    """The identity of a training run, stored in each of its snapshots (see `find_resume_snapshot`)."""
    return {"id": uuid.uuid4().hex, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": socket.gethostname()}


def save_snapshot(path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer],
                  epoch: int, mode: str, *, config: Optional[Mapping[str, Any]] = None,
                  run: Optional[Mapping[str, Any]] = None,
                  extra: Optional[Mapping[str, Any]] = None) -> None:
    """Write a snapshot in the authors' layout plus `mode`, `merged`, `config`, the `run` that
    wrote it, `saved_at` (seconds since the epoch) and the entries of `extra` (train.py adds
    the random generators' states `rng`, the gradient scaler's `scaler`, the code's `git`
    revision and, in a mid-epoch snapshot, the epoch's `progress`)."""
    state = {**(extra or {}),
        "epoch": int(epoch),
        "network": to_authors_layout(unwrap(model).state_dict()),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "mode": mode,
        "merged": False,
        "config": _plain(config or {}),
        "run": _plain(run or {}),
        "saved_at": time.time(),
    }
    atomic_save(state, path)


def load_snapshot(path: str, map_location: Any = "cpu", mmap: bool = False) -> Dict[str, Any]:
    """Read a snapshot without executing anything in it (`mmap`: tensors are read lazily, for
    looking at many snapshots' metadata; files in the legacy format are read whole)."""
    if not osp.isfile(path):
        raise CheckpointError(f"snapshot not found: {path}")
    try:
        try:
            snap = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError as err:
            if not mmap or "mmap" not in str(err):
                raise
            snap = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read snapshot {path}: {type(err).__name__}: {err}") from err
    if not isinstance(snap, dict) or "network" not in snap:
        what = ("no 'network' entry" if isinstance(snap, dict) else
                f"it holds a {type(snap).__name__}")
        raise CheckpointError(f"{path} is not a snapshot ({what})")
    problem = _state_dict_problem(snap["network"])
    if problem:
        raise CheckpointError(f"{path} is not a snapshot: its 'network' entry is not a state "
                              f"dict ({problem})")
    return snap


def _state_dict_problem(network: Any) -> Optional[str]:
    """Why `network` is not a state dict (parameter name -> tensor), or None when it is: caught
    here, every reader of snapshots (test.py, the demo, the merge tool, --continue) gets one
    line naming the file rather than an error deep in `load_state_dict`."""
    if not isinstance(network, Mapping):
        return f"a {type(network).__name__}"
    for key, value in network.items():
        if not isinstance(key, str):
            return f"its key {key!r} is not a parameter name"
        if not isinstance(value, Tensor):
            return f"{key!r} holds a {type(value).__name__}, not a tensor"
    return None


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


def load_network(model: nn.Module, network: Mapping[str, Tensor],
                 modules: Optional[Iterable[str]] = None) -> None:
    """Load weights strictly, for the whole model or only the named top-level modules.

    Raises CheckpointError listing missing/unexpected/mis-shaped keys instead of leaving random
    weights behind.
    """
    bare = unwrap(model)
    state = from_authors_layout(network)
    own = bare.state_dict()
    if modules is not None:
        names = tuple(f"{m}." for m in modules)
        own = {k: v for k, v in own.items() if k.startswith(names)}
        state = {k: v for k, v in state.items() if k.startswith(names)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        lines = []
        if missing:
            lines.append(f"missing keys ({len(missing)}): {missing[:8]}")
        if unexpected:
            lines.append(f"unexpected keys ({len(unexpected)}): {unexpected[:8]}")
        if shapes:
            lines.append("shape mismatch: " + ", ".join(
                f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shapes[:8]))
        raise CheckpointError("snapshot does not fit the model: " + "; ".join(lines))
    if modules is None:
        bare.load_state_dict(state, strict=True)
    else:
        for name in modules:
            sub = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            getattr(bare, name).load_state_dict(sub, strict=True)


def load_stage_heads(model: nn.Module, network: Mapping[str, Tensor], path: str) -> None:
    """Load the stages' classifiers that a merged snapshot keeps into the model's
    `aggregator.agreement` (a model built with `stream_agreement`)."""
    agreement = unwrap(model).aggregator.agreement
    state = from_authors_layout(network)
    sub = {k[len(AGREEMENT_PREFIX):]: v for k, v in state.items() if k.startswith(AGREEMENT_PREFIX)}
    missing = sorted(set(agreement.state_dict()) - set(sub))
    if missing:
        stages = [s.name for s in MERGE_SOURCES if any(k.startswith(s.agreement_head) for k in missing)]
        raise CheckpointError(
            f"{path} lacks the {' and '.join(stages)} classifier(s) that --stream_agreement needs "
            f"({missing}); merge the stage snapshots again with tool/merge_rgb_only_pose_only.py")
    shapes = [k for k, v in agreement.state_dict().items() if v.shape != sub[k].shape]
    if shapes:
        raise CheckpointError(f"{path}: stage classifier shapes do not fit the model: "
                              + ", ".join(f"{k} {tuple(sub[k].shape)}" for k in shapes))
    agreement.load_state_dict(sub, strict=True)


def list_snapshots(model_dir: str) -> List[Tuple[int, str]]:
    """(epoch, path) of every `snapshot_N.pth.tar` in the folder, newest epoch first."""
    return [(epoch, path) for (epoch,), path in _numbered_files(model_dir, SNAPSHOT_RE)]


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
