"""The whole recipe for one data set in one command: rgb_only, pose_only, the merge, rgb+pose,
then the tests of every stage; run again, it picks up where it stopped.

    python tool/train_all.py --output_dir output/kinetics50 [--dataset Kinetics --subset 50]
        [--<field> value ...] [--<stage>.<field> value ...] [--test_datasets Kinetics,Mimetics]
        [--fusion_dir NAME] [--restart [STAGES]] [--nproc_per_node N] [--dry_run] [--quiet]

Each stage writes into its own folder under `--output_dir`: `rgb_only/`, `pose_only/` and the
fusion folder (`rgb_pose/`, or `--fusion_dir NAME`, so that two fusion recipes can share the
single-stream stages). Every step is the project's own command: `main/train.py`, the merge tool,
`main/test.py`, called through their `main(argv)` in this process, or under
`torch.distributed.run` with `--nproc_per_node N` (the merge always runs here).

- `--<field> value` (any config field of `main/config.py`, also `--field=value`) goes to every
  train and test call; `--rgb_only.<field> value`, `--pose_only.<field> value` and
  `--rgb+pose.<field> value` only to that stage's. A later option wins, and a stage's own come
  after the shared ones.
- Resuming: a stage whose folder holds snapshots of that stage is called with `--continue`
  (train.py resumes its most recent run, or finds nothing left to do); the merge is redone only
  when the fusion folder has no merged snapshot or one older than a stage it was made from
  (rgb+pose then starts over from the new one); a test is rerun only when its
  `result/<dataset>_metrics.json` is missing, is of another stage or epoch, or is older than the
  snapshot it tested. `--restart` (all stages) or `--restart pose_only,rgb+pose` starts those
  stages over, replacing their snapshots; what depends on them is redone too.
- The last epoch of a stage is its `end_epoch - 1` (`--rgb+pose.end_epoch` counts the merged
  snapshot as epoch 0, as train.py does).
- `--dry_run` prints the commands it would run, one per line, with the steps as `#` comments: the
  output is a shell script.

At the end it prints top-1/top-5 per stage and test set, and writes them with each stage's
train and test summaries to `<output_dir>/train_all_summary.json`. See docs/train_all.md.
"""

import os.path as osp
import sys
import argparse
import contextlib
import difflib
import io
import json
import logging
import shlex
import subprocess
import time
from dataclasses import dataclass
from types import ModuleType
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Set, Tuple, Union)

from easydict import EasyDict

from common.io.atomic_file import atomic_write
from common.train.checkpoint import (find_resume_snapshot, list_snapshots, load_snapshot,
                               snapshot_path)
from common.errors import CheckpointError, IntegralActionError, UsageError, exit_on_error
from common.stages import MERGE_SOURCES, MODES, RGB_POSE, STAGES, Stage
from main.config import DATASETS, FIELD_BY_NAME, FIELDS, Field, build_config
from main.config import make_parser as make_entry_parser
from main.cli import OneLineParser

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN_SCRIPT = osp.join(ROOT, "main", "train.py")
TEST_SCRIPT = osp.join(ROOT, "main", "test.py")
MERGE_SCRIPT = osp.join(ROOT, "tool", "merge_rgb_only_pose_only.py")
SUMMARY_FILE = "train_all_summary.json"
# The fusion stage's folder unless --fusion_dir says otherwise (the stage's file-name form).
DEFAULT_FUSION_DIR = RGB_POSE.slug
# What each training data set is tested on when --test_datasets is not given: a Kinetics model
# in context and out of context (Mimetics, in Kinetics' label space, same subset).
DEFAULT_TEST_DATASETS: Mapping[str, Tuple[str, ...]] = {
    "Kinetics": ("Kinetics", "Mimetics"), "NTU": ("NTU",)}

# Fields the driver sets itself for every call, with why a user cannot forward them.
DRIVER_FIELDS: Mapping[str, str] = {
    "mode": "train_all.py runs every stage in its own mode",
    "output_dir": "each stage writes into <--output_dir>/<stage folder>",
    "test_epoch": "each stage is tested at its last epoch (end_epoch - 1)",
    "continue_train": "train_all.py resumes a stage on its own (--restart starts it over)",
    "overwrite": "train_all.py replaces a stage's snapshots only with --restart",
}
# Fields that would make the stages share one folder if given to all of them.
PER_STAGE_ONLY: Tuple[str, ...] = ("model_dir", "result_dir")

