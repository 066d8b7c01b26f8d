"""A training step's pieces (optimizer, losses, step) and the evaluation loop.

The training epoch's loop is `common.train.epoch.train_one_epoch`; both are importable and
testable without the command line.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from common.runtime.device import move_batch
from common.errors import IntegralActionError
from common.report.metrics import average_clip_probs, topk_accuracy
from common.nets.loss import compute_losses
from common.runtime.precision import Precision
from common.report.problems import ProblemTally

logger = logging.getLogger("integral_action.engine")


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """SGD over the parameters this stage trains (only aggregator + classifier in rgb+pose)."""
    bare = model.module if hasattr(model, "module") else model
    params = list(bare.trainable_parameters())
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class NonFiniteError(IntegralActionError):
    """A loss, a weight or a prediction that is NaN or infinite."""


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise `NonFiniteError` naming the first parameter or buffer of `model` that holds a NaN
    or an infinity; `where` says when ("after epoch 3, iteration 120").

    The loss is checked before each step, but the step itself can still overflow (the last
    one of an epoch included): this runs before a snapshot is written, so that no snapshot
    holds such weights. One reduction per tensor and a single device sync.
    """
    bare = model.module if hasattr(model, "module") else model
    named = [(n, t) for n, t in (*bare.named_parameters(), *bare.named_buffers())
             if t.is_floating_point()]
    if not named:
        return
    with torch.no_grad():
        finite = torch.stack([torch.isfinite(t).all() for _, t in named])
        if bool(finite.all()):
            return
    name = named[int((~finite).nonzero()[0])][0]
    raise NonFiniteError(f"non-finite weights in {name} {where}: the snapshot is not written "
                         "(the previous ones are intact); lower --lr, or resume from an earlier "
                         "snapshot")


def step_losses(model: nn.Module, batch: Dict[str, Any], *, reg_weight: float,
                precision: Precision, gate_target: Optional[Tensor] = None
                ) -> Dict[str, Tensor]:
    """The forward pass of a training step, in the run's precision, and its loss terms.

    Args:
        batch: 'video' (B, T, 3, H, W) and/or 'pose_coords' (B, T, P, J, 2), 'pose_scores'
            (B, T, P, J), and 'label' (B,), on the model's device.
        gate_target: (B,) for the gate's supervision (`--gate_target swap`), or None.
    Returns:
        {term: fp32 scalar tensor} (`common.nets.loss.compute_losses`); their sum is the loss.
    """
    with precision.autocast():
        outputs = model(batch)
    # The losses in fp32: a softmax cross-entropy in bf16 loses the small probabilities.
    outputs = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
               for k, v in outputs.items()}
    return compute_losses(outputs, batch["label"], reg_weight, gate_target)


