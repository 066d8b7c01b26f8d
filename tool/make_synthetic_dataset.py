"""Write a small synthetic action data set in the real Kinetics and Mimetics on-disk formats.

It makes the paper's claim visible on a laptop: every class has a typical *scene* (an easy
shortcut for an RGB network) and a typical *motion* (what the pose stream sees); two pairs of
classes share the very same motion and differ only by the object in the hands and the scene,
like many Kinetics classes. The out-of-context split (Mimetics format) mimes the same motions
with no object in the scene of another class, so an RGB model that learned scene -> class fails
there while the pose stream keeps working.

Layout written under `<out>` (read by the project's ordinary loaders, `data_dir=<out>`)::

    Kinetics/data/Kinetics{subset}_{train,val}.json              MS COCO layout + categories
    Kinetics/data/frames/{train_256,val_256}/{action}/{file_name}/%06d.jpg   (1-based)
    Kinetics/data/kinetics-skeleton/kinetics_{train,val}_label.json
    Kinetics/data/kinetics-skeleton/kinetics_{train,val}/{video}.json        (normalised x, y)
    Mimetics/data/Mimetics{subset}.json
    Mimetics/data/frames/{action}/{file_name}/%06d.jpg
    Mimetics/data/pose_results/{action}/{file_name}/data.json               (pixel x, y)
    Kinetics/data/Kinetics{subset}Valid_val.json, Mimetics/data/Mimetics{subset}Valid.json
                                                                 the validation splits (their
                                                                 videos in the folders above)
    synthetic_dataset.json                                       written first: "this folder is
                                                                 the generator's" (never removed)
    synthetic_params.json                                        written last: "complete" marker

It never writes into a folder that holds another data set: when `<out>/Kinetics/data`,
`<out>/Mimetics/data` or `<out>/NTU/data` already holds files and `<out>` has no marker of this
generator, it stops with a one-line error (choose an empty folder). Its own earlier output
(complete, interrupted, or written with other parameters) is rebuilt in place.

Every video is a pure function of (seed, split, class, slot), so the output does not depend on
the number of worker processes or the order they run in.

Five splits: train; the in-context and out-of-context test splits (`--subset Synth`); and their
validation twins, from other random streams (`--subset SynthValid`), four times as many videos
by default (`--valid_per_class`), so that a choice between recipes a point apart is not decided
by a video or two. Recipes are chosen on the validation splits; the test splits are for the final
table only.

    python tool/make_synthetic_dataset.py --out output/synthetic --seed 0
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Dict, Optional, Sequence

import cv2
import numpy as np

from common.errors import exit_on_error
from tool.synthetic.dataset import generate_dataset
from tool.synthetic.plan import CLASSES, VALID_PER_TEST

__all__ = ["generate_dataset", "main", "make_parser", "write_preview"]


def write_preview(summary: Dict[str, Any], path: str, *, frame: Optional[int] = None,
                  cell_height: int = 128) -> str:
    """A PNG grid: one frame per class, train (top row) and out-of-context (bottom row)."""
    params = summary["params"]
    frame = frame if frame is not None else params["frames"] // 2 + 1
    rows = []
    for split in ("train", "mimetics"):
        cells = []
        for label, name in enumerate(summary["class_names"]):
            video = next(v for v in summary["videos"][split] if v["label"] == label)
            img = cv2.imread(os.path.join(video["frame_dir"], f"{frame:06d}.jpg"))
            scale = cell_height / img.shape[0]
            img = cv2.resize(img, (int(round(img.shape[1] * scale)), cell_height))
            text = name if split == "train" else f"{name} @ {video['scene_name']}"
            cv2.rectangle(img, (0, 0), (img.shape[1], 12), (0, 0, 0), -1)
            cv2.putText(img, text, (2, 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1,
                        cv2.LINE_AA)
            cells.append(cv2.copyMakeBorder(img, 2, 2, 2, 2, cv2.BORDER_CONSTANT,
                                            value=(255, 255, 255)))
        rows.append(np.concatenate(cells, axis=1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, np.concatenate(rows, axis=0))
    return path


def make_parser() -> argparse.ArgumentParser:
    """The generator's command line (`generate_dataset`'s parameters, and --preview)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(root, "output", "synthetic"),
                        help="output folder (use it as --data_dir for train.py/test.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_classes", type=int, default=8,
                        help=f"2..{len(CLASSES)}; the first 8: "
                             + ", ".join(c.name for c in CLASSES[:8]))
    parser.add_argument("--train_per_class", type=int, default=60)
    parser.add_argument("--test_per_class", type=int, default=15,
                        help="videos per class in the in-context val and the out-of-context split")
    parser.add_argument("--valid_per_class", type=int, default=None,
                        help="videos per class in each validation split (default: "
                             f"{VALID_PER_TEST} x --test_per_class)")
    parser.add_argument("--frames", type=int, default=20, help="frames per video")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=170)
    parser.add_argument("--subset", default="Synth",
                        help="names the files Kinetics{subset}_train.json, Mimetics{subset}.json")
    parser.add_argument("--jpeg_quality", type=int, default=90)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: up to 2)")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    parser.add_argument("--preview", default=None,
                        help="also write a PNG: one frame per class, train / out of context")
    return parser


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The command line; an unusable --out ends with one `error: ...` line and exit status 1."""
    args = make_parser().parse_args(argv)
    summary = generate_dataset(
        args.out, seed=args.seed, num_classes=args.num_classes,
        train_per_class=args.train_per_class, test_per_class=args.test_per_class,
        valid_per_class=args.valid_per_class, frames=args.frames, height=args.height,
        width=args.width, subset=args.subset,
        workers=args.workers, jpeg_quality=args.jpeg_quality, force=args.force)
    state = "already complete, nothing to do" if summary["skipped"] \
        else f"written in {summary['seconds']:.1f} s"
    print(f"Synthetic data set at {summary['out_dir']}: {state}")
    print("  videos: " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items()))
    for name, motion, prop, scene in zip(summary["class_names"], summary["motions"],
                                         summary["held_props"], summary["scenes"]):
        print(f"  {name:14s} motion={motion:12s} object={str(prop):10s} scene={scene}")
    if args.preview:
        print(f"  preview: {write_preview(summary, args.preview)}")
    return summary


if __name__ == "__main__":
    main()