class StageError(IntegralActionError):
    """A step of the recipe failed; the message names the stage and the command."""


def say(text: str, dry_run: bool = False) -> None:
    """One progress line; in a dry run a shell comment, so that the output stays a script."""
    print(("# " if dry_run else "") + f"[train_all] {text}", flush=True)


# ------------------------------------------------------------------------------ the command line

def _field_named(name: str) -> Optional[Field]:
    """The field of an option name: `--<field>`, or one of its flags (`--gpu`, `--continue`)."""
    if name in FIELD_BY_NAME:
        return FIELD_BY_NAME[name]
    return next((f for f in FIELDS if f"--{name}" in f.flags), None)


def _unknown_option(name: str, scope: Optional[str]) -> str:
    """'unknown config field --<name>', with the nearest names a user may have meant."""
    known = [f.name for f in FIELDS] + [flag.lstrip("-") for f in FIELDS for flag in f.flags]
    if scope is None:
        known += ["output_dir", "test_datasets", "fusion_dir", "restart", "nproc_per_node",
                  "dry_run", "quiet"]
    close = difflib.get_close_matches(name, known, n=2)
    prefix = f"{scope}." if scope else ""
    hint = f"; did you mean {' or '.join(f'--{prefix}{c}' for c in close)}?" if close else ""
    return f"unknown config field --{prefix}{name}{hint}"


