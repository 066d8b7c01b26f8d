"""Merge the rgb_only and pose_only snapshots into the rgb+pose starting point `snapshot_0.pth.tar`.

    python tool/merge_rgb_only_pose_only.py [--rgb snapshot_29_rgb_only.pth.tar]
        [--pose snapshot_29_pose_only.pth.tar] [--out snapshot_0.pth.tar]

Defaults are the original's file names in the working folder. `img_backbone.*` comes from the
rgb_only snapshot, `pose_backbone.*` and `pose2feat.*` from the pose_only one; epoch 0. Each
stage's classifier is kept as `aggregator.agreement.*` for `--stream_agreement`.
"""

import argparse
import os.path as osp
from typing import Optional, Sequence

from common.train.checkpoint import atomic_save, load_snapshot
from common.train.snapshot_stages import merge_single_stream_snapshots
from common.errors import CheckpointError, exit_on_error


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rgb", default="snapshot_29_rgb_only.pth.tar",
                        help="the rgb_only stage's snapshot")
    parser.add_argument("--pose", default="snapshot_29_pose_only.pth.tar",
                        help="the pose_only stage's snapshot")
    parser.add_argument("--out", default="snapshot_0.pth.tar",
                        help="where to write the merged snapshot (put it in model_dump)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out even when it is not an earlier merge output")
    args = parser.parse_args(argv)
    rgb = load_snapshot(args.rgb)
    pose = load_snapshot(args.pose)
    merged = merge_single_stream_snapshots(rgb, pose, args.rgb, args.pose)
    if osp.exists(args.out) and not args.overwrite:
        # Replacing an earlier merge is routine; replacing a trained stage's snapshot loses work.
        if not load_snapshot(args.out, mmap=True).get("merged"):
            raise CheckpointError(f"--out {args.out} exists and is a trained snapshot, not an "
                                  "earlier merge; choose another --out, or add --overwrite")
    atomic_save(merged, args.out)
    keys = merged["network"]

    def count(*modules: str) -> int:
        return sum(k.startswith(tuple(f"module.{m}." for m in modules)) for k in keys)

    print(f"merged {count('img_backbone')} img_backbone tensors from {args.rgb}, "
          f"{count('pose_backbone', 'pose2feat')} pose_backbone/pose2feat tensors from "
          f"{args.pose} and {count('aggregator.agreement')} stage classifier tensors")
    print(f"saved: {args.out}")
    return args.out


if __name__ == "__main__":
    main()
