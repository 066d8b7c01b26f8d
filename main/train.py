"""Train one IntegralAction stage: rgb_only, pose_only, or rgb+pose (from the merged snapshot).

    python main/train.py --mode rgb_only [--gpu 0-3] [--continue] [--dataset Kinetics] [--<field> value ...]
    torchrun --nproc_per_node 4 main/train.py --mode rgb_only [...]     # DistributedDataParallel
"""

import os.path as osp
import logging
import math
import os
import random
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler

from common.train.checkpoint import (STREAM_MODULES, CheckpointError, find_resume_snapshot,
                               has_fusion_heads, list_partial_snapshots, list_snapshots,
                               load_network, load_snapshot, load_stage_heads, new_run_info,
                               partial_snapshot_path, remove_partial_snapshots,
                               remove_stale_temporaries, save_snapshot, snapshot_path,
                               snapshot_stage)
from common.runtime.device import describe_device, prepare_model
from common.runtime.distributed import (DistInfo, all_gather_objects, broadcast_object, describe,
                                init_distributed, shutdown_distributed)
from common.train.engine import EpochProgress, make_optimizer, train_one_epoch
from common.errors import UsageError, exit_on_error
from common.io.logger import setup_logging
from common.model import IntegralAction, build_model
from common.runtime.precision import Precision, apply_precision, make_grad_scaler, resolve_precision
from common.report.problems import ProblemTally
from common.io.provenance import describe_revision, git_revision
from common.train.rng_state import capture_rng_state, restore_rng_state
from common.train.schedule import LRSchedule
from common.stages import Stage, get_stage
from data.clip_loader import build_clip_loader
from data.registry import build_dataset
from data.samplers import TrainSampler
from main.config import (build_config, config_from_snapshot, describe_config, parse_command_line,
                         snapshot_fields)

logger = logging.getLogger("integral_action.train")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class StartPoint:
    """Where a run starts: its first epoch, the snapshot it loads (if any) and its identity.

    Attributes:
        epoch: the first epoch to train.
        path, snap: the snapshot the run starts from (None: ImageNet/random initialisation).
        merged: `snap` is the merge tool's output (only the streams are loaded).
        run: the run's identity (`new_run_info`), kept when a run is resumed.
    """

    def __init__(self, epoch: int, path: Optional[str] = None,
                 snap: Optional[Dict[str, Any]] = None, run: Optional[Mapping[str, Any]] = None
                 ) -> None:
        self.epoch = epoch
        self.path = path
        self.snap = snap
        self.merged = bool(snap is not None and (snap.get("merged")
                                                 or not has_fusion_heads(snap["network"])))
        self.run = dict(run) if run else new_run_info()
        # A mid-epoch snapshot (`--save_every`): how far its epoch had gone.
        self.progress = EpochProgress.from_state(snap.get("progress") if snap else None)

    @property
    def resumed(self) -> bool:
        """The run continues a snapshot of its own stage (not a fresh or merged start)."""
        return self.snap is not None and not self.merged


def find_start(cfg: Any, stage: Stage) -> StartPoint:
    """Decide where training starts, before anything heavy is built.

    Single-stream stages start from ImageNet weights unless --continue. rgb+pose always starts
    from a snapshot: the merged `snapshot_0` (or `init_snapshot`), or with --continue the most
    recent run of the stage (`find_resume_snapshot`; the merged snapshot counts as one).
    """
    if cfg.continue_train:
        found = find_resume_snapshot(cfg.model_dir, stage.name)
        if found is None:
            others = [f"snapshot_{e} ({snapshot_stage(load_snapshot(p, mmap=True)) or 'unknown'})"
                      for e, p in list_snapshots(cfg.model_dir)][:6]
            hint = f"; it holds {', '.join(others)}" if others else " (it holds no snapshot)"
            raise CheckpointError(f"--continue: no snapshot of stage '{stage.name}' in "
                                  f"{cfg.model_dir}{hint}. Start the stage without --continue")
        path, snap = found
        if snapshot_stage(snap) not in (stage.name, None):
            raise CheckpointError(f"{path} is a '{snapshot_stage(snap)}' snapshot, not '{stage.name}'")
        # An epoch's snapshot resumes with the next epoch; a mid-epoch one within its epoch.
        partial = bool(snap.get("progress"))
        start = StartPoint(int(snap.get("epoch", 0)) + (0 if partial else 1), path, snap)
        if not start.merged and snap.get("run"):
            start.run = dict(snap["run"])  # the resumed run keeps its identity
        return start
    if stage.starts_from_merge:
        path = cfg.init_snapshot or snapshot_path(cfg.model_dir, 0)
        if not os.path.isfile(path):
            raise CheckpointError(
                f"rgb+pose starts from the merged snapshot {path}, which does not exist. Train "
                "rgb_only and pose_only, then run tool/merge_rgb_only_pose_only.py.")
        snap = load_snapshot(path)
        if snapshot_stage(snap) not in (stage.name, None):
            raise CheckpointError(f"{path} is a '{snapshot_stage(snap)}' snapshot, not '{stage.name}'")
        return StartPoint(int(snap.get("epoch", 0)) + 1, path, snap)
    return StartPoint(0)


