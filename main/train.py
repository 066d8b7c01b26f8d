"""Train one IntegralAction stage: rgb_only, pose_only, or rgb+pose (from the merged snapshot).

    python main/train.py --mode rgb_only [--gpu 0-3] [--continue] [--dataset Kinetics] [--<field> value ...]
    torchrun --nproc_per_node 4 main/train.py --mode rgb_only [...]     # DistributedDataParallel

The steps: parse the command line (`main`), find where the run starts and build its data and
network (`train`), then loop over the epochs (`common.train.run.run_epochs`).
"""

import contextlib
import logging
import math
import os.path as osp
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
from torch.utils.data import BatchSampler

from common.errors import OutputError, exit_on_error
from common.io.logger import setup_logging
from common.io.provenance import git_revision
from common.io.run_lock import ensure_writable_folders, run_lock
from common.report.problems import ProblemTally
from common.runtime.distributed import DistInfo, broadcast_object, distributed_process
from common.runtime.precision import resolve_precision
from common.stages import Stage, get_stage
from common.train.checkpoint import remove_stale_temporaries
from common.train.epoch import LoopOptions
from common.train.run import EpochData, SnapshotSaver, build_trainee, make_writer, run_epochs
from common.train.schedule import LRSchedule
from common.train.start import (StartPoint, check_no_overwrite, find_start, run_seed,
                                seed_everything)
from data.clip_loader import build_clip_loader
from data.registry import build_dataset
from data.samplers import TrainSampler
from data.shards.dataset import ShardVideos
from data.shards.sampler import shard_train_sampler
from main.cli import parse_command_line
from main.config import build_config
from main.snapshot_config import config_from_snapshot, snapshot_fields
from main.run_log import log_run_setup

logger = logging.getLogger("integral_action.train")


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Optional[str]:
    """Train one stage; returns the path of the last snapshot written (None: nothing to do, or
    a rank other than 0)."""
    overrides = parse_command_line("train", argv)
    cfg = build_config(overrides, entry="train")
    with distributed_process(cfg.gpu_ids, cfg.dist_backend) as (info, device, gpu_ids):
        return train(cfg, overrides, info=info, device=device, gpu_ids=gpu_ids)


def train(cfg: Any, overrides: Mapping[str, Any], *, info: DistInfo, device: torch.device,
          gpu_ids: List[int]) -> Optional[str]:
    """The body of `main`, once the process knows its device and rank: the output folders
    checked and the stage's lock held before any work (`stage_lock`), then `train_stage`."""
    ensure_writable_folders((cfg.model_dir, cfg.log_dir, cfg.result_dir, cfg.vis_dir))
    with stage_lock(cfg.model_dir, info):
        return train_stage(cfg, overrides, info=info, device=device, gpu_ids=gpu_ids)


@contextlib.contextmanager
def stage_lock(model_dir: str, info: DistInfo) -> Iterator[None]:
    """Rank 0's exclusive lock on the stage's snapshot folder, held for the whole run, so that
    two runs never write the same snapshots at once; under torchrun every rank stops when rank 0
    cannot take it. The lock file lies beside the folder (`<parent>/.<folder>.train.lock`): the
    snapshot folder holds snapshots only."""
    folder = osp.abspath(model_dir)
    path = osp.join(osp.dirname(folder), f".{osp.basename(folder)}.train.lock")
    with contextlib.ExitStack() as held:
        refused = None
        if info.is_main:
            try:
                held.enter_context(run_lock(path, subject=model_dir, what="training run"))
            except OutputError as err:
                refused = str(err)
        refused = broadcast_object(refused, info)
        if refused:
            raise OutputError(refused)
        yield


