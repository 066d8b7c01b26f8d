"""The main job's report: the table (mean ± std over seeds, and each seed's own row), the claim's
criteria (on the mean and on each seed), the bar chart, and the saved `.md`/`.json`."""
from __future__ import annotations

import json
import os
import os.path as osp
import textwrap
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

# {recipe: {split: {metric: value}}}: one seed's results, as `tool/quickstart.run_seed` returns.
SeedResults = Dict[str, Dict[str, Dict[str, float]]]
# {recipe: {split: {metric: (mean, std over seeds)}}}.
Summary = Dict[str, Dict[str, Dict[str, Tuple[float, float]]]]
SPLITS = ("in context", "out of context")


def summarise(per_seed: List[SeedResults]) -> Summary:
    """{recipe: {split: {metric: (mean, std over seeds)}}}."""
    out: Summary = {}
    for name in per_seed[0]:
        out[name] = {}
        for split in per_seed[0][name]:
            out[name][split] = {}
            for metric in per_seed[0][name][split]:
                values = np.array([r[name][split][metric] for r in per_seed])
                out[name][split][metric] = (float(values.mean()), float(values.std()))
    return out


def markdown_table(summary: Summary, seeds: Sequence[int]) -> str:
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


def markdown_seed_rows(per_seed: Sequence[SeedResults], seeds: Sequence[int]) -> str:
    """Each seed's own top-1 per stage: what the mean ± std is made of."""
    names = list(per_seed[0])
    lines = ["| seed | " + " | ".join(f"{n} (in / out)" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for seed, results in zip(seeds, per_seed):
        cells = [f"{results[n]['in context']['top1']:.1f} / "
                 f"{results[n]['out of context']['top1']:.1f}" for n in names]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def claim_checks(summary: Summary) -> List[Tuple[str, Dict[str, bool]]]:
    """The paper's claim as checks on the mean top-1 of the table.

    Returns [(criterion, {fused recipe name: holds?})] for every rgb+pose row of `summary`.
    """
    def top1(name: str, split: str) -> float:
        return summary[name][split]["top1"][0]

    rgb, pose = "rgb_only", "pose_only"
    fused = [name for name in summary if name.startswith("rgb+pose")]
    rules: List[Tuple[str, Callable[[str], bool]]] = [
        ("in context: rgb+pose >= rgb_only - 2",
         lambda f: top1(f, "in context") >= top1(rgb, "in context") - 2),
        ("in context: rgb+pose > pose_only",
         lambda f: top1(f, "in context") > top1(pose, "in context")),
        ("out of context: rgb_only drops by >= 30",
         lambda f: top1(rgb, "in context") - top1(rgb, "out of context") >= 30),
        ("out of context: rgb+pose >= rgb_only + 20",
         lambda f: top1(f, "out of context") >= top1(rgb, "out of context") + 20),
        ("out of context: rgb+pose >= pose_only - 3",
         lambda f: top1(f, "out of context") >= top1(pose, "out of context") - 3),
    ]
    return [(text, {f: bool(rule(f)) for f in fused}) for text, rule in rules]


def seed_checks(per_seed: Sequence[SeedResults]) -> List[List[Tuple[str, Dict[str, bool]]]]:
    """`claim_checks` of each seed on its own."""
    return [claim_checks(summarise([results])) for results in per_seed]


def markdown_checks(summary: Summary) -> str:
    checks = claim_checks(summary)
    fused = list(checks[0][1]) if checks else []
    lines = ["| criterion (top-1) | " + " | ".join(fused) + " |",
             "|---|" + "---|" * len(fused)]
    for text, held in checks:
        lines.append(f"| {text} | " + " | ".join("yes" if held[f] else "**no**" for f in fused)
                     + " |")
    return "\n".join(lines) + "\n"


def markdown_seed_checks(per_seed: Sequence[SeedResults], seeds: Sequence[int]) -> str:
    """One table per fused recipe: each criterion on each seed."""
    per = seed_checks(per_seed)
    fused = list(per[0][0][1])
    out = []
    for recipe in fused:
        lines = [f"| {recipe}: criterion (top-1) | " + " | ".join(f"seed {s}" for s in seeds)
                 + " |", "|---|" + "---|" * len(seeds)]
        for k, (text, _) in enumerate(per[0]):
            lines.append(f"| {text} | " + " | ".join(
                "yes" if checks[k][1][recipe] else "**no**" for checks in per) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def bar_chart(summary: Summary, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    x = np.arange(len(names))
    # A bar pair per row, wide enough that the wrapped row names do not run into each other.
    fig, ax = plt.subplots(figsize=(max(8.0, 1.35 * len(names)), 4))
    for k, (split, color) in enumerate((("in context", "#4c72b0"), ("out of context", "#dd8452"))):
        means = [summary[n][split]["top1"][0] for n in names]
        stds = [summary[n][split]["top1"][1] for n in names]
        bars = ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=stds, label=split, color=color,
                      capsize=3)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(x, [textwrap.fill(n.replace(" (", "\n("), 16, break_long_words=False,
                                    replace_whitespace=False) for n in names], fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 125)  # room above the bars for the legend
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_text(per_seed: Sequence[SeedResults], seeds: Sequence[int]) -> str:
    """The printed and saved report: the table, the criteria on the mean and, over several
    seeds, each seed's row and criteria."""
    summary = summarise(list(per_seed))
    text = markdown_table(summary, seeds) + "\n" + markdown_checks(summary)
    if len(seeds) > 1:
        text += ("\nEach seed on its own (top-1):\n\n" + markdown_seed_rows(per_seed, seeds)
                 + "\n" + markdown_seed_checks(per_seed, seeds))
    return text


def write_outputs(output_dir: str, suffix: str, per_seed: Sequence[SeedResults],
                  seeds: Sequence[int], seconds: Sequence[float]) -> Tuple[str, str]:
    """`result/quickstart<suffix>.md` + `.json` (every figure: each seed's results and
    criteria, the mean ± std) and `vis/quickstart<suffix>.png`."""
    summary = summarise(list(per_seed))
    md_path = osp.join(output_dir, "result", f"quickstart{suffix}.md")
    png_path = osp.join(output_dir, "vis", f"quickstart{suffix}.png")
    os.makedirs(osp.dirname(md_path), exist_ok=True)
    with open(md_path, "w") as f:
        f.write(report_text(per_seed, seeds)
                + f"\nWall time: {sum(seconds) / 60:.1f} min ({len(seeds)} seed(s)).\n")
    saved: Dict[str, Any] = {
        "seeds": list(seeds), "summary": summary, "seconds": sum(seconds),
        "per_seed": [{"seed": s, "results": r, "seconds": t,
                      "checks": dict(c)}
                     for s, r, t, c in zip(seeds, per_seed, seconds, seed_checks(per_seed))],
        "checks": dict(claim_checks(summary)),
    }
    with open(osp.join(output_dir, "result", f"quickstart{suffix}.json"), "w") as f:
        json.dump(saved, f, indent=1)
    bar_chart(summary, png_path, f"top-1 on the synthetic benchmark, seed(s) "
              f"{', '.join(map(str, seeds))}" + (" (mean ± std)" if len(seeds) > 1 else ""))
    return md_path, png_path
