"""The one configuration object: its fields, the stage/dataset rules, what a snapshot decides.

Every field is declared once, in `FIELDS`: its type, default, group and a one-line meaning.
`default_config()`, the options of `train.py`/`test.py` (main/cli.py builds them, and their
`--help`, from this table), the recipe files of `configs/` (main/config_file.py), the type checks
(main/config_values.py) and the rules for what a snapshot's own config decides all read it.

`build_config` (from defaults and overrides) and `main.snapshot_config.config_from_snapshot`
(from a snapshot's saved config, defaults and overrides) are the only places a config is made. Everything downstream
receives the resulting EasyDict as an argument; nothing imports a global config.

The overrides come from the command line and the `--config` files: any field can be set as
`--<field> <value>`, or in a TOML file under the table of its group (`[training] end_epoch = 2`),
e.g.::

    python main/train.py --mode rgb_only --end_epoch 2 --train_batch_size 2 --img_resnet_type 34
    python main/train.py --config configs/paper/kinetics50_rgb_only.toml --end_epoch 2

Each field declares the values it takes (`Field.range`: bounds, shape lengths, order; or its
`choices`), shown in `--help`; the rules between fields are `check_relations`. A value that cannot
be used stops the program with one line that names the option, the value and the range, before
any data is read. A snapshot's own saved values are not range-checked: they must still load.
"""
from __future__ import annotations

import difflib
import os.path as osp
from types import MappingProxyType
from typing import Any, Callable, Collection, List, Mapping, Optional, Sequence, Tuple

from easydict import EasyDict

from common.runtime.device import parse_gpu_ids
from common.errors import UsageError
from common.stages import MODES, STAGES, get_stage
from data.NTU.protocols import PROTOCOLS
from main.config_values import (AT_LEAST_ONE, AT_LEAST_ZERO, POSITIVE, PROBABILITY, SHAPE_HW,
                                 Field, Range, range_error, show_value,
                                 value_from_python)

ROOT_DIR = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), ".."))

# The data set names of data/registry.py, repeated here so that parsing a command line does not
# import the loaders (and with them OpenCV) before the arguments are known to be good.
DATASETS: Tuple[str, ...] = ("Kinetics", "Mimetics", "NTU", "NTU120", "Skeleton")
# The NTU releases: frames resized to 240 x 320 unless --video_shape says otherwise.
NTU_DATASETS: Tuple[str, ...] = ("NTU", "NTU120")
# Data sets that have a test set only (Mimetics: labels in Kinetics' label space).
TEST_ONLY_DATASETS: Tuple[str, ...] = ("Mimetics",)
ENTRIES: Tuple[str, ...] = ("train", "test")

# Groups of fields, in `--help` order, with what the snapshot's own config does to them.
GROUPS: Tuple[Tuple[str, str], ...] = (
    ("network", "What network is built. At test time and on --continue the snapshot's config "
                "decides these: a different value on the command line is refused."),
    ("input", "How clips and pose maps are made. At test time and on --continue the snapshot's "
              "config decides these."),
    ("data", "Which data set. On --continue the snapshot's config decides; test.py may test on "
             "another set (a Kinetics-trained model on Mimetics)."),
    ("training", "The optimisation. On --continue the snapshot's config decides these, except "
                 "end_epoch (a run may be extended), pretrained and init_snapshot (used only "
                 "when a run starts)."),
    ("testing", "How test.py evaluates a snapshot."),
    ("runtime", "Devices, resuming, logging, and what a data problem does."),
    ("paths", "Folders; the ones left at none follow output_dir."),
)
GROUP_NAMES: Tuple[str, ...] = tuple(name for name, _ in GROUPS)

def _stage_lrs() -> str:
    return ", ".join(f"{s.default_lr:g} for {s.name}" for s in STAGES.values())