def train_stage(cfg: Any, overrides: Mapping[str, Any], *, info: DistInfo,
                device: torch.device, gpu_ids: List[int]) -> Optional[str]:
    """Train the stage: its start, data, network and epochs."""
    stage = get_stage(cfg.mode)
    start_logging(cfg, stage, info)
    start = find_start(cfg, stage)
    cfg = resumed_config(cfg, overrides, start)
    revision = git_revision()
    precision = resolve_precision(cfg, device, training=True)
    log_run_setup(logger, cfg, revision=revision, device=device, gpu_ids=gpu_ids, info=info,
                  precision=precision)
    if start.epoch >= cfg.end_epoch:
        if start.resumed:
            logger.info("nothing left to do: the run in %s already ended at epoch %d and "
                        "end_epoch is %d; raise --end_epoch to %d or more to train further",
                        cfg.model_dir, start.epoch - 1, cfg.end_epoch, start.epoch + 1)
        else:  # from the merged snapshot (a fresh start, at epoch 0, is before end_epoch >= 1)
            logger.info("nothing left to do: %s starts at epoch %d, after %s, and end_epoch is "
                        "%d; use --end_epoch %d or more", stage.name, start.epoch, start.path,
                        cfg.end_epoch, start.epoch + 1)
        return None
    check_no_overwrite(cfg, stage, start)
    seed = run_seed(cfg, start, info)
    # Each rank draws its own dropout masks; DDP copies rank 0's initial weights to all.
    seed_everything(seed + info.rank)
    generator = torch.Generator().manual_seed(seed + info.rank)  # context augmentation
    dataset, data = build_training_data(cfg, seed=seed, info=info, device=device,
                                        gpu_ids=gpu_ids)
    trainee = build_trainee(cfg, class_num=dataset.class_num, limbs=dataset.joint_set.limbs,
                            joint_num=dataset.joint_set.joint_num, start=start, device=device,
                            gpu_ids=gpu_ids, info=info, precision=precision, generator=generator)
    saver = SnapshotSaver(cfg=cfg, trainee=trainee, generator=generator, info=info, seed=seed,
                          revision=revision, precision=precision, run=start.run,
                          iters_per_epoch=data.iters_per_epoch)
    loop = LoopOptions.from_config(
        cfg, device=device, precision=precision, scaler=trainee.scaler,
        schedule=LRSchedule.from_config(cfg, first_epoch=1 if stage.starts_from_merge else 0),
        writer=make_writer(cfg, stage, info), tally=ProblemTally(strict=cfg.strict, logger=logger),
        iters_per_epoch=data.iters_per_epoch, show_progress=cfg.progress_bar and info.is_main,
        on_step=saver.on_step, generator=generator)
    try:
        path = run_epochs(cfg, start=start, data=data, net=trainee.net,
                          optimizer=trainee.optimizer, loop=loop, saver=saver, info=info)
    finally:
        if loop.writer is not None:
            loop.writer.close()
    return path if info.is_main else None


def start_logging(cfg: Any, stage: Stage, info: DistInfo) -> None:
    """The run's log file; rank 0 clears the temporaries a killed save left."""
    setup_logging(cfg.log_dir, f"train_{stage.slug}", rank=info.rank)
    if info.is_main:
        remove_stale_temporaries(cfg.model_dir)


def resumed_config(cfg: Any, overrides: Mapping[str, Any], start: StartPoint) -> Any:
    """For a resumed run, the snapshot's configuration (with the command line's runtime
    options): the snapshot, not the command line, says what network and recipe the run has."""
    if not (start.resumed and start.snap.get("config")):
        return cfg
    cfg = config_from_snapshot(start.snap["config"], overrides, purpose="resume",
                               snapshot=start.path, entry="train")
    logger.info("configuration of %s restored (%s)", start.path,
                ", ".join(snapshot_fields("resume", start.snap["config"])))
    return cfg


def build_training_data(cfg: Any, *, seed: int, info: DistInfo, device: torch.device,
                        gpu_ids: List[int]) -> Tuple[Any, EpochData]:
    """The training set and this process's share of it: (dataset, `EpochData`)."""
    dataset = build_dataset(cfg, cfg.dataset, "train")
    batch_size = cfg.train_batch_size * max(1, len(gpu_ids))  # per process
    # From shards, each rank reads its own (data/shards/sampler.py).
    sampler = (shard_train_sampler if isinstance(dataset, ShardVideos) else TrainSampler)(
        dataset, seed=seed, rank=info.rank, world_size=info.world_size)
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
    return dataset, EpochData(loader=loader, sampler=sampler, batch_size=batch_size,
                              iters_per_epoch=iters_per_epoch)


if __name__ == "__main__":
    main()
