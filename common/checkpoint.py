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
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

logger = logging.getLogger("integral_action.checkpoint")

PREFIX = "module."
SNAPSHOT_RE = re.compile(r"^snapshot_(\d+)\.pth\.tar$")
STREAM_MODULES = ("img_backbone", "pose_backbone", "pose2feat")
RGB_MODULES = ("img_backbone",)
POSE_MODULES = ("pose_backbone", "pose2feat")
# The merge tool also keeps each stage's classifier here, for `--stream_agreement`.
AGREEMENT_PREFIX = "aggregator.agreement."
_STAGE_HEADS = (("img_fc", "rgb_only"), ("pose_fc", "pose_only"))


class CheckpointError(RuntimeError):
    """A snapshot that cannot be used the way it was asked to be used."""


def snapshot_path(model_dir: str, epoch: int) -> str:
    return osp.join(model_dir, f"snapshot_{epoch}.pth.tar")


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


def atomic_save(obj: Dict[str, Any], path: str) -> None:
    """torch.save to a temporary file beside `path`, fsync, then rename over it.

    A crash during the write leaves the previous file (or none) instead of a truncated one.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pth.tar", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def save_snapshot(path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer],
                  epoch: int, mode: str, config: Optional[Mapping[str, Any]] = None) -> None:
    state = {
        "epoch": int(epoch),
        "network": to_authors_layout(unwrap(model).state_dict()),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "mode": mode,
        "merged": False,
        "config": _plain(config or {}),
    }
    atomic_save(state, path)


def load_snapshot(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a snapshot without executing anything in it."""
    if not osp.isfile(path):
        raise CheckpointError(f"snapshot not found: {path}")
    try:
        snap = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read snapshot {path}: {type(err).__name__}: {err}") from err
    if not isinstance(snap, dict) or "network" not in snap:
        raise CheckpointError(f"{path} is not a snapshot (no 'network' entry)")
    return snap


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
        return "rgb+pose"  # only the merge tool writes the streams without the heads
    mean = net.get("pose2feat.conv.1.running_mean")
    var = net.get("pose2feat.conv.1.running_var")
    if mean is not None and var is not None and _at_init(mean, 0.0) and _at_init(var, 1.0):
        return "rgb_only"
    ln_w, ln_b = net.get("aggregator.img_norm.weight"), net.get("aggregator.img_norm.bias")
    if ln_w is not None and ln_b is not None and not (_at_init(ln_w, 1.0) and _at_init(ln_b, 0.0)):
        return "rgb+pose"
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
        stages = [stage for head, stage in _STAGE_HEADS if any(k.startswith(head) for k in missing)]
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
    if not osp.isdir(model_dir):
        return []
    found = []
    for name in os.listdir(model_dir):
        match = SNAPSHOT_RE.match(name)
        if match:
            found.append((int(match.group(1)), osp.join(model_dir, name)))
    return sorted(found, reverse=True)


def find_resume_snapshot(model_dir: str, mode: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The highest-numbered snapshot *of this stage* (a merged snapshot counts as rgb+pose).

    The original took the highest number regardless of stage, so a leftover pose_only
    `snapshot_29` was resumed instead of the merged `snapshot_0`.
    """
    for _, path in list_snapshots(model_dir):
        try:
            snap = load_snapshot(path)
        except CheckpointError as err:
            logger.warning("skipping unreadable snapshot: %s", err)
            continue
        stage = snapshot_stage(snap)
        if stage == mode or (stage is None and not snap.get("merged") and mode != "rgb+pose"):
            return path, snap
        logger.info("not resuming from %s (stage %s, this run is %s)", path, stage, mode)
    return None


def merge_single_stream_snapshots(rgb_snap: Mapping[str, Any], pose_snap: Mapping[str, Any],
                                  rgb_path: str = "rgb_only", pose_path: str = "pose_only"
                                  ) -> Dict[str, Any]:
    """The starting point of the rgb+pose stage: `img_backbone.*` from the rgb_only snapshot,
    `pose_backbone.*` and `pose2feat.*` from the pose_only one, epoch 0, rgb_only's optimizer
    entry carried along (as the original). The aggregator and classifier are left out: rgb+pose
    initialises them afresh. Each stage's own classifier is kept as
    `aggregator.agreement.{img_fc,pose_fc}.*` (what `--stream_agreement` needs; the paper's
    model does not load them)."""
    for snap, want, path in ((rgb_snap, "rgb_only", rgb_path), (pose_snap, "pose_only", pose_path)):
        stage = snapshot_stage(snap)
        if snap.get("merged") or (stage is not None and stage != want):
            raise CheckpointError(
                f"{path} is a '{'merged' if snap.get('merged') else stage}' snapshot; the merge "
                f"needs a '{want}' snapshot there")
    rgb_net = from_authors_layout(rgb_snap["network"])
    pose_net = from_authors_layout(pose_snap["network"])
    network = {k: v for k, v in rgb_net.items() if k.startswith(tuple(m + "." for m in RGB_MODULES))}
    network.update({k: v for k, v in pose_net.items()
                    if k.startswith(tuple(m + "." for m in POSE_MODULES))})
    for module in STREAM_MODULES:
        if not any(k.startswith(module + ".") for k in network):
            raise CheckpointError(f"merged snapshot would have no '{module}' weights")
    for (head, _), net in zip(_STAGE_HEADS, (rgb_net, pose_net)):
        for param in ("weight", "bias"):
            key = f"classifier.fc.0.{param}"
            if key in net:
                network[f"{AGREEMENT_PREFIX}{head}.{param}"] = net[key]
    merged = {
        "epoch": 0,
        "network": to_authors_layout(network),
        "optimizer": rgb_snap.get("optimizer", {}),
        "mode": "rgb+pose",
        "merged": True,
        "config": _plain(rgb_snap.get("config", {})),
    }
    return merged