def check_no_overwrite(cfg: Any, stage: Stage, start: StartPoint) -> None:
    """Refuse to write over snapshots that this run did not write (unless --overwrite).

    The epochs this run will save are `start.epoch .. end_epoch - 1`; a snapshot already there
    belongs to another run (a resumed run's own snapshots all lie before `start.epoch`).
    """
    files = list_snapshots(cfg.model_dir)
    if not start.resumed:
        # A mid-epoch snapshot is an interrupted run's too (a resumed run replaces its own).
        files += [(e, p) for e, _, p in list_partial_snapshots(cfg.model_dir)]
    taken = [(e, p) for e, p in sorted(files) if start.epoch <= e < cfg.end_epoch]
    if not taken or cfg.overwrite:
        if taken:
            logger.warning("--overwrite: snapshot_%d..%d in %s will be replaced by this run",
                           taken[0][0], taken[-1][0], cfg.model_dir)
        if taken and not start.resumed:
            remove_partial_snapshots(cfg.model_dir, before=(cfg.end_epoch, 0))
        return
    stages = sorted({str(snapshot_stage(load_snapshot(p, mmap=True))) for _, p in taken})
    first, last = taken[0][0], taken[-1][0]
    what = f"snapshot_{first}" if first == last else f"snapshot_{first}..snapshot_{last}"
    how = ("add --continue to resume the run that wrote them" if not cfg.continue_train
           else "they belong to another run")
    raise CheckpointError(
        f"{cfg.model_dir} already holds {what} ({len(taken)} file(s), stage {'/'.join(stages)}), "
        f"which this {stage.name} run (epochs {start.epoch}..{cfg.end_epoch - 1}) would overwrite. "
        f"To keep them: {how}, or write this run elsewhere with --output_dir DIR (or "
        "--model_dir DIR). To replace them on purpose: add --overwrite")


def restore_state(model: nn.Module, cfg: Any, start: StartPoint) -> Optional[Dict[str, Any]]:
    """Load the start snapshot into the model; returns the optimizer state to restore or None.

    A merged snapshot carries only the two streams (and the stages' classifiers for
    `stream_agreement`); the aggregator and classifier keep their fresh initialisation, and the
    optimizer starts afresh.
    """
    if start.snap is None:
        return None
    if start.merged:
        load_network(model, start.snap["network"], modules=STREAM_MODULES)
        if cfg.stream_agreement:
            load_stage_heads(model, start.snap["network"], start.path)
        logger.info("rgb+pose starts from merged snapshot %s (streams loaded; aggregator and "
                    "classifier freshly initialised)", start.path)
        return None
    load_network(model, start.snap["network"])
    where = (f"epoch {start.epoch} after {start.progress.iteration} iterations"
             if start.progress.iteration else f"epoch {start.epoch}")
    logger.info("resuming from %s (epoch %d): training continues at %s", start.path,
                start.snap["epoch"], where)
    return start.snap.get("optimizer") or None


