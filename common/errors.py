"""The errors a user can act on, and how entry points turn them into one line.

Every error here carries a message that names the file, field or value at fault and says what
to do. Entry points wrap their `main` in `exit_on_error`, so such an error ends the program with
that one line on stderr and a non-zero exit status, never a traceback. Anything else (a bug) still
raises with its traceback.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class IntegralActionError(RuntimeError):
    """Base of the errors whose message is all a user needs."""


class UsageError(IntegralActionError, ValueError):
    """A command line or config value that cannot be used (names the field)."""


class DataError(IntegralActionError):
    """A data set or data file that cannot be used (names the file and the problem)."""


class CheckpointError(IntegralActionError):
    """A snapshot that cannot be used the way it was asked to be used."""


def exit_on_error(main: Callable[..., T]) -> Callable[..., T]:
    """Run `main`; an `IntegralActionError` becomes `error: <message>` on stderr and exit 1."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except IntegralActionError as err:
            message = " ".join(str(err).split("\n")).strip()
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    return wrapper
