"""A training run once its start is known: the network set up for the run, the snapshots it
writes, the loop over its epochs and each epoch's summary.

Nothing here reads the command line or builds the data; `main/train.py` hands in the config,
the loader and its sampler.
"""
from __future__ import annotations

import logging
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.errors import Interrupted, UsageError
from common.model import IntegralAction, build_model
from common.report.problems import ProblemTally, sum_counts
from common.runtime.device import prepare_model
from common.runtime.distributed import DistInfo, all_gather_objects
from common.runtime.precision import Precision, apply_precision, make_grad_scaler
from common.stages import Stage
from common.train.checkpoint import (partial_snapshot_path, remove_partial_snapshots,
                                     save_snapshot, snapshot_path)
from common.train.engine import check_finite_weights, make_optimizer
from common.train.epoch import EpochProgress, LoopOptions, train_one_epoch
from common.train.rng_state import capture_rng_state
from common.train.start import StartPoint, restore_run_state, restore_state

logger = logging.getLogger("integral_action.train")

# What `train_one_epoch` returns beside the loss terms.
EPOCH_FIGURES = ("lr", "iters", "clips_per_s", "data_s", "compute_s", "data_share")


@dataclass(frozen=True)
class EpochData:
    """The training data as the epoch loop uses it.

    Attributes:
        loader: the batches of an epoch.
        sampler: the loader's sampler (`data.samplers.TrainSampler`: `set_epoch`,
            `set_start`, `set_stop`, in clips).
        batch_size: clips per batch of this process.
        iters_per_epoch: batches of a whole epoch.
    """

    loader: Any
    sampler: Any
    batch_size: int
    iters_per_epoch: int


@dataclass(frozen=True)
class Trainee:
    """The network of a run: `model` bare, `net` on its device(s) in the run's layout, the
    optimizer over the stage's parameters and the gradient scaler."""

    model: IntegralAction
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def wrap_model(model: IntegralAction, cfg: Any, *, device: torch.device, gpu_ids: List[int],
               info: DistInfo, precision: Precision) -> nn.Module:
    """The model on its device, in the run's layout, wrapped for several devices: DDP under
    torchrun (with SyncBatchNorm if asked), the original's DataParallel for `--gpu 0-3`."""
    if cfg.sync_bn:
        if not (info.enabled and device.type == "cuda"):
            raise UsageError("--sync_bn needs torchrun with GPUs (SyncBatchNorm does not run on "
                             "the CPU, and one process has nothing to synchronise with)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = apply_precision(model.to(device), precision)
    if info.enabled:
        # The same parameters are used in every step, but not all of them: the pose stream's
        # ResNet stem is replaced by Pose2Feat, yet stays in the optimizer (as in the original,
        # whose optimizer states must still load). A static graph lets DDP learn that once
        # instead of searching the graph for unused parameters at every step.
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                       else None, static_graph=True)
    return prepare_model(model, device, gpu_ids)


def build_trainee(cfg: Any, *, class_num: int, limbs: Sequence[Tuple[int, int]], joint_num: int,
                  start: StartPoint, device: torch.device, gpu_ids: List[int], info: DistInfo,
                  precision: Precision, generator: torch.Generator) -> Trainee:
    """Build the network, load the start snapshot into it (weights, optimizer, gradient scaler,
    and for a resumed run the random generators, `generator` included) and wrap it."""
    model = build_model(cfg, class_num, limbs, joint_num)
    # Backbones that a snapshot overwrites whole need no ImageNet weights (nor a download).
    model.init_weights(cfg.pretrained if start.snap is None else None)
    optim_state = restore_state(model, cfg, start)
    model.freeze_for_stage()
    net = wrap_model(model, cfg, device=device, gpu_ids=gpu_ids, info=info, precision=precision)
    optimizer = make_optimizer(net, cfg)
    scaler = make_grad_scaler(precision)
    if optim_state:
        optimizer.load_state_dict(optim_state)
        logger.info("optimizer state restored")
    if start.resumed:
        restore_run_state(start, scaler, generator, info)
    logger.info("trainable modules: %s (%d parameters)", ", ".join(model.trainable_modules()),
                sum(p.numel() for p in model.trainable_parameters()))
    logger.info("run %s, epochs %d..%d", start.run["id"], start.epoch, cfg.end_epoch - 1)
    return Trainee(model=model, net=net, optimizer=optimizer, scaler=scaler)


def make_writer(cfg: Any, stage: Stage, info: DistInfo) -> Any:
    """A TensorBoard writer (rank 0, `--tensorboard`) or None."""
    if not (cfg.tensorboard and info.is_main):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("--tensorboard needs the tensorboard package: pip install tensorboard "
                         "(./requirements.sh installs it)") from None
    folder = osp.join(cfg.output_dir, "tensorboard", stage.slug)
    logger.info("TensorBoard scalars: %s (tensorboard --logdir %s)", folder,
                osp.join(cfg.output_dir, "tensorboard"))
    return SummaryWriter(folder)


