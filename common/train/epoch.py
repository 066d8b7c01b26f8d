"""One training epoch: the loop over the loader, its progress record and its report.

`train_one_epoch` is the loop; `LoopOptions` holds what every epoch of a run shares (device,
schedule, precision, logging); `EpochProgress` is how far an epoch has gone, what a mid-epoch
snapshot records to resume it. The forward pass and the optimizer step of one batch are in
`common.train.engine`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn
from tqdm import tqdm

from common.errors import DataError
from common.report.problems import ProblemTally
from common.runtime.device import move_batch
from common.runtime.precision import Precision
from common.train.context_aug import swap_context
from common.train.engine import (NonFiniteError, all_ranks_usable, optimizer_step,
                                 set_learning_rate, step_losses, take_problems)
from common.train.schedule import LRSchedule

logger = logging.getLogger("integral_action.engine")


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

    def add_step(self, values: Dict[str, float], *, clips: int, compute_s: float) -> None:
        """Count one optimizer step: its loss terms, its clips and its compute time."""
        self.compute_s += compute_s
        for k, v in values.items():
            self.totals[k] = self.totals.get(k, 0.0) + v
        self.count += 1
        self.clips += clips

    def data_share(self) -> float:
        """The share of the epoch's time spent waiting for batches."""
        return self.data_s / max(self.data_s + self.compute_s, 1e-9)


@dataclass(frozen=True)
class LoopOptions:
    """What every epoch of a run shares, beside the model, the loader and the optimizer.

    Attributes:
        device: where the batches go.
        schedule: the learning rate per iteration.
        precision: autocast and layout; scaler: the fp16 gradient scaler (None: none).
        iters_per_epoch: iterations of the whole epoch (for the schedule and the progress bar);
            None: `len(loader)` plus the iterations already done.
        max_iters: stop the epoch after this many iterations (`--max_iters_per_epoch`).
        log_interval: log the mean losses every N iterations (0: never).
        show_progress: the tqdm bar.
        writer: a TensorBoard `SummaryWriter` or None.
        on_step: called as `on_step(epoch, progress)` after every optimizer step (mid-epoch
            snapshots).
        generator: the context augmentation's random generator.
        tally: where the data problems the batches report go (None: ignored).
    """

    device: torch.device
    schedule: LRSchedule
    precision: Precision
    scaler: Optional[torch.amp.GradScaler] = None
    iters_per_epoch: Optional[int] = None
    max_iters: Optional[int] = None
    log_interval: int = 0
    show_progress: bool = False
    writer: Any = None
    on_step: Optional[Callable[[int, EpochProgress], None]] = None
    generator: Optional[torch.Generator] = None
    tally: Optional[ProblemTally] = None

    @classmethod
    def from_config(cls, cfg: Any, *, device: torch.device, **fields: Any) -> "LoopOptions":
        """The options of `cfg` (the step schedule from epoch 0, fp32, its logging interval,
        progress bar and iteration limit), each replaced by the entry of `fields` of its name."""
        if "schedule" not in fields:
            fields["schedule"] = LRSchedule.from_config(cfg, first_epoch=0)
        fields.setdefault("precision", Precision(device_type=device.type))
        fields.setdefault("max_iters", cfg.max_iters_per_epoch)
        fields.setdefault("log_interval", cfg.log_interval)
        fields.setdefault("show_progress", cfg.progress_bar)
        return cls(device=device, **fields)


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step, as it is reported: where it was, its rate, losses and timings."""

    epoch: int
    itr: int
    lr: float
    values: Dict[str, float]
    data_s: float
    compute_s: float


def train_one_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer, cfg: Any,
                    *, epoch: int, options: LoopOptions,
                    progress: Optional[EpochProgress] = None) -> Dict[str, float]:
    """One pass over the loader; returns the mean of each loss term and the throughput.

    Clips the loader could not read arrive as the batch's `problems` and go to `options.tally`
    (which warns, counts, or stops the run in strict mode); a batch with no usable clip is
    passed over.

    Args:
        model: the network (bare, DataParallel or DistributedDataParallel).
        loader: batches (for a resumed epoch, only the batches not trained on yet).
        cfg: the recipe: `reg_weight`, the context augmentation and gate target,
            `fusion_frozen_bn`, `mode`.
        progress: where a resumed epoch stands (None: from its start); updated in place.

    Returns:
        The loss terms' means over the epoch, 'lr' (the last), 'iters', 'clips_per_s',
        'data_s' and 'compute_s' (seconds waiting for batches and computing on them) and
        'data_share' (data_s over both).
    """
    bare = _enter_training(model, cfg)
    progress = progress if progress is not None else EpochProgress()
    first = progress.iteration
    full = options.iters_per_epoch if options.iters_per_epoch is not None else first + len(loader)
    total = full if options.max_iters is None else min(full, int(options.max_iters))
    lr = options.schedule(epoch, first, full)
    bar = tqdm(loader, total=max(total - first, 0), desc=f"epoch {epoch} [{cfg.mode}]",
               disable=not options.show_progress, leave=False, dynamic_ncols=True)
    elapsed_clips = 0
    start = time.perf_counter()
    tick = start
    for itr, batch in enumerate(bar, start=first):
        if itr >= total:
            break
        arrived = time.perf_counter()
        progress.data_s += arrived - tick
        take_problems(batch, options.tally)
        progress.iteration = itr + 1
        # A batch whose every clip (on some rank) was unusable is passed over.
        if all_ranks_usable("label" in batch, options.device):
            lr = options.schedule(epoch, itr, full)
            values, clips = _train_step(model, bare, batch, optimizer, cfg, lr=lr,
                                        options=options, epoch=epoch, itr=itr)
            done = time.perf_counter()
            progress.add_step(values, clips=clips, compute_s=done - arrived)
            elapsed_clips += clips
            step = StepRecord(epoch=epoch, itr=itr, lr=lr, values=values, data_s=arrived - tick,
                              compute_s=done - arrived)
            _report_step(bar, progress, step, options, total=total, full=full)
            if options.on_step is not None:
                options.on_step(epoch, progress)
        tick = time.perf_counter()
    bar.close()
    if progress.count == 0:
        summary = options.tally.summary() if options.tally is not None else "none counted"
        raise DataError(f"epoch {epoch} had no usable training clip ({progress.iteration} "
                        f"batch(es), data problems: {summary}), so there is nothing to save; "
                        "the log names the files: repair or replace them")
    return _epoch_stats(progress, lr=lr, clips=elapsed_clips,
                        seconds=time.perf_counter() - start)


def _enter_training(model: nn.Module, cfg: Any) -> nn.Module:
    """Put the model in train mode (the frozen streams in eval mode with `fusion_frozen_bn`);
    returns the bare model."""
    model.train()
    bare = model.module if hasattr(model, "module") else model
    if cfg.fusion_frozen_bn:
        # Optional departure from the original: frozen streams keep their BN statistics.
        for name in bare.frozen_modules():
            getattr(bare, name).eval()
    return bare


def _swap_context(bare: nn.Module, batch: Dict[str, Any], cfg: Any,
                  generator: Optional[torch.Generator]) -> Optional[Tensor]:
    """Context augmentation of the batch's video in place (rgb+pose with `context_aug_prob`);
    returns the gate's target for `--gate_target swap`, else None."""
    if not (cfg.context_aug_prob > 0 and bare.uses_video and bare.uses_pose):
        return None
    batch["video"], source = swap_context(
        batch["video"], batch["pose_coords"], batch["pose_scores"], hm_shape=cfg.input_hm_shape,
        prob=cfg.context_aug_prob, margin=cfg.context_aug_box_margin,
        pose_frame_factor=cfg.pose_frame_factor, generator=generator)
    if cfg.gate_target != "swap":
        return None
    # The scene misleads exactly where it now comes from a clip of another class.
    return (batch["label"][source] != batch["label"]).float()


