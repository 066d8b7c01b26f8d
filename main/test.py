"""Test a snapshot: top-1/top-5 over `test_infer_num` clips per video, and the result file.

    python main/test.py --mode rgb+pose --test_epoch 29 [--gpu 0] [--dataset Mimetics]
"""
import os.path as osp, sys; sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E401,E702

import json
import logging
import os
from typing import Any, Dict, Optional, Sequence

from torch.utils.data import DataLoader

from common.checkpoint import (CheckpointError, check_stage, from_authors_layout, list_snapshots,
                               load_network, load_snapshot, snapshot_path)
from common.device import describe_device, prepare_model, select_device
from common.engine import evaluate, predict
from common.errors import DataError, UsageError, exit_on_error
from common.logger import setup_logging
from common.metrics import results_dict
from common.model import build_model
from common.problems import ProblemTally
from common.stages import get_stage
from data.collate import collate_clips
from data.registry import build_dataset
from main.config import (build_config, config_from_snapshot, describe_config, parse_command_line,
                         snapshot_fields)

logger = logging.getLogger("integral_action.test")


def read_test_snapshot(cfg: Any) -> tuple:
    """The snapshot of `--test_epoch`: (path, snapshot, class count of its classifier)."""
    path = snapshot_path(cfg.model_dir, cfg.test_epoch)
    if not osp.isfile(path):
        epochs = sorted(e for e, _ in list_snapshots(cfg.model_dir))
        have = (f"it has epoch(s) {', '.join(map(str, epochs[:12]))}" if epochs
                else "it holds no snapshot")
        raise CheckpointError(f"--test_epoch {cfg.test_epoch}: no {path} ({have}); pick a "
                              "trained epoch or point --output_dir/--model_dir at the run")
    snap = load_snapshot(path, map_location="cpu")
    check_stage(snap, cfg.mode, path)
    if snap.get("merged"):
        raise CheckpointError(f"{path} is the merge tool's output (untrained fusion heads); "
                              "train rgb+pose from it before testing")
    network = from_authors_layout(snap["network"])
    if "classifier.fc.0.weight" not in network:
        raise CheckpointError(f"{path} has no classifier weights")
    return path, snap, int(network["classifier.fc.0.weight"].shape[0])


def left_out_summary(dataset: Any, tally: ProblemTally, runtime_left_out: int) -> str:
    """Why annotated videos were not evaluated: start-up exclusions and unreadable clips."""
    parts = [f"{reason}: {count}" for reason, count in sorted(dataset.skipped.items())]
    if runtime_left_out:
        parts.append(f"unreadable clips: {runtime_left_out} ({tally.summary()})")
    return ", ".join(parts) or "none"


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    overrides = parse_command_line("test", argv)
    cfg = build_config(overrides, entry="test")
    for folder in (cfg.log_dir, cfg.result_dir):
        os.makedirs(folder, exist_ok=True)
    setup_logging(cfg.log_dir, f"test_{get_stage(cfg.mode).slug}")
    device, gpu_ids = select_device(cfg.gpu_ids)

    path, snap, class_num = read_test_snapshot(cfg)
    if snap.get("config"):
        # The network and the test-time input are the snapshot's, not the command line's.
        cfg = config_from_snapshot(snap["config"], overrides, purpose="test", snapshot=path,
                                   entry="test")
        logger.info("network and input configuration taken from %s (%s)", path,
                    ", ".join(snapshot_fields("test", snap["config"])))
    else:
        logger.info("%s records no configuration (the authors' format): the network is built "
                    "from the command line", path)
    if overrides.get("class_num") not in (None, class_num):
        raise UsageError(f"--class_num {overrides['class_num']} contradicts {path}, whose "
                         f"classifier has {class_num} classes; drop --class_num")
    cfg.class_num = class_num
    logger.info("config:\n  %s", "\n  ".join(describe_config(cfg)))
    logger.info("device: %s", describe_device(device, gpu_ids))

    dataset = build_dataset(cfg, cfg.dataset, "test")
    loader = DataLoader(dataset, batch_size=cfg.test_batch_size * max(1, len(gpu_ids)),
                        shuffle=False, num_workers=cfg.num_thread,
                        pin_memory=device.type == "cuda", collate_fn=collate_clips)
    joints = dataset.joint_set
    model = build_model(cfg, class_num, joints.limbs, joints.joint_num)
    load_network(model, snap["network"])
    net = prepare_model(model, device, gpu_ids)
    logger.info("testing %s (epoch %s, %s) on %s: %d clips", path, snap.get("epoch"), cfg.mode,
                cfg.dataset, len(dataset))

    tally = ProblemTally(strict=cfg.strict, logger=logger)
    predictions = predict(net, loader, device, progress=cfg.progress_bar, tally=tally)
    print("Evaluation start...")
    result = evaluate(predictions)
    evaluated = len(result["video_ids"])
    if not evaluated:
        raise DataError(f"no video of the {cfg.dataset} test set could be evaluated (data "
                        f"problems: {tally.summary()}); see the log for the files")
    print("Top-1 accuracy: %.4f" % result["top1"])
    print("Top-5 accuracy: %.4f" % result["top5"])
    output_path = osp.join(cfg.result_dir, f"{cfg.dataset.lower()}_result.json")
    with open(output_path, "w") as f:
        json.dump(results_dict(result["video_ids"], result["probs"]), f)
    print("Result is saved at: " + output_path)
    left_out = left_out_summary(dataset, tally, len(result["left_out"]))
    print(f"Evaluated {evaluated} of {dataset.annotated} annotated videos; left out: {left_out}")
    summary = {"mode": cfg.mode, "dataset": cfg.dataset, "epoch": snap.get("epoch"),
               "top1": result["top1"], "top5": result["top5"], "videos": evaluated,
               "annotated": dataset.annotated, "left_out_at_start": dict(dataset.skipped),
               "left_out_unreadable": [int(v) for v in result["left_out"]],
               "data_problems": dict(tally.counts)}
    if "gate_mean" in predictions:
        summary["gate_mean"] = float(predictions["gate_mean"].mean())
    if "agreement" in predictions:
        summary["agreement_mean"] = float(predictions["agreement"].mean())
    with open(osp.join(cfg.result_dir, f"{cfg.dataset.lower()}_metrics.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logger.info("top-1 %.4f top-5 %.4f over %d of %d annotated videos; left out: %s",
                result["top1"], result["top5"], evaluated, dataset.annotated, left_out)
    return summary


if __name__ == "__main__":
    main()
