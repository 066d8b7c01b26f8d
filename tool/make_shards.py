"""Pack one split of a data set into tar shards (WebDataset layout) for training on many machines.

    python tool/make_shards.py --split train --out shards/kinetics50_train [--dataset Kinetics]
        [--data_dir data] [--subset 50] [--shard_size 512] [--shard_samples N] [--<field> VALUE ...]
    python tool/make_shards.py --split test --out s3://bucket/kinetics50_test   # any fsspec URL

The data set options are test.py's (every config field is accepted; the data set, its
options and the clip span --frame_per_seg/--frame_interval decide which videos are kept).
train.py and test.py then read the split with `--shards OUT`. Ends with one summary line:
videos, frames, shards, size and time. See docs/shards.md.

Frames are packed from JPEG folders: a data set of video files is refused (extract its frames
with tool/video2image.py first), and so is `--dataset Skeleton`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from common.errors import UsageError, exit_on_error
from data.registry import build_dataset
from data.shards.writer import write_shards
from main.cli import parse_command_line
from main.config import build_config

MIB = 2 ** 20


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", required=True, choices=("train", "test"),
                        help="the split to pack ('test': the split test.py reads)")
    parser.add_argument("--out", required=True, metavar="DIR_OR_URL",
                        help="a new folder, or a URL fsspec can write")
    parser.add_argument("--shard_size", type=float, default=512.0, metavar="MB",
                        help="close a shard once it holds this many MiB (default 512)")
    parser.add_argument("--shard_samples", type=int, default=None, metavar="N",
                        help="and once it holds this many videos (default: no limit)")
    return parser


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> str:
    """Pack the split; returns the summary line (also printed)."""
    args, rest = make_parser().parse_known_args(argv)
    if args.shard_size <= 0 or (args.shard_samples is not None and args.shard_samples < 1):
        raise UsageError("--shard_size must be > 0 and --shard_samples >= 1")
    if any(a == "--shards" or a.startswith("--shards=") for a in rest):
        raise UsageError("--shards: make_shards reads the data set folder (--data_dir)")
    # test.py's options; --mode and --test_epoch do not change which videos are kept.
    overrides = parse_command_line("test", ["--mode", "rgb_only", "--test_epoch", "0", *rest])
    if overrides.get("dataset") == "Skeleton":
        # The Skeleton loader names its split with --split, which is make_shards' own option.
        raise UsageError("--dataset Skeleton: make_shards packs Kinetics, Mimetics and NTU only "
                         "(a skeleton file's --split NAME would collide with make_shards' "
                         "--split train/test); train and test from the .pkl file directly")
    cfg = build_config(overrides)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    dataset = build_dataset(cfg, cfg.dataset, args.split)
    summary = write_shards(dataset, cfg, split=args.split, out=args.out,
                           shard_bytes=int(args.shard_size * MIB),
                           shard_samples=args.shard_samples)
    line = summary.line(args.out)
    print(line)
    return line


if __name__ == "__main__":
    main()
