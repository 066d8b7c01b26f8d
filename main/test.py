"""Test a snapshot: top-1/top-5 over `test_infer_num` clips per video, and the result file.

    python main/test.py --mode rgb+pose --test_epoch 29 [--gpu 0] [--dataset Mimetics]
"""
import os.path as osp, sys; sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E401,E702

import json
import logging
import os
from typing import Any, Dict, Optional, Sequence

from torch.utils.data import DataLoader

from common.checkpoint import (CheckpointError, check_stage, from_authors_layout, load_network,
                               load_snapshot, snapshot_path)
from common.device import describe_device, prepare_model, select_device
from common.engine import evaluate, predict
from common.logger import setup_logging
from common.metrics import results_dict
from common.model import build_model
from data.registry import build_dataset
from main.config import config_from_argv, describe_config

logger = logging.getLogger("integral_action.test")


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    cfg = config_from_argv("test", argv)
    for folder in (cfg.log_dir, cfg.result_dir):
        os.makedirs(folder, exist_ok=True)
    setup_logging(cfg.log_dir, f"test_{cfg.mode.replace('+', '_')}")
    logger.info("config:\n  %s", "\n  ".join(describe_config(cfg)))
    device, gpu_ids = select_device(cfg.gpu_ids)
    logger.info("device: %s", describe_device(device, gpu_ids))

    path = snapshot_path(cfg.model_dir, cfg.test_epoch)
    snap = load_snapshot(path, map_location="cpu")
    check_stage(snap, cfg.mode, path)
    if snap.get("merged"):
        raise CheckpointError(f"{path} is the merge tool's output (untrained fusion heads); "
                              "train rgb+pose from it before testing")
    network = from_authors_layout(snap["network"])
    if "classifier.fc.0.weight" not in network:
        raise CheckpointError(f"{path} has no classifier weights")
    class_num = int(network["classifier.fc.0.weight"].shape[0])

    dataset = build_dataset(cfg, cfg.dataset, "test")
    if dataset.class_num > class_num:
        raise CheckpointError(f"the {cfg.dataset} test set has {dataset.class_num} classes but the "
                              f"snapshot predicts {class_num}")
    loader = DataLoader(dataset, batch_size=cfg.test_batch_size * max(1, len(gpu_ids)),
                        shuffle=False, num_workers=cfg.num_thread,
                        pin_memory=device.type == "cuda")
    joints = dataset.joint_set
    model = build_model(cfg, class_num, joints.limbs, joints.joint_num)
    load_network(model, snap["network"])
    net = prepare_model(model, device, gpu_ids)
    logger.info("testing %s (epoch %s, %s) on %s: %d clips", path, snap.get("epoch"), cfg.mode,
                cfg.dataset, len(dataset))

    predictions = predict(net, loader, device, progress=cfg.progress_bar)
    print("Evaluation start...")
    result = evaluate(predictions)
    print("Top-1 accuracy: %.4f" % result["top1"])
    print("Top-5 accuracy: %.4f" % result["top5"])
    output_path = osp.join(cfg.result_dir, f"{cfg.dataset.lower()}_result.json")
    with open(output_path, "w") as f:
        json.dump(results_dict(result["video_ids"], result["probs"]), f)
    print("Result is saved at: " + output_path)
    summary = {"mode": cfg.mode, "dataset": cfg.dataset, "epoch": snap.get("epoch"),
               "top1": result["top1"], "top5": result["top5"], "videos": len(result["video_ids"])}
    if "gate_mean" in predictions:
        summary["gate_mean"] = float(predictions["gate_mean"].mean())
    if "agreement" in predictions:
        summary["agreement_mean"] = float(predictions["agreement"].mean())
    with open(osp.join(cfg.result_dir, f"{cfg.dataset.lower()}_metrics.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logger.info("top-1 %.4f top-5 %.4f over %d videos", result["top1"], result["top5"],
                len(result["video_ids"]))
    return summary


if __name__ == "__main__":
    try:
        main()
    except CheckpointError as err:
        raise SystemExit(f"error: {err}")
