"""Learning-rate schedules: the original's step schedule, cosine, and a linear warm-up.

The learning rate is a pure function of the position in training, `(epoch, iteration)`, so a run
resumed from any snapshot (an epoch's or a mid-epoch one) continues with exactly the rates the
uninterrupted run would have used; nothing about the schedule has to be saved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, Tuple


def learning_rate(base_lr: float, epoch: int, dec_epochs: Sequence[int], dec_factor: float) -> float:
    """Step schedule: base_lr / dec_factor^(number of decay epochs <= epoch)."""
    steps = sum(1 for e in dec_epochs if epoch >= e)
    return base_lr / (dec_factor ** steps)


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate at each iteration of a stage.

    Attributes:
        base_lr: the stage's learning rate (`--lr`).
        kind: 'step' (the original, constant within an epoch) or 'cosine' (per iteration, from
            `base_lr` at the end of the warm-up to `min_lr` at the end of the stage).
        dec_epochs, dec_factor: the step schedule's decay epochs and divisor.
        min_lr: the cosine schedule's final rate.
        warmup_epochs: length of the linear warm-up (fractions of an epoch allowed), which
            multiplies the schedule by a factor rising from `warmup_factor` to 1.
        first_epoch: the stage's first epoch (1 for rgb+pose, whose epoch 0 is the merged
            snapshot), where warm-up and cosine start.
        end_epoch: the stage's end (exclusive), where the cosine reaches `min_lr`.
    """

    base_lr: float
    kind: str = "step"
    dec_epochs: Tuple[int, ...] = ()
    dec_factor: float = 10.0
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_factor: float = 0.01
    first_epoch: int = 0
    end_epoch: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("step", "cosine"):
            raise ValueError(f"kind must be 'step' or 'cosine', got {self.kind!r}")

    @classmethod
    def from_config(cls, cfg: Any, *, first_epoch: int) -> "LRSchedule":
        return cls(base_lr=cfg.lr, kind=cfg.lr_schedule, dec_epochs=tuple(cfg.lr_dec_epoch),
                   dec_factor=cfg.lr_dec_factor, min_lr=cfg.lr_min,
                   warmup_epochs=cfg.warmup_epochs, warmup_factor=cfg.warmup_factor,
                   first_epoch=first_epoch, end_epoch=cfg.end_epoch)

    def __call__(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        """The rate of iteration `iteration` (0-based) of `epoch`, an epoch having
        `iters_per_epoch` iterations."""
        per = max(int(iters_per_epoch), 1)
        # Progress through the stage in epochs, at the start of this iteration.
        done = (epoch - self.first_epoch) + iteration / per
        if self.kind == "step":
            lr = learning_rate(self.base_lr, epoch, self.dec_epochs, self.dec_factor)
        else:
            length = max(self.end_epoch - self.first_epoch - self.warmup_epochs, 1e-12)
            t = min(max(done - self.warmup_epochs, 0.0) / length, 1.0)
            lr = self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * t))
        if self.warmup_epochs > 0 and done < self.warmup_epochs:
            ramp = max(done, 0.0) / self.warmup_epochs
            lr *= self.warmup_factor + (1.0 - self.warmup_factor) * ramp
        return lr