# One declaration per field, all of one shape: a table of data, not repeated logic (a
# line-similarity check pairs its rows).
FIELDS: Tuple[Field, ...] = (
    # --- network
    Field("mode", str, "rgb+pose", "network",
          "the training stage: rgb_only, pose_only, or rgb+pose (starts from the merged snapshot)",
          choices=MODES),
    Field("class_num", Optional[int], None, "network",
          "number of action classes; none: the data set's own count (Kinetics50: 50, NTU: 60, "
          "NTU120: 120), "
          "else the largest label + 1", range=AT_LEAST_ONE),
    Field("pose_gate", bool, True, "network",
          "the pose-driven gate of the fusion (false: the paper's no-gate ablation)"),
    Field("gate_input", str, "pose", "network",
          "what the gate sees: 'pose' (the paper) or 'pose+rgb' (the RGB feature too)",
          choices=("pose", "pose+rgb")),
    Field("gate_target", str, "pose", "network",
          "target of the gate loss: 'pose' (the paper: 1 for every clip) or 'swap' (1 for clips "
          "whose scene the context augmentation took from another class)",
          choices=("pose", "swap")),
    Field("gate_hidden", int, 0, "network",
          "width of a hidden ReLU layer in the gate (0: the paper's single Linear layer)",
          range=AT_LEAST_ZERO),
    Field("stream_agreement", bool, False, "network",
          "scale the RGB term of the fusion by how far the rgb_only and pose_only stages' own "
          "classifiers agree on the clip"),
    Field("agreement_scaling", bool, True, "network",
          "with stream_agreement: the agreement scales the RGB term of the fusion (false: the "
          "stages' classifiers are kept for pose_fallback only, the fusion is the paper's)"),
    Field("pose_fallback", float, 0.0, "network",
          "with stream_agreement: at evaluation a clip whose streams agree less than this (T) "
          "falls back to the pose_only stage's prediction, wholly below T/2, in proportion "
          "between (0: off, the paper); test.py may set another value than the snapshot's",
          range=PROBABILITY),
    Field("img_resnet_type", int, 18, "network", "depth of the RGB stream's ResNet",
          choices=(18, 34, 50)),
    Field("pose_resnet_type", int, 18, "network", "depth of the pose stream's ResNet",
          choices=(18, 34, 50)),
    Field("agg_feat_dim", int, 512, "network", "feature width of the fusion (aggregator)",
          range=AT_LEAST_ONE),
    Field("dropout", float, 0.5, "network", "dropout probability before the classifier",
          range=Range(min=0, max=1, max_open=True)),
    # --- input
    Field("video_shape", Optional[Tuple[int, ...]], None, "input",
          "frame size after resizing: one number (the shorter side) or H,W; "
          "none: 256 (240,320 for NTU and NTU120)", range=Range(min=1, lengths=(1, 2))),
    Field("input_img_shape", Tuple[int, ...], (224, 224), "input",
          "crop fed to the RGB stream, H,W", range=SHAPE_HW),
    Field("input_hm_shape", Tuple[int, ...], (56, 56), "input", "grid of the pose maps, H,W",
          range=SHAPE_HW),
    Field("hm_sigma", float, 0.5, "input", "Gaussian sigma of the joint heatmaps (grid pixels)",
          range=POSITIVE),
    Field("paf_sigma", float, 1.0, "input",
          "half-width of a limb in the part affinity fields (grid pixels)", range=POSITIVE),
    Field("top_k_pose", int, 5, "input", "most people per frame (by mean joint score)",
          range=AT_LEAST_ONE),
    Field("frame_per_seg", int, 8, "input", "frames per clip", range=AT_LEAST_ONE),
    Field("frame_interval", int, 8, "input", "step between the frames of a clip",
          range=AT_LEAST_ONE),
    Field("pose_frame_factor", int, 1, "input",
          "the pose stream sees this many times more frames (must divide frame_interval)",
          range=AT_LEAST_ONE),
    Field("fast_decode", bool, False, "input",
          "decode frames at least twice their resize target at 1/2, 1/4 or 1/8 size (libjpeg "
          "DCT scaling): faster, but not the reference pixels"),
    Field("pose_score_thr", float, 0.1, "input",
          "joints scoring below this are left out of the pose maps", range=PROBABILITY),
    # --- data
    Field("dataset", str, "Kinetics", "data",
          "Kinetics, Mimetics (test only), NTU (RGB+D 60), NTU120, or Skeleton (an MMAction2/PYSKL "
          "2D skeleton file: --ann_file, --split)", choices=DATASETS),
    Field("protocol", Optional[str], None, "data",
          "NTU split: xsub (cross-subject), xview (NTU: cameras 2, 3 train, 1 tests), xset "
          "(NTU120: even setups train); none: xsub. Like --dataset, test.py takes it from the "
          "command line", choices=("xsub", "xview", "xset")),
    Field("subset", str, "50", "data",
          "which release: Kinetics{subset}_{train,val}.json, Mimetics{subset}.json (50, 400)"),
    # --- data: --dataset Skeleton (an MMAction2/PYSKL skeleton annotation file)
    Field("ann_file", Optional[str], None, "data",
          "--dataset Skeleton: the skeleton annotation file (.pkl: 'split' and 'annotations' "
          "with COCO-17 'keypoint', 'keypoint_score')", metavar="FILE"),
    Field("split", Optional[str], None, "data",
          "--dataset Skeleton: the file's split to read (train.py: the training split, e.g. "
          "xsub_train; test.py: the test split, e.g. xsub_val); none: the error lists them",
          metavar="NAME"),
    Field("frame_root", Optional[str], None, "data",
          "--dataset Skeleton: JPEG frames as <frame_root>/<frame_dir>/%06d.jpg (rgb_only and "
          "rgb+pose need them; pose_only reads the file alone)", metavar="PATH"),
    Field("label_map", Optional[str], None, "data",
          "--dataset Skeleton: class names, one per line (line i = class i), as the toolboxes' "
          "label_map_*.txt", metavar="FILE"),
    # --- data: shards (tool/make_shards.py; docs/shards.md)
    Field("shards", Optional[str], None, "data",
          "read the split from the shard set at this folder or URL (s3://, gs://, https://, "
          "file://...: fetched into shard_cache) instead of --data_dir; under torchrun each "
          "process reads its own shards", metavar="PATH_OR_URL"),
    Field("shard_cache", Optional[str], None, "paths",
          "where shards read from a URL are fetched to; none: <output_dir>/shard_cache",
          metavar="PATH"),
    # --- training
    Field("pretrained", str, "imagenet", "training",
          "backbone weights a run starts from: 'imagenet' (torchvision), a local ResNet "
          "state-dict file, or 'none' (random)", metavar="WEIGHTS"),
    Field("lr", Optional[float], None, "training",
          f"learning rate; none: the stage's ({_stage_lrs()})", range=POSITIVE),
    Field("lr_dec_epoch", Tuple[int, ...], (21, 26), "training",
          "epochs at which the learning rate is divided by lr_dec_factor, each below end_epoch "
          "when given (the default never comes in a shorter run); none: no decay",
          range=Range(min=1, increasing=True)),
    Field("lr_dec_factor", float, 10.0, "training", "learning-rate divisor at each lr_dec_epoch",
          range=POSITIVE),
    Field("end_epoch", int, 30, "training",
          "train epochs up to end_epoch - 1 (may be raised on --continue)", range=AT_LEAST_ONE),
    Field("momentum", float, 0.9, "training", "SGD momentum",
          range=Range(min=0, max=1, max_open=True)),
    Field("weight_decay", float, 1e-4, "training", "SGD weight decay", range=AT_LEAST_ZERO),
    Field("train_batch_size", int, 8, "training", "clips per GPU per step", range=AT_LEAST_ONE),
    Field("train_aug", bool, True, "training", "multi-scale crop and flip of training clips"),
    Field("reg_weight", float, 1.5, "training", "weight (lambda) of the pose-gate loss",
          range=AT_LEAST_ZERO),
    Field("context_aug_prob", float, 0.0, "training",
          "rgb+pose: probability that a clip's pixels outside its people's pose boxes come "
          "from another clip (0: off, the paper)", range=PROBABILITY),
    Field("context_aug_box_margin", float, 0.15, "training",
          "how far the context augmentation grows each pose box, as a fraction of its size",
          range=AT_LEAST_ZERO),
    Field("init_snapshot", Optional[str], None, "training",
          "snapshot rgb+pose starts from; none: <model_dir>/snapshot_0.pth.tar (the merge "
          "tool's output)", metavar="PATH"),
    Field("fusion_frozen_bn", bool, False, "training",
          "rgb+pose: the frozen streams use their BatchNorm statistics instead of updating them"),
    Field("seed", Optional[int], None, "training",
          "random seed: the same seed gives the same losses and weights on a CPU; none: a "
          "random one, recorded in the snapshots so that --continue still resumes exactly",
          range=Range(min=0, max=2**32 - 1)),
    Field("lr_schedule", str, "step", "training",
          "'step' (the original: divide by lr_dec_factor at each lr_dec_epoch) or 'cosine' "
          "(from lr to lr_min over the stage's epochs, per iteration)", choices=("step", "cosine")),
    Field("lr_min", float, 0.0, "training", "the cosine schedule's final learning rate",
          range=AT_LEAST_ZERO),
    Field("warmup_epochs", float, 0.0, "training",
          "linear warm-up at the start of the stage, in epochs (fractions allowed; 0: none)",
          range=AT_LEAST_ZERO),
    Field("warmup_factor", float, 0.01, "training",
          "the warm-up starts at lr x warmup_factor and reaches lr after warmup_epochs",
          range=Range(min=0, max=1, min_open=True)),
    # --- testing
    Field("test_infer_num", int, 10, "testing", "clips per video at test time (averaged)",
          range=AT_LEAST_ONE),
    Field("test_batch_size", int, 16, "testing", "clips per test batch", range=AT_LEAST_ONE),
    Field("eval_chunk_frames", Optional[int], None, "testing",
          "evaluation runs the network on sub-batches of whole clips of about this many frames "
          "(the same outputs; on a CPU a small sub-batch's activations stay in cache); none: "
          "16 on the CPU, the whole batch on a GPU; 0: the whole batch", range=AT_LEAST_ZERO),
    Field("test_epoch", Optional[int], None, "testing",
          "the snapshot_<N>.pth.tar that test.py evaluates (test.py needs it)",
          range=AT_LEAST_ZERO),
    # --- runtime
    Field("num_thread", int, 4, "runtime", "DataLoader worker processes (0: the main process)",
          range=AT_LEAST_ZERO),
    Field("gpu_ids", Optional[str], None, "runtime",
          "GPUs: '0', '0,1', '0-3' or 'cpu'; none: the first visible GPU, else the CPU",
          flags=("--gpu",), metavar="GPUS"),
    Field("continue_train", bool, False, "runtime",
          "resume this stage's run from its newest snapshot", flags=("--continue",)),
    Field("overwrite", bool, False, "runtime",
          "a stage started without --continue may replace its existing snapshots"),
    Field("strict", bool, False, "runtime",
          "every data problem (a skipped clip, a zeroed pose) stops the run"),
    Field("log_interval", int, 20, "runtime", "log the loss every N iterations (0: never)",
          range=AT_LEAST_ZERO),
    Field("progress_bar", bool, True, "runtime", "show a progress bar"),
    Field("max_iters_per_epoch", Optional[int], None, "runtime",
          "cap on iterations per epoch, for smoke runs; none: the whole epoch", range=AT_LEAST_ONE),
    Field("save_every", Optional[int], None, "runtime",
          "also save a resumable snapshot every N iterations within an epoch (--continue then "
          "goes on with the next unseen batch); none: at the end of each epoch only",
          range=AT_LEAST_ONE),
    Field("amp", str, "auto", "runtime",
          "mixed precision: 'bf16', 'fp16' (with a gradient scaler), 'off'; 'auto': training on "
          "a GPU in bf16 (fp16 where the GPU has no bf16), the CPU and test.py in fp32",
          choices=("auto", "off", "bf16", "fp16")),
    Field("channels_last", Optional[bool], None, "runtime",
          "channels_last memory layout for the convolutions; none: on GPUs and for "
          "evaluation, off for training on the CPU"),
    Field("cudnn_benchmark", Optional[bool], None, "runtime",
          "let cuDNN pick the fastest convolution algorithms; none: on GPUs"),
    Field("sync_bn", bool, False, "runtime",
          "torchrun: synchronise BatchNorm statistics across processes (SyncBatchNorm)"),
    Field("dist_backend", Optional[str], None, "runtime",
          "torchrun: process-group backend; none: nccl on GPUs, gloo on the CPU",
          choices=("nccl", "gloo")),
    Field("tensorboard", bool, False, "runtime",
          "write TensorBoard scalars (loss, lr, data/compute time) to <output_dir>/tensorboard"),
    # --- runtime: frames from encoded video files (data/sources/video_file.py)
    Field("frames_from", str, "auto", "runtime",
          "read frames from 'jpeg' folders (tool/video2image.py) or 'video' files (X.mp4, .avi, "
          ".mkv, .webm, .mov where the folder X/ would be); 'auto': decided once per data set "
          "at start-up, and logged", choices=("auto", "video", "jpeg")),
    Field("video_short_side", int, 256, "runtime",
          "video files: frames are resized so that their shorter side has this many pixels, "
          "as tool/video2image.py --short_side makes the JPEG folders (0: the stored size)",
          range=AT_LEAST_ZERO),
    Field("video_cache_size", int, 8, "runtime",
          "video files kept open per loader worker, the least recently used closed first "
          "(0: every clip opens its file)", range=AT_LEAST_ZERO),
    # --- paths
    Field("root_dir", str, ROOT_DIR, "paths", "the project folder", metavar="PATH"),
    Field("data_dir", str, osp.join(ROOT_DIR, "data"), "paths",
          "the folder holding <dataset>/data/", metavar="PATH"),
    Field("output_dir", str, osp.join(ROOT_DIR, "output"), "paths",
          "where snapshots, logs and results go", metavar="PATH"),
    Field("model_dir", Optional[str], None, "paths",
          "snapshot folder; none: <output_dir>/model_dump", metavar="PATH"),
    Field("vis_dir", Optional[str], None, "paths",
          "visualisation folder; none: <output_dir>/vis", metavar="PATH"),
    Field("log_dir", Optional[str], None, "paths", "log folder; none: <output_dir>/log",
          metavar="PATH"),
    Field("result_dir", Optional[str], None, "paths",
          "result folder; none: <output_dir>/result", metavar="PATH"),
)
FIELD_BY_NAME: Mapping[str, Field] = MappingProxyType({f.name: f for f in FIELDS})


