"""The steps of a recipe in order: train rgb_only and pose_only, merge them, train rgb+pose,
then test each stage's last epoch; each step does only what its folder still lacks."""
from __future__ import annotations

import json
import os.path as osp
import time
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Set, Tuple, Union

from common.stages import MERGE_SOURCES
from tool.recipe.disk_state import (TrainStep, decide_train, merge_reason, recorded_test,
                                    saved_at)
from tool.recipe.plan import DEFAULT_FUSION_DIR, StagePlan, plan_stages, restart_set
from tool.recipe.runner import (MERGE_SCRIPT, TEST_SCRIPT, TRAIN_SCRIPT, Runner, StageError,
                                merge_module, say, test_module, train_module)
from tool.recipe.summary import write_summary


def _epochs(first: int, last: int) -> str:
    return f"epoch {first}" if first == last else f"epochs {first}..{last}"


def _train(plan: StagePlan, step: TrainStep, runner: Runner) -> Dict[str, Any]:
    """One train call, with its progress line; returns its summary."""
    how = {"fresh": "fresh", "restart": "restart: replaces its snapshots",
           "resume": "resuming"}.get(step.action)
    if step.action == "done":
        say(f"{plan.name}: done already ({_epochs(plan.first_epoch, plan.last_epoch)})",
            runner.dry_run)
    else:
        note = (" " if step.action == "resume" else ", ") + step.note if step.note else ""
        say(f"{plan.name}: training {_epochs(step.first_epoch, plan.last_epoch)} ({how}{note})",
            runner.dry_run)
    argv = plan.train_argv(step.flags)
    before = None if runner.dry_run else saved_at(plan.snapshot())
    start = time.perf_counter()
    # Even a stage that looks complete is handed to train.py with --continue: it is the judge
    # of where a run stands, and says "nothing left to do" when it is done.
    runner.run(f"{plan.name} training", TRAIN_SCRIPT, train_module, argv)
    if runner.dry_run:
        trained = step.action != "done"
    else:
        after = saved_at(plan.snapshot())
        if after is None:
            raise StageError(f"{plan.name} training ended without {plan.snapshot()}: "
                             f"{runner.command(TRAIN_SCRIPT, argv, True)}")
        trained = after != before
    return {"action": step.action, "trained": trained,
            "epochs": [step.first_epoch, plan.last_epoch] if step.action != "done" else [],
            "last_snapshot": plan.snapshot(), "seconds": round(time.perf_counter() - start, 2),
            "command": runner.command(TRAIN_SCRIPT, argv, True)}


def _merge(plan: StagePlan, sources: Sequence[StagePlan], reason: Optional[str],
           runner: Runner) -> Dict[str, Any]:
    """The merge into the fusion folder (or its 'done already' line); returns its summary."""
    target = plan.merge_target()
    if reason is None:
        say(f"merge: done already ({target})", runner.dry_run)
        return {"merged": False, "path": target, "seconds": 0.0}
    rgb, pose = sources
    say(f"merge: {rgb.name} epoch {rgb.last_epoch} + {pose.name} epoch {pose.last_epoch} -> "
        f"{target} ({reason})", runner.dry_run)
    argv = ["--rgb", rgb.snapshot(), "--pose", pose.snapshot(), "--out", target]
    start = time.perf_counter()
    runner.run("merge", MERGE_SCRIPT, merge_module, argv, distributed=False)
    return {"merged": True, "path": target, "reason": reason,
            "seconds": round(time.perf_counter() - start, 2),
            "command": runner.command(MERGE_SCRIPT, argv, False)}


def _test(plan: StagePlan, dataset: str, changed: bool, runner: Runner
          ) -> Tuple[Optional[Dict[str, Any]], bool, float]:
    """One test (or its 'done already' line): (summary, whether it ran, seconds)."""
    head = f"test {plan.name} (epoch {plan.last_epoch}) on {dataset}"
    recorded = None if changed else recorded_test(plan, dataset)
    if recorded is not None:
        say(f"{head}: done already, top-1 {recorded['top1']:.2f} top-5 {recorded['top5']:.2f}",
            runner.dry_run)
        return recorded, False, 0.0
    if runner.dry_run:
        say(head, True)
    start = time.perf_counter()
    summary = runner.run(f"{plan.name} test on {dataset}", TEST_SCRIPT, test_module,
                         plan.test_argv(dataset))
    if runner.dry_run:
        return None, True, 0.0
    if summary is None:  # run in a subprocess: the summary is what it wrote
        with open(plan.metrics_path(dataset)) as f:
            summary = json.load(f)
    say(f"{head}: top-1 {summary['top1']:.2f} top-5 {summary['top5']:.2f}")
    return summary, True, time.perf_counter() - start


