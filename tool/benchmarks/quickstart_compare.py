"""The main job against an older revision: `python tool/quickstart.py` of a baseline commit
(198198d by default) and of this checkout, run back to back on the same machine.
Its command is `python tool/compare_quickstart.py` (its options and examples are there).

How it works:
- The baseline revision's tree is exported with `git archive` into a temporary folder, which is
  removed afterwards, on an error too; it leaves no git state (no worktree, no branch). "Ours"
  is this checkout as it is, uncommitted changes included (the report says when there are).
- Both trees are byte-compiled first, untimed, so that neither side's time includes compiling
  the project's modules (a fresh export would otherwise pay it and a used checkout not).
- Each side runs `python tool/quickstart.py --seeds N --first_seed S --workers W --output_dir
  <output_dir>/quickstart_compare/<side>` (plus `--fast` when asked) as a subprocess, in its own
  tree, with this interpreter and the same environment but for PYTHONPATH, which is that tree
  alone (each side imports its own modules). The wall clock around the subprocess is
  the side's time: data generation, every stage and every test, Python's start-up included.
  `<side>`'s output folder is emptied first: a stage that found an earlier run's snapshots could
  otherwise skip work and look faster. Its console output goes to `<side>.log` beside it.
- The sides run one after the other (`order`), never at the same time. The first one may pay
  cold disk caches (torch's libraries), which favours the second: run both orders to see it.

The report compares the two results tables (`result/quickstart.json`, or
`result/quickstart_<N>seeds.json` for N seeds; both revisions write the same layout,
`{recipe: {split: {metric: [mean, std over seeds]}}}`) cell by cell.

Seed noise. With n >= 2 seeds per side, a cell's difference of means is *within seed noise*
when |mean_ours - mean_base| <= 2 * sqrt(std_ours^2 / n + std_base^2 / n), twice the standard
error of the difference. The stds are the sample stds over seeds (n - 1 in the denominator),
recovered from the quickstart's own population stds (n in the denominator). The verdict
"tables within seed noise" holds when every cell is within noise; with some twenty cells, one
just outside 2 standard errors happens by chance alone fairly often, so the report lists the
cells outside, for a reader to judge. With one seed the noise cannot be estimated: only the
differences are reported and the verdict is None.
"""
from __future__ import annotations

import compileall
import json
import math
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from typing import Any, Dict, List, Optional, Sequence, Tuple

from common.io.atomic_file import atomic_write
from common.errors import IntegralActionError, UsageError
from common.io.provenance import git_revision

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIDES = ("baseline", "ours")
ORDERS = {"baseline_first": ("baseline", "ours"), "ours_first": ("ours", "baseline")}
TARGET_SPEEDUP = 1.7
# The project's packages; byte-compiled in both trees before the clock starts.
PACKAGES = ("common", "data", "main", "tool")

Summary = Dict[str, Dict[str, Dict[str, Sequence[float]]]]


class QuickstartFailed(IntegralActionError):
    """One side's quickstart exited with an error or wrote no results table."""


def _git(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True,
                              timeout=600)
    except OSError as err:
        raise UsageError(f"the comparison needs git to export the baseline revision: {err}")


def resolve_revision(rev: str) -> str:
    """The full commit hash of `rev` in this repository; a UsageError naming it otherwise."""
    if _git("rev-parse", "--git-dir").returncode != 0:
        raise UsageError(f"{ROOT} is not a git checkout, so --baseline_rev {rev} cannot be "
                         f"exported; run the comparison from a clone of the repository")
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0 or not found.stdout.strip():
        raise UsageError(f"--baseline_rev {rev}: no such commit in {ROOT} (a shallow clone "
                         f"lacks old commits: `git fetch --unshallow`)")
    return found.stdout.strip()


def export_tree(commit: str, dest: str) -> None:
    """Write `commit`'s tracked files into the empty folder `dest` (git archive | tar -x)."""
    tar_path = osp.join(dest, ".baseline.tar")
    done = _git("archive", "--format=tar", "-o", tar_path, commit)
    if done.returncode != 0:
        raise UsageError(f"git archive {commit} failed: {done.stderr.strip()}")
    try:
        unpacked = subprocess.run(["tar", "-xf", tar_path, "-C", dest], capture_output=True,
                                  text=True)
    except OSError as err:
        raise UsageError(f"the comparison needs tar to unpack the baseline revision: {err}")
    if unpacked.returncode != 0:
        raise UsageError(f"tar could not unpack revision {commit}: {unpacked.stderr.strip()}")
    os.remove(tar_path)