def default_config() -> EasyDict:
    """The original release's defaults (Kinetics50, ResNet-18, 8 x 224 x 224 clips)."""
    return EasyDict({f.name: f.default for f in FIELDS})


def option_names() -> List[str]:
    """Every field's name and its further option names (`gpu`, `continue`), without dashes."""
    return [f.name for f in FIELDS] + [flag.lstrip("-") for f in FIELDS for flag in f.flags]


def nearest_fields(name: str, *, extra: Sequence[str] = ()) -> List[str]:
    """The (at most two) field names or flags, or `extra` names, closest to a mistyped `name`."""
    return difflib.get_close_matches(name, option_names() + list(extra), n=2)


def unknown_field(name: str, *, prefix: str = "", extra: Sequence[str] = ()) -> str:
    """'unknown config field --<prefix><name>', with the nearest known names (fields, flags
    and `extra`), each written with the same `prefix` (train_all.py's `<stage>.`)."""
    close = nearest_fields(name, extra=extra)
    hint = (f"; did you mean {' or '.join(f'--{prefix}{c}' for c in close)}?" if close
            else "")
    return f"unknown config field --{prefix}{name}{hint}"


def apply_overrides(cfg: EasyDict, overrides: Optional[Mapping[str, Any]]) -> EasyDict:
    """`cfg` with the overrides' fields set, each checked against its field; changed in place."""
    for key, value in (overrides or {}).items():
        if key not in FIELD_BY_NAME:
            raise UsageError(unknown_field(key))
        field = FIELD_BY_NAME[key]
        try:
            cfg[key] = value_from_python(field, value)
        except ValueError as err:
            raise UsageError(f"{field.option}: {err}") from None
    return cfg


