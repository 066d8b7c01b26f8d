"""Train one IntegralAction stage: rgb_only, pose_only, or rgb+pose (from the merged snapshot).

    python main/train.py --mode rgb_only [--gpu 0-3] [--continue] [--dataset Kinetics] [--<field> value ...]
"""
import os.path as osp, sys; sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E401,E702

import logging
import os
import random
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from common.checkpoint import (STREAM_MODULES, CheckpointError, find_resume_snapshot,
                               has_fusion_heads, load_network,
                               load_snapshot, load_stage_heads, save_snapshot, snapshot_path,
                               snapshot_stage)
from common.device import describe_device, prepare_model, select_device
from common.engine import make_optimizer, train_one_epoch
from common.logger import setup_logging
from common.model import IntegralAction, build_model
from data.registry import build_dataset
from main.config import config_from_argv, describe_config

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


def restore_state(model: IntegralAction, cfg: Any) -> Tuple[int, Optional[Dict[str, Any]]]:
    """Where training starts: (first epoch, optimizer state to restore or None).

    rgb_only/pose_only start from scratch unless --continue. rgb+pose always starts from a
    snapshot: the merged `snapshot_0` (or `init_snapshot`), or with --continue the newest
    rgb+pose snapshot. A merged snapshot carries only the two streams; the aggregator and the
    classifier keep their fresh initialisation, and the optimizer starts afresh.
    """
    found = None
    if cfg.continue_train:
        found = find_resume_snapshot(cfg.model_dir, cfg.mode)
        if found is None:
            raise CheckpointError(f"--continue: no snapshot of stage '{cfg.mode}' in {cfg.model_dir}")
    elif cfg.mode == "rgb+pose":
        path = cfg.init_snapshot or snapshot_path(cfg.model_dir, 0)
        if not osp.isfile(path):
            raise CheckpointError(
                f"rgb+pose starts from the merged snapshot {path}, which does not exist. Train "
                "rgb_only and pose_only, then run tool/merge_rgb_only_pose_only.py.")
        found = (path, load_snapshot(path))
    if found is None:
        return 0, None
    path, snap = found
    if snapshot_stage(snap) not in (cfg.mode, None):
        raise CheckpointError(f"{path} is a '{snapshot_stage(snap)}' snapshot, not '{cfg.mode}'")
    merged = bool(snap.get("merged")) or not has_fusion_heads(snap["network"])
    if cfg.mode == "rgb+pose" and merged:
        load_network(model, snap["network"], modules=STREAM_MODULES)
        if cfg.stream_agreement:
            load_stage_heads(model, snap["network"], path)
        logger.info("rgb+pose starts from merged snapshot %s (streams loaded; aggregator and "
                    "classifier freshly initialised)", path)
        return int(snap.get("epoch", 0)) + 1, None
    load_network(model, snap["network"])
    logger.info("resuming from %s (epoch %d)", path, snap["epoch"])
    return int(snap["epoch"]) + 1, snap.get("optimizer") or None


def main(argv: Optional[Sequence[str]] = None) -> None:
    cfg = config_from_argv("train", argv)
    for folder in (cfg.model_dir, cfg.log_dir, cfg.result_dir, cfg.vis_dir):
        os.makedirs(folder, exist_ok=True)
    setup_logging(cfg.log_dir, f"train_{cfg.mode.replace('+', '_')}")
    logger.info("config:\n  %s", "\n  ".join(describe_config(cfg)))
    generator = seed_everything(cfg.seed)
    device, gpu_ids = select_device(cfg.gpu_ids)
    logger.info("device: %s", describe_device(device, gpu_ids))

    dataset = build_dataset(cfg, cfg.dataset, "train")
    batch_size = cfg.train_batch_size * max(1, len(gpu_ids))
    if len(dataset) == 0:
        raise SystemExit(f"the {cfg.dataset} training set is empty (see the log for skipped videos)")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=cfg.num_thread,
                        pin_memory=device.type == "cuda", drop_last=len(dataset) > batch_size,
                        generator=generator, persistent_workers=cfg.num_thread > 0)
    logger.info("%s train: %d clips per epoch, %d classes, batch %d", cfg.dataset, len(dataset),
                dataset.class_num, batch_size)

    joints = dataset.joint_set
    model = build_model(cfg, dataset.class_num, joints.limbs, joints.joint_num)
    model.init_weights(cfg.pretrained)
    start_epoch, optim_state = restore_state(model, cfg)
    model.freeze_for_stage()
    net = prepare_model(model, device, gpu_ids)
    optimizer = make_optimizer(net, cfg)
    if optim_state:
        optimizer.load_state_dict(optim_state)
        logger.info("optimizer state restored")
    logger.info("trainable modules: %s (%d parameters)", ", ".join(model.trainable_modules()),
                sum(p.numel() for p in model.trainable_parameters()))

    for epoch in range(start_epoch, cfg.end_epoch):
        stats = train_one_epoch(net, loader, optimizer, device, cfg, epoch, generator)
        logger.info("epoch %d done: %s", epoch, " ".join(f"{k} {v:.4g}" for k, v in stats.items()))
        path = snapshot_path(cfg.model_dir, epoch)
        save_snapshot(path, net, optimizer, epoch, cfg.mode, cfg)
        logger.info("snapshot saved: %s", path)


if __name__ == "__main__":
    try:
        main()
    except CheckpointError as err:
        raise SystemExit(f"error: {err}")