def run_recipe(output_dir: str, overrides: Sequence[str] = (),
               stage_overrides: Optional[Mapping[str, Sequence[str]]] = None, *,
               config_files: Sequence[str] = (), test_datasets: Optional[Sequence[str]] = None,
               fusion_dir: str = DEFAULT_FUSION_DIR,
               restart: Union[bool, str, Iterable[str]] = False, quiet: bool = False,
               nproc_per_node: int = 1, dry_run: bool = False) -> Dict[str, Any]:
    """Train rgb_only and pose_only, merge them, train rgb+pose, test each stage's last epoch.

    Every option is checked before anything runs. Each step looks at what its folder holds and
    does only what is missing (tool/recipe/disk_state.py), so a second call after an interruption
    goes on where the first stopped, and a second fusion recipe (`fusion_dir`) reuses the
    single-stream stages.

    Args:
        output_dir: the folder holding the stages' folders and `train_all_summary.json`.
        overrides: options for every train/test call (`['--lr', '0.01']`); may hold per-stage
            ones (`--rgb+pose.lr 0.005`).
        stage_overrides: stage name -> options for that stage's calls only; they come after
            the shared ones (a later option wins).
        config_files: recipe files (main/config_file.py), applied before the options.
        test_datasets: the data sets each stage is tested on; None: by the training set
            (Kinetics: Kinetics and Mimetics, NTU: NTU); empty: no tests.
        fusion_dir: the rgb+pose stage's folder under `output_dir`.
        restart: the stages to start over (True: all; a stage name list): their snapshots are
            replaced; the merge and the tests that depend on them are redone.
        quiet: the entry points' console output is dropped (their log files keep it).
        nproc_per_node: > 1: each train/test call runs under torch.distributed.run with that
            many processes.
        dry_run: print the commands (and the steps, as `#` comments) and run nothing.

    Returns:
        {'output_dir', 'fusion_dir', 'stages': {stage name: {'folder', 'mode', 'last_epoch',
        'train': {action, trained, epochs, last_snapshot, seconds, command}, 'merge' (rgb+pose
        only), 'tests': {data set: test.py's summary}, 'tests_run': [data sets tested now],
        'seconds'}}}. In a dry run the tests that would run are absent from 'tests'.

    Raises:
        UsageError: an option that cannot be used (nothing has run).
        StageError: a step failed; names the stage and the command.
    """
    plans = plan_stages(output_dir, overrides, stage_overrides, config_files=config_files,
                        test_datasets=test_datasets, fusion_dir=fusion_dir)
    runner = Runner(nproc_per_node, quiet, dry_run)
    stages, changed = _train_stages(plans, restart_set(restart), runner)
    _test_stages(plans, stages, changed, runner)
    result = {"output_dir": output_dir, "fusion_dir": fusion_dir, "stages": stages}
    if not dry_run:
        write_summary(output_dir, stages)
    return result


def _train_stages(plans: Mapping[str, StagePlan], starting_over: Set[str], runner: Runner
                  ) -> Tuple[Dict[str, Dict[str, Any]], Set[str]]:
    """Train every stage in order (the merge before rgb+pose): (stage name -> its record so
    far, the stages whose last snapshot changed now)."""
    sources = [plans[s.name] for s in MERGE_SOURCES]
    changed: Set[str] = set()
    stages: Dict[str, Dict[str, Any]] = {}
    for plan in plans.values():
        record: Dict[str, Any] = {"folder": osp.basename(plan.folder), "mode": plan.name,
                                  "last_epoch": plan.last_epoch}
        merged_now = False
        if plan.stage.starts_from_merge:
            reason = merge_reason(plan, sources, plan.name in starting_over, changed)
            record["merge"] = _merge(plan, sources, reason, runner)
            merged_now = reason is not None
        step = decide_train(plan, plan.name in starting_over, merged_now)
        record["train"] = _train(plan, step, runner)
        if record["train"]["trained"] or merged_now:
            changed.add(plan.name)
        stages[plan.name] = record
    return stages, changed


def _test_stages(plans: Mapping[str, StagePlan], stages: Mapping[str, Dict[str, Any]],
                 changed: Set[str], runner: Runner) -> None:
    """Test every stage's last epoch on its test sets; adds 'tests', 'tests_run' and
    'seconds' to each stage's record."""
    for plan in plans.values():
        record = stages[plan.name]
        record["tests"], record["tests_run"] = {}, []
        seconds = record["train"]["seconds"] + record.get("merge", {}).get("seconds", 0.0)
        for dataset in plan.test_datasets:
            summary, ran, spent = _test(plan, dataset, plan.name in changed, runner)
            if summary is not None:
                record["tests"][dataset] = summary
            if ran:
                record["tests_run"].append(dataset)
            seconds += spent
        record["seconds"] = round(seconds, 2)