# ------------------------------------------------------------------------------ building

def build_config(overrides: Optional[Mapping[str, Any]] = None, *,
                 entry: Optional[str] = None) -> EasyDict:
    """Defaults, then the overrides, then the fields that depend on mode and dataset.

    Args:
        overrides: field -> value (typed values, as `parse_command_line` returns them).
        entry: 'train' or 'test' when the config is for that entry point (adds its rules:
            no training on a test-only data set, test.py needs `test_epoch`; 'test' leaves out
            the rules about training alone); None: neither.

    Raises:
        UsageError: an unknown field, a value of the wrong type, or a combination that cannot
            be used; the message names the option.
    """
    given = tuple(overrides or ())
    # test.py takes the network and input from the snapshot, after this: a rule that involves
    # one of those fields, not given here, waits for `config_from_snapshot`.
    pending = tuple(f.name for f in FIELDS if entry == "test" and f.name not in given
                    and f.group in ("network", "input"))
    return finalize_config(apply_overrides(default_config(), overrides), entry=entry,
                           given=given, pending=pending, training=entry != "test")


def finalize_config(cfg: EasyDict, *, entry: Optional[str] = None,
                    from_snapshot: Collection[str] = (), given: Collection[str] = (),
                    pending: Collection[str] = (), training: bool = True) -> EasyDict:
    """Check every field, fill the derived ones; `cfg` is changed in place and returned.

    Args:
        entry: as in `build_config`.
        from_snapshot: the fields whose value a snapshot's saved config gave: their type is
            checked but not their range (they were valid for the code that trained it), nor the
            relations among them alone.
        given: the fields set on the command line or in a recipe file (not defaults): the
            rules about a choice a user made apply to them only.
        pending: fields whose value a snapshot will give later: no rule that involves one is
            checked yet.
        training: the config may train a network (train.py, a resumed run, a plain config):
            the rules about training alone are checked (see `check_relations`).

    Raises:
        UsageError: a value of the wrong type or out of its field's range (the message names
            the option, the value and the range), or fields that cannot be used together.
    """
    if entry not in (None,) + ENTRIES:
        raise ValueError(f"entry must be one of {ENTRIES} or None, got {entry!r}")
    see_help = f" (see {entry}.py --help)" if entry else ""
    for field in FIELDS:
        try:
            cfg[field.name] = value_from_python(field, cfg[field.name])
        except ValueError as err:
            raise UsageError(f"{field.option}: {err}") from None
        problem = None if field.name in from_snapshot else range_error(field, cfg[field.name])
        if problem:
            raise UsageError(problem + see_help)

    if entry == "train" and cfg.dataset in TEST_ONLY_DATASETS:
        raise UsageError(
            f"--dataset {cfg.dataset} is a test-only data set (it has no training split): train on "
            f"Kinetics (--dataset Kinetics), then test with main/test.py --dataset {cfg.dataset}")
    if entry == "test" and cfg.test_epoch is None:
        raise UsageError("test.py needs --test_epoch N (it tests <model_dir>/snapshot_N.pth.tar)")
    parse_gpu_ids(cfg.gpu_ids)  # the syntax only: which GPUs exist is known to select_device

    if cfg.lr is None:
        cfg.lr = get_stage(cfg.mode).default_lr
    if cfg.video_shape is None:
        cfg.video_shape = (240, 320) if cfg.dataset in NTU_DATASETS else (256,)
    cfg.model_dir = cfg.model_dir or osp.join(cfg.output_dir, "model_dump")
    cfg.vis_dir = cfg.vis_dir or osp.join(cfg.output_dir, "vis")
    cfg.log_dir = cfg.log_dir or osp.join(cfg.output_dir, "log")
    cfg.result_dir = cfg.result_dir or osp.join(cfg.output_dir, "result")
    check_relations(cfg, from_snapshot=from_snapshot, given=given, pending=pending,
                    training=training)
    return cfg


