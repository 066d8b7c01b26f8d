"""Recognise the action in one video of your own, and show why.

    python main/demo.py --video clip.mp4 --ckpt output/rgb_pose/model_dump/snapshot_29.pth.tar
        [--mode rgb+pose] [--poses skeleton.json] [--labels names.txt] [--pose_weights PATH]
        [--device cpu] [--out_dir output/vis]
    python main/demo.py --frames data/Kinetics/data/frames/val_256/<class>/<video> --ckpt ...
    python main/demo.py --video clip.mp4 --backend onnxruntime --model model.onnx [...]

The video is decoded with PyAV as `tool/video2image.py` extracts it (shorter side 256), or read
from an extracted frame folder (`--frames`). Poses come from a kinetics-skeleton file
(`--poses`) or from torchvision's Keypoint R-CNN, converted to OpenPose-18, on the frames the
clips use. The clips are sampled exactly as `main/test.py` samples a test video (same start
frames, frames, centre crop and pose transform: `data/video_clips.py`), and the network and its
input geometry come from the snapshot's own config (or from the file of tool/export.py that
`--backend onnxruntime --model` runs: `main/demo_backend.py`). It prints the top-5 classes (the
clips' probabilities averaged) and writes to `--out_dir`:

    <name>_demo.mp4         the video with the skeletons, the crop the RGB stream sees, the
                            prediction and, per clip, the pose gate (GIF if MP4 cannot be written)
    <name>_summary.png      top-5 bar chart; per clip: the predicted class's probability, the
                            pose gate (rgb+pose) and the stream agreement (when the model has it)
    <name>_prediction.json  probabilities, top-5, clip frames, gates, timings
    <name>_poses.json       the estimated poses (kinetics-skeleton format: reuse with --poses)
"""

import argparse
import os.path as osp
import sys
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from common.errors import CheckpointError, UsageError, exit_on_error
from common.stages import MODES, get_stage
from data.Kinetics.Kinetics import read_kinetics_skeleton
from data.class_names import find_class_names, names_for_classes
from data.joint_sets import OPENPOSE_18
from data.pose_extraction import estimate_frame_poses, frames_to_estimate, write_pose_file
from data.registry import DATASETS
from data.video_clips import PoseTable, plan_test_clips, read_frame_folder, sample_test_clips
from data.video_decode import decode_video
from main.cli import OneLineParser
from main.demo_backend import (add_backend_options, check_backend_options, network_path,
                               network_runner, read_network_file)
from main.snapshot_config import inference_config
from main.demo_outputs import (DemoNetwork, DemoPrediction, DemoVideo, prediction_summary,
                               print_prediction, save_prediction, write_pictures)
from main.pose_options import add_pose_options, make_estimator, parse_pose_command

TOP = 5


class LapTimer:
    """Seconds per named step, and the total."""

    def __init__(self) -> None:
        self.times: Dict[str, float] = {}
        self.started = self.clock = time.time()

    def lap(self, name: str) -> None:
        now = time.time()
        self.times[name] = round(now - self.clock, 3)
        self.clock = now

    def stop(self) -> Dict[str, float]:
        self.times["total"] = round(time.time() - self.started, 3)
        return self.times


