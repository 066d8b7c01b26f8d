"""Test a snapshot: top-1/top-5 over `test_infer_num` clips per video, and the result file.

    python main/test.py --mode rgb+pose --test_epoch 29 [--gpu 0] [--dataset Mimetics]
    torchrun --nproc_per_node 4 main/test.py --mode rgb+pose --test_epoch 29 [...]

The steps: parse the command line (`main`), read the snapshot and build the data and the
network (`test_snapshot`), predict on every rank (`predict_all_ranks`), then score and write
the results (`report`).
"""

import json
import logging
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from common.train.checkpoint import (CheckpointError, list_snapshots, load_network, load_snapshot,
                                     snapshot_path)
from common.train.snapshot_stages import check_stage, classifier_class_count
from common.runtime.device import prepare_model
from common.runtime.distributed import DistInfo, all_gather_objects, distributed_process
from common.train.engine import evaluate, predict
from common.errors import DataError, UsageError, exit_on_error
from common.io.logger import setup_logging
from common.io.run_lock import ensure_writable_folders
from common.report.metrics import average_clip_probs, evaluation_report, format_report, results_dict
from common.model import build_model
from common.report.plots import write_report_files
from common.train.inference import eval_chunk_clips, optimize_for_inference
from common.runtime.precision import Precision, resolve_precision
from common.report.problems import ProblemTally, sum_counts
from common.io.provenance import git_revision
from common.stages import Stage, get_stage
from data.clip_loader import build_clip_loader
from data.registry import build_dataset
from data.samplers import ShardedBatchSampler
from data.shards.dataset import ShardVideos
from data.video_pose_dataset import LoadingOptions
from main.cli import parse_command_line
from main.config import build_config, check_relations
from main.snapshot_config import config_from_snapshot, snapshot_fields
from main.run_log import log_run_setup

logger = logging.getLogger("integral_action.test")


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Test a snapshot; returns the summary written to `<dataset>_metrics.json` (an empty dict
    on ranks other than 0 under torchrun)."""
    overrides = parse_command_line("test", argv)
    cfg = build_config(overrides, entry="test")
    with distributed_process(cfg.gpu_ids, cfg.dist_backend) as (info, device, gpu_ids):
        return test_snapshot(cfg, overrides, info=info, device=device, gpu_ids=gpu_ids)


def test_snapshot(cfg: Any, overrides: Dict[str, Any], *, info: DistInfo, device: torch.device,
                  gpu_ids: List[int]) -> Dict[str, Any]:
    """The body of `main`, once the process knows its device and rank.

    test.py takes no lock: it only reads the snapshot folder, so it may test a snapshot while
    the stage goes on training; its output folders are checked before any work."""
    ensure_writable_folders((cfg.log_dir, cfg.result_dir, cfg.vis_dir))
    stage = get_stage(cfg.mode)
    setup_logging(cfg.log_dir, f"test_{stage.slug}", rank=info.rank)
    path, snap, class_num = read_test_snapshot(cfg)
    cfg = snapshot_config(cfg, overrides, path=path, snap=snap, class_num=class_num)
    precision = resolve_precision(cfg, device, training=False)
    log_run_setup(logger, cfg, revision=git_revision(), device=device, gpu_ids=gpu_ids,
                  info=info, precision=precision)
    dataset, batches, loader = build_test_data(cfg, info=info, device=device, gpu_ids=gpu_ids)
    joints = dataset.joint_set
    model = build_model(cfg, class_num, joints.limbs, joints.joint_num)
    load_network(model, snap["network"])
    net = inference_network(model, cfg, device=device, gpu_ids=[] if info.enabled else gpu_ids,
                            precision=precision)
    logger.info("testing %s (epoch %s, %s) on %s: %d clips%s", path, snap.get("epoch"), cfg.mode,
                cfg.dataset, len(dataset),
                f", {len(batches)} batches on this rank" if info.enabled else "")
    predictions, tally = predict_all_ranks(net, loader, cfg, device=device, info=info,
                                           precision=precision)
    if not info.is_main:
        return {}
    return report(cfg, stage=stage, snap=snap, dataset=dataset, predictions=predictions,
                  tally=tally, class_num=class_num)


def read_test_snapshot(cfg: Any) -> Tuple[str, Dict[str, Any], int]:
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
    return path, snap, classifier_class_count(snap, path)


def snapshot_config(cfg: Any, overrides: Mapping[str, Any], *, path: str,
                    snap: Mapping[str, Any], class_num: int) -> Any:
    """The configuration to test with: the network and the test-time input are the
    snapshot's, not the command line's (the command line's alone for the authors' snapshots,
    which record none); the class count is always its classifier's."""
    if snap.get("config"):
        cfg = config_from_snapshot(snap["config"], overrides, purpose="test", snapshot=path,
                                   entry="test")
        logger.info("network and input configuration taken from %s (%s)", path,
                    ", ".join(snapshot_fields("test", snap["config"])))
        warn_other_split(snap["config"], cfg, path)
    else:
        logger.info("%s records no configuration (the authors' format): the network is built "
                    "from the command line", path)
        # The rules involving network and input fields waited for a snapshot's config; this
        # one has none, so the command line's values are final and are checked now.
        check_relations(cfg, given=tuple(overrides), training=False)
    if overrides.get("class_num") not in (None, class_num):
        raise UsageError(f"--class_num {overrides['class_num']} contradicts {path}, whose "
                         f"classifier has {class_num} classes; drop --class_num")
    cfg.class_num = class_num
    return cfg


