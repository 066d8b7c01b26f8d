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
from common.stages import MERGE_SOURCES, STREAM_MODULES

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