def read_overrides(tokens: Sequence[str], stage: Optional[str] = None
                   ) -> List[Tuple[Optional[str], str, str]]:
    """Config options as (stage or None, field, value text), in command-line order.

    Accepts `--field value`, `--field=value`, a bare boolean `--field` (true) and, unless
    `stage` is given, `--<stage>.<field> value`. Only the names are checked here; the values are
    checked by train.py's own parser (`plan_stages`).

    Args:
        tokens: the options, as on a command line.
        stage: the tokens are all that stage's own (`run_recipe`'s `stage_overrides`): a stage
            prefix is refused and every option is returned with this stage.

    Raises:
        UsageError: an unknown field or stage, a field the driver sets itself, a field that
            would make the stages share a folder, or an option without its value.
    """
    out: List[Tuple[Optional[str], str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise UsageError(f"unexpected argument {token!r}: options are written "
                             "--<field> <value> or --<stage>.<field> <value>")
        name, has_value, value = token[2:].partition("=")
        scope: Optional[str] = stage
        if "." in name:  # no field name has a dot
            prefix, _, name = name.partition(".")
            if stage is not None:
                raise UsageError(f"{token.split('=')[0]}: the options of stage {stage} are "
                                 "written without a stage prefix")
            if prefix not in STAGES:
                raise UsageError(f"{token.split('=')[0]}: {prefix!r} is not a stage; per-stage "
                                 f"options are --<stage>.<field> with a stage of "
                                 f"{', '.join(MODES)}")
            scope = prefix
        found = _field_named(name)
        if found is None:
            raise UsageError(_unknown_option(name, scope))
        option = f"--{scope + '.' if scope else ''}{name}"
        if found.name in DRIVER_FIELDS:
            raise UsageError(f"{option}: {DRIVER_FIELDS[found.name]}; leave it out")
        if scope is None and found.name in PER_STAGE_ONLY:
            raise UsageError(f"{option} for every stage would make them share one folder; give "
                             f"it per stage (--rgb_only.{found.name} DIR ...) or leave it out")
        if not has_value:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is not None and not following.startswith("--"):
                value, i = following, i + 1
            elif found.base is bool:
                value = "true"  # a bare boolean, as train.py reads it
            else:
                raise UsageError(f"{option} needs a value")
        out.append((scope, found.name, value))
        i += 1
    return out


def _as_argv(pairs: Iterable[Tuple[str, str]]) -> List[str]:
    return [token for name, value in pairs for token in (f"--{name}", value)]


def _checked(entry_argv: Sequence[str], where: str) -> Dict[str, Any]:
    """train.py's own parse of a command line, its errors raised as `UsageError` rather than
    ending the program (its parser exits; here nothing may have started yet)."""
    parser = make_entry_parser("train")

    def error(message: str) -> None:
        raise UsageError(f"{where}{message}")

    parser.error = error  # type: ignore[method-assign]
    args, extra = parser.parse_known_args(list(entry_argv))
    if extra:
        raise UsageError(f"{where}unexpected argument {extra[0]!r}")
    return vars(args)


# ------------------------------------------------------------------------------ the plan

@dataclass
class StagePlan:
    """One stage of the recipe: its folder, the options it gets and its resolved config.

    Attributes:
        stage: the stage (common/stages.py).
        folder: its output folder (`--output_dir` of its train and test calls).
        options: (field, value text) forwarded to its calls: the shared ones, then its own.
        cfg: its resolved training config (`build_config`), for end_epoch and the folders.
        test_datasets: the data sets its last epoch is tested on.
    """

    stage: Stage
    folder: str
    options: Tuple[Tuple[str, str], ...]
    cfg: EasyDict
    test_datasets: Tuple[str, ...]

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def first_epoch(self) -> int:
        """The first epoch a fresh run trains (rgb+pose: the merged snapshot is epoch 0)."""
        return 1 if self.stage.starts_from_merge else 0

    @property
    def last_epoch(self) -> int:
        return self.cfg.end_epoch - 1

    def snapshot(self, epoch: Optional[int] = None) -> str:
        return snapshot_path(self.cfg.model_dir, self.last_epoch if epoch is None else epoch)

    def merge_target(self) -> str:
        """Where rgb+pose starts from: what train.py reads when it starts the stage afresh."""
        return self.cfg.init_snapshot or snapshot_path(self.cfg.model_dir, 0)

    def train_argv(self, flags: Sequence[str] = ()) -> List[str]:
        return ["--mode", self.name, "--output_dir", self.folder, *flags,
                *_as_argv(self.options)]

    def test_argv(self, dataset: str) -> List[str]:
        # The test set replaces the training set; the rest is what the stage was trained with
        # (the snapshot decides the network; repeating its values is allowed).
        options = [(k, v) for k, v in self.options if k != "dataset"]
        return ["--mode", self.name, "--output_dir", self.folder, "--test_epoch",
                str(self.last_epoch), *_as_argv(options), "--dataset", dataset]

    def metrics_path(self, dataset: str) -> str:
        return osp.join(self.cfg.result_dir, f"{dataset.lower()}_metrics.json")


def _stage_folder(stage: Stage, fusion_dir: str) -> str:
    return fusion_dir if stage.starts_from_merge else stage.slug


def plan_stages(output_dir: str, overrides: Sequence[str] = (),
                stage_overrides: Optional[Mapping[str, Sequence[str]]] = None, *,
                test_datasets: Optional[Sequence[str]] = None,
                fusion_dir: str = DEFAULT_FUSION_DIR) -> Dict[str, StagePlan]:
    """Check every option and resolve each stage's config, before anything runs.

    Args:
        output_dir: the folder holding the stages' folders.
        overrides: options for every stage, as on the command line (`--lr 0.01`); may also hold
            `--<stage>.<field> value` options.
        stage_overrides: stage name -> its own options (`{'rgb+pose': ['--lr', '0.005']}`).
        test_datasets: the data sets to test on; None: by the training set (Kinetics: Kinetics
            and Mimetics; NTU: NTU).
        fusion_dir: the fusion stage's folder name under `output_dir`.

    Returns:
        stage name -> `StagePlan`, in the order the stages run.

    Raises:
        UsageError: an unknown field, stage or data set, a value train.py would refuse, or a
            combination `build_config` refuses; the message names the option and the stage.
    """
    unknown = sorted(set(stage_overrides or {}) - set(STAGES))
    if unknown:
        raise UsageError(f"unknown stage(s) {', '.join(map(repr, unknown))} in the per-stage "
                         f"options; the stages are {', '.join(MODES)}")
    if not fusion_dir or osp.basename(fusion_dir) != fusion_dir or fusion_dir in (".", ".."):
        raise UsageError(f"--fusion_dir must be a folder name, got {fusion_dir!r}")
    if fusion_dir in {_stage_folder(s, "") for s in STAGES.values() if not s.starts_from_merge}:
        raise UsageError(f"--fusion_dir {fusion_dir} is a single-stream stage's folder")
    for dataset in test_datasets or ():
        if dataset not in DATASETS:
            raise UsageError(f"--test_datasets: unknown data set {dataset!r}; the data sets are "
                             f"{', '.join(DATASETS)}")

    # field -> value text; a later option replaces an earlier one, as on train.py's command line.
    shared: Dict[str, str] = {}
    own: Dict[str, Dict[str, str]] = {name: {} for name in STAGES}
    for scope, name, value in read_overrides(overrides):
        (own[scope] if scope else shared)[name] = value
    for stage_name, tokens in (stage_overrides or {}).items():
        own[stage_name].update((name, value) for _, name, value in
                               read_overrides(tokens, stage_name))
    # The shared options alone first, so that a bad value there is not blamed on a stage.
    _checked(["--mode", MODES[0], *_as_argv(shared.items())], "")

    plans: Dict[str, StagePlan] = {}
    for stage in STAGES.values():
        folder = osp.join(output_dir, _stage_folder(stage, fusion_dir))
        options = tuple({**shared, **own[stage.name]}.items())  # the stage's own win
        where = f"{stage.name}: "
        typed = _checked(["--mode", stage.name, "--output_dir", folder, *_as_argv(options)],
                         where)
        try:
            cfg = build_config(typed, entry="train")
        except UsageError as err:
            raise UsageError(f"{where}{err}") from None
        if cfg.end_epoch - 1 < (1 if stage.starts_from_merge else 0):
            raise UsageError(f"{where}--end_epoch {cfg.end_epoch} trains no epoch"
                             + (" (the merged snapshot is epoch 0: 2 or more)"
                                if stage.starts_from_merge else ""))
        tests = tuple(test_datasets) if test_datasets is not None else \
            DEFAULT_TEST_DATASETS.get(cfg.dataset, (cfg.dataset,))
        for dataset in tests:  # test.py's rules too (e.g. a data set it cannot read)
            try:
                build_config(dict(typed, dataset=dataset, test_epoch=cfg.end_epoch - 1),
                             entry="test")
            except UsageError as err:
                raise UsageError(f"{where}test on {dataset}: {err}") from None
        plans[stage.name] = StagePlan(stage, folder, options, cfg, tests)
    return plans


def restart_set(restart: Union[bool, str, Iterable[str]]) -> Set[str]:
    """The stages to start over: True or 'all' -> every stage; False/None -> none; else the
    names given (a list, or one comma-separated string)."""
    if restart is True or restart == "all":
        return set(STAGES)
    if not restart:
        return set()
    names = restart.split(",") if isinstance(restart, str) else list(restart)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UsageError(f"--restart: unknown stage(s) {', '.join(map(repr, unknown))}; the "
                         f"stages are {', '.join(MODES)} (or all)")
    return set(names)


# ------------------------------------------------------------------------------ the disk's state

@contextlib.contextmanager
def _checkpoint_log_muted() -> Iterator[None]:
    """Looking at a stage's snapshots is not part of any run: keep the checkpoint module's
    notes out of the log file of the run that happened to configure logging last."""
    noisy = logging.getLogger("integral_action.checkpoint")
    level = noisy.level
    noisy.setLevel(logging.WARNING)
    try:
        yield
    finally:
        noisy.setLevel(level)


def saved_at(path: str) -> Optional[float]:
    """When a snapshot was written: its own `saved_at` (kept when files are copied), else the
    file's modification time; None if there is no such file."""
    if not osp.isfile(path):
        return None
    try:
        value = load_snapshot(path, mmap=True).get("saved_at")
    except CheckpointError:
        value = None
    return float(value) if isinstance(value, (int, float)) else osp.getmtime(path)


@dataclass
class TrainStep:
    """What a train call of a stage will do.

    Attributes:
        action: 'fresh', 'restart', 'resume' or 'done'.
        flags: the flags it adds to train.py's command line (`--continue`, `--overwrite`).
        first_epoch: the first epoch it trains (for the progress line).
        note: why, when it is not obvious.
    """

    action: str
    flags: Tuple[str, ...] = ()
    first_epoch: int = 0
    note: str = ""


def _later_snapshots(plan: StagePlan, first: int) -> List[int]:
    """Epochs of snapshots that a run training `first..last` would write over."""
    return sorted(e for e, _ in list_snapshots(plan.cfg.model_dir) if first <= e <= plan.last_epoch)


def decide_train(plan: StagePlan, restart: bool, merged_now: bool) -> TrainStep:
    """How to call train.py for a stage, from its folder's snapshots.

    Args:
        restart: the stage starts over (`--overwrite`, no `--continue`).
        merged_now: rgb+pose: the merge has just (been planned to be) redone, so the stage starts
            from the new merged snapshot, replacing snapshots trained from an older one.
    """
    first = plan.first_epoch
    if restart:
        return TrainStep("restart", ("--overwrite",), first)
    if merged_now:
        flags = ("--overwrite",) if _later_snapshots(plan, first) else ()
        return TrainStep("fresh", flags, first, "from the new merged snapshot")
    with _checkpoint_log_muted():
        found = find_resume_snapshot(plan.cfg.model_dir, plan.name)
    if found is None:
        return TrainStep("fresh", (), first)
    path, snap = found
    epoch = int(snap.get("epoch", 0))
    if snap.get("merged"):
        # The newest rgb+pose "run" is the merge itself: train from it. Trained snapshots still
        # there come from an older merge, which this one replaced.
        flags = ("--overwrite",) if _later_snapshots(plan, first) else ()
        return TrainStep("fresh", flags, first, "from the merged snapshot")
    if path != snapshot_path(plan.cfg.model_dir, epoch):
        start = epoch  # a mid-epoch snapshot: train.py finishes that epoch
    else:
        start = epoch + 1
    if start > plan.last_epoch:
        return TrainStep("done", ("--continue",), start)
    # Snapshots at or after the resume point come from an earlier run that the resumed one
    # replaced (a restart that was interrupted): the resumed run writes over them.
    flags = ("--continue", "--overwrite") if _later_snapshots(plan, start) else ("--continue",)
    return TrainStep("resume", flags, start, f"from {osp.basename(path)}")


def merge_reason(plan: StagePlan, sources: Sequence[StagePlan], restart: bool,
                 changed: Set[str]) -> Optional[str]:
    """Why the merge has to run for the fusion stage `plan`, or None when it is up to date."""
    if plan.cfg.init_snapshot:
        return None  # the user names the starting point; nothing to merge
    if restart:
        return "rgb+pose starts over"
    target = plan.merge_target()
    trained_fusion = False
    if not osp.isfile(target):
        with _checkpoint_log_muted():
            found = find_resume_snapshot(plan.cfg.model_dir, plan.name)
        # A stage trained from a merge that has since been deleted needs none.
        trained_fusion = found is not None and not found[1].get("merged")
        if not trained_fusion:
            return "no merged snapshot yet"
    redone = [s.name for s in sources if s.name in changed]
    if redone:
        return f"{' and '.join(redone)} trained now"
    if trained_fusion:
        return None
    with _checkpoint_log_muted():
        snap = load_snapshot(target, mmap=True)
    if not snap.get("merged"):
        return None
    when = saved_at(target) or 0.0
    newer = [s.name for s in sources if (saved_at(s.snapshot()) or 0.0) > when]
    if newer:
        return f"{' and '.join(newer)} newer than the merged snapshot"
    return None


def recorded_test(plan: StagePlan, dataset: str) -> Optional[Dict[str, Any]]:
    """The summary of an earlier test of this stage's last epoch on `dataset`, if it still holds:
    same mode, data set and epoch, written after the snapshot it tested."""
    path = plan.metrics_path(dataset)
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or (summary.get("mode"), summary.get("dataset"),
                                         summary.get("epoch")) != (plan.name, dataset,
                                                                   plan.last_epoch):
        return None
    tested = saved_at(plan.snapshot())
    if tested is None or osp.getmtime(path) < tested:
        return None
    return summary


# ------------------------------------------------------------------------------ running a step

def _shown_path(path: str) -> str:
    """A script's path as a user would type it: relative to the working folder when inside."""
    rel = osp.relpath(path)
    return path if rel.startswith("..") else rel


class Runner:
    """Runs (or, in a dry run, prints) the entry points' commands.

    Args:
        nproc_per_node: > 1: train.py and test.py run under `torch.distributed.run`.
        quiet: their console output is dropped (it is in their log files).
        dry_run: print each command instead of running it.
    """

    def __init__(self, nproc_per_node: int = 1, quiet: bool = False, dry_run: bool = False
                 ) -> None:
        if nproc_per_node < 1:
            raise UsageError(f"--nproc_per_node must be 1 or more, got {nproc_per_node}")
        self.nproc = nproc_per_node
        self.quiet = quiet
        self.dry_run = dry_run

    def command(self, script: str, argv: Sequence[str], distributed: bool) -> str:
        """The command line as a user would type it."""
        launcher = ["python"]
        if distributed and self.nproc > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone",
                         f"--nproc_per_node={self.nproc}"]
        return shlex.join([*launcher, _shown_path(script), *argv])

    def run(self, what: str, script: str, entry: Callable[[], ModuleType], argv: Sequence[str],
            distributed: bool = True) -> Any:
        """Run one command; returns its `main`'s value (None in a subprocess or a dry run).

        Args:
            what: the step, for the error message ('pose_only training').
            script: the entry point's file.
            entry: imports and returns the entry point's module (imported when first needed,
                so that a dry run or a bad command line imports no model code).
            distributed: run it under torch.distributed.run when nproc_per_node > 1.

        Raises:
            StageError: the command failed (its own error is printed above).
        """
        command = self.command(script, argv, distributed)
        if self.dry_run:
            print(command, flush=True)
            return None
        if distributed and self.nproc > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={self.nproc}", script, *argv]
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL if self.quiet else None)
            if proc.returncode != 0:
                raise StageError(f"{what} failed (exit status {proc.returncode}): {command}")
            return None
        try:
            if self.quiet:
                with contextlib.redirect_stdout(io.StringIO()):
                    return entry().main(list(argv))
            return entry().main(list(argv))
        except SystemExit as stop:  # the entry point's one-line error is already on stderr
            if stop.code in (0, None):
                return None
            raise StageError(f"{what} failed (exit status {stop.code}): {command}") from None


