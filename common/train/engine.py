"""The training and evaluation loops, importable and testable without the command line."""
from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from common.train.context_aug import swap_context
from common.runtime.device import move_batch
from common.errors import IntegralActionError
from common.report.metrics import average_clip_probs, topk_accuracy
from common.nets.loss import compute_losses
from common.runtime.precision import Precision
from common.report.problems import ProblemTally
from common.train.schedule import LRSchedule

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
    """A loss or a prediction that is NaN or infinite."""


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


def _take_problems(batch: Dict[str, Any], tally: Optional[ProblemTally]) -> None:
    """Hand the data problems a batch reports (see `data/collate.py`) to the tally."""
    problems = batch.get("problems") or []
    if tally is not None:
        tally.add(problems)


@dataclass
class EpochProgress:
    """How far an epoch has gone: what a mid-epoch snapshot records to resume it.

    Attributes:
        iteration: batches of the epoch already trained on (the next one is `iteration`).
        totals: running sums of the loss terms; count: steps summed; clips: clips trained on.
        data_s, compute_s: seconds spent waiting for batches and computing on them.
    """

    iteration: int = 0
    totals: Dict[str, float] = field(default_factory=dict)
    count: int = 0
    clips: int = 0
    data_s: float = 0.0
    compute_s: float = 0.0

    def state_dict(self) -> Dict[str, Any]:
        return {"iteration": self.iteration, "totals": dict(self.totals), "count": self.count,
                "clips": self.clips, "data_s": self.data_s, "compute_s": self.compute_s}

    @classmethod
    def from_state(cls, state: Optional[Dict[str, Any]]) -> "EpochProgress":
        if not state:
            return cls()
        return cls(int(state["iteration"]), {str(k): float(v) for k, v in state["totals"].items()},
                   int(state["count"]), int(state["clips"]), float(state.get("data_s", 0.0)),
                   float(state.get("compute_s", 0.0)))

    def means(self) -> Dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.totals.items()}


