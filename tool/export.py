"""Export a snapshot's test-time network, pose-map rendering included, to one file.

    python tool/export.py --ckpt output/rgb_pose/model_dump/snapshot_29.pth.tar \\
        --format onnx --out rgb_pose.onnx [--mode rgb+pose]
    python tool/export.py --ckpt ... --format torch --out rgb_pose.pt2

`onnx`: an ONNX graph for onnxruntime (`main/demo.py --backend onnxruntime --model FILE`);
`torch`: a `torch.export` program (`torch.export.load(FILE).module()`). Both take the stage's
inputs as the model's forward takes them at test time (video, pose_coords, pose_scores) with
a dynamic batch axis, and give logits, probs and, in rgb+pose, the pose gate (and the stream
agreement where the snapshot has it); every stage exports (docs/export.md). The network and its
input sizes come from the snapshot's own config, as for test.py and the demo (`--mode` only for
the authors' snapshots, which do not record their stage). After writing, the file is run on
random inputs of 1 and 3 clips and compared with PyTorch (`--no_check` skips it); it is
written under a temporary name and takes the name `--out` only once the check has passed.
"""
from __future__ import annotations

import argparse
import math
import os
import os.path as osp
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torch import Tensor

from common.errors import CheckpointError, UsageError, exit_on_error
from common.export.files import (FORMATS, SUFFIX, export_network, load_torch_export,
                                 write_onnx, write_torch)
from common.export.signature import ExportInfo, example_inputs
from common.model import build_model
from common.stages import MODES
from common.train.checkpoint import load_network
from data.registry import DATASETS
from data.joint_sets import OPENPOSE_18
from main.cli import OneLineParser
from main.snapshot_config import inference_config, read_inference_snapshot

# The largest |exported - PyTorch| difference of an output the check accepts.
CHECK_TOLERANCE = 1e-4


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="export.py", description=__doc__.split("\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, metavar="PATH", help="the snapshot to export")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="onnx (onnxruntime) or torch (torch.export, .pt2)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the file to write (.onnx for onnx, .pt2 for torch)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="the snapshot's stage; needed only for snapshots that do not say "
                             "(the authors'); a different stage than the snapshot's is refused")
    parser.add_argument("--no_check", action="store_true",
                        help="do not compare the written file with PyTorch")
    return parser


def build_network(path: str, mode_option: Optional[str]) -> Dict[str, Any]:
    """The snapshot's model with its weights, in eval mode, and its config and facts.
    `mode_option`: `--mode` (None: not given)."""
    snap, mode, class_num = read_inference_snapshot(path, mode_option)
    cfg = inference_config(snap.get("config"), path, mode=mode,
                           mode_given=mode_option is not None)
    cfg.class_num = class_num
    # The joints of the data set it was trained on (test.py may test it on another one).
    dataset = (snap.get("config") or {}).get("dataset") or cfg.dataset
    joints = DATASETS[dataset].joint_set if dataset in DATASETS else OPENPOSE_18
    model = build_model(cfg, class_num, joints.limbs, joints.joint_num)
    load_network(model, snap["network"])
    return {"model": model.eval(), "cfg": cfg, "config": snap.get("config"), "mode": mode}


def exported_runner(path: str, fmt: str) -> Callable[[Dict[str, Tensor]], Dict[str, Tensor]]:
    """The written file as a function of the model's batch dict, returning at least its
    'logits' (B, C) and 'probs' (B, C)."""
    if fmt == "onnx":
        from common.export.onnx_runtime import OnnxModel  # needs the export extra

        return OnnxModel(path)
    program, info = load_torch_export(path)
    module = program.module()
    return lambda batch: dict(zip(info.outputs, module(**batch)))