def run_seed(cfg: Any, start: StartPoint, info: DistInfo) -> int:
    """The seed of the run: `--seed`, else the resumed run's own (so that an unseeded run still
    resumes exactly), else a fresh random one that every rank shares."""
    if cfg.seed is not None:
        return int(cfg.seed)
    if start.resumed and start.snap.get("seed") is not None:
        return int(start.snap["seed"])
    return int(broadcast_object(random.SystemRandom().randrange(2**31), info))


def wrap_model(model: IntegralAction, cfg: Any, device: torch.device, gpu_ids: List[int],
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


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Optional[str]:
    """Train one stage; returns the path of the last snapshot written (None: nothing to do, or
    a rank other than 0)."""
    overrides = parse_command_line("train", argv)
    cfg = build_config(overrides, entry="train")
    info, device, gpu_ids = init_distributed(cfg.gpu_ids, cfg.dist_backend)
    try:
        return train(cfg, overrides, info, device, gpu_ids)
    finally:
        shutdown_distributed()


def train(cfg: Any, overrides: Mapping[str, Any], info: DistInfo, device: torch.device,
          gpu_ids: List[int]) -> Optional[str]:
    """The body of `main`, once the process knows its device and rank."""
    for folder in (cfg.model_dir, cfg.log_dir, cfg.result_dir, cfg.vis_dir):
        os.makedirs(folder, exist_ok=True)
    stage = get_stage(cfg.mode)
    setup_logging(cfg.log_dir, f"train_{stage.slug}", rank=info.rank)
    if info.is_main:
        remove_stale_temporaries(cfg.model_dir)

    start = find_start(cfg, stage)
    if start.resumed and start.snap.get("config"):
        # The snapshot, not the command line, says what network and recipe the run has.
        cfg = config_from_snapshot(start.snap["config"], overrides, purpose="resume",
                                   snapshot=start.path, entry="train")
        logger.info("configuration of %s restored (%s)", start.path,
                    ", ".join(snapshot_fields("resume", start.snap["config"])))
    revision = git_revision()
    precision = resolve_precision(cfg, device, training=True)
    logger.info("config:\n  %s", "\n  ".join(describe_config(cfg)))
    logger.info("code: git %s", describe_revision(revision))
    logger.info("device: %s; %s; %s", describe_device(device, gpu_ids), describe(info),
                precision.describe())
    if start.epoch >= cfg.end_epoch:
        logger.info("nothing left to do: %s is epoch %d and end_epoch is %d; raise --end_epoch "
                    "to train further", start.path, start.epoch - 1, cfg.end_epoch)
        return None
    check_no_overwrite(cfg, stage, start)
    seed = run_seed(cfg, start, info)
    # Each rank draws its own dropout masks; DDP copies rank 0's initial weights to all.
    seed_everything(seed + info.rank)
    generator = torch.Generator().manual_seed(seed + info.rank)  # context augmentation

    dataset = build_dataset(cfg, cfg.dataset, "train")
    batch_size = cfg.train_batch_size * max(1, len(gpu_ids))  # per process
    sampler = TrainSampler(dataset, seed=seed, rank=info.rank, world_size=info.world_size)
    drop_last = sampler.num_samples > batch_size
    loader = build_clip_loader(dataset, BatchSampler(sampler, batch_size, drop_last),
                               num_workers=cfg.num_thread, pin_memory=device.type == "cuda",
                               persistent_workers=cfg.num_thread > 0,
                               # The loader's own generator: it must not draw from the global
                               # one, whose state a snapshot restores.
                               generator=torch.Generator().manual_seed(seed))
    iters_per_epoch = (sampler.num_samples // batch_size if drop_last
                       else math.ceil(sampler.num_samples / batch_size))
    logger.info("%s train: %d clips per epoch, %d classes, %d process(es) x batch %d, %d "
                "iterations per epoch, seed %d", cfg.dataset, len(dataset), dataset.class_num,
                info.world_size, batch_size, iters_per_epoch, seed)

    joints = dataset.joint_set
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    # Backbones that a snapshot overwrites whole need no ImageNet weights (nor a download).
    model.init_weights(cfg.pretrained if start.snap is None else None)
    optim_state = restore_state(model, cfg, start)
    model.freeze_for_stage()
    net = wrap_model(model, cfg, device, gpu_ids, info, precision)
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

    schedule = LRSchedule.from_config(cfg, first_epoch=1 if stage.starts_from_merge else 0)
    writer = make_writer(cfg, stage, info)
    tally = ProblemTally(strict=cfg.strict, logger=logger)

    def save(path: str, epoch: int, progress: Optional[EpochProgress]) -> None:
        """Every rank's generator states go into the snapshot; rank 0 writes it."""
        states = all_gather_objects(capture_rng_state(generator), info)
        if not info.is_main:
            return
        extra = {"rng": states, "seed": seed, "scaler": scaler.state_dict(), "git": revision,
                 "precision": precision.amp, "world_size": info.world_size}
        if progress is not None:
            extra["progress"] = progress.state_dict()
        save_snapshot(path, net, optimizer, epoch, cfg.mode, config=cfg, run=start.run,
                      extra=extra)

    path = None
    try:
        for epoch in range(start.epoch, cfg.end_epoch):
            tally.reset()
            sampler.set_epoch(epoch)
            progress = EpochProgress()
            if epoch == start.epoch and start.progress.iteration:
                progress = start.progress
                sampler.set_start(progress.iteration * batch_size)
            if cfg.max_iters_per_epoch is not None:
                # The pass ends where the epoch does: no batches left on their way.
                sampler.set_stop(min(iters_per_epoch, cfg.max_iters_per_epoch) * batch_size)

            def on_step(progress: EpochProgress, epoch: int = epoch) -> None:
                if (cfg.save_every and progress.iteration % cfg.save_every == 0
                        and progress.iteration < iters_per_epoch):
                    partial = partial_snapshot_path(cfg.model_dir, epoch, progress.iteration)
                    save(partial, epoch, progress)
                    if info.is_main:
                        remove_partial_snapshots(cfg.model_dir, before=(epoch, progress.iteration))
                        logger.info("mid-epoch snapshot saved: %s", partial)

            stats = train_one_epoch(net, loader, optimizer, device, cfg, epoch, generator, tally,
                                    schedule=schedule, iters_per_epoch=iters_per_epoch,
                                    progress=progress, precision=precision, scaler=scaler,
                                    on_step=on_step, writer=writer,
                                    show_progress=cfg.progress_bar and info.is_main)
            log_epoch(epoch, stats, tally, info, writer)
            path = snapshot_path(cfg.model_dir, epoch)
            save(path, epoch, None)
            if info.is_main:
                remove_partial_snapshots(cfg.model_dir, before=(epoch + 1, 0))
                logger.info("snapshot saved: %s", path)
    finally:
        if writer is not None:
            writer.close()
    return path if info.is_main else None


def restore_run_state(start: StartPoint, scaler: torch.amp.GradScaler,
                      generator: torch.Generator, info: DistInfo) -> None:
    """The gradient scaler and this rank's random generators, as the snapshot saved them."""
    snap = start.snap
    if snap.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(snap["scaler"])
    states = snap.get("rng")
    if not states:
        logger.warning("%s holds no random generator states (an older or the authors' "
                       "snapshot): the run continues, but not bit for bit as it would have",
                       start.path)
        return
    if len(states) != info.world_size:
        logger.warning("%s was written by %d process(es), this run has %d: the data order and "
                       "augmentation continue exactly, dropout and context augmentation draw "
                       "new random numbers", start.path, len(states), info.world_size)
        return
    restore_rng_state(states[info.rank], generator)
    logger.info("random generator states restored")


# What `train_one_epoch` returns beside the loss terms.
EPOCH_FIGURES = ("lr", "iters", "clips_per_s", "data_s", "compute_s", "data_share")


def log_epoch(epoch: int, stats: Dict[str, float], tally: ProblemTally, info: DistInfo,
              writer: Any) -> None:
    """The epoch's summary over every rank: mean losses, throughput, data-loading share, data
    problems."""
    everyone = all_gather_objects((stats, dict(tally.counts)), info)
    if not info.is_main:
        return
    counts: Dict[str, int] = {}
    for _, rank_counts in everyone:
        for key, value in rank_counts.items():
            counts[key] = counts.get(key, 0) + value
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


if __name__ == "__main__":
    main()