def python_files(tree: str) -> List[str]:
    """The project's modules in `tree` (its packages' .py files), as paths inside it.

    For this checkout, git's list (tracked and untracked, ignored files left out): walking the
    folders would also walk ignored data sets (`data/*/data/`), which can hold millions of
    frames. The exported baseline holds only tracked files, so it is walked.
    """
    if osp.samefile(tree, ROOT):
        listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "--",
                      *[f"{package}/*.py" for package in PACKAGES])
        return sorted(set(listed.stdout.splitlines())) if listed.returncode == 0 else []
    found = []
    for package in PACKAGES:
        for folder, _, names in os.walk(osp.join(tree, package)):
            found += [osp.relpath(osp.join(folder, n), tree) for n in names if n.endswith(".py")]
    return sorted(found)


def byte_compile(tree: str) -> None:
    """Compile the tree's modules now, so that the timed run does not (see the module note)."""
    for path in python_files(tree):
        # A file that does not compile is left to the quickstart, which reports it in its log.
        compileall.compile_file(osp.join(tree, path), quiet=2)


def machine() -> str:
    """The hardware and software the times come from, without importing torch here."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} core(s), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"torch {torch_version}")


def _load_average() -> Optional[List[float]]:
    # Tells a reader whether the machine was idle; not every system has it.
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def result_file(side_output_dir: str, seeds: int) -> str:
    """Where the quickstart of either revision writes its table's JSON for `seeds` seeds."""
    suffix = "" if seeds == 1 else f"_{seeds}seeds"
    return osp.join(side_output_dir, "result", f"quickstart{suffix}.json")