def compare_with_eager(run: Callable[[Dict[str, Tensor]], Dict[str, Tensor]],
                       model: torch.nn.Module, cfg: Any) -> Dict[str, float]:
    """The largest |exported - eager| difference of each output a user reads, on random clips
    (batches of 1 and 3): 'probs' always, 'logits' only where they are the classifier's.

    With `pose_fallback` the logits are log-probabilities floored at 1e-12: where one engine
    lands on the floor and the other just above it they differ widely while the probabilities
    agree, so there the probabilities alone are compared.
    """
    worst: Dict[str, float] = {}
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 3):
        inputs = example_inputs(model, batch, img_hw=tuple(cfg.input_img_shape),
                                people=int(cfg.top_k_pose), generator=generator)
        with torch.no_grad():
            eager = model(inputs)
            got = run(inputs)
        expected = {"probs": torch.softmax(eager["logits"], dim=1)}
        if eager.get("pose_share") is None:
            expected["logits"] = eager["logits"]
        for name, value in expected.items():
            diff = float((got[name] - value).abs().max())
            # A NaN is no agreement (and max() would drop it).
            worst[name] = max(worst.get(name, 0.0), float("inf") if math.isnan(diff) else diff)
    return worst


def check_export(path: str, fmt: str, model: torch.nn.Module, cfg: Any, *,
                 name: Optional[str] = None) -> float:
    """Run the written file `path` on random clips and return the largest difference from
    the eager model (`compare_with_eager`); `CheckpointError` above `CHECK_TOLERANCE`.
    `name`: the file's name in the message (default `path`)."""
    worst = compare_with_eager(exported_runner(path, fmt), model, cfg)
    for output, diff in worst.items():
        if not diff <= CHECK_TOLERANCE:
            raise CheckpointError(f"{name or path}: its {output} differ from PyTorch's by "
                                  f"{diff:.2e} (> {CHECK_TOLERANCE:g}); the export is not usable")
    return max(worst.values())


def write_checked(program: Any, info: ExportInfo, args: argparse.Namespace,
                  model: torch.nn.Module, cfg: Any) -> Optional[float]:
    """Write the file under a temporary name beside `--out`, check it (unless `--no_check`)
    and only then rename it to `--out`: a file that fails the check is removed, so the
    requested name never holds an unusable export. Returns the check's difference."""
    folder = osp.dirname(osp.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    stem, suffix = osp.splitext(osp.basename(args.out))
    # Hidden, and with the format's suffix, which torch.export.load insists on.
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=f".tmp{suffix}")
    os.close(handle)
    try:
        (write_onnx if args.format == "onnx" else write_torch)(program, info, tmp)
        diff = None if args.no_check else check_export(tmp, args.format, model, cfg,
                                                       name=args.out)
        os.replace(tmp, args.out)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return diff


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Export; returns the file's `ExportInfo` fields, the check's difference and the time."""
    args = make_parser().parse_args(argv)
    if osp.splitext(args.out)[1] != SUFFIX[args.format]:
        raise UsageError(f"--out {args.out}: --format {args.format} writes a "
                         f"{SUFFIX[args.format]} file; name it so")
    start = time.perf_counter()
    net = build_network(args.ckpt, args.mode)
    model, cfg = net["model"], net["cfg"]
    program, facts = export_network(model, img_hw=tuple(cfg.input_img_shape),
                                    people=int(cfg.top_k_pose))
    info = ExportInfo(mode=net["mode"], class_num=cfg.class_num, config=net["config"],
                      source=args.ckpt, **facts)
    diff = write_checked(program, info, args, model, cfg)
    seconds = time.perf_counter() - start
    limit = "any batch" if info.max_batch is None else f"batch 1..{info.max_batch}"
    checked = "" if diff is None else f"; max |output - PyTorch's| {diff:.1e}"
    print(f"written: {args.out} ({info.mode}, {args.format}, {seconds:.0f} s); inputs "
          f"{', '.join(info.inputs)}; outputs {', '.join(info.outputs)}; {limit}{checked}")
    return {**info.__dict__, "check_max_abs_diff": diff, "seconds": seconds}


if __name__ == "__main__":
    main()
