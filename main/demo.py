"""Recognise the action in one video of your own, and show why.

    python main/demo.py --video clip.mp4 --ckpt output/rgb_pose/model_dump/snapshot_29.pth.tar
        [--mode rgb+pose] [--poses skeleton.json] [--labels names.txt] [--pose_weights PATH]
        [--device cpu] [--out_dir output/vis]
    python main/demo.py --frames data/Kinetics/data/frames/val_256/<class>/<video> --ckpt ...

The video is decoded with PyAV as `tool/video2image.py` extracts it (shorter side 256), or read
from an extracted frame folder (`--frames`). Poses come from a kinetics-skeleton file
(`--poses`) or from torchvision's Keypoint R-CNN, converted to OpenPose-18, on the frames the
clips use. The clips are sampled exactly as `main/test.py` samples a test video (same start
frames, frames, centre crop and pose transform: `data/video_clips.py`), and the network and its
input geometry come from the snapshot's own config. It prints the top-5 classes (the clips'
probabilities averaged) and writes to `--out_dir`:

    <name>_demo.mp4         the video with the skeletons, the crop the RGB stream sees, the
                            prediction and, per clip, the pose gate (GIF if MP4 cannot be written)
    <name>_summary.png      top-5 bar chart; per clip: the predicted class's probability, the
                            pose gate (rgb+pose) and the stream agreement (when the model has it)
    <name>_prediction.json  probabilities, top-5, clip frames, gates, timings
    <name>_poses.json       the estimated poses (kinetics-skeleton format: reuse with --poses)
"""

import argparse
import os.path as osp
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from common.train.checkpoint import (check_stage, classifier_class_count, load_network, load_snapshot,
                               snapshot_stage)
from common.errors import CheckpointError, DataError, UsageError, exit_on_error
from common.model import build_model
from main.cli import OneLineParser
from main.pose_options import (add_pose_options, check_pose_options,
                                 make_estimator, parse_device)
from common.stages import MODES, get_stage
from common.report.visualize import (draw_box, draw_people, draw_text_lines, plot_prediction_summary,
                              write_video)
from data.Kinetics.Kinetics import read_kinetics_skeleton
from data.joint_sets import OPENPOSE_18
from data.parsing import read_json_file
from data.registry import DATASETS
from data.skeleton_files import pose_table, skeleton_content, write_json_atomic
from data.video_clips import (ClipGeometry, ClipPlan, PoseTable, plan_test_clips,
                              read_frame_folder, sample_test_clips)
from data.video_decode import decode_video, parse_fps
from main.config import build_config, config_from_snapshot

TOP = 5


# --------------------------------------------------------------------------- set-up
def read_demo_snapshot(path: str, mode: Optional[str]) -> Tuple[Dict[str, Any], str, int]:
    """The snapshot, its stage and its class count (from its classifier's weights).

    Raises:
        CheckpointError: unreadable, of another stage than `--mode`, the merge tool's output,
            or without classifier weights.
        UsageError: the stage cannot be told from the file and `--mode` is not given.
    """
    snap = load_snapshot(path, map_location="cpu")
    stage = snapshot_stage(snap)
    if mode is not None:
        check_stage(snap, mode, path)
    elif stage is None:
        raise UsageError(f"{path} does not say which stage trained it (the authors' format); "
                         f"pass --mode ({', '.join(MODES)})")
    return snap, mode or stage, classifier_class_count(snap, path)


def demo_config(snap: Dict[str, Any], path: str, mode: str, test_infer_num: Optional[int],
                mode_given: bool) -> Any:
    """The snapshot's network and input configuration (its saved config, else the defaults
    for `mode`, as test.py does for the authors' snapshots)."""
    overrides: Dict[str, Any] = {}
    if mode_given or not snap.get("config"):
        overrides["mode"] = mode
    if test_infer_num is not None:
        overrides["test_infer_num"] = test_infer_num
    if snap.get("config"):
        return config_from_snapshot(snap["config"], overrides, purpose="test", snapshot=path)
    return build_config(overrides)