def optimizer_step(loss: Tensor, optimizer: torch.optim.Optimizer,
                   scaler: Optional[torch.amp.GradScaler] = None) -> None:
    """Backward of `loss` and one optimizer step (through `scaler` when it is enabled: fp16)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def take_problems(batch: Dict[str, Any], tally: Optional[ProblemTally]) -> None:
    """Hand the data problems a batch reports (see `data/collate.py`) to the tally."""
    problems = batch.get("problems") or []
    if tally is not None:
        tally.add(problems)


def all_ranks_usable(usable: bool, device: torch.device) -> bool:
    """Under DDP every rank must step together: a batch is trained on only when no rank's
    batch came out empty (else the gradient all-reduce would wait forever)."""
    if not (dist.is_available() and dist.is_initialized()):
        return usable
    flag = torch.tensor([1 if usable else 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


@torch.inference_mode()
def predict(model: nn.Module, loader: Any, device: torch.device, *, progress: bool = True,
            tally: Optional[ProblemTally] = None,
            precision: Optional[Precision] = None) -> Dict[str, np.ndarray]:
    """Clip-level class probabilities over a loader.

    Returns: 'video_id' (N,), 'label' (N,), 'prob' (N, C), 'skipped_video_id' (S,) (the video
    of each clip the loader could not read; its problems went to `tally`) and, with a gate,
    'gate_mean' (N,), with `stream_agreement`, 'agreement' (N,) and 'pose_prob' (N, C) (the
    pose_only stage's own probabilities, from which `common.nets.pose_fallback` mixes).

    The outputs stay on the device until the loader is done: no batch waits for the previous
    one's results to reach the host, so a GPU is never idle between batches.

    Raises `NonFiniteError` naming the videos when a probability is NaN or infinite: such a
    row would otherwise be scored as class 0.
    """
    model.eval()
    skipped: List[int] = []
    ids: List[Tensor] = []
    labels: List[Tensor] = []
    probs: List[Tensor] = []
    gates: List[Tensor] = []
    agreements: List[Tensor] = []
    pose_probs: List[Tensor] = []
    for batch in tqdm(loader, desc="test", disable=not progress, leave=False, dynamic_ncols=True):
        take_problems(batch, tally)
        skipped.extend(int(video_id) for video_id, _ in batch.get("skipped") or [])
        if "label" not in batch:
            continue
        ids.append(batch["video_id"])  # the loader's CPU tensors: no copy back needed
        labels.append(batch["label"])
        batch = move_batch(batch, device)
        with (precision.autocast() if precision is not None else contextlib.nullcontext()):
            outputs = model(batch)
        logits = outputs["logits"]
        probs.append(torch.softmax(logits.float(), dim=1))
        if outputs.get("gate") is not None:
            gates.append(outputs["gate"].float().view(logits.shape[0], -1).mean(1))
        if outputs.get("agreement") is not None:
            agreements.append(outputs["agreement"].float())
        if outputs.get("pose_probs") is not None:
            pose_probs.append(outputs["pose_probs"].float())
    out = {
        "video_id": torch.cat(ids).numpy() if ids else np.zeros(0, dtype=np.int64),
        "label": torch.cat(labels).numpy() if labels else np.zeros(0, dtype=np.int64),
        "prob": torch.cat(probs).cpu().numpy() if probs else np.zeros((0, 0), dtype=np.float32),
        "skipped_video_id": np.asarray(skipped, dtype=np.int64),
    }
    bad = ~np.isfinite(out["prob"]).all(axis=1)
    if bad.any():
        videos = sorted(set(out["video_id"][bad].tolist()))
        raise NonFiniteError(
            f"non-finite class probabilities for video id(s) {videos[:10]}: the snapshot's "
            "weights or these videos' inputs hold NaN/inf; check the snapshot (a diverged "
            "run) and the videos' frames and pose files")
    if gates:
        out["gate_mean"] = torch.cat(gates).cpu().numpy()
    if agreements:
        out["agreement"] = torch.cat(agreements).cpu().numpy()
    if pose_probs:
        out["pose_prob"] = torch.cat(pose_probs).cpu().numpy()
    return out


def evaluate(predictions: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Video-level top-1/top-5 (percent) from clip predictions (clips of a video averaged).

    A video with a clip the loader could not read (`skipped_video_id`) is left out entirely:
    its score would rest on fewer clips than the protocol's. Returns also 'left_out' (the ids
    of those videos), 'clips' (clips scored) and 'clip_mask' (N,) (which clips were scored).
    """
    ids, probs, labels = predictions["video_id"], predictions["prob"], predictions["label"]
    left_out = np.unique(predictions.get("skipped_video_id", np.zeros(0, dtype=np.int64)))
    keep = ~np.isin(ids, left_out)
    if not keep.all():
        ids, probs, labels = ids[keep], probs[keep], labels[keep]
    if len(ids):
        ids, probs, labels = average_clip_probs(ids, probs, labels)
    if not np.isfinite(probs).all():
        raise NonFiniteError("non-finite video probabilities reached the metrics")
    return {
        "video_ids": ids,
        "probs": probs,
        "labels": labels,
        "left_out": left_out,
        "clips": int(keep.sum()),
        "clip_mask": keep,
        "top1": topk_accuracy(probs, labels, 1),
        "top5": topk_accuracy(probs, labels, 5),
    }
