"""The errors a user can act on, and how entry points turn them into one line.

Every error here carries a message that names the file, field or value at fault and says what
to do. Entry points wrap their `main` in `exit_on_error`, so such an error ends the program with
that one line on stderr and a non-zero exit status, never a traceback. Anything else (a bug) still
raises with its traceback.

Ctrl-C (SIGINT) and SIGTERM end an entry point the same way: one line (`Interrupted`), exit
status 128 + the signal's number (130, 143), no traceback. `exit_on_error` turns SIGTERM into an
`Interrupted` exception, so that it unwinds like Ctrl-C's `KeyboardInterrupt`: `with` blocks and
`finally` clauses run, and an atomic write in progress removes its temporary.
"""
from __future__ import annotations

import functools
import signal
import sys
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class IntegralActionError(RuntimeError):
    """Base of the errors whose message is all a user needs."""


class UsageError(IntegralActionError, ValueError):
    """A command line or config value that cannot be used (names the field)."""


class DataError(IntegralActionError):
    """A data set or data file that cannot be used (names the file and the problem)."""


class CheckpointError(IntegralActionError):
    """A snapshot that cannot be used the way it was asked to be used."""


class OutputError(IntegralActionError):
    """An output file or folder that cannot be written (names it, and what to do)."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (SIGINT or SIGTERM).

    A `KeyboardInterrupt`, so that what handles Ctrl-C handles SIGTERM too (DataLoader workers
    end quietly on it). `where` says how far the run had gone ("at epoch 2, iteration 5"),
    `hint` how to go on ("resume with --continue"); the entry point prints both in one line.
    """

    def __init__(self, signum: int = signal.SIGINT, *, where: str = "", hint: str = "") -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.where = where
        self.hint = hint

    @classmethod
    def of(cls, err: KeyboardInterrupt, *, where: str = "", hint: str = "") -> "Interrupted":
        """`err` (a plain Ctrl-C or an `Interrupted`) with `where` and `hint` added where it
        has none yet."""
        signum = getattr(err, "signum", signal.SIGINT)
        return cls(signum, where=getattr(err, "where", "") or where,
                   hint=getattr(err, "hint", "") or hint)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        text = "interrupted" + (f" {self.where}" if self.where else "")
        if not self.where:
            text += f" ({signal.Signals(self.signum).name})"
        return text + (f"; {self.hint}" if self.hint else "")


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def catch_sigterm() -> Any:
    """From now on SIGTERM raises `Interrupted` in the main thread (as Ctrl-C raises
    `KeyboardInterrupt`); returns the handler it replaced (None: none was replaced, as outside
    the main thread, where no handler can be installed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupted)


def quiet_worker_signals() -> None:
    """For a pool's worker processes (an `initializer`): they ignore SIGINT and SIGTERM, which
    a terminal or a scheduler sends to the whole process group; the main process stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def quiet_loader_worker(worker_id: int = 0) -> None:
    """For DataLoader workers (a `worker_init_fn`): a signal to the process group ends the
    worker without a word; the main process says what happened, in its one line.

    - SIGTERM ends the worker as Ctrl-C does. torch's workers end quietly on
      `KeyboardInterrupt`, but a SIGTERM from anyone but their parent (a scheduler's or
      `kill`'s, sent to the whole process group) kills them, and the main process then reports
      a dead worker with a traceback instead of its one line.
    - A worker hands each batch's shared memory to the main process over a connection that a
      thread of the worker serves (multiprocessing's resource sharer). A main process
      interrupted while it takes a batch drops that connection half-way, and the thread prints
      the broken connection as a traceback. Connection errors off the worker's main thread are
      therefore not printed: the main process either got the batch, or was stopped and says so.
    """
    signal.signal(signal.SIGTERM, _raise_interrupted)
    sys.excepthook = _quiet_connection_errors_off_main_thread(sys.excepthook)


def _quiet_connection_errors_off_main_thread(previous: Callable[..., Any]) -> Callable[..., Any]:
    """`previous`, except that an `EOFError` or `OSError` reported from a thread other than the
    main one is dropped (see `quiet_loader_worker`)."""

    def hook(exc_type, exc, tb):
        off_main = threading.current_thread() is not threading.main_thread()
        if off_main and issubclass(exc_type, (EOFError, OSError)):
            return
        previous(exc_type, exc, tb)

    return hook


_depth = threading.local()


def exit_on_error(main: Callable[..., T]) -> Callable[..., T]:
    """Run `main`; an `IntegralActionError` becomes `error: <message>` on stderr and exit 1, a
    Ctrl-C or SIGTERM one line (`Interrupted`) and exit 128 + the signal's number.

    Called from within another wrapped entry point (tool/train_all.py runs main/train.py's
    `main`), an interruption is raised on as `Interrupted`, so that the outermost one prints
    the only line.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        outermost = not getattr(_depth, "value", 0)
        previous = catch_sigterm() if outermost else None
        _depth.value = getattr(_depth, "value", 0) + 1
        try:
            return main(*args, **kwargs)
        except IntegralActionError as err:
            message = " ".join(str(err).split("\n")).strip()
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except KeyboardInterrupt as err:
            stop = Interrupted.of(err)
            if not outermost:
                raise stop from None
            print(str(stop), file=sys.stderr, flush=True)
            raise SystemExit(stop.exit_status) from None
        finally:
            _depth.value -= 1
            if previous is not None:  # a caller that goes on (a test) gets its handler back
                signal.signal(signal.SIGTERM, previous)

    return wrapper