def read_class_names(path: str) -> Dict[int, str]:
    """Class index -> name from a text file (line i = class i), a COCO-layout annotation file
    (`action_label`, `action_name`) or a kinetics-skeleton label file (`label_index`, `label`).

    Raises:
        UsageError: the file is none of these.
    """
    if not osp.isfile(path):
        raise UsageError(f"--labels {path}: no such file")
    if not path.lower().endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return {i: line.strip() for i, line in enumerate(
                line for line in f.read().splitlines() if line.strip())}
    try:
        content = read_json_file(path, "class names file")
    except DataError as err:
        raise UsageError(f"--labels: {err}") from None
    names: Dict[int, str] = {}
    if isinstance(content, dict) and isinstance(content.get("annotations"), list):
        for ann in content["annotations"]:
            if isinstance(ann, dict) and isinstance(ann.get("action_label"), int) \
                    and isinstance(ann.get("action_name"), str):
                names.setdefault(ann["action_label"], ann["action_name"])
    elif isinstance(content, dict):
        for entry in content.values():
            if isinstance(entry, dict) and isinstance(entry.get("label_index"), int) \
                    and isinstance(entry.get("label"), str) and entry["label_index"] >= 0:
                names.setdefault(entry["label_index"], entry["label"])
    if not names:
        raise UsageError(f"--labels {path}: no class names in it (expected a text file with one "
                         "name per line, a COCO annotation file with action_label/action_name, "
                         "or a kinetics-skeleton label file)")
    return names


def find_class_names(labels: Optional[str], source_set: Dict[str, Any]
                     ) -> Tuple[Dict[int, str], str]:
    """Class names and where they came from: `--labels`, else the files of the data set the
    snapshot was trained on (`source_set`: its dataset, subset and data_dir), the classes file
    `tool/extract_poses.py` writes, then the annotation files' `action_name`; else none (class
    indices are shown)."""
    if labels:
        return read_class_names(labels), labels
    if source_set["dataset"] in ("Kinetics", "Mimetics"):  # Mimetics uses Kinetics' labels
        root = osp.join(source_set["data_dir"], "Kinetics", "data")
        subset = source_set["subset"]
        for name in (f"Kinetics{subset}_classes.txt", f"Kinetics{subset}_val.json",
                     f"Kinetics{subset}_train.json"):
            path = osp.join(root, name)
            if osp.isfile(path):
                try:
                    return read_class_names(path), path
                except UsageError:
                    continue
    return {}, "none found (pass --labels): class indices are shown"


def trained_on(snap: Dict[str, Any], cfg: Any, data_dir: Optional[str]) -> Dict[str, Any]:
    """The data set a snapshot was trained on: its config's dataset, subset and data_dir (the
    defaults for the authors' snapshots); `data_dir` (--data_dir) wins."""
    saved = snap.get("config") or {}
    found = {key: saved.get(key) or cfg[key] for key in ("dataset", "subset", "data_dir")}
    if data_dir:
        found["data_dir"] = data_dir
    return found


# --------------------------------------------------------------------------- poses
def estimate_poses(frames: np.ndarray, frame_indices: Sequence[int], args: argparse.Namespace,
                   device: torch.device) -> PoseTable:
    """Keypoint R-CNN on the given frames, as the OpenPose-18 pose table."""
    estimator = make_estimator(args, device, random_weights=args.random_pose_weights)
    people = estimator([frames[k] for k in frame_indices])
    return pose_table(people, frame_indices, frames.shape[1:3])


def frames_to_estimate(plans: Sequence[ClipPlan], frame_num: int, every_frame: bool) -> List[int]:
    """The frames whose poses the clips use (all frames with `every_frame`), sorted."""
    if every_frame:
        return list(range(frame_num))
    return sorted({k for plan in plans for k in plan.pose_frames})


