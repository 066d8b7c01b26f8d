"""Export the test-time network, pose-map rendering included, to ONNX or a `torch.export`
program, and read the program back.

The exported network is the model of test.py in eval mode with BatchNorm folded into the
convolutions. Its pose maps are drawn with the renderer's fixed-shape path (`compact=False`:
every joint and limb drawn with a 0/1 weight, windows sized for the whole map), whose shapes
depend on the input's shapes alone, so that one graph holds for every batch; the maps are
those of the eager renderer. The graph is traced once by `torch.export` with a dynamic batch
axis and then either saved as it is (`.pt2`) or translated to ONNX.
"""
from __future__ import annotations

import copy
import functools
import logging
from typing import Any, Dict, Tuple

import torch
from torch import nn
from torch.export import Dim, ExportedProgram

from common.errors import CheckpointError, UsageError
from common.io.atomic_file import atomic_write
from common.io.logger import logger_level
from common.nets.pose_maps import render_pose_maps
from common.train.inference import fold_batchnorm
from common.export.signature import (METADATA_KEY, ExportInfo, ExportInterface, example_inputs,
                                     input_names, max_batch, output_names)

FORMATS = ("onnx", "torch")
SUFFIX = {"onnx": ".onnx", "torch": ".pt2"}
# The batch of the example the graph is traced with: not 1, which torch.export would take as a
# fixed size.
_EXAMPLE_BATCH = 2
INSTALL_HINT = "pip install -e '.[export]' (onnx, onnxscript, onnxruntime)"


def export_network(model: nn.Module, *, img_hw: Tuple[int, int], people: int
                   ) -> Tuple[ExportedProgram, Dict[str, Any]]:
    """Trace the test-time copy of `model` (which is left as it is) with a dynamic batch axis.

    Args:
        model: an `IntegralAction` with its weights.
        img_hw, people: the config's input_img_shape and top_k_pose (fixed in the graph).

    Returns:
        the program and the facts an `ExportInfo` needs ('inputs', 'outputs', 'max_batch').

    Raises:
        CheckpointError: torch.export cannot trace the network (one line).
    """
    net = copy.deepcopy(model).eval()
    net.pose_renderer = functools.partial(render_pose_maps, compact=False)
    fold_batchnorm(net)
    limit = max_batch(net)
    batch = Dim("batch", min=1, max=limit) if limit is not None else Dim("batch", min=1)
    inputs = example_inputs(net, _EXAMPLE_BATCH, img_hw=img_hw, people=people,
                            generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            program = torch.export.export(ExportInterface(net), (), kwargs=inputs,
                                          dynamic_shapes={k: {0: batch} for k in inputs})
    except Exception as err:  # noqa: BLE001 - any tracing failure is reported in one line
        raise CheckpointError(f"torch.export cannot trace the {net.stage.name} network: "
                              f"{type(err).__name__}: {_first_line(err)}") from err
    return program, {"inputs": input_names(net), "outputs": output_names(net),
                     "max_batch": limit}


def write_onnx(program: ExportedProgram, info: ExportInfo, path: str) -> None:
    """Translate `program` to ONNX and write it, with `info` in its metadata, to `path`.

    Raises:
        UsageError: the export extra is not installed.
        CheckpointError: the translation fails (one line).
    """
    try:
        import onnxscript  # noqa: F401 - torch.onnx's translator needs it
    except ImportError:
        raise UsageError(f"--format onnx needs the export extra: {INSTALL_HINT}") from None
    try:
        # optimize=False: onnxruntime optimises the graph when it loads it (constant folding,
        # fusions); the exporter's own pass would only double the export's time. onnx_ir's
        # warnings on empty attribute lists say nothing a user can act on.
        with logger_level("onnx_ir", logging.ERROR):
            onnx_program = torch.onnx.export(program, dynamo=True, optimize=False,
                                             verbose=False, input_names=info.inputs,
                                             output_names=info.outputs)
    except Exception as err:  # noqa: BLE001 - any translation failure is reported in one line
        raise CheckpointError(f"the {info.mode} network does not translate to ONNX: "
                              f"{type(err).__name__}: {_first_line(err)}") from err
    onnx_program.model.metadata_props[METADATA_KEY] = info.to_json()
    with atomic_write(path, "wb") as f:
        f.write(onnx_program.model_proto.SerializeToString())


def write_torch(program: ExportedProgram, info: ExportInfo, path: str) -> None:
    """Write `program` with `torch.export.save` (a .pt2 archive), `info` as an extra file."""
    with atomic_write(path, "wb") as f:
        torch.export.save(program, f, extra_files={METADATA_KEY: info.to_json()})


def load_torch_export(path: str) -> Tuple[ExportedProgram, ExportInfo]:
    """A .pt2 file of `write_torch`: its program and its `ExportInfo`.

    Raises:
        CheckpointError: unreadable, or not written by tool/export.py.
    """
    extra = {METADATA_KEY: ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except Exception as err:  # noqa: BLE001 - reported with the file name
        raise CheckpointError(f"{path}: cannot read it as a torch.export program "
                              f"({type(err).__name__}: {_first_line(err)})") from err
    return program, ExportInfo.from_json(extra[METADATA_KEY], path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"
