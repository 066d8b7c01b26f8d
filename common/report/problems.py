"""Bad data met during a run: what each problem is, and how problems are counted and reported.

A loader never stops a run for one bad video. It reports a `Problem` instead, inside the item it
returns (so the report crosses DataLoader worker processes with the batch), and the training or
test loop hands the batch's problems to a `ProblemTally`, which warns (naming the file), counts
by reason, and in strict mode turns the first problem into a `DataError`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional

from common.errors import DataError

# What happened to the data because of a problem.
SKIPPED = "skipped"          # the clip (or video, at start-up) is left out
POSE_ZEROED = "pose_zeroed"  # the clip is kept with no people (all joint scores 0)
JOINTS_ZEROED = "joints_zeroed"  # some joints got score 0 and a finite coordinate
ACTIONS = (SKIPPED, POSE_ZEROED, JOINTS_ZEROED)
# What --strict turns into an error: data that a clip loses. A joint with a NaN or absurd
# coordinate is zeroed as the original's own formats zero missing joints, and only counted.
STRICT_ACTIONS = (SKIPPED, POSE_ZEROED)


@dataclass(frozen=True)
class Problem:
    """One problem with one file.

    Attributes:
        reason: a short key, the unit of counting ('corrupt_frame', 'missing_frame',
            'bad_pose_file', 'nonfinite_joint', 'label_out_of_range', ...).
        path: the file at fault (or the annotation file, for an annotation entry).
        detail: one line saying what is wrong with it.
        action: one of `ACTIONS`.
    """

    reason: str
    path: str
    detail: str = ""
    action: str = SKIPPED

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"Problem.action must be one of {ACTIONS}, got {self.action!r}")

    def message(self) -> str:
        """`<path>: <detail> (<reason>, <action>)` on one line."""
        text = f"{self.path}: {self.detail}" if self.detail else self.path
        return f"{text} ({self.reason}, {self.action.replace('_', ' ')})"


class ProblemTally:
    """Counts problems by (reason, action); warns for the first `warn_limit` of each reason.

    Args:
        strict: raise `DataError` on the first problem that skips a clip or zeroes its pose
            (`STRICT_ACTIONS`) instead of counting it; zeroed joints are still only counted.
        logger: where warnings go.
        warn_limit: warnings per reason before the tally only counts (a corrupt data set must
            not drown the log); the counts are always complete.
    """

    def __init__(self, *, strict: bool = False, logger: Optional[logging.Logger] = None,
                 warn_limit: int = 20) -> None:
        self.strict = strict
        self.logger = logger or logging.getLogger("integral_action.data")
        self.warn_limit = warn_limit
        self.counts: Dict[str, int] = {}
        self._warned: Dict[str, int] = {}

    def add(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            if self.strict and problem.action in STRICT_ACTIONS:
                raise DataError(f"{problem.message()}; --strict makes every data problem an "
                                "error (run without it to skip and count such clips)")
            key = f"{problem.reason} ({problem.action.replace('_', ' ')})"
            self.counts[key] = self.counts.get(key, 0) + 1
            seen = self._warned.get(problem.reason, 0)
            if seen < self.warn_limit:
                self._warned[problem.reason] = seen + 1
                suffix = ("; further ones are only counted" if seen + 1 == self.warn_limit else "")
                self.logger.warning("data problem: %s%s", problem.message(), suffix)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """`reason (action): n, ...` sorted by reason, or 'none'."""
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "none"

    def reset(self) -> None:
        self.counts.clear()
        self._warned.clear()


def sum_counts(per_rank: Iterable[Mapping[str, int]]) -> Dict[str, int]:
    """Several tallies' `counts` (one per rank) added up, key by key."""
    total: Dict[str, int] = {}
    for counts in per_rank:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total
