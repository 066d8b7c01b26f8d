"""Logging to the console and to output/log/<name>.txt."""
from __future__ import annotations

import logging
import os
import os.path as osp
import sys


def setup_logging(log_dir: str, name: str) -> logging.Logger:
    """Configure the 'integral_action' logger tree once per process; returns it."""
    os.makedirs(log_dir, exist_ok=True)
    root = logging.getLogger("integral_action")
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%m-%d %H:%M:%S")
    file_handler = logging.FileHandler(osp.join(log_dir, f"{name}.txt"))
    file_handler.setFormatter(fmt)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    root.addHandler(file_handler)
    root.addHandler(console)
    root.propagate = False
    return root
