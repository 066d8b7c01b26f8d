"""Running one step of a recipe: an entry point's `main(argv)` in this process, under
`torch.distributed.run`, or (in a dry run) printed as the command a user would type."""
from __future__ import annotations

import contextlib
import io
import os.path as osp
import shlex
import signal
import subprocess
import sys
from types import ModuleType
from typing import Any, Callable, Sequence

from common.errors import IntegralActionError, Interrupted, UsageError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_SCRIPT = osp.join(ROOT, "main", "train.py")
TEST_SCRIPT = osp.join(ROOT, "main", "test.py")
MERGE_SCRIPT = osp.join(ROOT, "tool", "merge_rgb_only_pose_only.py")


# How long a child stopped by a signal may take to end (its save in progress) before SIGKILL.
CHILD_STOP_S = 120
# The exit statuses of an entry point stopped by SIGINT or SIGTERM (`common.errors`).
INTERRUPTED_STATUS = (128 + signal.SIGINT, 128 + signal.SIGTERM)
RESUME_HINT = "run the same train_all command again to resume"


class StageError(IntegralActionError):
    """A step of the recipe failed; the message names the stage and the command."""


def say(text: str, dry_run: bool = False) -> None:
    """One progress line; in a dry run a shell comment, so that the output stays a script."""
    print(("# " if dry_run else "") + f"[train_all] {text}", flush=True)


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
            Interrupted: Ctrl-C or SIGTERM stopped the step (said where, and how to resume).
        """
        command = self.command(script, argv, distributed)
        if self.dry_run:
            print(command, flush=True)
            return None
        try:
            if distributed and self.nproc > 1:
                return self._run_child(what, command, [
                    sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={self.nproc}", script, *argv])
            if self.quiet:
                with contextlib.redirect_stdout(io.StringIO()):
                    return entry().main(list(argv))
            return entry().main(list(argv))
        except SystemExit as stop:  # the entry point's one-line error is already on stderr
            if stop.code in (0, None):
                return None
            raise StageError(f"{what} failed (exit status {stop.code}): {command}") from None
        except KeyboardInterrupt as err:
            stop = Interrupted.of(err)
            raise Interrupted(stop.signum, where=" ".join(filter(None, (f"during {what}",
                                                                        stop.where))),
                              hint=RESUME_HINT) from None

    def _run_child(self, what: str, command: str, cmd: Sequence[str]) -> None:
        """Run `cmd` as a child process; a Ctrl-C or SIGTERM that stops this process is passed
        on to the child (which a terminal's Ctrl-C reaches anyway, in the same process group),
        and the child is waited for, so that it ends its save and leaves nothing half-written."""
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if self.quiet else None)
        try:
            code = proc.wait()
        except KeyboardInterrupt as err:
            stop = Interrupted.of(err)
            if proc.poll() is None:
                proc.send_signal(stop.signum)
            try:
                proc.wait(timeout=CHILD_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        if code in INTERRUPTED_STATUS:  # the child was stopped by a signal on its own
            raise Interrupted(code - 128)
        if code != 0:
            raise StageError(f"{what} failed (exit status {code}): {command}")


def train_module() -> ModuleType:
    from main import train
    return train


def test_module() -> ModuleType:
    from main import test
    return test


def merge_module() -> ModuleType:
    from tool import merge_rgb_only_pose_only
    return merge_rgb_only_pose_only
