"""Choose the robust recipe on the validation splits of the main job: which trained fusion
recipe, and its `pose_fallback` threshold.

    python tool/quickstart.py --seeds 5                 # trains every stage of seeds 0..4
    python tool/choose_fallback.py --seeds 5            # reads only their validation splits
    # other fusion recipes, trained beside the quickstart's own (same seeds, same data):
    python tool/train_all.py --config configs/quickstart.toml --config configs/robust.toml \
        --output_dir output/quickstart/seed0 --data_dir output/quickstart/data_seed0 --seed 0 \
        --fusion_dir fusion_aug75 --rgb+pose.context_aug_prob 0.75 --test_datasets none
    python tool/choose_fallback.py --fusion_dirs fusion_robust,fusion_aug75

For each seed it runs the quickstart's rgb_only, pose_only and each candidate rgb+pose snapshot
once over the in-context and out-of-context *validation* splits (`--subset SynthValid`: other
videos than the test splits, from the same generator), tested as the quickstart tests
(configs/quickstart.toml's clips per video; `--fast`: configs/quickstart_fast.toml's). It keeps
every clip's fused prediction, the pose stage's own prediction and the streams' agreement, and
scores each threshold T with the very rule the network applies (`common.nets.pose_fallback`).
The test splits are never read here: the recipe and threshold this prints are what
configs/robust.toml sets, and the quickstart's test table is read once, with them.

A candidate (fusion folder, threshold) is better when more seeds meet all five criteria of the
quickstart's table on the validation splits, then when its worst seed's smallest margin to a
criterion is larger, then when the seeds' smallest margins are larger on average. The table and
the choice go to `<output_dir>/result/choose_fallback.md` and `.json`. Each stage's validation
outputs are kept beside its snapshots (`<stage>/validation/clip_outputs_*.npz`), so trying other
thresholds again evaluates nothing; a snapshot trained again, or a data set written again, is
evaluated again.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from common.errors import UsageError, exit_on_error
from common.io.atomic_file import atomic_write
from common.nets.pose_fallback import fall_back_to_pose
from common.report.problems import ProblemTally
from common.runtime.distributed import DistInfo
from common.runtime.precision import resolve_precision
from common.train.checkpoint import list_snapshots, load_network
from common.train.engine import evaluate, predict
from common.model import build_model
from data.file_cache import file_identity
from main.cli import OneLineParser
from main.config import FIELDS, build_config
from main.config_file import read_recipe, recipe_overrides
from main.test import build_test_data, inference_network, read_test_snapshot, snapshot_config
from tool.quickstart import recipe_file
from tool.quickstart_report import claim_checks, summarise
from tool.synthetic.layout import MARKER_NAME, valid_subset

logger = logging.getLogger("integral_action.choose_fallback")

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.8, 1.0)
# The quickstart's single-stream stage folders and its table's names (tool/quickstart.py).
SINGLES = (("rgb_only", "rgb_only"), ("pose_only", "pose_only"))
SPLITS = (("Kinetics", "in context"), ("Mimetics", "out of context"))
ROBUST = "rgb+pose (robust)"  # the row a candidate takes in the criteria

# {stage folder: {split: clip outputs}} of one seed.
SeedOutputs = Dict[str, Dict[str, Dict[str, np.ndarray]]]


def testing_fields(recipe_path: str, mode: str) -> Dict[str, Any]:
    """The quickstart recipe file's testing fields for stage `mode` (clips per video, batch):
    the validation splits are read as its test splits are."""
    fields = recipe_overrides([read_recipe(recipe_path)], mode)
    testing = {f.name for f in FIELDS if f.group == "testing"}
    return {name: value for name, value in fields.items() if name in testing}


def clip_outputs(run_dir: str, mode: str, *, data_dir: str, dataset: str, subset: str,
                 workers: int, testing: Optional[Dict[str, Any]] = None
                 ) -> Dict[str, np.ndarray]:
    """A stage's last snapshot over one data set, as test.py evaluates it, with the pose
    fallback off: `common.train.engine.predict`'s clip outputs ('prob' the fused prediction,
    and for a snapshot with the stages' classifiers 'agreement' and 'pose_prob'). `testing`:
    testing fields (`test_infer_num`, ...) over test.py's defaults.

    They are kept in `<run_dir>/validation/clip_outputs_<dataset><subset>.npz` with what they
    were computed from (the snapshot file and the data set's completion marker: their paths and
    `file_identity`): trying other thresholds or other candidates later reads them back, and a
    snapshot trained again or a data set written again is evaluated again.
    """
    model_dir = osp.join(run_dir, "model_dump")
    snapshots = list_snapshots(model_dir)
    if not snapshots:
        raise UsageError(f"{model_dir} holds no snapshot: run python tool/quickstart.py "
                         "with the same --output_dir and --seeds first")
    epoch, snapshot_path = snapshots[0][0], snapshots[0][1]
    marker = osp.join(data_dir, MARKER_NAME)
    key = json.dumps({"snapshot": osp.abspath(snapshot_path),
                      "snapshot_file": file_identity(snapshot_path), "mode": mode,
                      "data_dir": osp.abspath(data_dir), "data_marker": file_identity(marker),
                      "dataset": dataset, "subset": subset, "testing": testing or {}},
                     sort_keys=True)
    kept = osp.join(run_dir, "validation", f"clip_outputs_{dataset}{subset}.npz")
    if osp.isfile(kept):
        with np.load(kept) as stored:
            if str(stored["key"]) == key:
                return {name: stored[name] for name in stored.files if name != "key"}
    overrides: Dict[str, Any] = {
        "mode": mode, "model_dir": model_dir, "test_epoch": epoch,
        "data_dir": data_dir, "dataset": dataset, "subset": subset, "num_thread": workers,
        "output_dir": osp.join(run_dir, "validation"), "progress_bar": False, **(testing or {})}
    if mode == "rgb+pose":
        overrides["pose_fallback"] = 0.0  # the fused prediction alone; the rule is applied here
    cfg = build_config(overrides, entry="test")
    path, snap, class_num = read_test_snapshot(cfg)
    cfg = snapshot_config(cfg, overrides, path=path, snap=snap, class_num=class_num)
    device = torch.device("cpu")
    data, _, loader = build_test_data(cfg, info=DistInfo(), device=device, gpu_ids=[])
    model = build_model(cfg, class_num, data.joint_set.limbs, data.joint_set.joint_num)
    load_network(model, snap["network"])
    precision = resolve_precision(cfg, device, training=False)
    net = inference_network(model, cfg, device=device, gpu_ids=[], precision=precision)
    tally = ProblemTally(strict=cfg.strict, logger=logger)
    outputs = predict(net, loader, device, progress=False, tally=tally, precision=precision)
    with atomic_write(kept, "wb") as f:
        np.savez(f, key=np.array(key), **outputs)
    return outputs


def top1_with_fallback(outputs: Dict[str, np.ndarray], threshold: float) -> float:
    """Video top-1 of the fused snapshot's outputs under `pose_fallback = threshold` (0: off):
    the network's own rule (`fall_back_to_pose`) on its recorded clip outputs."""
    probs = outputs["prob"]
    if threshold > 0:
        if "pose_prob" not in outputs:
            raise UsageError("the robust snapshot has no stage classifiers (stream_agreement): "
                             "train it with configs/robust.toml")
        logits, _ = fall_back_to_pose(torch.from_numpy(np.log(np.maximum(probs, 1e-12))),
                                      torch.from_numpy(outputs["pose_prob"]),
                                      torch.from_numpy(outputs["agreement"]), threshold=threshold)
        probs = torch.softmax(logits, dim=1).numpy()
    return float(evaluate(dict(outputs, prob=probs))["top1"])