def check_relations(cfg: EasyDict, *, from_snapshot: Collection[str] = (),
                    given: Collection[str] = (), pending: Collection[str] = (),
                    training: bool = True) -> None:
    """The rules between fields, on the resolved config (each field is in its range already).

    A rule whose fields all come from a snapshot's saved config is not checked: the snapshot
    was valid for the code that trained it and must still load. The decay epochs are checked
    against the run's length only where a user gave them: the paper's default (21, 26) simply
    never comes in a short run (`--end_epoch 2`), which is what such a run asks for. A rule
    that involves a `pending` field (one a snapshot will give) waits for it.

    The rules about training alone (`_training_rules`) are checked only where `training`: a
    config that tests, runs or exports a snapshot trains nothing, and its training fields are
    the defaults or the command line's, not those the snapshot was trained with (which met these
    rules when it trained). A resumed run is training: it checks them.

    Raises:
        UsageError: the first rule broken, naming both options and their values.
    """
    rules: Tuple[Tuple[Tuple[str, ...], Callable[[], Optional[str]]], ...] = (
        (("pose_fallback", "stream_agreement"), lambda: (
            f"--pose_fallback {cfg.pose_fallback:g} needs --stream_agreement true (the rgb_only "
            "and pose_only stages' classifiers judge the agreement)"
            if cfg.pose_fallback > 0 and not cfg.stream_agreement else None)),
        (("pose_frame_factor", "frame_interval"), lambda: (
            f"--pose_frame_factor {cfg.pose_frame_factor} must divide --frame_interval "
            f"{cfg.frame_interval}" if cfg.frame_interval % cfg.pose_frame_factor else None)),
        (("dataset", "protocol"), lambda: protocol_problem(cfg.dataset, cfg.protocol)),
    ) + _skeleton_rules(cfg) + (_training_rules(cfg, given) if training else ())
    for fields, broken in rules:
        if set(fields) <= set(from_snapshot) or set(fields) & set(pending):
            continue
        problem = broken()
        if problem:
            raise UsageError(problem)


