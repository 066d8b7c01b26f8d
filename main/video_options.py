"""The command-line options of the entry points that decode videos (`main/demo.py`,
`tool/extract_poses.py`, `tool/video2image.py`): the shorter side the frames are resized to and
the frame rate they are kept at (`data.video_decode` does the decoding itself)."""
from __future__ import annotations

import argparse
from typing import Optional


def parse_fps(text: str) -> Optional[float]:
    """`--fps`: `none` (any case) for every frame, else a positive rate.

    Raises:
        argparse.ArgumentTypeError: not a number, or not positive.
    """
    if text.strip().lower() in ("none", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fps must be a positive number or 'none', got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--fps must be positive, got {text!r}")
    return value


def add_video_options(parser: argparse.ArgumentParser) -> None:
    """`--short_side` and `--fps`, as `tool/video2image.py` extracts the frames the loaders read
    (use the same values for both, so that the frame counts agree)."""
    parser.add_argument("--short_side", type=int, default=256,
                        help="frames are resized so that the shorter side has this many pixels "
                             "(the loaders' frames have 256); 0 keeps the size (default: 256)")
    parser.add_argument("--fps", type=parse_fps, default=None,
                        help="keep frames on a grid of this rate; 'none' keeps every frame "
                             "(default). Extract frames and poses with the same value, so that "
                             "the frame counts agree")

def check_video_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit through `parser.error` on a negative `--short_side`."""
    if args.short_side < 0:
        parser.error("--short_side must be 0 or positive")
