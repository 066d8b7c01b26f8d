"""Logging to the console and to output/log/<name>.txt.

The log file also gets the DEBUG records (the loss and learning rate of every iteration); the
console shows INFO and above. Under torchrun only rank 0 writes the file; the other ranks print
their warnings and errors, prefixed with their rank.
"""
from __future__ import annotations

import contextlib
import logging
import os
import os.path as osp
import sys
from typing import Iterator


def setup_logging(log_dir: str, name: str, *, rank: int = 0) -> logging.Logger:
    """Configure the 'integral_action' logger tree once per process; returns it."""
    root = logging.getLogger("integral_action")
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    root.propagate = False
    if rank != 0:
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter(f"[rank {rank}] %(asctime)s %(levelname)s "
                                               "%(message)s", "%m-%d %H:%M:%S"))
        root.addHandler(console)
        return root
    os.makedirs(log_dir, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%m-%d %H:%M:%S")
    file_handler = logging.FileHandler(osp.join(log_dir, f"{name}.txt"))
    file_handler.setFormatter(fmt)
    file_handler.setLevel(logging.DEBUG)
    console.setFormatter(fmt)
    console.setLevel(logging.INFO)
    root.addHandler(file_handler)
    root.addHandler(console)
    return root


@contextlib.contextmanager
def logger_level(name: str, level: int) -> Iterator[None]:
    """The logger `name` at `level` inside the block (its own level is restored after): to keep
    a library's or a module's notes out of the output for one call."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)
