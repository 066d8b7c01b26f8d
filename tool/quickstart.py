"""The paper's claim on any laptop: generate a context-biased action data set, train every stage,
test in and out of context, print and save the table and a bar chart.

    python tool/quickstart.py                 # one seed, about 10-15 minutes on 2 CPU cores
    python tool/quickstart.py --seeds 3       # mean and spread over 3 seeds
    python tool/quickstart.py --fast          # a smoke run (seconds; what the test suite runs)
    python tool/quickstart.py --amp bf16      # every stage trained and tested in bf16 autocast

It runs the recipe of `tool/train_all.py` (the project's own `main/train.py`, the merge tool and
`main/test.py`, in this process) from the recipe file configs/quickstart.toml (`--fast`:
configs/quickstart_fast.toml): 4 frames every 4th frame, 64 x 64 crops, 24 x 24 pose maps,
ResNet-18 from scratch.

Stages: rgb_only, pose_only, merge, then two rgb+pose runs from the same merged snapshot: the
paper's recipe (lambda = 1.5, no context augmentation; the default for real data) and the robust
recipe of this project (configs/robust.toml: `stream_agreement` and `context_aug_prob`, see the
README).
"""

import argparse
import json
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import exit_on_error
from common.stages import get_stage
from tool.recipe.steps import run_recipe
from tool.make_synthetic_dataset import generate_dataset

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
    """
    name: str
    slug: str
    mode: str
    configs: Tuple[str, ...] = ()


# Two rgb+pose runs from the same merged snapshot: the paper's fusion, and this project's robust
# recipe (configs/robust.toml: the streams' agreement scales the RGB term, and half of the
# training clips get another clip's scene around their people).
RECIPES: Tuple[Recipe, ...] = (
    Recipe("rgb_only", "rgb_only", "rgb_only"),
    Recipe("pose_only", "pose_only", "pose_only"),
    Recipe("rgb+pose (paper: lambda 1.5)", "fusion_paper", "rgb+pose"),
    Recipe("rgb+pose (robust)", "fusion_robust", "rgb+pose", ("robust.toml",)),
)


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


def run_seed(seed: int, out_root: str, fast: bool, workers: int, quiet: bool,
             data_params: Dict[str, int], amp: Optional[str] = None
             ) -> Dict[str, Dict[str, Dict[str, float]]]:
    """All stages for one seed; returns {recipe: {split: {'top1', 'top5'}}}.

    Two runs of `tool/train_all.py`'s recipe in `<out_root>/seed<seed>/`: the paper's fusion
    recipe in `fusion_paper/`, then the robust one in `fusion_robust/`, which finds rgb_only and
    pose_only done and merges them into its own folder.
    """
    data_dir = osp.join(out_root, f"data_seed{seed}")
    t0 = time.perf_counter()
    generate_dataset(data_dir, seed=seed, **data_params)
    print(f"[seed {seed}] data ready in {data_dir} ({time.perf_counter() - t0:.0f} s)", flush=True)
    base = run_options(data_dir, seed, workers)
    if amp is not None:
        base += ["--amp", amp]  # training and testing in that precision
    singles = [r for r in RECIPES if not get_stage(r.mode).starts_from_merge]
    fused = [r for r in RECIPES if get_stage(r.mode).starts_from_merge]
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for k, fusion in enumerate(fused):
        # The data were just generated again, so every stage of the first run starts over;
        # the later runs reuse the single-stream stages that the first one trained.
        restart = True if k == 0 else {fusion.mode}
        run = run_recipe(
            osp.join(out_root, f"seed{seed}"), base, config_files=config_files(fusion, fast),
            test_datasets=[dataset for dataset, _ in SPLITS], fusion_dir=fusion.slug,
            restart=restart, quiet=quiet)
        for recipe in ([*singles, fusion] if k == 0 else [fusion]):
            stage = run["stages"][recipe.mode]
            results[recipe.name] = {}
            for dataset, split in SPLITS:
                summary = stage["tests"][dataset]
                results[recipe.name][split] = {"top1": summary["top1"], "top5": summary["top5"]}
                for key, name in (("gate_mean", "gate"), ("agreement_mean", "agreement")):
                    if key in summary:
                        results[recipe.name][split][name] = summary[key]
            r = results[recipe.name]
            print(f"[seed {seed}] {recipe.name:<30s} in context top-1 "
                  f"{r['in context']['top1']:6.2f} | out of context top-1 "
                  f"{r['out of context']['top1']:6.2f} ({stage['seconds']:.0f} s)", flush=True)
    # The table lists the recipes in their order, whatever order they ran in.
    return {r.name: results[r.name] for r in RECIPES}


def summarise(per_seed: List[Dict[str, Dict[str, Dict[str, float]]]]
              ) -> Dict[str, Dict[str, Dict[str, Tuple[float, float]]]]:
    """{recipe: {split: {metric: (mean, std over seeds)}}}."""
    out: Dict[str, Dict[str, Dict[str, Tuple[float, float]]]] = {}
    for name in per_seed[0]:
        out[name] = {}
        for split in per_seed[0][name]:
            out[name][split] = {}
            for metric in per_seed[0][name][split]:
                values = np.array([r[name][split][metric] for r in per_seed])
                out[name][split][metric] = (float(values.mean()), float(values.std()))
    return out


def markdown_table(summary, seeds: Sequence[int]) -> str:
    spread = len(seeds) > 1
    fmt = (lambda m: f"{m[0]:.1f} ± {m[1]:.1f}") if spread else (lambda m: f"{m[0]:.1f}")
    lines = [
        f"Synthetic context-bias benchmark, seeds {', '.join(map(str, seeds))}"
        + (" (mean ± std)" if spread else ""),
        "",
        "| stage | in context top-1 | in context top-5 | out of context top-1 | out of context top-5 | gate mean (in / out) | agreement (in / out) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, splits in summary.items():
        i, o = splits["in context"], splits["out of context"]
        extra = [f"{i[k][0]:.2f} / {o[k][0]:.2f}" if k in i else "" for k in ("gate", "agreement")]
        lines.append(f"| {name} | {fmt(i['top1'])} | {fmt(i['top5'])} | {fmt(o['top1'])} | "
                     f"{fmt(o['top5'])} | {extra[0]} | {extra[1]} |")
    return "\n".join(lines) + "\n"


def claim_checks(summary) -> List[Tuple[str, Dict[str, bool]]]:
    """The paper's claim as checks on the mean top-1 of the table.

    Returns [(criterion, {fused recipe name: holds?})] for every rgb+pose row of `summary`.
    """
    def top1(name: str, split: str) -> float:
        return summary[name][split]["top1"][0]

    rgb, pose = "rgb_only", "pose_only"
    fused = [name for name in summary if name.startswith("rgb+pose")]
    rules = [
        ("in context: rgb+pose >= rgb_only - 2",
         lambda f: top1(f, "in context") >= top1(rgb, "in context") - 2),
        ("in context: rgb+pose > pose_only",
         lambda f: top1(f, "in context") > top1(pose, "in context")),
        ("out of context: rgb_only drops by >= 30",
         lambda f: top1(rgb, "in context") - top1(rgb, "out of context") >= 30),
        ("out of context: rgb+pose >= rgb_only + 20",
         lambda f: top1(f, "out of context") >= top1(rgb, "out of context") + 20),
        ("out of context: rgb+pose >= pose_only - 5",
         lambda f: top1(f, "out of context") >= top1(pose, "out of context") - 5),
    ]
    return [(text, {f: bool(rule(f)) for f in fused}) for text, rule in rules]


def markdown_checks(summary) -> str:
    checks = claim_checks(summary)
    fused = list(checks[0][1]) if checks else []
    lines = ["| criterion (top-1) | " + " | ".join(fused) + " |",
             "|---|" + "---|" * len(fused)]
    for text, held in checks:
        lines.append(f"| {text} | " + " | ".join("yes" if held[f] else "**no**" for f in fused)
                     + " |")
    return "\n".join(lines) + "\n"


def bar_chart(summary, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, (split, color) in enumerate((("in context", "#4c72b0"), ("out of context", "#dd8452"))):
        means = [summary[n][split]["top1"][0] for n in names]
        stds = [summary[n][split]["top1"][1] for n in names]
        bars = ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=stds, label=split, color=color,
                      capsize=3)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(x, [n.replace(" (", "\n(") for n in names], fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 110)
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    args = parser.parse_args(argv)

    out_root = osp.join(args.output_dir, "quickstart")
    data_params = dict(num_classes=8, train_per_class=60, test_per_class=15, frames=20,
                       height=128, width=170)
    if args.fast:
        data_params = dict(num_classes=4, train_per_class=3, test_per_class=2, frames=16,
                           height=40, width=52)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    per_seed, seconds = [], []
    for seed in seeds:
        start = time.perf_counter()
        per_seed.append(run_seed(seed, out_root, args.fast, args.workers, not args.verbose,
                                 data_params, args.amp))
        seconds.append(time.perf_counter() - start)
        print(f"[seed {seed}] all stages in {seconds[-1] / 60:.1f} min", flush=True)
    summary = summarise(per_seed)
    print()
    print(markdown_table(summary, seeds))
    print(markdown_checks(summary))
    outputs = {}
    if len(seeds) > 1:
        # The first seed's own table too: the same numbers as a single-seed run of that seed.
        first = summarise(per_seed[:1])
        outputs["first"] = write_outputs(args.output_dir, "", first, seeds[:1], seconds[0])
    suffix = "" if len(seeds) == 1 else f"_{len(seeds)}seeds"
    outputs["all"] = write_outputs(args.output_dir, suffix, summary, seeds, sum(seconds))
    print(f"table: {outputs['all'][0]}\nchart: {outputs['all'][1]}")
    return {"summary": summary, "per_seed": per_seed, "seconds": seconds,
            "table": outputs["all"][0], "chart": outputs["all"][1]}


def write_outputs(output_dir: str, suffix: str, summary, seeds: Sequence[int], seconds: float
                  ) -> Tuple[str, str]:
    """`result/quickstart<suffix>.md` + `.json` and `vis/quickstart<suffix>.png`."""
    md_path = osp.join(output_dir, "result", f"quickstart{suffix}.md")
    png_path = osp.join(output_dir, "vis", f"quickstart{suffix}.png")
    os.makedirs(osp.dirname(md_path), exist_ok=True)
    with open(md_path, "w") as f:
        f.write(markdown_table(summary, seeds) + "\n" + markdown_checks(summary)
                + f"\nWall time: {seconds / 60:.1f} min ({len(seeds)} seed(s)).\n")
    with open(osp.join(output_dir, "result", f"quickstart{suffix}.json"), "w") as f:
        json.dump({"seeds": list(seeds), "summary": summary, "seconds": seconds}, f, indent=1)
    bar_chart(summary, png_path, f"top-1 on the synthetic benchmark, seed(s) "
              f"{', '.join(map(str, seeds))}" + (" (mean ± std)" if len(seeds) > 1 else ""))
    return md_path, png_path


if __name__ == "__main__":
    main()
