"""Train one IntegralAction stage: rgb_only, pose_only, or rgb+pose (from the merged snapshot).

    python main/train.py --mode rgb_only [--gpu 0-3] [--continue] [--dataset Kinetics] [--<field> value ...]
"""
import os.path as osp, sys; sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E401,E702

import logging
import os
import random
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from common.checkpoint import (STREAM_MODULES, CheckpointError, find_resume_snapshot,
                               has_fusion_heads, list_snapshots, load_network, load_snapshot,
                               load_stage_heads, new_run_info, remove_stale_temporaries,
                               save_snapshot, snapshot_path, snapshot_stage)
from common.device import describe_device, prepare_model, select_device
from common.engine import make_optimizer, train_one_epoch
from common.errors import exit_on_error
from common.logger import setup_logging
from common.model import IntegralAction, build_model
from common.problems import ProblemTally
from common.stages import Stage, get_stage
from data.collate import collate_clips
from data.registry import build_dataset
from main.config import (build_config, config_from_snapshot, describe_config, parse_command_line,
                         snapshot_fields)

logger = logging.getLogger("integral_action.train")


def seed_everything(seed: Optional[int]) -> Optional[torch.Generator]:
    if seed is None:
        return None
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


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
        start = StartPoint(int(snap.get("epoch", 0)) + 1, path, snap)
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
    taken = [(e, p) for e, p in sorted(list_snapshots(cfg.model_dir))
             if start.epoch <= e < cfg.end_epoch]
    if not taken or cfg.overwrite:
        if taken:
            logger.warning("--overwrite: snapshot_%d..%d in %s will be replaced by this run",
                           taken[0][0], taken[-1][0], cfg.model_dir)
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


def restore_state(model: IntegralAction, cfg: Any, start: StartPoint) -> Optional[Dict[str, Any]]:
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
    logger.info("resuming from %s (epoch %d)", start.path, start.snap["epoch"])
    return start.snap.get("optimizer") or None


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Optional[str]:
    """Train one stage; returns the path of the last snapshot written (None: nothing to do)."""
    overrides = parse_command_line("train", argv)
    cfg = build_config(overrides, entry="train")
    for folder in (cfg.model_dir, cfg.log_dir, cfg.result_dir, cfg.vis_dir):
        os.makedirs(folder, exist_ok=True)
    stage = get_stage(cfg.mode)
    setup_logging(cfg.log_dir, f"train_{stage.slug}")
    device, gpu_ids = select_device(cfg.gpu_ids)
    remove_stale_temporaries(cfg.model_dir)

    start = find_start(cfg, stage)
    if cfg.continue_train and not start.merged and start.snap.get("config"):
        # The snapshot, not the command line, says what network and recipe the run has.
        cfg = config_from_snapshot(start.snap["config"], overrides, purpose="resume",
                                   snapshot=start.path, entry="train")
        logger.info("configuration of %s restored (%s)", start.path,
                    ", ".join(snapshot_fields("resume", start.snap["config"])))
    logger.info("config:\n  %s", "\n  ".join(describe_config(cfg)))
    logger.info("device: %s", describe_device(device, gpu_ids))
    if start.epoch >= cfg.end_epoch:
        logger.info("nothing left to do: %s is epoch %d and end_epoch is %d; raise --end_epoch "
                    "to train further", start.path, start.epoch - 1, cfg.end_epoch)
        return None
    check_no_overwrite(cfg, stage, start)
    generator = seed_everything(cfg.seed)

    dataset = build_dataset(cfg, cfg.dataset, "train")
    batch_size = cfg.train_batch_size * max(1, len(gpu_ids))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=cfg.num_thread,
                        pin_memory=device.type == "cuda", drop_last=len(dataset) > batch_size,
                        generator=generator, persistent_workers=cfg.num_thread > 0,
                        collate_fn=collate_clips)
    logger.info("%s train: %d clips per epoch, %d classes, batch %d", cfg.dataset, len(dataset),
                dataset.class_num, batch_size)

    joints = dataset.joint_set
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    # Backbones that a snapshot overwrites whole need no ImageNet weights (nor a download).
    model.init_weights(cfg.pretrained if start.snap is None else None)
    optim_state = restore_state(model, cfg, start)
    model.freeze_for_stage()
    net = prepare_model(model, device, gpu_ids)
    optimizer = make_optimizer(net, cfg)
    if optim_state:
        optimizer.load_state_dict(optim_state)
        logger.info("optimizer state restored")
    logger.info("trainable modules: %s (%d parameters)", ", ".join(model.trainable_modules()),
                sum(p.numel() for p in model.trainable_parameters()))
    logger.info("run %s, epochs %d..%d", start.run["id"], start.epoch, cfg.end_epoch - 1)

    tally = ProblemTally(strict=cfg.strict, logger=logger)
    path = None
    for epoch in range(start.epoch, cfg.end_epoch):
        tally.reset()
        stats = train_one_epoch(net, loader, optimizer, device, cfg, epoch, generator, tally)
        logger.info("epoch %d done: %s", epoch, " ".join(f"{k} {v:.4g}" for k, v in stats.items()))
        logger.info("epoch %d data problems: %s", epoch, tally.summary())
        path = snapshot_path(cfg.model_dir, epoch)
        save_snapshot(path, net, optimizer, epoch, cfg.mode, cfg, run=start.run)
        logger.info("snapshot saved: %s", path)
    return path


if __name__ == "__main__":
    main()