def seed_outputs(seed_dir: str, data_dir: str, fusion_dirs: Sequence[str], workers: int,
                 testing: Dict[str, Dict[str, Any]]) -> SeedOutputs:
    """{stage folder: {split: clip outputs}} of one seed's single-stream stages and candidate
    fusion folders on the validation splits, with `testing[mode]`'s testing fields."""
    subset = valid_subset("Synth")
    stages = [(folder, mode) for folder, mode in SINGLES] + [(d, "rgb+pose") for d in fusion_dirs]
    return {folder: {split: clip_outputs(osp.join(seed_dir, folder), mode, data_dir=data_dir,
                                         dataset=dataset, subset=subset, workers=workers,
                                         testing=testing[mode])
                     for dataset, split in SPLITS}
            for folder, mode in stages}


def seed_results(outputs: SeedOutputs, fusion_dir: str, threshold: float
                 ) -> Dict[str, Dict[str, Dict[str, float]]]:
    """One seed's validation table ({stage: {split: {'top1'}}}): the single streams, and the
    candidate `fusion_dir` at `threshold` as the robust row."""
    table = {name: {split: {"top1": top1_with_fallback(out, 0.0)}
                    for split, out in outputs[folder].items()} for name, folder in SINGLES}
    table[ROBUST] = {split: {"top1": top1_with_fallback(out, threshold)}
                     for split, out in outputs[fusion_dir].items()}
    return table