def _train_module() -> ModuleType:
    from main import train
    return train


def _test_module() -> ModuleType:
    from main import test
    return test


def _merge_module() -> ModuleType:
    from tool import merge_rgb_only_pose_only
    return merge_rgb_only_pose_only


# ------------------------------------------------------------------------------ the recipe

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
    runner.run(f"{plan.name} training", TRAIN_SCRIPT, _train_module, argv)
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
    runner.run("merge", MERGE_SCRIPT, _merge_module, argv, distributed=False)
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
    summary = runner.run(f"{plan.name} test on {dataset}", TEST_SCRIPT, _test_module,
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
               test_datasets: Optional[Sequence[str]] = None,
               fusion_dir: str = DEFAULT_FUSION_DIR,
               restart: Union[bool, str, Iterable[str]] = False, quiet: bool = False,
               nproc_per_node: int = 1, dry_run: bool = False) -> Dict[str, Any]:
    """Train rgb_only and pose_only, merge them, train rgb+pose, test each stage's last epoch.

    Every option is checked before anything runs. Each step looks at what its folder holds and
    does only what is missing (see the module docstring), so a second call after an interruption
    goes on where the first stopped, and a second fusion recipe (`fusion_dir`) reuses the
    single-stream stages.

    Args:
        output_dir: the folder holding the stages' folders and `train_all_summary.json`.
        overrides: options for every train/test call (`['--lr', '0.01']`); may hold per-stage
            ones (`--rgb+pose.lr 0.005`).
        stage_overrides: stage name -> options for that stage's calls only; they come after
            the shared ones (a later option wins).
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
    plans = plan_stages(output_dir, overrides, stage_overrides, test_datasets=test_datasets,
                        fusion_dir=fusion_dir)
    starting_over = restart_set(restart)
    runner = Runner(nproc_per_node, quiet, dry_run)
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
    result = {"output_dir": output_dir, "fusion_dir": fusion_dir, "stages": stages}
    if not dry_run:
        write_summary(output_dir, stages)
    return result


def write_summary(output_dir: str, stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Add this run's stages to `<output_dir>/train_all_summary.json`, keyed by stage folder
    (the entries of other folders, another fusion recipe's, stay); returns its path."""
    path = osp.join(output_dir, SUMMARY_FILE)
    by_folder: Dict[str, Any] = {}
    try:
        with open(path) as f:
            earlier = json.load(f).get("stages", {})
        if isinstance(earlier, dict):
            by_folder.update(earlier)
    except (OSError, ValueError, AttributeError):
        pass  # none yet, or unreadable: this run's stages replace it
    by_folder.update({record["folder"]: record for record in stages.values()})
    with atomic_write(path) as f:
        json.dump({"output_dir": output_dir, "stages": by_folder}, f, indent=1, default=str)
    return path