def warn_other_split(saved: Mapping[str, Any], cfg: Any, path: str) -> None:
    """Warn when a snapshot is tested on its own data set under another protocol than it was
    trained with (`--protocol`, like `--dataset`, comes from the command line): the test split
    may then hold its training videos. No protocol given means the data set's default, xsub."""
    trained, tested = saved.get("protocol") or "xsub", cfg.protocol or "xsub"
    if saved.get("dataset") == cfg.dataset and trained != tested:
        logger.warning("%s was trained on the %s split of %s, and is tested on its %s split: "
                       "the test videos may include training videos; give --protocol %s to "
                       "test on its own split", path, trained, cfg.dataset, tested, trained)


def build_test_data(cfg: Any, *, info: DistInfo, device: torch.device, gpu_ids: List[int]
                    ) -> Tuple[Any, ShardedBatchSampler, Any]:
    """The test set, this rank's contiguous share of its batches, and their loader."""
    # For a GPU, workers send whole-pixel clips as uint8 (a quarter of the bytes to pass and to
    # copy to the device) and `move_batch` makes the same float32 clips there. On the CPU the
    # conversion would land on the main process, which computes the network: no gain there.
    as_bytes = cfg.num_thread > 0 and device.type == "cuda"
    dataset = build_dataset(cfg, cfg.dataset, "test",
                            loading=LoadingOptions(video_as_bytes=as_bytes))
    batches = ShardedBatchSampler(len(dataset), cfg.test_batch_size * max(1, len(gpu_ids)),
                                  rank=info.rank, world_size=info.world_size)
    if isinstance(dataset, ShardVideos):  # fetch and check the shards of this rank's batches
        dataset.prepare(dataset.shards_of_items(i for b in batches for i in b), rank=info.rank)
    loader = build_clip_loader(dataset, batches, num_workers=cfg.num_thread,
                               pin_memory=device.type == "cuda")
    return dataset, batches, loader


def inference_network(model: nn.Module, cfg: Any, *, device: torch.device, gpu_ids: List[int],
                      precision: Precision) -> nn.Module:
    """The model for evaluation only: BatchNorm folded into the convolutions, the precision's
    memory layout, sub-batches of `eval_chunk_frames`, spread over `gpu_ids`."""
    chunk = eval_chunk_clips(cfg.eval_chunk_frames, cfg.frame_per_seg, device)
    fast, folded = optimize_for_inference(model.to(device), precision, chunk_clips=chunk)
    net = prepare_model(fast, device, gpu_ids)
    logger.info("%d BatchNorm layers folded into their convolutions for evaluation; %s", folded,
                f"the network runs {chunk} clip(s) at a time (eval_chunk_frames)" if chunk
                else "the network runs each batch whole")
    return net