def _training_rules(cfg: EasyDict, given: Collection[str]
                    ) -> Tuple[Tuple[Tuple[str, ...], Callable[[], Optional[str]]], ...]:
    """The rules that concern training alone (see `check_relations`)."""
    return (
        (("gate_target", "context_aug_prob"), lambda: (
            "--gate_target swap needs context augmentation (--context_aug_prob > 0)"
            if cfg.gate_target == "swap" and not cfg.context_aug_prob > 0 else None)),
        (("lr_min", "lr", "lr_schedule"), lambda: (
            f"--lr_min {cfg.lr_min:g} must not exceed --lr {cfg.lr:g}: the cosine schedule "
            "falls from lr to lr_min" if cfg.lr_schedule == "cosine" and cfg.lr_min > cfg.lr
            else None)),
        (("lr_dec_epoch", "end_epoch"), lambda: _decay_outside_run(cfg, given)),
        (("warmup_epochs", "end_epoch"), lambda: (
            f"--warmup_epochs {cfg.warmup_epochs:g} must not exceed --end_epoch {cfg.end_epoch}: "
            "the learning rate would never reach --lr" if cfg.warmup_epochs > cfg.end_epoch
            else None)),
    )


def _decay_outside_run(cfg: EasyDict, given: Collection[str]) -> Optional[str]:
    """A given step-decay epoch the run never reaches, in words; None when all are inside."""
    late = [e for e in cfg.lr_dec_epoch if e >= cfg.end_epoch]
    if "lr_dec_epoch" not in given or cfg.lr_schedule != "step" or not late:
        return None
    return (f"--lr_dec_epoch {show_value(cfg.lr_dec_epoch)} is not inside the run: --end_epoch "
            f"{cfg.end_epoch} trains epochs 0..{cfg.end_epoch - 1}, so the decay at epoch "
            f"{late[0]} never comes; give epochs below {cfg.end_epoch}, or --lr_dec_epoch none "
            "for no decay")