def format_table(stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Top-1 / top-5 per stage (rows) and test set (columns), as aligned text."""
    datasets: List[str] = []
    for record in stages.values():
        datasets += [d for d in record.get("tests", {}) if d not in datasets]
    rows = [["stage", "folder", "epoch"] + [f"{d} top-1 / top-5" for d in datasets]]
    for record in stages.values():
        cells = [record["mode"], record["folder"], str(record["last_epoch"])]
        for dataset in datasets:
            test = record.get("tests", {}).get(dataset)
            cells.append(f"{test['top1']:.2f} / {test['top5']:.2f}" if test else "-")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


# ------------------------------------------------------------------------------ main

def make_parser() -> argparse.ArgumentParser:
    """The driver's own options; every other `--<field>` / `--<stage>.<field>` is forwarded."""

    parser = OneLineParser(
        prog="train_all.py",
        usage="%(prog)s --output_dir DIR [--<field> VALUE ...] [--<stage>.<field> VALUE ...] "
              "[options]",
        description=__doc__.split("\n\n")[0],
        epilog="Config fields: see `python main/train.py --help`. Stages: "
               + ", ".join(MODES) + ". Examples: docs/train_all.md.",
        allow_abbrev=False)  # `--out` or `--rest` must not silently mean a driver option
    parser.add_argument("--output_dir", required=True, metavar="DIR",
                        help="folder of the stages' folders and train_all_summary.json")
    parser.add_argument("--test_datasets", default=None, metavar="SETS",
                        help="comma-separated data sets to test every stage on, or none "
                             "(default: Kinetics -> Kinetics,Mimetics; NTU -> NTU)")
    parser.add_argument("--fusion_dir", default=DEFAULT_FUSION_DIR, metavar="NAME",
                        help=f"the rgb+pose stage's folder (default: {DEFAULT_FUSION_DIR})")
    parser.add_argument("--restart", nargs="?", const="all", default=None, metavar="STAGES",
                        help="start stages over, replacing their snapshots: all (the bare "
                             "option) or a comma list of " + ", ".join(MODES))
    parser.add_argument("--nproc_per_node", type=int, default=1, metavar="N",
                        help="run each train/test call under torch.distributed.run with N "
                             "processes (default 1: in this process)")
    parser.add_argument("--dry_run", action="store_true",
                        help="print the commands, run nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="drop train.py/test.py's console output (their logs keep it)")
    return parser


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = make_parser()
    args, forwarded = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    tests = None
    if args.test_datasets is not None:
        tests = [] if args.test_datasets.lower() == "none" else \
            [d for d in args.test_datasets.split(",") if d]
    try:
        # Everything that can be wrong with the command line is found before anything runs.
        plan_stages(args.output_dir, forwarded, test_datasets=tests, fusion_dir=args.fusion_dir)
        restart_set(args.restart)
        Runner(args.nproc_per_node)
    except UsageError as err:
        parser.error(str(err))
    result = run_recipe(args.output_dir, forwarded, test_datasets=tests,
                        fusion_dir=args.fusion_dir, restart=args.restart or False,
                        quiet=args.quiet, nproc_per_node=args.nproc_per_node,
                        dry_run=args.dry_run)
    if not args.dry_run:
        print()
        print(format_table(result["stages"]))
        print(f"\nsummary: {osp.join(args.output_dir, SUMMARY_FILE)}")
    return result


if __name__ == "__main__":
    main()
