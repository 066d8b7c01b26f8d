"""The paper's claim on any laptop: generate a context-biased action data set, train every stage,
test in and out of context, print and save the table and a bar chart.

    python tool/quickstart.py                 # one seed, about 10-15 minutes on 2 CPU cores
    python tool/quickstart.py --seeds 5       # each seed's row and criteria, mean and spread
    python tool/quickstart.py --fast          # a smoke run (seconds; what the test suite runs)
    python tool/quickstart.py --amp bf16      # every stage trained and tested in bf16 autocast
    python tool/quickstart.py --lambda_sweep  # the fusion stage at lambda 0, 1.5, 5, 10 + robust

It runs the recipe of `tool/train_all.py` (the project's own `main/train.py`, the merge tool and
`main/test.py`, in this process) from the recipe file configs/quickstart.toml (`--fast`:
configs/quickstart_fast.toml): 4 frames every 4th frame, 64 x 64 crops, 24 x 24 pose maps,
ResNet-18 from scratch.

Stages: rgb_only, pose_only, merge, then two rgb+pose runs from the same merged snapshot: the
paper's recipe (lambda = 1.5, no context augmentation; the default for real data) and the robust
recipe of this project (configs/robust.toml: the paper's fusion with frozen streams, and at
evaluation the pose stage's prediction where the streams disagree; docs/robust_recipe.md). The test splits are read here only; the robust
recipe's settings were chosen on the validation splits (tool/choose_fallback.py).
"""

import argparse
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union


from common.errors import exit_on_error
from common.stages import get_stage
from tool.recipe.steps import run_recipe
from tool.make_synthetic_dataset import generate_dataset
from tool.quickstart_report import report_text, summarise, write_outputs

SPLITS = (("Kinetics", "in context"), ("Mimetics", "out of context"))
CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "configs")


@dataclass(frozen=True)
class Recipe:
    """One row of the quickstart's table: a stage, and for rgb+pose the fusion recipe.

    Attributes:
        name: the row's name.
        slug: its stage's output folder.
        mode: its stage.
        configs: recipe files of `configs/` applied on top of the quickstart's own (see
            `recipe_file`), for this row's run only.
        options: command-line options for this row's rgb+pose stage only (the λ sweep's
            `--reg_weight`).
    """
    name: str
    slug: str
    mode: str
    configs: Tuple[str, ...] = ()
    options: Tuple[str, ...] = ()


# Two rgb+pose runs from the same merged snapshot: the paper's fusion, and this project's robust
# recipe (configs/robust.toml: the paper's fusion with the streams frozen whole, and the pose
# stage's own prediction where the two stages' classifiers disagree).
RECIPES: Tuple[Recipe, ...] = (
    Recipe("rgb_only", "rgb_only", "rgb_only"),
    Recipe("pose_only", "pose_only", "pose_only"),
    Recipe("rgb+pose (paper: lambda 1.5)", "fusion_paper", "rgb+pose"),
    Recipe("rgb+pose (robust)", "fusion_robust", "rgb+pose", ("robust.toml",)),
)

# The paper's ablation of the gate loss weight λ (`--reg_weight`), in kind: the paper's fusion at
# each λ from the same merged snapshot, and the robust recipe beside them.
SWEEP_LAMBDAS = (0.0, 1.5, 5.0, 10.0)
SWEEP_RECIPES: Tuple[Recipe, ...] = RECIPES[:2] + tuple(
    Recipe(f"rgb+pose (paper: lambda {lam:g})", f"fusion_lambda{lam:g}", "rgb+pose",
           options=("--rgb+pose.reg_weight", f"{lam:g}"))
    for lam in SWEEP_LAMBDAS) + RECIPES[3:]


def recipe_file(fast: bool) -> str:
    """The quickstart's shapes, epochs and learning rates: configs/quickstart.toml, or
    configs/quickstart_fast.toml for the smoke run."""
    return osp.join(CONFIGS, "quickstart_fast.toml" if fast else "quickstart.toml")


def config_files(recipe: Recipe, fast: bool) -> List[str]:
    """The recipe files of the run that trains `recipe`'s stage, lowest precedence first."""
    return [recipe_file(fast), *(osp.join(CONFIGS, name) for name in recipe.configs)]


def run_options(data_dir: str, seed: int, workers: int) -> List[str]:
    """The options the quickstart adds to its recipe files: its data, seed and workers."""
    return ["--data_dir", data_dir, "--seed", str(seed), "--num_thread", str(workers)]