def _skeleton_rules(cfg: EasyDict) -> Tuple[Tuple[Tuple[str, ...], Callable[[], Optional[str]]],
                                             ...]:
    """The rules of `--dataset Skeleton`'s fields (see `check_relations`)."""
    skeleton = cfg.dataset == "Skeleton"
    given = [f"--{k}" for k in ("ann_file", "split", "frame_root", "label_map")
             if cfg.get(k) is not None]
    return (
        (("dataset", "ann_file"), lambda: (
            "--dataset Skeleton needs --ann_file FILE.pkl (an MMAction2/PYSKL skeleton "
            "annotation file)" if skeleton and not cfg.ann_file else None)),
        (("dataset", "mode", "frame_root"), lambda: (
            f"--mode {cfg.mode} with --dataset Skeleton needs --frame_root PATH (the frames as "
            "<frame_root>/<frame_dir>/%06d.jpg); pose_only needs the file alone"
            if skeleton and get_stage(cfg.mode).needs_video and not cfg.frame_root else None)),
        (("dataset", "ann_file", "split", "frame_root", "label_map"), lambda: (
            f"{', '.join(given)}: read by --dataset Skeleton only, not --dataset {cfg.dataset}"
            if given and not skeleton else None)),
    )


def protocol_problem(dataset: str, protocol: Optional[str]) -> Optional[str]:
    """Why `--protocol` cannot be used with `--dataset` (one line), None when it can."""
    if protocol is None or protocol in PROTOCOLS.get(dataset, ()):
        return None
    if dataset not in PROTOCOLS:
        return (f"--protocol {protocol} is for NTU and NTU120; --dataset {dataset} has a "
                "split of its own: leave out --protocol")
    return (f"--protocol {protocol} is not a protocol of --dataset {dataset} (its protocols: "
            f"{', '.join(PROTOCOLS[dataset])})")


def describe_config(cfg: EasyDict) -> List[str]:
    """One `key: value` line per field, for the log."""
    return [f"{k}: {cfg[k]!r}" for k in sorted(cfg)]