def _last_line(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def side_environment(tree: str) -> Dict[str, str]:
    """This environment, with `tree` as the only PYTHONPATH entry: each side imports its own
    `common/`, `data/` and `main/`, never those of the checkout that an editable install or an
    inherited PYTHONPATH points at (a revision whose entry points carry no path line of their
    own would otherwise run this checkout's code under its own name)."""
    return {**os.environ, "PYTHONPATH": tree}


def run_side(*, side: str, label: str, tree: str, quickstart_args: Sequence[str], seeds: int,
             compare_dir: str) -> Dict[str, Any]:
    """One side's quickstart as a subprocess in `tree`; its wall time and its results.

    Raises QuickstartFailed, naming the side and its log, when the quickstart fails.
    """
    side_out = osp.join(compare_dir, side)
    log_path = osp.join(compare_dir, f"{side}.log")
    # This folder belongs to the comparison: stale snapshots or results must not be reused.
    shutil.rmtree(side_out, ignore_errors=True)
    os.makedirs(side_out)
    command = [sys.executable, osp.join("tool", "quickstart.py"), *quickstart_args,
               "--output_dir", side_out]
    with open(log_path, "w") as log:
        log.write(f"# {label}: {' '.join(command)}\n# in {tree}\n")
        log.flush()
        start = time.perf_counter()
        status = subprocess.run(command, cwd=tree, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=side_environment(tree)).returncode
        seconds = time.perf_counter() - start
    if status != 0:
        last = _last_line(log_path)
        raise QuickstartFailed(f"the {label} quickstart failed (exit status {status})"
                               + (f": {last}" if last else "") + f"; its log: {log_path}")
    path = result_file(side_out, seeds)
    try:
        with open(path) as f:
            result = json.load(f)
        summary = result["summary"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise QuickstartFailed(f"the {label} quickstart ended without a readable table "
                               f"{path} ({err}); its log: {log_path}")
    print(f"[compare] {label}: {seconds:.1f} s (log: {log_path})", flush=True)
    return {"label": label, "tree": tree, "command": command, "log": log_path,
            "result": path, "seconds": seconds, "quickstart_seconds": result.get("seconds"),
            "seeds": result.get("seeds"), "summary": summary}


def _cells(summary: Summary) -> List[Tuple[str, str, str]]:
    return [(recipe, split, metric) for recipe, splits in summary.items()
            for split, metrics in splits.items() for metric in metrics]


def compare_tables(baseline: Summary, ours: Summary, n: int) -> Dict[str, Any]:
    """Cell by cell: both means, their difference and, with n >= 2 seeds, the noise check.

    A cell is (recipe, split, metric); the summaries hold [mean, population std over n seeds]
    per cell. A cell that only one side has is listed with None for the other and counts as
    outside noise (the two tables then do not have the same rows).
    """
    order = _cells(baseline) + [c for c in _cells(ours) if c not in set(_cells(baseline))]
    # Population std (numpy's default, which the quickstart stores) -> sample std.
    to_sample = math.sqrt(n / (n - 1)) if n >= 2 else None
    rows: List[Dict[str, Any]] = []
    for recipe, split, metric in order:
        row: Dict[str, Any] = {"recipe": recipe, "split": split, "metric": metric}
        for side, summary in (("baseline", baseline), ("ours", ours)):
            value = summary.get(recipe, {}).get(split, {}).get(metric)
            row[f"{side}_mean"] = None if value is None else float(value[0])
            row[f"{side}_std"] = (None if value is None or to_sample is None
                                  else float(value[1]) * to_sample)
        both = row["baseline_mean"] is not None and row["ours_mean"] is not None
        row["difference"] = row["ours_mean"] - row["baseline_mean"] if both else None
        row["noise_bound"] = row["within_noise"] = None
        if to_sample is not None:
            if both:
                row["noise_bound"] = 2 * math.sqrt(row["ours_std"] ** 2 / n
                                                   + row["baseline_std"] ** 2 / n)
                row["within_noise"] = abs(row["difference"]) <= row["noise_bound"] + 1e-9
            else:
                row["within_noise"] = False
        rows.append(row)
    same_rows = all(r["difference"] is not None for r in rows)
    outside = [r for r in rows if r["within_noise"] is False]
    verdict = None if n < 2 else not outside
    return {"cells": rows, "same_rows": same_rows, "within_noise": verdict,
            "cells_outside_noise": len(outside) if n >= 2 else None}


def _fmt(value: Optional[float], metric: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    digits = 1 if metric in ("top1", "top5") else 2  # accuracies in %, gate/agreement in [0, 1]
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown(report: Dict[str, Any]) -> str:
    """The report as text: the times, the ratio, and the two tables side by side."""
    base, ours = report["baseline"], report["ours"]
    n = len(report["seeds"])
    lines = [
        f"Quickstart{' --fast' if report['fast'] else ''}, seed(s) "
        f"{', '.join(map(str, report['seeds']))}, run back to back "
        f"({report['order'].replace('_', ' ')}).",
        f"Machine: {report['machine']}; load average before {report['load_average_before']}, "
        f"after {report['load_average_after']}.",
        "",
        "| side | code | wall time |",
        "|---|---|---|",
        f"| baseline | {base['rev']} ({base['commit'][:10]}) | {base['seconds']:.1f} s |",
        f"| ours | {str(ours['git']['commit'])[:10]}"
        f"{' with uncommitted changes' if ours['git'].get('dirty') else ''} | "
        f"{ours['seconds']:.1f} s |",
        "",
        f"Speed-up (baseline / ours): x{report['speedup']:.2f}; target >= {TARGET_SPEEDUP}: "
        + ("yes" if report["targets"][f"speedup >= {TARGET_SPEEDUP}"] else "**no**") + ".",
        "",
    ]
    comparison = report["comparison"]
    if n >= 2:
        lines += [f"Mean ± std over {n} seeds (sample std); within noise: |difference| <= "
                  "2 * sqrt(std_ours^2/n + std_base^2/n).", "",
                  "| stage | split | metric | baseline | ours | ours - baseline | noise bound |"
                  " within noise |",
                  "|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["One seed: the seed noise cannot be estimated from one seed, so only the "
                  "differences are reported (use --seeds 2 or more for the noise check).", "",
                  "| stage | split | metric | baseline | ours | ours - baseline |",
                  "|---|---|---|---|---|---|"]
    for c in comparison["cells"]:
        m = c["metric"]
        cells = []
        for side in ("baseline", "ours"):
            text = _fmt(c[f"{side}_mean"], m)
            if n >= 2 and c[f"{side}_std"] is not None:
                text += f" ± {_fmt(c[f'{side}_std'], m)}"
            cells.append(text)
        row = f"| {c['recipe']} | {c['split']} | {m} | {cells[0]} | {cells[1]} | " \
              f"{_fmt(c['difference'], m, signed=True)} |"
        if n >= 2:
            within = c["within_noise"]
            row += f" {_fmt(c['noise_bound'], m)} | {'yes' if within else '**no**'} |"
        lines.append(row)
    if not comparison["same_rows"]:
        lines += ["", "The two tables do not have the same cells ('-': absent on that side)."]
    if n >= 2:
        lines += [""]
        lines.append("Tables within seed noise: "
                     + ("yes" if comparison["within_noise"] else
                        f"**no** ({comparison['cells_outside_noise']} of "
                        f"{len(comparison['cells'])} cells outside)") + ".")
    return "\n".join(lines) + "\n"


def _run_sides(commit: str, *, order: str, labels: Dict[str, str],
               quickstart_args: Sequence[str], seeds: int, compare_dir: str
               ) -> Dict[str, Dict[str, Any]]:
    """Export the baseline, byte-compile both trees, run both quickstarts in `order`; the
    exported tree is removed afterwards, on an error too."""
    sides: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="quickstart_compare_") as tmp:
        trees = {"baseline": osp.join(tmp, "baseline"), "ours": ROOT}
        os.makedirs(trees["baseline"])
        export_tree(commit, trees["baseline"])
        for side in SIDES:
            byte_compile(trees[side])
        for side in ORDERS[order]:
            sides[side] = run_side(side=side, label=labels[side], tree=trees[side],
                                   quickstart_args=quickstart_args, seeds=seeds,
                                   compare_dir=compare_dir)
    return sides


def _sides_report(sides: Dict[str, Dict[str, Any]], *, seeds: int, baseline: Tuple[str, str],
                  ours_git: Dict[str, Any]) -> Dict[str, Any]:
    """The report's figures: both sides, the speed-up and the tables' comparison.

    Args:
        baseline: (the revision as given, its full commit hash).
    """
    rev, commit = baseline
    speedup = sides["baseline"]["seconds"] / sides["ours"]["seconds"]
    comparison = compare_tables(sides["baseline"]["summary"], sides["ours"]["summary"], seeds)
    return {
        # The baseline's tree was a temporary export; its commit says what it was.
        "baseline": dict(sides["baseline"], rev=rev, commit=commit,
                         tree=f"git archive {commit} (removed)"),
        "ours": dict(sides["ours"], git=ours_git),
        "speedup": speedup,
        "comparison": comparison,
        "targets": {f"speedup >= {TARGET_SPEEDUP}": speedup >= TARGET_SPEEDUP,
                    "tables within seed noise": comparison["within_noise"]},
    }


def run(*, baseline_rev: str, seeds: int, first_seed: int, workers: int, output_dir: str,
        fast: bool, order: str = "baseline_first") -> Dict[str, Any]:
    """Run both quickstarts back to back, print the report and write it as JSON.

    Args:
        baseline_rev: any git revision of this repository (hash, tag, branch).
        seeds, first_seed, workers, fast: passed to both quickstarts.
        output_dir: both sides' outputs and logs go to `<output_dir>/quickstart_compare/`, the
            report to `<output_dir>/result/quickstart_compare.json`.
        order: 'baseline_first' or 'ours_first'.

    Returns the report (what the JSON holds). Raises UsageError for bad arguments or an
    unknown revision, QuickstartFailed when a side's quickstart fails.
    """
    if order not in ORDERS:
        raise UsageError(f"--order {order}: use one of {', '.join(ORDERS)}")
    if seeds < 1:
        raise UsageError(f"--seeds {seeds}: need at least 1")
    if workers < 0:
        raise UsageError(f"--workers {workers}: need 0 or more")
    commit = resolve_revision(baseline_rev)
    output_dir = osp.abspath(output_dir)
    compare_dir = osp.join(output_dir, "quickstart_compare")
    os.makedirs(compare_dir, exist_ok=True)
    quickstart_args = ["--seeds", str(seeds), "--first_seed", str(first_seed),
                       "--workers", str(workers), *(["--fast"] if fast else [])]
    ours_git = git_revision()
    labels = {"baseline": f"baseline ({baseline_rev})",
              "ours": f"ours ({str(ours_git['commit'])[:10]}"
                      f"{', with uncommitted changes' if ours_git.get('dirty') else ''})"}
    print(f"[compare] quickstart of {baseline_rev} and of this checkout, "
          f"{ORDERS[order][0]} first; logs in {compare_dir}", flush=True)
    load_before = _load_average()
    sides = _run_sides(commit, order=order, labels=labels, quickstart_args=quickstart_args,
                       seeds=seeds, compare_dir=compare_dir)
    load_after = _load_average()
    command = ["python", "tool/compare_quickstart.py", "--baseline_rev", baseline_rev,
               "--seeds", str(seeds), "--first_seed", str(first_seed), "--workers",
               str(workers), "--output_dir", output_dir, "--order", order,
               *(["--fast"] if fast else [])]
    report: Dict[str, Any] = {
        "machine": machine(), "command": " ".join(command),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seeds": list(range(first_seed, first_seed + seeds)), "fast": fast, "order": order,
        "workers": workers, "load_average_before": load_before, "load_average_after": load_after,
        **_sides_report(sides, seeds=seeds, baseline=(baseline_rev, commit), ours_git=ours_git)}
    report["table"] = markdown(report)
    path = osp.join(output_dir, "result", "quickstart_compare.json")
    with atomic_write(path) as f:
        json.dump(report, f, indent=1)
    report["json"] = path
    print()
    print(report["table"])
    print(f"written: {path}")
    return report

