"""What both entry points log first: the configuration, the code and the device(s)."""
import logging
from typing import Any, List, Optional

import torch

from common.io.provenance import describe_revision
from common.runtime.device import describe_device
from common.runtime.distributed import DistInfo, describe
from common.runtime.precision import Precision
from main.config import describe_config


def log_run_setup(logger: logging.Logger, cfg: Any, *, revision: Optional[str],
                  device: torch.device, gpu_ids: List[int], info: DistInfo,
                  precision: Precision) -> None:
    """The run's configuration, code revision, device(s) and precision, in `logger`."""
    logger.info("config:\n  %s", "\n  ".join(describe_config(cfg)))
    logger.info("code: git %s", describe_revision(revision))
    logger.info("device: %s; %s; %s", describe_device(device, gpu_ids), describe(info),
                precision.describe())