# --------------------------------------------------------------------------- 1. command line
def make_parser() -> argparse.ArgumentParser:
    """The demo's command line (the pose options: `main.pose_options`).

    Its options are declarations of argparse's one shape, like `tool/extract_poses.py`'s; the
    options the two share are declared once, in `main.pose_options` and `main.video_options`.
    """
    parser = OneLineParser(
        prog="demo.py", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Poses are estimated only on the frames the clips use unless "
               "--pose_every_frame; rgb_only snapshots need none (give --poses to draw them).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="a video file (decoded with PyAV)")
    source.add_argument("--frames", metavar="DIR",
                        help="a frame folder of tool/video2image.py (000001.jpg, ...)")
    parser.add_argument("--ckpt", metavar="PATH", help="the snapshot to run (torch backend)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="the snapshot's stage; needed only for snapshots that do not say "
                             "(the authors'); a different stage than the snapshot's is refused")
    parser.add_argument("--poses", metavar="JSON",
                        help="a kinetics-skeleton pose file of the video (x, y normalised, "
                             "frame_index from 1) instead of estimating the poses")
    parser.add_argument("--labels", metavar="PATH",
                        help="class names: a text file (line i = class i), a COCO annotation "
                             "file (action_name) or a kinetics-skeleton label file; default: "
                             "the snapshot's data set's files under --data_dir, else indices. "
                             "It must name every class of the snapshot (more names: classes "
                             "0..N-1 are used, with a warning)")
    parser.add_argument("--data_dir", default=None, metavar="PATH",
                        help="where the snapshot's data set is, for its class names (default: "
                             "the data_dir the snapshot was trained with, else data/)")
    parser.add_argument("--out_dir", default=None, metavar="DIR",
                        help="where the pictures go (default: output/vis)")
    parser.add_argument("--name", default=None,
                        help="file name prefix of the outputs (default: the video's name)")
    parser.add_argument("--test_infer_num", type=int, default=None,
                        help="clips sampled from the video (default: the config's, 10)")
    parser.add_argument("--batch_size", type=int, default=16, help="clips per network pass")
    parser.add_argument("--video_format", choices=("mp4", "gif", "none"), default="mp4",
                        help="the annotated video: MP4 (GIF if MP4 fails), GIF, or none")
    parser.add_argument("--pose_every_frame", action="store_true",
                        help="estimate the poses of every frame (slower; every frame of the "
                             "output video then shows skeletons)")
    add_pose_options(parser)
    add_backend_options(parser)
    return parser


def parse_arguments(argv: Optional[Sequence[str]]) -> Tuple[argparse.Namespace, torch.device]:
    """The checked arguments and the device to run on.

    Raises:
        UsageError: a file or folder given does not exist.
    """
    parser = make_parser()
    args, device = parse_pose_command(parser, argv)
    if args.batch_size < 1 or (args.test_infer_num or 1) < 1:
        parser.error("--batch_size and --test_infer_num must be 1 or more")
    check_backend_options(parser, args)
    for option, path, exists in (("--video", args.video, osp.isfile),
                                 ("--frames", args.frames, osp.isdir),
                                 ("--poses", args.poses, osp.isfile),
                                 ("--labels", args.labels, osp.isfile)):
        if path is not None and not exists(path):
            raise UsageError(f"{option} {path}: not found")
    return args, device


# --------------------------------------------------------------------------- 2. the snapshot
def trained_on(snap: Dict[str, Any], cfg: Any, data_dir: Optional[str]) -> Dict[str, Any]:
    """The data set a snapshot was trained on: its config's dataset, subset and data_dir (the
    defaults for the authors' snapshots); `data_dir` (--data_dir) wins."""
    saved = snap.get("config") or {}
    found = {key: saved.get(key) or cfg[key] for key in ("dataset", "subset", "data_dir")}
    if data_dir:
        found["data_dir"] = data_dir
    return found


def load_demo_network(args: argparse.Namespace, device: torch.device) -> DemoNetwork:
    """The snapshot of `--ckpt` (or the exported file of `--model`), its configuration and its
    class names.

    Raises:
        UsageError: the snapshot needs poses of another joint set than the demo's OpenPose-18,
            or `--labels` names fewer classes than the snapshot has.
    """
    path = network_path(args)
    snap, mode, class_num = read_network_file(args, device)
    cfg = inference_config(snap.get("config"), path, mode=mode, mode_given=args.mode is not None,
                           test_infer_num=args.test_infer_num)
    cfg.class_num = class_num
    stage = get_stage(cfg.mode)
    source_set = trained_on(snap, cfg, args.data_dir)
    joint_set = DATASETS[source_set["dataset"]].joint_set if source_set["dataset"] in DATASETS \
        else OPENPOSE_18
    if stage.needs_pose and joint_set != OPENPOSE_18:
        raise UsageError(f"{path} was trained on {source_set['dataset']}'s "
                         f"{joint_set.name} skeletons; the demo's poses are OpenPose-18")
    names_by_index, names_from = find_class_names(args.labels, source_set)
    names, warning = names_for_classes(names_by_index, class_num, labels=args.labels,
                                       snapshot=path)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return DemoNetwork(snap=snap, cfg=cfg, stage=stage, joint_set=joint_set, names=names,
                       names_from=names_from)


# --------------------------------------------------------------------------- 3. frames
def get_frames(args: argparse.Namespace, cfg: Any) -> DemoVideo:
    """The frames of `--video` (decoded as tool/video2image.py extracts them) or of `--frames`,
    and the test clips planned on them (an error here when the video is too short)."""
    if args.video:
        frames, fps = decode_video(args.video, short_side=args.short_side, fps=args.fps)
        source = args.video
    else:
        frames = read_frame_folder(args.frames)
        fps = float(args.fps or 30.0)  # a frame folder does not say; Kinetics is ~30 fps
        source = args.frames
    name = args.name or osp.splitext(osp.basename(osp.normpath(source)))[0]
    return DemoVideo(frames=frames, fps=fps, source=source, name=name,
                     plans=plan_test_clips(len(frames), cfg))


# --------------------------------------------------------------------------- 4. poses
def get_poses(args: argparse.Namespace, video: DemoVideo, network: DemoNetwork, *,
              device: torch.device, pose_path: str) -> Tuple[PoseTable, str, Optional[str]]:
    """The video's pose table: read from `--poses`, else estimated on the frames the clips use
    and written to `pose_path`; none for a stage without poses. Returns `(table, where the
    poses came from, the pose file written or None)`."""
    frames = video.frames
    if args.poses:
        table: PoseTable = read_kinetics_skeleton(args.poses, OPENPOSE_18.joint_num)
        # The released kinetics-skeleton files cover the first 300 frames at 30 fps: say how
        # much of this video the file covers, since frames past it have nobody.
        covered = f"frames {min(table)}-{max(table)}" if table else "no people"
        return table, f"{args.poses} ({covered}; the video has {len(frames)})", None
    if not network.stage.needs_pose:
        return {}, "none (rgb_only needs none)", None
    indices = frames_to_estimate(video.plans, len(frames), every_frame=args.pose_every_frame)
    estimator = make_estimator(args, device)
    table = estimate_frame_poses(estimator, [frames[k] for k in indices], indices,
                                 frames.shape[1:3])
    write_pose_file(pose_path, table, frame_num=len(frames), frame_hw=frames.shape[1:3])
    return table, f"Keypoint R-CNN on {len(indices)} frames", pose_path


# --------------------------------------------------------------------------- 5. prediction
@torch.inference_mode()
def run_clips(model: Any, items: Sequence[Dict[str, torch.Tensor]],
              device: torch.device, batch_size: int) -> Dict[str, np.ndarray]:
    """The network (a model, or an exported file's `OnnxModel`) over the clips: 'prob' (N, C)
    and, where the model has them, 'gate' (N,) (the mean of each clip's gate, as test.py
    reports it) and 'agreement' (N,)."""
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


def predict(network: DemoNetwork, frames: np.ndarray, table: PoseTable, *,
            device: torch.device, batch_size: int) -> DemoPrediction:
    """The test clips of the frames `(N, H, W, 3)` through the snapshot's network."""
    cfg, joint_set = network.cfg, network.joint_set
    items, plans, geometry = sample_test_clips(frames, table, cfg, joint_set=joint_set,
                                               with_video=network.stage.needs_video)
    model = network_runner(network.snap, cfg, joint_set, device)
    outputs = run_clips(model, items, device, batch_size)
    probs = outputs["prob"].mean(axis=0)
    order = [int(i) for i in np.argsort(-probs, kind="stable")[:TOP]]
    return DemoPrediction(outputs=outputs, probs=probs, order=order, plans=plans,
                          geometry=geometry)


# --------------------------------------------------------------------------- main
@exit_on_error
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the demo; returns what `<name>_prediction.json` holds."""
    args, device = parse_arguments(argv)
    timer = LapTimer()
    network = load_demo_network(args, device)
    timer.lap("snapshot")
    video = get_frames(args, network.cfg)
    timer.lap("decode")
    out_dir = args.out_dir or network.cfg.vis_dir
    table, pose_source, pose_file = get_poses(
        args, video, network, device=device,
        pose_path=osp.join(out_dir, f"{video.name}_poses.json"))
    files: Dict[str, str] = {"poses": pose_file} if pose_file else {}
    timer.lap("poses")
    prediction = predict(network, video.frames, table, device=device,
                         batch_size=args.batch_size)
    timer.lap("network")
    print_prediction(video, network, prediction, pose_source)
    files.update(write_pictures(video, network, prediction, table=table, out_dir=out_dir,
                                video_format=args.video_format))
    timer.lap("pictures")
    summary = prediction_summary(video, network, prediction, ckpt=network_path(args),
                                 pose_source=pose_source, device=device, seconds=timer.stop(),
                                 files=files)
    summary["backend"] = args.backend
    save_prediction(summary, osp.join(out_dir, f"{video.name}_prediction.json"))
    return summary


if __name__ == "__main__":
    main()