def _all_ranks_usable(usable: bool, device: torch.device) -> bool:
    """Under DDP every rank must step together: a batch is trained on only when no rank's
    batch came out empty (else the gradient all-reduce would wait forever)."""
    if not (dist.is_available() and dist.is_initialized()):
        return usable
    flag = torch.tensor([1 if usable else 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def train_one_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer,
                    device: torch.device, cfg: Any, epoch: int,
                    generator: Optional[torch.Generator] = None,
                    tally: Optional[ProblemTally] = None, *,
                    schedule: Optional[LRSchedule] = None,
                    iters_per_epoch: Optional[int] = None,
                    progress: Optional[EpochProgress] = None,
                    precision: Optional[Precision] = None,
                    scaler: Optional[torch.amp.GradScaler] = None,
                    on_step: Optional[Callable[[EpochProgress], None]] = None,
                    writer: Any = None,
                    show_progress: Optional[bool] = None) -> Dict[str, float]:
    """One pass over the loader; returns the mean of each loss term and the throughput.

    Clips the loader could not read arrive as the batch's `problems` and go to `tally` (which
    warns, counts, or stops the run in strict mode); a batch with no usable clip is passed over.

    Args:
        model: the network (bare, DataParallel or DistributedDataParallel).
        loader: batches (for a resumed epoch, only the batches not trained on yet).
        schedule: the learning rate per iteration; None: the step schedule of `cfg`.
        iters_per_epoch: iterations of the whole epoch (for the schedule and the progress bar);
            None: `len(loader)` plus the iterations already done.
        progress: where a resumed epoch stands (None: from its start); updated in place.
        precision: autocast and layout (None: fp32); scaler: the fp16 gradient scaler.
        on_step: called after every optimizer step with the progress (mid-epoch snapshots).
        writer: a TensorBoard `SummaryWriter` or None.
        show_progress: the tqdm bar (None: `cfg.progress_bar`).

    Returns:
        The loss terms' means over the epoch, 'lr' (the last), 'iters', 'clips_per_s',
        'data_s' and 'compute_s' (seconds waiting for batches and computing on them) and
        'data_share' (data_s over both).
    """
    model.train()
    bare = model.module if hasattr(model, "module") else model
    if cfg.fusion_frozen_bn:
        # Optional departure from the original: frozen streams keep their BN statistics.
        for name in bare.frozen_modules():
            getattr(bare, name).eval()
    schedule = schedule or LRSchedule.from_config(cfg, first_epoch=0)
    precision = precision or Precision(device_type=device.type)
    progress = progress if progress is not None else EpochProgress()
    first = progress.iteration
    limit = cfg.max_iters_per_epoch
    full = iters_per_epoch if iters_per_epoch is not None else first + len(loader)
    total = full if limit is None else min(full, int(limit))
    lr = schedule(epoch, first, full)
    bar = tqdm(loader, total=max(total - first, 0), desc=f"epoch {epoch} [{cfg.mode}]",
               disable=not (cfg.progress_bar if show_progress is None else show_progress),
               leave=False, dynamic_ncols=True)
    elapsed_clips = 0
    start = time.perf_counter()
    tick = start
    itr = first
    for itr, batch in enumerate(bar, start=first):
        if itr >= total:
            break
        arrived = time.perf_counter()
        progress.data_s += arrived - tick
        _take_problems(batch, tally)
        progress.iteration = itr + 1
        if not _all_ranks_usable("label" in batch, device):
            tick = time.perf_counter()
            continue  # every clip of the batch (of some rank's batch) was unusable
        lr = schedule(epoch, itr, full)
        set_learning_rate(optimizer, lr)
        batch = move_batch(batch, device)
        gate_target = None
        if cfg.context_aug_prob > 0 and bare.uses_video and bare.uses_pose:
            batch["video"], source = swap_context(
                batch["video"], batch["pose_coords"], batch["pose_scores"], cfg.input_hm_shape,
                cfg.context_aug_prob, cfg.context_aug_box_margin, cfg.pose_frame_factor, generator)
            if cfg.gate_target == "swap":
                # The scene misleads exactly where it now comes from a clip of another class.
                gate_target = (batch["label"][source] != batch["label"]).float()
        losses = step_losses(model, batch, reg_weight=cfg.reg_weight, precision=precision,
                             gate_target=gate_target)
        values = {k: float(v.detach()) for k, v in losses.items()}
        if not math.isfinite(sum(values.values())):
            raise NonFiniteError(f"non-finite loss at epoch {epoch} iteration {itr}: {values}; "
                                 "lower --lr, or resume from an earlier snapshot")
        optimizer_step(sum(losses.values()), optimizer, scaler)
        done = time.perf_counter()
        progress.compute_s += done - arrived
        for k, v in values.items():
            progress.totals[k] = progress.totals.get(k, 0.0) + v
        progress.count += 1
        clips = int(batch["label"].shape[0])
        progress.clips += clips
        elapsed_clips += clips
        means = progress.means()
        bar.set_postfix({**{k: f"{v:.3f}" for k, v in means.items()},
                         "data": f"{progress.data_s / max(progress.data_s + progress.compute_s, 1e-9):.0%}"})
        logger.debug("epoch %d itr %d/%d lr %.4e %s data %.3fs compute %.3fs", epoch, itr + 1,
                     total, lr, " ".join(f"{k} {v:.4f}" for k, v in values.items()),
                     arrived - tick, done - arrived)
        if writer is not None:
            step = epoch * full + itr
            for k, v in values.items():
                writer.add_scalar(f"train/{k}", v, step)
            writer.add_scalar("train/lr", lr, step)
            writer.add_scalar("time/data_s", arrived - tick, step)
            writer.add_scalar("time/compute_s", done - arrived, step)
        if cfg.log_interval and (itr + 1) % cfg.log_interval == 0:
            logger.info("epoch %d itr %d/%d lr %.2e %s (data %.0f%% of the time)", epoch,
                        itr + 1, total, lr, " ".join(f"{k} {v:.4f}" for k, v in means.items()),
                        100 * progress.data_s / max(progress.data_s + progress.compute_s, 1e-9))
        if on_step is not None:
            on_step(progress)
        tick = time.perf_counter()
    bar.close()
    elapsed = time.perf_counter() - start
    stats: Dict[str, float] = dict(progress.means())
    busy = progress.data_s + progress.compute_s
    stats.update(lr=lr, iters=progress.count,
                 clips_per_s=elapsed_clips / elapsed if elapsed > 0 else math.nan,
                 data_s=progress.data_s, compute_s=progress.compute_s,
                 data_share=progress.data_s / busy if busy > 0 else 0.0)
    return stats


@torch.inference_mode()
def predict(model: nn.Module, loader: Any, device: torch.device, progress: bool = True,
            tally: Optional[ProblemTally] = None,
            precision: Optional[Precision] = None) -> Dict[str, np.ndarray]:
    """Clip-level class probabilities over a loader.

    Returns: 'video_id' (N,), 'label' (N,), 'prob' (N, C), 'skipped_video_id' (S,) (the video
    of each clip the loader could not read; its problems went to `tally`) and, with a gate,
    'gate_mean' (N,), with `stream_agreement`, 'agreement' (N,).

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
    for batch in tqdm(loader, desc="test", disable=not progress, leave=False, dynamic_ncols=True):
        _take_problems(batch, tally)
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