# --------------------------------------------------------------------------- network
@torch.inference_mode()
def run_clips(model: torch.nn.Module, items: Sequence[Dict[str, torch.Tensor]],
              device: torch.device, batch_size: int) -> Dict[str, np.ndarray]:
    """The network over the clips: 'prob' (N, C) and, where the model has them, 'gate' (N,)
    (the mean of each clip's gate, as test.py reports it) and 'agreement' (N,)."""
    model.eval()
    probs, gates, agreements = [], [], []
    for first in range(0, len(items), batch_size):
        chunk = items[first:first + batch_size]
        batch = {key: torch.stack([item[key] for item in chunk]).to(device) for key in chunk[0]}
        out = model(batch)
        logits = out["logits"]
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        if out.get("gate") is not None:
            gates.append(out["gate"].float().view(len(chunk), -1).mean(1).cpu().numpy())
        if out.get("agreement") is not None:
            agreements.append(out["agreement"].float().cpu().numpy())
    result = {"prob": np.concatenate(probs)}
    if gates:
        result["gate"] = np.concatenate(gates)
    if agreements:
        result["agreement"] = np.concatenate(agreements)
    if not np.isfinite(result["prob"]).all():
        raise CheckpointError("non-finite class probabilities: the snapshot's weights hold "
                              "NaN/inf (a diverged run)")
    return result


# --------------------------------------------------------------------------- pictures
def clip_of_frame(plans: Sequence[ClipPlan], frame: int) -> Optional[ClipPlan]:
    """The latest-starting clip whose span holds `frame` (clips may overlap)."""
    holding = [p for p in plans if p.image_frames[0] <= frame <= p.image_frames[-1]]
    return holding[-1] if holding else None


def render_frames(frames: np.ndarray, table: PoseTable, plans: Sequence[ClipPlan],
                  geometry: ClipGeometry, outputs: Dict[str, np.ndarray], names: Sequence[str],
                  probs: np.ndarray, cfg: Any) -> List[np.ndarray]:
    """Every frame with its skeletons (where poses exist), the crop box the network sees, the
    video's top-2 classes and the current clip's own top class, gate and agreement."""
    height, width = frames.shape[1:3]
    size = np.array([width, height], dtype=np.float32)
    order = np.argsort(-probs, kind="stable")
    header = [f"{rank}. {names[i]} {probs[i]:.2f}" for rank, i in enumerate(order[:2], start=1)]
    sampled = {k for plan in plans for k in plan.image_frames}
    out = []
    for k, frame in enumerate(frames):
        drawn = frame
        if (k + 1) in table:
            coords, scores = table[k + 1]
            drawn = draw_people(frame, coords * size, scores, limbs=OPENPOSE_18.limbs,
                                score_thr=float(cfg.pose_score_thr), top_k=int(cfg.top_k_pose))
        else:
            drawn = frame.copy()
        draw_box(drawn, geometry.box_in_frame(),
                 (255, 255, 0) if k in sampled else (255, 255, 255))
        lines = list(header)
        plan = clip_of_frame(plans, k)
        if plan is not None:
            i = plan.index
            clip_best = int(np.argmax(outputs["prob"][i]))
            text = f"clip {i + 1}/{len(plans)}: {names[clip_best]}"
            if "gate" in outputs:
                text += f" gate {outputs['gate'][i]:.2f}"
            if "agreement" in outputs:
                text += f" agr {outputs['agreement'][i]:.2f}"
            lines.append(text)
        out.append(draw_text_lines(drawn, lines))
    return out