def merge_predictions(parts: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """The ranks' predictions (`common.train.engine.predict`) as one, in rank order: with
    `ShardedBatchSampler`'s contiguous shards that is the single-process order."""
    merged: Dict[str, np.ndarray] = {}
    for key in parts[0]:
        arrays = [p[key] for p in parts if key in p and len(p[key])]
        merged[key] = np.concatenate(arrays) if arrays else parts[0][key]
    return merged


def predict_all_ranks(net: nn.Module, loader: Any, cfg: Any, *, device: torch.device,
                      info: DistInfo, precision: Precision
                      ) -> Tuple[Dict[str, np.ndarray], ProblemTally]:
    """This rank's predictions, then every rank's merged, with the data problems of all
    (on ranks other than 0, only this rank's)."""
    tally = ProblemTally(strict=cfg.strict, logger=logger)
    mine = predict(net, loader, device, progress=cfg.progress_bar and info.is_main, tally=tally,
                   precision=precision)
    gathered = all_gather_objects((mine, dict(tally.counts)), info)
    if not info.is_main:
        return mine, tally
    tally.counts = sum_counts(counts for _, counts in gathered)
    return merge_predictions([p for p, _ in gathered]), tally


def left_out_summary(dataset: Any, tally: ProblemTally, runtime_left_out: int) -> str:
    """Why annotated videos were not evaluated: start-up exclusions and unreadable clips."""
    parts = [f"{reason}: {count}" for reason, count in sorted(dataset.skipped.items())]
    if runtime_left_out:
        parts.append(f"unreadable clips: {runtime_left_out} ({tally.summary()})")
    return ", ".join(parts) or "none"


def report(cfg: Any, *, stage: Stage, snap: Mapping[str, Any], dataset: Any,
           predictions: Dict[str, np.ndarray], tally: ProblemTally, class_num: int
           ) -> Dict[str, Any]:
    """Print the original's lines and the detailed ones, write the result, metrics and plots;
    returns the summary written to `<dataset>_metrics.json`."""
    result = score(cfg, dataset=dataset, predictions=predictions, tally=tally)
    left_out = left_out_summary(dataset, tally, len(result["left_out"]))
    print(f"Evaluated {len(result['video_ids'])} of {dataset.annotated} annotated videos; "
          f"left out: {left_out}")
    keep = result["clip_mask"]
    clip_gates = predictions["gate_mean"][keep] if "gate_mean" in predictions else None
    details = evaluation_report(
        clip_probs=predictions["prob"][keep], clip_labels=predictions["label"][keep],
        video_probs=result["probs"], video_labels=result["labels"], class_num=class_num,
        clip_gates=clip_gates, video_gates=video_gates(predictions, keep),
        class_names=[dataset.class_names.get(i, str(i)) for i in range(class_num)])
    for line in format_report(details):
        print(line)
    files = write_report_files(
        details, clip_gates=clip_gates,
        clip_labels=predictions["label"][keep] if clip_gates is not None else None,
        result_dir=cfg.result_dir, vis_dir=cfg.vis_dir,
        prefix=f"{cfg.dataset.lower()}_{stage.slug}_epoch{snap.get('epoch')}")
    summary = metrics_summary(cfg, snap=snap, dataset=dataset, predictions=predictions,
                              result=result, details=details, tally=tally, files=files)
    with open(osp.join(cfg.result_dir, f"{cfg.dataset.lower()}_metrics.json"), "w") as f:
        json.dump(summary, f, indent=1)
    logger.info("top-1 %.4f top-5 %.4f mean class accuracy %.4f over %d of %d annotated videos; "
                "left out: %s; plots: %s", result["top1"], result["top5"],
                details["mean_class_accuracy"], len(result["video_ids"]), dataset.annotated,
                left_out, ", ".join(files.values()))
    return summary


def score(cfg: Any, *, dataset: Any, predictions: Dict[str, np.ndarray],
          tally: ProblemTally) -> Dict[str, Any]:
    """Video-level top-1/top-5 (`common.train.engine.evaluate`), printed as the original
    prints them, and the original's result file."""
    print("Evaluation start...")
    result = evaluate(predictions)
    if not len(result["video_ids"]):
        raise DataError(f"no video of the {cfg.dataset} test set could be evaluated (data "
                        f"problems: {tally.summary()}); see the log for the files")
    print("Top-1 accuracy: %.4f" % result["top1"])
    print("Top-5 accuracy: %.4f" % result["top5"])
    output_path = osp.join(cfg.result_dir, f"{cfg.dataset.lower()}_result.json")
    with open(output_path, "w") as f:
        json.dump(results_dict(result["video_ids"], result["probs"]), f)
    print("Result is saved at: " + output_path)
    return result


def video_gates(predictions: Dict[str, np.ndarray], keep: np.ndarray) -> Optional[np.ndarray]:
    """(V,) the mean gate of each scored video (its clips' `gate_mean` averaged), or None
    without a gate."""
    if "gate_mean" not in predictions:
        return None
    _, gates, _ = average_clip_probs(predictions["video_id"][keep],
                                     predictions["gate_mean"][keep][:, None],
                                     predictions["label"][keep])
    return gates[:, 0]


def metrics_summary(cfg: Any, *, snap: Mapping[str, Any], dataset: Any,
                    predictions: Dict[str, np.ndarray], result: Dict[str, Any],
                    details: Dict[str, Any], tally: ProblemTally,
                    files: Dict[str, str]) -> Dict[str, Any]:
    """What `<dataset>_metrics.json` holds."""
    summary = {"mode": cfg.mode, "dataset": cfg.dataset, "subset": cfg.subset,
               "epoch": snap.get("epoch"), "pose_fallback": cfg.pose_fallback,
               "top1": result["top1"], "top5": result["top5"],
               "videos": len(result["video_ids"]), "annotated": dataset.annotated,
               "left_out_at_start": dict(dataset.skipped),
               "left_out_unreadable": [int(v) for v in result["left_out"]],
               "data_problems": dict(tally.counts),
               "mean_class_accuracy": details["mean_class_accuracy"],
               "clip_top1": details["clip_top1"], "clip_top5": details["clip_top5"],
               "files": files, "report": details}
    if "gate_mean" in predictions:
        summary["gate_mean"] = float(predictions["gate_mean"].mean())
    if "agreement" in predictions:
        summary["agreement_mean"] = float(predictions["agreement"].mean())
    return summary


if __name__ == "__main__":
    main()