def margins(results: Dict[str, Dict[str, Dict[str, float]]]) -> Tuple[bool, float]:
    """(all five criteria hold, the smallest margin in top-1 points to the robust row's
    criteria) for one seed's table."""
    def top1(name: str, split: str) -> float:
        return results[name][split]["top1"]
    held = all(h[ROBUST] for _, h in claim_checks(summarise([results])))
    rgb_in, pose_in = top1("rgb_only", "in context"), top1("pose_only", "in context")
    rob_in, rob_out = top1(ROBUST, "in context"), top1(ROBUST, "out of context")
    smallest = min(rob_in - (rgb_in - 2), rob_in - pose_in,
                   rob_out - (top1("rgb_only", "out of context") + 20),
                   rob_out - (top1("pose_only", "out of context") - 3))
    return held, smallest


def choose(per_seed: List[SeedOutputs], fusion_dirs: Sequence[str],
           thresholds: Sequence[float]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The best candidate (`rank`) and one row per (fusion folder, threshold): seeds meeting
    every criterion, worst and mean margin, mean top-1 in and out of context, each seed's
    table. A folder without the stages' classifiers is tried without the fallback only."""
    rows = []
    for fusion_dir in fusion_dirs:
        has_heads = all("pose_prob" in o[fusion_dir]["in context"] for o in per_seed)
        for threshold in (thresholds if has_heads else [0.0]):
            tables = [seed_results(outputs, fusion_dir, threshold) for outputs in per_seed]
            checks = [margins(t) for t in tables]
            rows.append({
                "fusion_dir": fusion_dir, "threshold": threshold,
                "seeds_meeting_all": sum(h for h, _ in checks),
                "worst_margin": min(m for _, m in checks),
                "mean_margin": float(np.mean([m for _, m in checks])),
                "robust_in": float(np.mean([t[ROBUST]["in context"]["top1"] for t in tables])),
                "robust_out": float(np.mean([t[ROBUST]["out of context"]["top1"]
                                             for t in tables])),
                "per_seed": tables})
    best = max(rows, key=rank)
    return best, rows


def rank(row: Dict[str, Any]) -> Tuple[int, float, float]:
    """How good a candidate is: the seeds meeting every criterion, then the worst seed's margin,
    then the mean of the seeds' margins (a tie on the worst seed is common: margins move in
    steps of one video). Rounded so that equal margins computed in another order tie."""
    return (row["seeds_meeting_all"], round(row["worst_margin"], 6),
            round(row["mean_margin"], 6))


def markdown(rows: List[Dict[str, Any]], chosen: Dict[str, Any], seeds: Sequence[int]) -> str:
    lines = [f"Fusion recipes and pose_fallback on the validation splits (--subset SynthValid), "
             f"seeds {', '.join(map(str, seeds))}", "",
             "| fusion folder | pose_fallback | seeds meeting all 5 criteria | worst margin "
             "(top-1 points) | mean margin | in context (mean) | out of context (mean) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " (chosen)" if r is chosen else ""
        lines.append(f"| {r['fusion_dir']} | {r['threshold']:g}{mark} | "
                     f"{r['seeds_meeting_all']} of {len(seeds)} | {r['worst_margin']:+.1f} | "
                     f"{r['mean_margin']:+.1f} | "
                     f"{r['robust_in']:.1f} | {r['robust_out']:.1f} |")
    return "\n".join(lines) + "\n"


def parse_arguments(argv: Optional[Sequence[str]] = None
                    ) -> Tuple[argparse.Namespace, List[str], List[float]]:
    """The command line: (arguments, fusion folders, thresholds), checked before any work.

    Raises:
        UsageError: no seed, no fusion folder, or a threshold that is not a number in [0, 1]
            (pose_fallback's range).
    """
    parser = OneLineParser(prog="choose_fallback.py",
                           description="choose pose_fallback on the validation splits")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds (0, 1, ...)")
    parser.add_argument("--first_seed", type=int, default=0)
    parser.add_argument("--output_dir", default=osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), "output"),
        help="the quickstart's --output_dir")
    parser.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS),
                        help="comma-separated values in [0, 1] to try (0: no fallback)")
    parser.add_argument("--fusion_dirs", default="fusion_robust",
                        help="comma-separated rgb+pose folders of each seed to choose among")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--fast", action="store_true",
                        help="the stages of `quickstart.py --fast` (its recipe's test settings)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: give 1 or more (how many seeds to read)")
    fusion_dirs = [d for d in args.fusion_dirs.split(",") if d]
    if not fusion_dirs:
        raise UsageError(f"--fusion_dirs {args.fusion_dirs!r} names no folder: give the "
                         "rgb+pose folders to choose among, e.g. fusion_robust")
    try:
        thresholds = [float(t) for t in args.thresholds.split(",")]
    except ValueError:
        raise UsageError(f"--thresholds must be numbers, got {args.thresholds!r}") from None
    outside = [t for t in thresholds if not 0 <= t <= 1]  # NaN is outside too
    if outside:
        raise UsageError(f"--thresholds {args.thresholds}: {outside[0]:g} is not a "
                         "pose_fallback; give values in [0, 1] (0: no fallback)")
    return args, fusion_dirs, thresholds


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args, fusion_dirs, thresholds = parse_arguments(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    root = osp.join(args.output_dir, "quickstart")
    testing = {mode: testing_fields(recipe_file(args.fast), mode)
               for mode in [m for _, m in SINGLES] + ["rgb+pose"]}
    per_seed = []
    for seed in seeds:
        per_seed.append(seed_outputs(osp.join(root, f"seed{seed}"),
                                     osp.join(root, f"data_seed{seed}"), fusion_dirs,
                                     args.workers, testing))
        print(f"[seed {seed}] validation outputs ready", flush=True)
    chosen, rows = choose(per_seed, fusion_dirs, thresholds)
    text = markdown(rows, chosen, seeds)
    print(text)
    os.makedirs(osp.join(args.output_dir, "result"), exist_ok=True)
    with open(osp.join(args.output_dir, "result", "choose_fallback.md"), "w") as f:
        f.write(text)
    with open(osp.join(args.output_dir, "result", "choose_fallback.json"), "w") as f:
        json.dump({"seeds": seeds, "chosen": {k: chosen[k] for k in ("fusion_dir", "threshold")},
                   "rows": rows}, f, indent=1)
    return {"chosen": chosen, "rows": rows}


if __name__ == "__main__":
    main()
