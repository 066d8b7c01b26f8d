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
from common.errors import IntegralActionError
from common.metrics import average_clip_probs, topk_accuracy
from common.nets.loss import compute_losses
from common.problems import ProblemTally

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


class NonFiniteError(IntegralActionError):
    """A loss or a prediction that is NaN or infinite."""


def _take_problems(batch: Dict[str, Any], tally: Optional[ProblemTally]) -> None:
    """Hand the data problems a batch reports (see `data/collate.py`) to the tally."""
    problems = batch.get("problems") or []
    if tally is not None:
        tally.add(problems)


def train_one_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer,
                    device: torch.device, cfg: Any, epoch: int,
                    generator: Optional[torch.Generator] = None,
                    tally: Optional[ProblemTally] = None) -> Dict[str, float]:
    """One pass over the loader; returns the mean of each loss term and the throughput.

    Clips the loader could not read arrive as the batch's `problems` and go to `tally` (which
    warns, counts, or stops the run in strict mode); a batch with no usable clip is passed over.
    """
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
        _take_problems(batch, tally)
        if "label" not in batch:
            continue  # every clip of the batch was unusable (counted above)
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
            raise NonFiniteError(f"non-finite loss at epoch {epoch} iteration {itr}: "
                                 f"{ {k: float(v) for k, v in losses.items()} }; lower --lr, or "
                                 "resume from an earlier snapshot")
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
def predict(model: nn.Module, loader: Any, device: torch.device, progress: bool = True,
            tally: Optional[ProblemTally] = None) -> Dict[str, np.ndarray]:
    """Clip-level class probabilities over a loader.

    Returns: 'video_id' (N,), 'label' (N,), 'prob' (N, C), 'skipped_video_id' (S,) (the video
    of each clip the loader could not read; its problems went to `tally`) and, with a gate,
    'gate_mean' (N,), with `stream_agreement`, 'agreement' (N,).

    Raises `NonFiniteError` naming the videos when a probability is NaN or infinite: such a
    row would otherwise be scored as class 0.
    """
    model.eval()
    skipped: List[int] = []
    ids: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    probs: List[np.ndarray] = []
    gates: List[np.ndarray] = []
    agreements: List[np.ndarray] = []
    for batch in tqdm(loader, desc="test", disable=not progress, leave=False, dynamic_ncols=True):
        _take_problems(batch, tally)
        skipped.extend(int(video_id) for video_id, _ in batch.get("skipped") or [])
        if "label" not in batch:
            continue
        batch = move_batch(batch, device)
        outputs = model(batch)
        logits = outputs["logits"]
        prob = torch.softmax(logits.float(), dim=1).cpu().numpy()
        bad = ~np.isfinite(prob).all(axis=1)
        if bad.any():
            videos = sorted(set(batch["video_id"].cpu().numpy()[bad].tolist()))
            raise NonFiniteError(
                f"non-finite class probabilities for video id(s) {videos[:10]}: the snapshot's "
                "weights or these videos' inputs hold NaN/inf; check the snapshot (a diverged "
                "run) and the videos' frames and pose files")
        probs.append(prob)
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
        "skipped_video_id": np.asarray(skipped, dtype=np.int64),
    }
    if gates:
        out["gate_mean"] = np.concatenate(gates)
    if agreements:
        out["agreement"] = np.concatenate(agreements)
    return out


def evaluate(predictions: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Video-level top-1/top-5 (percent) from clip predictions (clips of a video averaged).

    A video with a clip the loader could not read (`skipped_video_id`) is left out entirely:
    its score would rest on fewer clips than the protocol's. Returns also 'left_out' (the ids
    of those videos) and 'clips' (clips scored).
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
        "top1": topk_accuracy(probs, labels, 1),
        "top5": topk_accuracy(probs, labels, 5),
    }
