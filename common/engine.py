"""The training and evaluation loops, importable and testable without the command line."""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.context_aug import swap_context
from common.device import move_batch
from common.metrics import average_clip_probs, topk_accuracy
from common.nets.loss import compute_losses

logger = logging.getLogger("integral_action.engine")


def learning_rate(base_lr: float, epoch: int, dec_epochs: Sequence[int], dec_factor: float) -> float:
    """Step schedule: base_lr / dec_factor^(number of decay epochs <= epoch)."""
    steps = sum(1 for e in dec_epochs if epoch >= e)
    return base_lr / (dec_factor ** steps)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """SGD over the parameters this stage trains (only aggregator + classifier in rgb+pose)."""
    bare = model.module if hasattr(model, "module") else model
    params = list(bare.trainable_parameters())
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train_one_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer,
                    device: torch.device, cfg: Any, epoch: int,
                    generator: Optional[torch.Generator] = None) -> Dict[str, float]:
    """One pass over the loader; returns the mean of each loss term and the throughput."""
    model.train()
    bare = model.module if hasattr(model, "module") else model
    if cfg.fusion_frozen_bn:
        # Optional departure from the original: frozen streams keep their BN statistics.
        for name in bare.frozen_modules():
            getattr(bare, name).eval()
    lr = learning_rate(cfg.lr, epoch, cfg.lr_dec_epoch, cfg.lr_dec_factor)
    set_learning_rate(optimizer, lr)
    totals: Dict[str, float] = {}
    count = 0
    clips = 0
    limit = cfg.max_iters_per_epoch
    total = len(loader) if limit is None else min(len(loader), int(limit))
    start = time.perf_counter()
    bar = tqdm(loader, total=total, desc=f"epoch {epoch} [{cfg.mode}] lr {lr:.1e}",
               disable=not cfg.progress_bar, leave=False, dynamic_ncols=True)
    for itr, batch in enumerate(bar):
        if limit is not None and itr >= limit:
            break
        batch = move_batch(batch, device)
        gate_target = None
        if cfg.context_aug_prob > 0 and bare.uses_video and bare.uses_pose:
            batch["video"], source = swap_context(
                batch["video"], batch["pose_coords"], batch["pose_scores"], cfg.input_hm_shape,
                cfg.context_aug_prob, cfg.context_aug_box_margin, cfg.pose_frame_factor, generator)
            if cfg.gate_target == "swap":
                # The scene misleads exactly where it now comes from a clip of another class.
                gate_target = (batch["label"][source] != batch["label"]).float()
        outputs = model(batch)
        losses = compute_losses(outputs, batch["label"], cfg.reg_weight, gate_target)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at epoch {epoch} iteration {itr}: "
                                     f"{ {k: float(v) for k, v in losses.items()} }")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for k, v in losses.items():
            totals[k] = totals.get(k, 0.0) + float(v.detach())
        count += 1
        clips += int(batch["label"].shape[0])
        bar.set_postfix({k: f"{v / count:.3f}" for k, v in totals.items()})
        if cfg.log_interval and (itr + 1) % cfg.log_interval == 0:
            logger.info("epoch %d itr %d/%d lr %.2e %s", epoch, itr + 1, total, lr,
                        " ".join(f"{k} {v / count:.4f}" for k, v in totals.items()))
    bar.close()
    elapsed = time.perf_counter() - start
    stats = {k: v / max(count, 1) for k, v in totals.items()}
    stats.update(lr=lr, iters=count, clips_per_s=clips / elapsed if elapsed > 0 else math.nan)
    return stats


@torch.no_grad()
def predict(model: nn.Module, loader: Any, device: torch.device, progress: bool = True
            ) -> Dict[str, np.ndarray]:
    """Clip-level class probabilities over a loader.

    Returns: 'video_id' (N,), 'label' (N,), 'prob' (N, C) and, with a gate, 'gate_mean' (N,),
    with `stream_agreement`, 'agreement' (N,).
    """
    model.eval()
    ids: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    probs: List[np.ndarray] = []
    gates: List[np.ndarray] = []
    agreements: List[np.ndarray] = []
    for batch in tqdm(loader, desc="test", disable=not progress, leave=False, dynamic_ncols=True):
        batch = move_batch(batch, device)
        outputs = model(batch)
        logits = outputs["logits"]
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        ids.append(batch["video_id"].cpu().numpy())
        labels.append(batch["label"].cpu().numpy())
        if outputs.get("gate") is not None:
            gates.append(outputs["gate"].float().view(logits.shape[0], -1).mean(1).cpu().numpy())
        if outputs.get("agreement") is not None:
            agreements.append(outputs["agreement"].float().cpu().numpy())
    out = {
        "video_id": np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64),
        "label": np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64),
        "prob": np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32),
    }
    if gates:
        out["gate_mean"] = np.concatenate(gates)
    if agreements:
        out["agreement"] = np.concatenate(agreements)
    return out


def evaluate(predictions: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Video-level top-1/top-5 (percent) from clip predictions (clips of a video averaged)."""
    ids, probs, labels = average_clip_probs(predictions["video_id"], predictions["prob"],
                                            predictions["label"])
    return {
        "video_ids": ids,
        "probs": probs,
        "labels": labels,
        "top1": topk_accuracy(probs, labels, 1),
        "top5": topk_accuracy(probs, labels, 5),
    }