def stage_results(tests: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """{split: {'top1', 'top5', 'gate', 'agreement'}} from a stage's test summaries by data
    set (the gate and the agreement where the stage has them)."""
    results: Dict[str, Dict[str, float]] = {}
    for dataset, split in SPLITS:
        summary = tests[dataset]
        results[split] = {"top1": summary["top1"], "top5": summary["top5"]}
        for key, name in (("gate_mean", "gate"), ("agreement_mean", "agreement")):
            if key in summary:
                results[split][name] = summary[key]
    return results


def run_seed(seed: int, out_root: str, fast: bool, workers: int, quiet: bool,
             data_params: Dict[str, int], amp: Optional[str] = None,
             recipes: Sequence[Recipe] = RECIPES, keep_trained: bool = False
             ) -> Dict[str, Dict[str, Dict[str, float]]]:
    """All stages for one seed; returns {recipe: {split: {'top1', 'top5'}}}.

    One run of `tool/train_all.py`'s recipe in `<out_root>/seed<seed>/` per fusion recipe: the
    first (the paper's, in `fusion_paper/`) trains rgb_only and pose_only too; the next ones
    (the robust recipe in `fusion_robust/`, the λ sweep's) find them done and merge them into
    their own folders.

    `keep_trained`: when the data set was found complete with the same parameters, the stages
    already trained in these folders are kept (train_all does what is missing: training, then
    the tests whose rule of evaluation changed); otherwise every stage starts over.
    """
    data_dir = osp.join(out_root, f"data_seed{seed}")
    t0 = time.perf_counter()
    data = generate_dataset(data_dir, seed=seed, **data_params)
    print(f"[seed {seed}] data ready in {data_dir} ({time.perf_counter() - t0:.0f} s)", flush=True)
    base = run_options(data_dir, seed, workers)
    if amp is not None:
        base += ["--amp", amp]  # training and testing in that precision
    singles = [r for r in recipes if not get_stage(r.mode).starts_from_merge]
    fused = [r for r in recipes if get_stage(r.mode).starts_from_merge]
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for k, fusion in enumerate(fused):
        # The data were just generated again, so every stage of the first run starts over;
        # the later runs reuse the single-stream stages that the first one trained.
        restart: Union[bool, Set[str]] = True if k == 0 else {fusion.mode}
        if keep_trained and data["skipped"]:
            restart = False
        run = run_recipe(
            osp.join(out_root, f"seed{seed}"), [*base, *fusion.options],
            config_files=config_files(fusion, fast),
            test_datasets=[dataset for dataset, _ in SPLITS], fusion_dir=fusion.slug,
            restart=restart, quiet=quiet)
        for recipe in ([*singles, fusion] if k == 0 else [fusion]):
            stage = run["stages"][recipe.mode]
            r = results[recipe.name] = stage_results(stage["tests"])
            print(f"[seed {seed}] {recipe.name:<30s} in context top-1 "
                  f"{r['in context']['top1']:6.2f} | out of context top-1 "
                  f"{r['out of context']['top1']:6.2f} ({stage['seconds']:.0f} s)", flush=True)
    # The table lists the recipes in their order, whatever order they ran in.
    return {r.name: results[r.name] for r in recipes}


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description="synthetic context-bias benchmark, end to end")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds (0, 1, ...)")
    parser.add_argument("--first_seed", type=int, default=0)
    parser.add_argument("--output_dir", default=osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "output"))
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--fast", action="store_true", help="tiny smoke run")
    parser.add_argument("--verbose", action="store_true", help="show train/test console output")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default=None,
                        help="train and test every stage in this precision (default: the "
                             "project's, fp32 on a CPU, bf16 training on a GPU)")
    parser.add_argument("--lambda_sweep", action="store_true",
                        help="the paper's ablation in kind: the fusion stage at lambda (the gate "
                             f"loss weight) {', '.join(f'{x:g}' for x in SWEEP_LAMBDAS)}, and the "
                             "robust recipe; writes quickstart_lambda_sweep.md/.json/.png")
    parser.add_argument("--keep_trained", action="store_true",
                        help="keep the stages a run with the same data already trained in "
                             "--output_dir (the same seeds: training is repeatable) and only "
                             "train and test what is missing, e.g. after a test-time change of "
                             "configs/robust.toml")
    args = parser.parse_args(argv)
    recipes = SWEEP_RECIPES if args.lambda_sweep else RECIPES

    out_root = osp.join(args.output_dir, "quickstart")
    data_params = dict(num_classes=8, train_per_class=60, test_per_class=15, valid_per_class=60,
                       frames=20, height=128, width=170)
    if args.fast:
        data_params = dict(num_classes=4, train_per_class=3, test_per_class=2, valid_per_class=2,
                           frames=16, height=40, width=52)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    per_seed, seconds = [], []
    for seed in seeds:
        start = time.perf_counter()
        per_seed.append(run_seed(seed, out_root, args.fast, args.workers, not args.verbose,
                                 data_params, args.amp, recipes, args.keep_trained))
        seconds.append(time.perf_counter() - start)
        print(f"[seed {seed}] all stages in {seconds[-1] / 60:.1f} min", flush=True)
    summary = summarise(per_seed)
    print()
    print(report_text(per_seed, seeds))
    outputs = {}
    sweep = "_lambda_sweep" if args.lambda_sweep else ""
    if len(seeds) > 1:
        # The first seed's own table too: the same numbers as a single-seed run of that seed.
        outputs["first"] = write_outputs(args.output_dir, sweep, per_seed[:1], seeds[:1],
                                         seconds[:1])
    suffix = sweep + ("" if len(seeds) == 1 else f"_{len(seeds)}seeds")
    outputs["all"] = write_outputs(args.output_dir, suffix, per_seed, seeds, seconds)
    print(f"table: {outputs['all'][0]}\nchart: {outputs['all'][1]}")
    return {"summary": summary, "per_seed": per_seed, "seconds": seconds,
            "table": outputs["all"][0], "chart": outputs["all"][1]}


if __name__ == "__main__":
    main()