@dataclass(frozen=True, kw_only=True)
class SnapshotSaver:
    """Writes the run's snapshots: one per epoch, and with `--save_every` mid-epoch ones.

    Every rank's generator states go into a snapshot; rank 0 writes it, with what an exact
    resume needs beside the weights: the seed, the gradient scaler, the precision, the world
    size and, mid-epoch, the epoch's progress (and the code's git revision).
    """

    cfg: Any
    trainee: Trainee
    generator: torch.Generator
    info: DistInfo
    seed: int
    revision: Optional[str]
    precision: Precision
    run: Dict[str, Any]
    iters_per_epoch: int

    def save(self, path: str, epoch: int, progress: Optional[EpochProgress],
             iteration: Optional[int] = None) -> None:
        """Write the snapshot of `epoch` (mid-epoch: with its `progress`), unless a weight is
        NaN or infinite (`NonFiniteError`, naming it and the `iteration`)."""
        done = progress.iteration if progress is not None else iteration
        # On every rank (DDP keeps the weights equal), so that all stop together.
        check_finite_weights(self.trainee.net, f"after epoch {epoch}" + (
            f", iteration {done}" if done is not None else ""))
        states = all_gather_objects(capture_rng_state(self.generator), self.info)
        if not self.info.is_main:
            return
        extra = {"rng": states, "seed": self.seed, "scaler": self.trainee.scaler.state_dict(),
                 "git": self.revision, "precision": self.precision.amp,
                 "world_size": self.info.world_size}
        if progress is not None:
            extra["progress"] = progress.state_dict()
        save_snapshot(path, self.trainee.net, self.trainee.optimizer, epoch, self.cfg.mode,
                      config=self.cfg, run=self.run, extra=extra)

    def on_step(self, epoch: int, progress: EpochProgress) -> None:
        """After each step (`LoopOptions.on_step`): a mid-epoch snapshot every `save_every`
        iterations, except at the epoch's end, which gets its own."""
        every, done = self.cfg.save_every, progress.iteration
        if not (every and done % every == 0 and done < self.iters_per_epoch):
            return
        partial = partial_snapshot_path(self.cfg.model_dir, epoch, done)
        self.save(partial, epoch, progress)
        if self.info.is_main:
            remove_partial_snapshots(self.cfg.model_dir, before=(epoch, done))
            logger.info("mid-epoch snapshot saved: %s", partial)

    def end_epoch(self, epoch: int, iteration: Optional[int] = None) -> str:
        """The epoch's snapshot (superseding its mid-epoch ones), after its `iteration`th
        batch; returns its path."""
        path = snapshot_path(self.cfg.model_dir, epoch)
        self.save(path, epoch, None, iteration)
        if self.info.is_main:
            remove_partial_snapshots(self.cfg.model_dir, before=(epoch + 1, 0))
            logger.info("snapshot saved: %s", path)
        return path


def run_epochs(cfg: Any, *, start: StartPoint, data: EpochData, net: nn.Module,
               optimizer: torch.optim.Optimizer, loop: LoopOptions, saver: SnapshotSaver,
               info: DistInfo) -> Optional[str]:
    """Train the epochs `start.epoch .. end_epoch - 1`, a snapshot after each; returns the
    last snapshot's path (None when there was no epoch to train).

    Ctrl-C or SIGTERM raises `Interrupted` saying where the run stopped; the snapshots saved
    before stay, and a save in progress leaves no file behind.
    """
    path = None
    epoch, progress = start.epoch, start.progress
    try:
        for epoch in range(start.epoch, cfg.end_epoch):
            loop.tally.reset()
            progress = _start_epoch(data, epoch=epoch, start=start, max_iters=loop.max_iters)
            stats = train_one_epoch(net, data.loader, optimizer, cfg, epoch=epoch, options=loop,
                                    progress=progress)
            log_epoch(epoch, stats, tally=loop.tally, info=info, writer=loop.writer)
            path = saver.end_epoch(epoch, progress.iteration)
    except KeyboardInterrupt as err:
        raise Interrupted.of(err, where=f"at epoch {epoch}, iteration {progress.iteration}",
                             hint="resume with --continue") from None
    return path


def _start_epoch(data: EpochData, *, epoch: int, start: StartPoint,
                 max_iters: Optional[int]) -> EpochProgress:
    """Point the sampler at the epoch's batches; returns the epoch's progress (a mid-epoch
    snapshot's for the epoch it resumes)."""
    data.sampler.set_epoch(epoch)
    progress = EpochProgress()
    if epoch == start.epoch and start.progress.iteration:
        progress = start.progress
        data.sampler.set_start(progress.iteration * data.batch_size)
    if max_iters is not None:
        # The pass ends where the epoch does: no batches left on their way.
        data.sampler.set_stop(min(data.iters_per_epoch, max_iters) * data.batch_size)
    return progress


def log_epoch(epoch: int, stats: Dict[str, float], *, tally: ProblemTally, info: DistInfo,
              writer: Any) -> None:
    """The epoch's summary over every rank: mean losses, throughput, data-loading share, data
    problems."""
    everyone = all_gather_objects((stats, dict(tally.counts)), info)
    if not info.is_main:
        return
    counts = sum_counts(rank_counts for _, rank_counts in everyone)
    losses = {k: float(np.mean([s[k] for s, _ in everyone])) for k in stats
              if k not in EPOCH_FIGURES}
    clips_per_s = sum(s["clips_per_s"] for s, _ in everyone)
    logger.info("epoch %d done: %s lr %.4g, %d iterations, %.1f clips/s, data loading %.0f%% of "
                "the time (%.1f s waiting, %.1f s computing)", epoch,
                " ".join(f"{k} {v:.4g}" for k, v in losses.items()), stats["lr"],
                int(stats["iters"]), clips_per_s, 100 * stats["data_share"], stats["data_s"],
                stats["compute_s"])
    logger.info("epoch %d data problems: %s", epoch,
                ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none")
    if writer is not None:
        for key, value in losses.items():
            writer.add_scalar(f"epoch/{key}", value, epoch)
        writer.add_scalar("epoch/clips_per_s", clips_per_s, epoch)
        writer.add_scalar("epoch/data_share", stats["data_share"], epoch)
        writer.flush()