# --------------------------------------------------------------------------- main
def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="demo.py", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Poses are estimated only on the frames the clips use unless "
               "--pose_every_frame; rgb_only snapshots need none (give --poses to draw them).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="a video file (decoded with PyAV)")
    source.add_argument("--frames", metavar="DIR",
                        help="a frame folder of tool/video2image.py (000001.jpg, ...)")
    parser.add_argument("--ckpt", required=True, metavar="PATH", help="the snapshot to run")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="the snapshot's stage; needed only for snapshots that do not say "
                             "(the authors'); a different stage than the snapshot's is refused")
    parser.add_argument("--poses", metavar="JSON",
                        help="a kinetics-skeleton pose file of the video (x, y normalised, "
                             "frame_index from 1) instead of estimating the poses")
    parser.add_argument("--labels", metavar="PATH",
                        help="class names: a text file (line i = class i), a COCO annotation "
                             "file (action_name) or a kinetics-skeleton label file; default: "
                             "the snapshot's data set's files under --data_dir, else indices")
    parser.add_argument("--data_dir", default=None, metavar="PATH",
                        help="where the snapshot's data set is, for its class names (default: "
                             "the data_dir the snapshot was trained with, else data/)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N; default: the first GPU, else the CPU")
    parser.add_argument("--out_dir", default=None, metavar="DIR",
                        help="where the pictures go (default: output/vis)")
    parser.add_argument("--name", default=None,
                        help="file name prefix of the outputs (default: the video's name)")
    parser.add_argument("--short_side", type=int, default=256,
                        help="decode at this shorter side, as tool/video2image.py extracts the "
                             "frames test.py reads (0: keep the size; default: 256)")
    parser.add_argument("--fps", type=parse_fps, default=None,
                        help="keep frames on a grid of this rate, as tool/video2image.py --fps "
                             "(default: every frame)")
    parser.add_argument("--test_infer_num", type=int, default=None,
                        help="clips sampled from the video (default: the config's, 10)")
    parser.add_argument("--batch_size", type=int, default=16, help="clips per network pass")
    parser.add_argument("--video_format", choices=("mp4", "gif", "none"), default="mp4",
                        help="the annotated video: MP4 (GIF if MP4 fails), GIF, or none")
    parser.add_argument("--pose_every_frame", action="store_true",
                        help="estimate the poses of every frame (slower; every frame of the "
                             "output video then shows skeletons)")
    add_pose_options(parser)
    parser.add_argument("--random_pose_weights", action="store_true",
                        help="a randomly initialised detector (timing and tests only: the "
                             "poses are meaningless)")
    return parser


