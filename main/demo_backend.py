"""What runs the demo's network: PyTorch on the snapshot (`--backend torch`, the default) or
onnxruntime on a file of tool/export.py (`--backend onnxruntime --model FILE.onnx`, which needs
the export extra: `pip install -e '.[export]'`).

An exported file carries its snapshot's stage, class count and config, so the demo samples the
same clips and names the same classes from it as from the snapshot; the snapshot itself is not
needed.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, Tuple

import torch

from common.errors import CheckpointError
from common.model import build_model
from common.train.checkpoint import load_network
from data.joint_sets import JointSet
from main.snapshot_config import read_inference_snapshot

BACKENDS = ("torch", "onnxruntime")
# The stand-in snapshot of an exported file holds its session under this key.
EXPORTED = "exported"


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="torch: the snapshot of --ckpt in PyTorch (default); onnxruntime: "
                             "the file of --model, written by tool/export.py --format onnx")
    parser.add_argument("--model", metavar="FILE.onnx",
                        help="the exported network (--backend onnxruntime); it replaces --ckpt")


def check_backend_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--ckpt for the torch backend, --model for onnxruntime, never both (argparse's error)."""
    if args.backend == "torch" and args.model:
        parser.error("--model is the onnxruntime backend's: add --backend onnxruntime")
    if args.backend == "torch" and not args.ckpt:
        parser.error("the following arguments are required: --ckpt")
    if args.backend == "onnxruntime" and not args.model:
        parser.error("--backend onnxruntime needs --model FILE.onnx (see tool/export.py)")
    if args.backend == "onnxruntime" and args.ckpt:
        parser.error("--model carries its snapshot's configuration: leave out --ckpt")


def network_path(args: argparse.Namespace) -> str:
    """The file the network comes from: --ckpt or --model."""
    return args.model if args.backend == "onnxruntime" else args.ckpt


def read_network_file(args: argparse.Namespace, device: torch.device
                      ) -> Tuple[Dict[str, Any], str, int]:
    """(the snapshot, its stage, its class count) for the torch backend; for onnxruntime the
    snapshot's stand-in ({'config', 'mode'} of the exported file, its session under
    `EXPORTED`), its stage and class count.

    Raises:
        CheckpointError: as `read_inference_snapshot`; an exported file of another stage than
            --mode, or one tool/export.py did not write.
        UsageError: onnxruntime is not installed.
    """
    if args.backend == "torch":
        return read_inference_snapshot(args.ckpt, args.mode)
    from common.export.onnx_runtime import OnnxModel  # imports onnxruntime: only when asked

    session = OnnxModel(args.model, device=device)
    info = session.info
    if args.mode is not None and args.mode != info.mode:
        raise CheckpointError(f"{args.model} was exported from a '{info.mode}' snapshot but "
                              f"--mode is '{args.mode}'; use --mode {info.mode} or leave it out")
    return {"config": info.config, "mode": info.mode, EXPORTED: session}, info.mode, \
        info.class_num


def network_runner(snap: Dict[str, Any], cfg: Any, joint_set: JointSet,
                   device: torch.device) -> Any:
    """What the clips go through: the snapshot's model on `device`, or the exported file's
    session (both take the batch dict and return the model's outputs)."""
    if EXPORTED in snap:
        return snap[EXPORTED]
    model = build_model(cfg, cfg.class_num, joint_set.limbs, joint_set.joint_num)
    load_network(model, snap["network"])
    return model.to(device)