def _train_step(model: nn.Module, bare: nn.Module, batch: Dict[str, Any],
                optimizer: torch.optim.Optimizer, cfg: Any, *, lr: float, options: LoopOptions,
                epoch: int, itr: int) -> Tuple[Dict[str, float], int]:
    """One optimizer step on a usable batch; returns its loss terms and its clip count.

    Raises `NonFiniteError` (before the step) when the loss is NaN or infinite.
    """
    set_learning_rate(optimizer, lr)
    batch = move_batch(batch, options.device)
    gate_target = _swap_context(bare, batch, cfg, options.generator)
    losses = step_losses(model, batch, reg_weight=cfg.reg_weight, precision=options.precision,
                         gate_target=gate_target)
    values = {k: float(v.detach()) for k, v in losses.items()}
    if not math.isfinite(sum(values.values())):
        raise NonFiniteError(f"non-finite loss at epoch {epoch} iteration {itr}: {values}; "
                             "lower --lr, or resume from an earlier snapshot")
    optimizer_step(sum(losses.values()), optimizer, options.scaler)
    return values, int(batch["label"].shape[0])


def _report_step(bar: Any, progress: EpochProgress, step: StepRecord, options: LoopOptions, *,
                 total: int, full: int) -> None:
    """The step on the progress bar, in the debug log, in TensorBoard and, every
    `log_interval` iterations, in the log."""
    means = progress.means()
    bar.set_postfix({**{k: f"{v:.3f}" for k, v in means.items()},
                     "data": f"{progress.data_share():.0%}"})
    logger.debug("epoch %d itr %d/%d lr %.4e %s data %.3fs compute %.3fs", step.epoch,
                 step.itr + 1, total, step.lr,
                 " ".join(f"{k} {v:.4f}" for k, v in step.values.items()), step.data_s,
                 step.compute_s)
    writer = options.writer
    if writer is not None:
        at = step.epoch * full + step.itr
        for k, v in step.values.items():
            writer.add_scalar(f"train/{k}", v, at)
        writer.add_scalar("train/lr", step.lr, at)
        writer.add_scalar("time/data_s", step.data_s, at)
        writer.add_scalar("time/compute_s", step.compute_s, at)
    if options.log_interval and (step.itr + 1) % options.log_interval == 0:
        logger.info("epoch %d itr %d/%d lr %.2e %s (data %.0f%% of the time)", step.epoch,
                    step.itr + 1, total, step.lr,
                    " ".join(f"{k} {v:.4f}" for k, v in means.items()),
                    100 * progress.data_share())


def _epoch_stats(progress: EpochProgress, *, lr: float, clips: int,
                 seconds: float) -> Dict[str, float]:
    """What `train_one_epoch` returns (see there); `clips` and `seconds` are this pass's."""
    stats: Dict[str, float] = dict(progress.means())
    busy = progress.data_s + progress.compute_s
    stats.update(lr=lr, iters=progress.count,
                 clips_per_s=clips / seconds if seconds > 0 else math.nan,
                 data_s=progress.data_s, compute_s=progress.compute_s,
                 data_share=progress.data_s / busy if busy > 0 else 0.0)
    return stats