@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the demo; returns what `<name>_prediction.json` holds."""
    parser = make_parser()
    args = parser.parse_args(argv)
    check_pose_options(parser, args)
    if args.short_side < 0 or args.batch_size < 1 or (args.test_infer_num or 1) < 1:
        parser.error("--short_side must be 0 or more, --batch_size and --test_infer_num 1 or "
                     "more")
    times: Dict[str, float] = {}
    started = clock = time.time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.time()
        times[name] = round(now - clock, 3)
        clock = now

    for option, path, exists in (("--video", args.video, osp.isfile),
                                 ("--frames", args.frames, osp.isdir),
                                 ("--poses", args.poses, osp.isfile),
                                 ("--labels", args.labels, osp.isfile)):
        if path is not None and not exists(path):
            raise UsageError(f"{option} {path}: not found")
    device = parse_device(args.device)
    snap, mode, class_num = read_demo_snapshot(args.ckpt, args.mode)
    cfg = demo_config(snap, args.ckpt, mode, args.test_infer_num, args.mode is not None)
    cfg.class_num = class_num
    stage = get_stage(cfg.mode)
    source_set = trained_on(snap, cfg, args.data_dir)
    joint_set = DATASETS[source_set["dataset"]].joint_set if source_set["dataset"] in DATASETS \
        else OPENPOSE_18
    if stage.needs_pose and joint_set != OPENPOSE_18:
        raise UsageError(f"{args.ckpt} was trained on {source_set['dataset']}'s "
                         f"{joint_set.name} skeletons; the demo's poses are OpenPose-18")
    names_by_index, names_from = find_class_names(args.labels, source_set)
    names = [names_by_index.get(i, str(i)) for i in range(class_num)]
    lap("snapshot")

    if args.video:
        frames, fps = decode_video(args.video, short_side=args.short_side, fps=args.fps)
        source = args.video
    else:
        frames = read_frame_folder(args.frames)
        fps = float(args.fps or 30.0)  # a frame folder does not say; Kinetics is ~30 fps
        source = args.frames
    name = args.name or osp.splitext(osp.basename(osp.normpath(source)))[0]
    plans = plan_test_clips(len(frames), cfg)
    lap("decode")

    out_dir = args.out_dir or cfg.vis_dir
    files: Dict[str, str] = {}
    if args.poses:
        table: PoseTable = read_kinetics_skeleton(args.poses, OPENPOSE_18.joint_num)
        # The released kinetics-skeleton files cover the first 300 frames at 30 fps: say how
        # much of this video the file covers, since frames past it have nobody.
        covered = f"frames {min(table)}-{max(table)}" if table else "no people"
        pose_source = f"{args.poses} ({covered}; the video has {len(frames)})"
    elif stage.needs_pose:
        indices = frames_to_estimate(plans, len(frames), args.pose_every_frame)
        table = estimate_poses(frames, indices, args, device)
        files["poses"] = osp.join(out_dir, f"{name}_poses.json")
        write_json_atomic(files["poses"], skeleton_content(
            table, frame_num=len(frames), frame_hw=frames.shape[1:3]))
        pose_source = f"Keypoint R-CNN on {len(indices)} frames"
    else:
        table, pose_source = {}, "none (rgb_only needs none)"
    lap("poses")

    items, plans, geometry = sample_test_clips(frames, table, cfg, joint_set=joint_set,
                                               with_video=stage.needs_video)
    model = build_model(cfg, class_num, joint_set.limbs, joint_set.joint_num)
    load_network(model, snap["network"])
    model.to(device)
    outputs = run_clips(model, items, device, args.batch_size)
    probs = outputs["prob"].mean(axis=0)
    lap("network")

    order = [int(i) for i in np.argsort(-probs, kind="stable")[:TOP]]
    seconds = len(frames) / fps
    print(f"{source}: {len(frames)} frames ({seconds:.1f} s at {fps:g} fps), {len(plans)} clips "
          f"of {cfg.frame_per_seg} frames every {cfg.frame_interval}; {cfg.mode}; poses: "
          f"{pose_source}; class names: {names_from}")
    print(f"top-{len(order)}:")
    for rank, i in enumerate(order, start=1):
        print(f"  {rank}. {names[i]:<30s} {probs[i]:.4f}")
    if "gate" in outputs:
        print("pose gate per clip (1 = pose, 0 = RGB): "
              + " ".join(f"{g:.3f}" for g in outputs["gate"]))
    if "agreement" in outputs:
        print("stream agreement per clip: " + " ".join(f"{a:.3f}" for a in outputs["agreement"]))

    clip_times = np.array([p.start / fps for p in plans])
    files["summary"] = plot_prediction_summary(
        osp.join(out_dir, f"{name}_summary.png"), probs=probs, class_names=names,
        clip_times=clip_times, clip_probs=outputs["prob"], gates=outputs.get("gate"),
        agreements=outputs.get("agreement"),
        title=f"{name}: {names[order[0]]} ({probs[order[0]]:.2f}), {cfg.mode}")
    if args.video_format != "none":
        drawn = render_frames(frames, table, plans, geometry, outputs, names, probs, cfg)
        files["video"] = write_video(drawn, osp.join(out_dir, f"{name}_demo.{args.video_format}"),
                                     fps=fps)
    lap("pictures")
    times["total"] = round(time.time() - started, 3)

    summary: Dict[str, Any] = {
        "source": source, "ckpt": args.ckpt, "mode": cfg.mode, "frames": len(frames),
        "fps": fps, "class_names_from": names_from, "poses_from": pose_source,
        "top5": [{"class": i, "name": names[i], "prob": float(probs[i])} for i in order],
        "probs": [float(p) for p in probs],
        "clips": [{"start": p.start, "image_frames": list(p.image_frames),
                   "pose_frames": list(p.pose_frames),
                   "prob": [float(v) for v in outputs["prob"][p.index]]} for p in plans],
        "crop_box_resized": list(geometry.box), "resized_hw": list(geometry.resized_hw),
        "device": str(device), "seconds": times, "files": files,
    }
    if "gate" in outputs:
        summary["gates"] = [float(g) for g in outputs["gate"]]
    if "agreement" in outputs:
        summary["agreements"] = [float(a) for a in outputs["agreement"]]
    files["prediction"] = osp.join(out_dir, f"{name}_prediction.json")
    write_json_atomic(files["prediction"], summary)
    print("written: " + ", ".join(files[k] for k in ("video", "summary", "prediction", "poses")
                                  if k in files))
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    return summary


if __name__ == "__main__":
    main()
