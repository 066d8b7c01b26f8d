"""The pose-estimation options of `main/demo.py` and `tool/extract_poses.py`, and the estimator
they build (torchvision's Keypoint R-CNN, see `common.pose_estimation`)."""
from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence, Tuple

import torch

from common.runtime.device import select_device
from common.errors import UsageError
from common.pose_estimation import DEFAULT_MIN_SIZE, KeypointEstimator, load_keypoint_rcnn
from main.video_options import add_video_options, check_video_options


# --------------------------------------------------------------------------- command line

def add_pose_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that decodes videos and estimates poses on them: `--device`,
    `--short_side`, `--fps` (`main.video_options`) and the Keypoint R-CNN group."""
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N or N; default: the first GPU, else the CPU")
    add_video_options(parser)
    group = parser.add_argument_group("pose estimation (torchvision Keypoint R-CNN)")
    group.add_argument("--pose_weights", default="default", metavar="PATH",
                       help="a local copy of torchvision's KeypointRCNN_ResNet50_FPN_Weights."
                            "COCO_V1 file; default: torchvision's weights API (downloaded once "
                            "into the torch hub cache)")
    group.add_argument("--pose_min_size", type=int, default=DEFAULT_MIN_SIZE,
                       help="the detector's input scale (shorter side); 800 is what the COCO "
                            "weights were trained at, smaller is faster (default: 800)")
    group.add_argument("--person_thr", type=float, default=0.5,
                       help="people detected with a lower score are dropped (default: 0.5)")
    group.add_argument("--max_people", type=int, default=20,
                       help="most people per frame (default: 20)")
    group.add_argument("--pose_batch", type=int, default=4,
                       help="frames per detector pass (default: 4)")
    group.add_argument("--pose_proposals", type=int, default=1000,
                       help="region proposals scored per frame; fewer is faster and may miss "
                            "people (default: 1000, torchvision's)")
    group.add_argument("--random_pose_weights", action="store_true",
                       help="a randomly initialised detector (timing and tests only: the "
                            "poses are meaningless; nothing is downloaded)")


def check_pose_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit through `parser.error` on a pose or video option out of range."""
    check_video_options(parser, args)
    if args.pose_min_size < 32:
        parser.error("--pose_min_size must be 32 or more")
    if not 0 <= args.person_thr <= 1:
        parser.error("--person_thr must be in [0, 1]")
    if min(args.max_people, args.pose_batch, args.pose_proposals) < 1:
        parser.error("--max_people, --pose_batch and --pose_proposals must be 1 or more")


def parse_pose_command(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]
                       ) -> Tuple[argparse.Namespace, torch.device]:
    """Parse and check the command line of a parser with `add_pose_options`; returns the
    arguments and the `--device` to run on."""
    args = parser.parse_args(argv)
    check_pose_options(parser, args)
    return args, parse_device(args.device)


def make_estimator(args: argparse.Namespace, device: Any) -> KeypointEstimator:
    """A `KeypointEstimator` from the pose options (`--random_pose_weights`: no weights)."""
    model = load_keypoint_rcnn(weights=None if args.random_pose_weights else args.pose_weights,
                               min_size=args.pose_min_size, person_thr=args.person_thr,
                               max_people=args.max_people, proposals=args.pose_proposals)
    return KeypointEstimator(model, device=device, batch_size=args.pose_batch)


def parse_device(text: Optional[str]) -> torch.device:
    """`--device`: 'cpu', 'cuda', 'cuda:N' or 'N'; None: the first GPU, else the CPU."""
    if text is None:
        return select_device(None)[0]
    clean = text.strip().lower()
    if clean == "cpu":
        return torch.device("cpu")
    if clean == "cuda":
        clean = "0"
    if clean.startswith("cuda:"):
        clean = clean[len("cuda:"):]
    if not clean.isdigit():
        raise UsageError(f"--device {text}: expected cpu, cuda, cuda:N or N")
    return select_device(clean)[0]

