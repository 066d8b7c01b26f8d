"""The one configuration object: its fields, the command line, the stage/dataset rules.

Every field is declared once, in `FIELDS`: its type, default, group and a one-line meaning.
`default_config()`, the options of `train.py`/`test.py` (and their `--help`), the type checks and
the rules for what a snapshot's own config decides all read that table.

`build_config` (from defaults and overrides) and `config_from_snapshot` (from a snapshot's saved
config, defaults and overrides) are the only places a config is made. Everything downstream
receives the resulting EasyDict as an argument; nothing imports a global config.

Any field can be set on the command line as `--<field> <value>` or `--<field>=<value>`: tuples as
comma lists (`--input_img_shape 96,96`), booleans as true/false/1/0/yes/no/on/off (a bare
`--overwrite` means true), `none` for an optional field, e.g.::

    python main/train.py --mode rgb_only --end_epoch 2 --train_batch_size 2 --img_resnet_type 34

A value that cannot be used stops the program with one line that names the option.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os.path as osp
import re
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Tuple,
                    Union, get_args, get_origin)

from easydict import EasyDict

from common.runtime.device import parse_gpu_ids
from common.errors import CheckpointError, UsageError
from common.stages import MODES, STAGES, get_stage
from main.cli import OneLineParser

ROOT_DIR = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), ".."))

# The data set names of data/registry.py, repeated here so that parsing a command line does not
# import the loaders (and with them OpenCV) before the arguments are known to be good.
DATASETS: Tuple[str, ...] = ("Kinetics", "Mimetics", "NTU")
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

# Training fields that only matter when a run starts, so a resumed run does not take them from
# its snapshot: end_epoch (a user may extend a run), the weights a run starts from.
_NOT_RESUMED = ("end_epoch", "pretrained", "init_snapshot")


@dataclass(frozen=True)
class Field:
    """One config field.

    Attributes:
        name: the config key; also the command-line option `--<name>`.
        type: int, float, str, bool, Tuple[int, ...], or Optional[...] of one of them (written
            `none` on the command line).
        default: the value when the option is not given (None: derived at run time, see help).
        group: one of `GROUP_NAMES`.
        help: what the field means, one line.
        choices: the only values accepted, where there is a short list.
        flags: further option names for the field (the original's `--gpu`, `--continue`).
        metavar: how `--help` names the value; None: from the type.
    """

    name: str
    type: Any
    default: Any
    group: str
    help: str
    choices: Optional[Tuple[Any, ...]] = None
    flags: Tuple[str, ...] = ()
    metavar: Optional[str] = None

    @property
    def optional(self) -> bool:
        """`none` (None) is a valid value."""
        return get_origin(self.type) is Union and type(None) in get_args(self.type)

    @property
    def base(self) -> Any:
        """The type without Optional: int, float, str, bool or Tuple[int, ...]."""
        if self.optional:
            return next(a for a in get_args(self.type) if a is not type(None))
        return self.type

    @property
    def option(self) -> str:
        """The option a user types, for messages (the original's name where there is one)."""
        return self.flags[0] if self.flags else f"--{self.name}"


def _stage_lrs() -> str:
    return ", ".join(f"{s.default_lr:g} for {s.name}" for s in STAGES.values())


FIELDS: Tuple[Field, ...] = (
    # --- network
    Field("mode", str, "rgb+pose", "network",
          "the training stage: rgb_only, pose_only, or rgb+pose (starts from the merged snapshot)",
          choices=MODES),
    Field("class_num", Optional[int], None, "network",
          "number of action classes; none: the data set's own count (Kinetics50: 50, NTU: 60), "
          "else the largest label + 1"),
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
          "width of a hidden ReLU layer in the gate (0: the paper's single Linear layer)"),
    Field("stream_agreement", bool, False, "network",
          "scale the RGB term of the fusion by how far the rgb_only and pose_only stages' own "
          "classifiers agree on the clip"),
    Field("img_resnet_type", int, 18, "network", "depth of the RGB stream's ResNet",
          choices=(18, 34, 50)),
    Field("pose_resnet_type", int, 18, "network", "depth of the pose stream's ResNet",
          choices=(18, 34, 50)),
    Field("agg_feat_dim", int, 512, "network", "feature width of the fusion (aggregator)"),
    Field("dropout", float, 0.5, "network", "dropout probability before the classifier"),
    # --- input
    Field("video_shape", Optional[Tuple[int, ...]], None, "input",
          "frame size after resizing: one number (the shorter side) or H,W; "
          "none: 256 (240,320 for NTU)"),
    Field("input_img_shape", Tuple[int, ...], (224, 224), "input",
          "crop fed to the RGB stream, H,W"),
    Field("input_hm_shape", Tuple[int, ...], (56, 56), "input", "grid of the pose maps, H,W"),
    Field("hm_sigma", float, 0.5, "input", "Gaussian sigma of the joint heatmaps (grid pixels)"),
    Field("paf_sigma", float, 1.0, "input",
          "half-width of a limb in the part affinity fields (grid pixels)"),
    Field("top_k_pose", int, 5, "input", "most people per frame (by mean joint score)"),
    Field("frame_per_seg", int, 8, "input", "frames per clip"),
    Field("frame_interval", int, 8, "input", "step between the frames of a clip"),
    Field("pose_frame_factor", int, 1, "input",
          "the pose stream sees this many times more frames (must divide frame_interval)"),
    Field("fast_decode", bool, False, "input",
          "decode frames at least twice their resize target at 1/2, 1/4 or 1/8 size (libjpeg "
          "DCT scaling): faster, but not the reference pixels"),
    Field("pose_score_thr", float, 0.1, "input",
          "joints scoring below this are left out of the pose maps"),
    # --- data
    Field("dataset", str, "Kinetics", "data",
          "Kinetics, Mimetics (test only) or NTU", choices=DATASETS),
    Field("subset", str, "50", "data",
          "which release: Kinetics{subset}_{train,val}.json, Mimetics{subset}.json (50, 400)"),
    # --- training
    Field("pretrained", str, "imagenet", "training",
          "backbone weights a run starts from: 'imagenet' (torchvision), a local ResNet "
          "state-dict file, or 'none' (random)", metavar="WEIGHTS"),
    Field("lr", Optional[float], None, "training",
          f"learning rate; none: the stage's ({_stage_lrs()})"),
    Field("lr_dec_epoch", Tuple[int, ...], (21, 26), "training",
          "epochs at which the learning rate is divided by lr_dec_factor"),
    Field("lr_dec_factor", float, 10.0, "training", "learning-rate divisor at each lr_dec_epoch"),
    Field("end_epoch", int, 30, "training",
          "train epochs up to end_epoch - 1 (may be raised on --continue)"),
    Field("momentum", float, 0.9, "training", "SGD momentum"),
    Field("weight_decay", float, 1e-4, "training", "SGD weight decay"),
    Field("train_batch_size", int, 8, "training", "clips per GPU per step"),
    Field("train_aug", bool, True, "training", "multi-scale crop and flip of training clips"),
    Field("reg_weight", float, 1.5, "training", "weight (lambda) of the pose-gate loss"),
    Field("context_aug_prob", float, 0.0, "training",
          "rgb+pose: probability that a clip's pixels outside its people's pose boxes come "
          "from another clip (0: off, the paper)"),
    Field("context_aug_box_margin", float, 0.15, "training",
          "how far the context augmentation grows each pose box, as a fraction of its size"),
    Field("init_snapshot", Optional[str], None, "training",
          "snapshot rgb+pose starts from; none: <model_dir>/snapshot_0.pth.tar (the merge "
          "tool's output)", metavar="PATH"),
    Field("fusion_frozen_bn", bool, False, "training",
          "rgb+pose: the frozen streams use their BatchNorm statistics instead of updating them"),
    Field("seed", Optional[int], None, "training",
          "random seed: the same seed gives the same losses and weights on a CPU; none: a "
          "random one, recorded in the snapshots so that --continue still resumes exactly"),
    Field("lr_schedule", str, "step", "training",
          "'step' (the original: divide by lr_dec_factor at each lr_dec_epoch) or 'cosine' "
          "(from lr to lr_min over the stage's epochs, per iteration)", choices=("step", "cosine")),
    Field("lr_min", float, 0.0, "training", "the cosine schedule's final learning rate"),
    Field("warmup_epochs", float, 0.0, "training",
          "linear warm-up at the start of the stage, in epochs (fractions allowed; 0: none)"),
    Field("warmup_factor", float, 0.01, "training",
          "the warm-up starts at lr x warmup_factor and reaches lr after warmup_epochs"),
    # --- testing
    Field("test_infer_num", int, 10, "testing", "clips per video at test time (averaged)"),
    Field("test_batch_size", int, 16, "testing", "clips per test batch"),
    Field("eval_chunk_frames", Optional[int], None, "testing",
          "evaluation runs the network on sub-batches of whole clips of about this many frames "
          "(the same outputs; on a CPU a small sub-batch's activations stay in cache); none: "
          "16 on the CPU, the whole batch on a GPU; 0: the whole batch"),
    Field("test_epoch", Optional[int], None, "testing",
          "the snapshot_<N>.pth.tar that test.py evaluates (test.py needs it)"),
    # --- runtime
    Field("num_thread", int, 4, "runtime", "DataLoader worker processes (0: the main process)"),
    Field("gpu_ids", Optional[str], None, "runtime",
          "GPUs: '0', '0,1', '0-3' or 'cpu'; none: the first visible GPU, else the CPU",
          flags=("--gpu",), metavar="GPUS"),
    Field("continue_train", bool, False, "runtime",
          "resume this stage's run from its newest snapshot", flags=("--continue",)),
    Field("overwrite", bool, False, "runtime",
          "a stage started without --continue may replace its existing snapshots"),
    Field("strict", bool, False, "runtime",
          "every data problem (a skipped clip, a zeroed pose) stops the run"),
    Field("log_interval", int, 20, "runtime", "log the loss every N iterations (0: never)"),
    Field("progress_bar", bool, True, "runtime", "show a progress bar"),
    Field("max_iters_per_epoch", Optional[int], None, "runtime",
          "cap on iterations per epoch, for smoke runs; none: the whole epoch"),
    Field("save_every", Optional[int], None, "runtime",
          "also save a resumable snapshot every N iterations within an epoch (--continue then "
          "goes on with the next unseen batch); none: at the end of each epoch only"),
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


# ------------------------------------------------------------------------------ values

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _expected(field: Field) -> str:
    """What a field accepts, in words, for messages."""
    if field.choices is not None:
        words = "one of " + ", ".join(str(c) for c in field.choices)
    elif field.base is bool:
        words = "true or false"
    elif field.base is int:
        words = "an integer"
    elif field.base is float:
        words = "a number"
    elif field.base is str:
        words = "a string"
    else:
        words = "integers separated by commas (like 224,224)"
    return words + (" or none" if field.optional else "")


def _value_from_text(field: Field, text: str) -> Any:
    """A command-line string as a value of `field`; ValueError saying what was expected."""
    clean = text.strip()
    if field.optional and clean.lower() in ("none", "null"):
        return None
    value: Any = None
    if field.base is bool:
        value = True if clean.lower() in _TRUE else False if clean.lower() in _FALSE else None
    elif field.base is int:
        value = int(clean) if re.fullmatch(r"[+-]?\d+", clean) else None
    elif field.base is float:
        try:
            value = float(clean)
        except ValueError:
            value = None
        if value is not None and not math.isfinite(value):
            value = None
    elif field.base is str:
        value = text
    else:  # Tuple[int, ...]: the original wrote shapes as (224, 224), so brackets may stay.
        items = clean.strip("()[]").split(",")
        if all(re.fullmatch(r"[+-]?\d+", t.strip()) for t in items):
            value = tuple(int(t) for t in items)
    if value is None or (field.choices is not None and value not in field.choices):
        raise ValueError(f"expected {_expected(field)}, got {text!r}")
    return value


_INVALID = object()  # what `_value_from_python` cannot use (None is a valid value)


def _value_from_python(field: Field, value: Any) -> Any:
    """`value` checked against `field`'s type, lists made tuples; ValueError otherwise."""
    base = field.base
    out: Any = _INVALID
    if value is None:
        out = None if field.optional else _INVALID
    elif base is bool:
        out = value if isinstance(value, bool) else _INVALID
    elif base is int:
        out = value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        out = float(value) if ok and math.isfinite(value) else _INVALID
    elif base is str:
        out = value if isinstance(value, str) else _INVALID
    else:  # Tuple[int, ...]; a single int is a one-element shape (`video_shape=256`).
        items = (value,) if isinstance(value, int) else value
        if isinstance(items, (list, tuple)) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in items):
            out = tuple(items)
    if out is _INVALID or (out is not None and field.choices is not None
                           and out not in field.choices):
        raise ValueError(f"expected {_expected(field)}, got {value!r}")
    return out


def _show(value: Any) -> str:
    """A value as it is written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _same_value(a: Any, b: Any) -> bool:
    """Equal once a snapshot's round trip is undone: lists are tuples, 8 == 8.0."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return type(a) is type(b) and a == b


def _unknown_field(name: str) -> str:
    """'unknown config field --<name>', with the nearest known names."""
    known = [f.name for f in FIELDS] + [flag.lstrip("-") for f in FIELDS for flag in f.flags]
    close = difflib.get_close_matches(name, known, n=2)
    hint = f"; did you mean {' or '.join('--' + c for c in close)}?" if close else ""
    return f"unknown config field --{name}{hint}"


def _apply_overrides(cfg: EasyDict, overrides: Optional[Mapping[str, Any]]) -> EasyDict:
    for key, value in (overrides or {}).items():
        if key not in FIELD_BY_NAME:
            raise UsageError(_unknown_field(key))
        field = FIELD_BY_NAME[key]
        try:
            cfg[key] = _value_from_python(field, value)
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
            no training on a test-only data set, test.py needs `test_epoch`); None: neither.

    Raises:
        UsageError: an unknown field, a value of the wrong type, or a combination that cannot
            be used; the message names the option.
    """
    return finalize_config(_apply_overrides(default_config(), overrides), entry=entry)


def finalize_config(cfg: EasyDict, *, entry: Optional[str] = None) -> EasyDict:
    """Check every field, fill the derived ones; `cfg` is changed in place and returned."""
    if entry not in (None,) + ENTRIES:
        raise ValueError(f"entry must be one of {ENTRIES} or None, got {entry!r}")
    for field in FIELDS:
        try:
            cfg[field.name] = _value_from_python(field, cfg[field.name])
        except ValueError as err:
            raise UsageError(f"{field.option}: {err}") from None

    if entry == "train" and cfg.dataset in TEST_ONLY_DATASETS:
        raise UsageError(
            f"--dataset {cfg.dataset} is a test-only data set (it has no training split): train on "
            f"Kinetics (--dataset Kinetics), then test with main/test.py --dataset {cfg.dataset}")
    if entry == "test" and cfg.test_epoch is None:
        raise UsageError("test.py needs --test_epoch N (it tests <model_dir>/snapshot_N.pth.tar)")
    parse_gpu_ids(cfg.gpu_ids)  # the syntax only: which GPUs exist is known to select_device

    # Values out of these ranges would fail far from the option that set them.
    for name, lowest in (("class_num", 1), ("gate_hidden", 0), ("agg_feat_dim", 1),
                         ("top_k_pose", 1), ("frame_per_seg", 1), ("frame_interval", 1),
                         ("pose_frame_factor", 1), ("end_epoch", 0), ("train_batch_size", 1),
                         ("test_infer_num", 1), ("test_batch_size", 1), ("test_epoch", 0),
                         ("num_thread", 0), ("log_interval", 0), ("max_iters_per_epoch", 1),
                         ("save_every", 1)):
        if cfg[name] is not None and cfg[name] < lowest:
            raise UsageError(f"--{name} must be {lowest} or more, got {cfg[name]}")
    if cfg.warmup_epochs < 0 or cfg.lr_min < 0 or not 0 < cfg.warmup_factor <= 1:
        raise UsageError("--warmup_epochs and --lr_min must be 0 or more and --warmup_factor in "
                         f"(0, 1], got {cfg.warmup_epochs}, {cfg.lr_min}, {cfg.warmup_factor}")
    for name in ("lr", "lr_dec_factor", "hm_sigma", "paf_sigma"):
        if cfg[name] is not None and not cfg[name] > 0:
            raise UsageError(f"--{name} must be positive, got {cfg[name]}")
    if not 0 <= cfg.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if not 0 <= cfg.context_aug_prob <= 1:
        raise UsageError(f"--context_aug_prob must be in [0, 1], got {cfg.context_aug_prob}")
    for name, lengths in (("video_shape", (1, 2)), ("input_img_shape", (2,)),
                          ("input_hm_shape", (2,))):
        shape = cfg[name]
        if shape is not None and (len(shape) not in lengths or min(shape) < 1):
            wanted = "H,W" if lengths == (2,) else "one number (the shorter side) or H,W"
            raise UsageError(f"--{name} must be {wanted} of positive integers, got {_show(shape)}")
    if cfg.gate_target == "swap" and not cfg.context_aug_prob > 0:
        raise UsageError("--gate_target swap needs context augmentation (--context_aug_prob > 0)")
    if cfg.frame_interval % cfg.pose_frame_factor != 0:
        raise UsageError(f"--pose_frame_factor {cfg.pose_frame_factor} must divide "
                         f"--frame_interval {cfg.frame_interval}")

    if cfg.lr is None:
        cfg.lr = get_stage(cfg.mode).default_lr
    if cfg.video_shape is None:
        cfg.video_shape = (240, 320) if cfg.dataset == "NTU" else (256,)
    cfg.model_dir = cfg.model_dir or osp.join(cfg.output_dir, "model_dump")
    cfg.vis_dir = cfg.vis_dir or osp.join(cfg.output_dir, "vis")
    cfg.log_dir = cfg.log_dir or osp.join(cfg.output_dir, "log")
    cfg.result_dir = cfg.result_dir or osp.join(cfg.output_dir, "result")
    return cfg


# ------------------------------------------------------------------------------ snapshots

def snapshot_fields(purpose: str, saved: Optional[Mapping[str, Any]] = None) -> Tuple[str, ...]:
    """The fields a snapshot's config decides when it is tested or resumed.

    Args:
        purpose: 'test' (the network and input groups) or 'resume' (also the training group,
            except the fields that only matter when a run starts, and the data group).
        saved: a snapshot's config; when given, only the fields it actually fixes (present and
            not None), e.g. to log them.
    """
    if purpose == "test":
        groups: Tuple[str, ...] = ("network", "input")
    elif purpose == "resume":
        groups = ("network", "input", "training", "data")
    else:
        raise ValueError(f"purpose must be 'test' or 'resume', got {purpose!r}")
    names = tuple(f.name for f in FIELDS
                  if f.group in groups and not (purpose == "resume" and f.name in _NOT_RESUMED))
    if saved is not None:
        names = tuple(n for n in names if saved.get(n) is not None)
    return names


def config_from_snapshot(saved: Mapping[str, Any], overrides: Mapping[str, Any], *,
                         purpose: str, snapshot: str, entry: Optional[str] = None) -> EasyDict:
    """The config to test or resume a snapshot with: its own network and input, and the rest.

    The fields `snapshot_fields(purpose)` come from `saved` (a saved None means "derived at run
    time" and fixes nothing; a field the snapshot predates keeps its override or default; saved
    fields that no longer exist are ignored). Every other field comes from `overrides` and the
    defaults, as in `build_config`; so does the data set at test time, since a Kinetics-trained
    model is tested on Mimetics. A snapshot without a config (the authors') is `build_config`'s
    case, not this one's.

    Args:
        saved: the `config` stored in the snapshot (plain Python: tuples became lists).
        overrides: the explicit command-line values (`parse_command_line`).
        purpose: 'test' or 'resume'.
        snapshot: the snapshot's path, for messages.
        entry: as in `build_config`.

    Raises:
        UsageError: an override contradicts the snapshot (names the field, both values and the
            snapshot), or the result cannot be used.
        CheckpointError: the snapshot's config holds a value of the wrong type.
    """
    cfg = _apply_overrides(default_config(), overrides)
    for name in snapshot_fields(purpose, saved):
        field = FIELD_BY_NAME[name]
        try:
            value = _value_from_python(field, saved[name])
        except ValueError as err:
            raise CheckpointError(f"{snapshot}: its config's {name} cannot be used ({err}); "
                                  "the snapshot's config is damaged") from None
        if name in overrides and not _same_value(cfg[name], value):
            # --mode is required on the command line, so it cannot be left out.
            way_out = (f"use {field.option} {_show(value)}" if field.name == "mode" else
                       f"leave out {field.option} (the snapshot decides)")
            raise UsageError(
                f"{field.option} {_show(cfg[name])} contradicts {snapshot}, which was trained "
                f"with {name} {_show(value)}: {way_out} or pick another snapshot")
        cfg[name] = value
    return finalize_config(cfg, entry=entry)


# ------------------------------------------------------------------------------ command line

class _HelpFormatter(argparse.HelpFormatter):
    """Names an option's value once: `--gpu, --gpu_ids GPUS` rather than after each name."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, action.dest.upper())
        return f"{', '.join(action.option_strings)} {value}"


def _argparse_type(field: Field):
    """The `type=` of a field's option: the parsed value, or argparse's error with our reason."""

    def parse(text: str) -> Any:
        try:
            value = _value_from_text(field, text)
            if field.name == "gpu_ids":
                parse_gpu_ids(value)  # the syntax, before anything is read
        except ValueError as err:  # UsageError included
            # argparse names the option itself ("argument --gpu/--gpu_ids: ...").
            raise argparse.ArgumentTypeError(str(err).removeprefix("--gpu ")) from None
        return value

    parse.__name__ = field.name
    return parse


def _metavar(field: Field) -> str:
    if field.choices is not None:
        words = "{" + ",".join(str(c) for c in field.choices) + "}"
    elif field.metavar is not None:
        words = field.metavar
    else:
        words = {bool: "true|false", int: "N", float: "X", str: "TEXT"}.get(field.base, "N,N")
    return words + ("|none" if field.optional else "")


def make_parser(entry: str) -> argparse.ArgumentParser:
    """The command line of `train.py` (entry 'train') or `test.py` ('test'): every config field.

    Only the options given appear in the parsed namespace (their default is SUPPRESS), so that
    what the user asked for can be told from the defaults.
    """
    if entry not in ENTRIES:
        raise ValueError(f"entry must be one of {ENTRIES}, got {entry!r}")
    required = ("mode", "test_epoch") if entry == "test" else ("mode",)
    parser = OneLineParser(
        prog=f"{entry}.py",
        usage=(f"%(prog)s --mode MODE{' --test_epoch N' if entry == 'test' else ''} "
               "[--<field> VALUE ...]"),
        description=("Train one IntegralAction stage." if entry == "train" else
                     "Test an IntegralAction snapshot.") +
        " Every config field is an option, listed below with its default.",
        epilog=("Values: --field value or --field=value; booleans true/false/1/0/yes/no/on/off "
                "(a bare --overwrite, --strict, --continue means true); tuples as comma lists "
                "(--input_img_shape 96,96); none for optional fields."),
        allow_abbrev=False,
        argument_default=argparse.SUPPRESS,
        formatter_class=_HelpFormatter,
    )
    for group_name, description in GROUPS:
        group = parser.add_argument_group(group_name, description)
        for field in (f for f in FIELDS if f.group == group_name):
            if entry == "test" and field.name == "test_epoch":
                field = dataclasses.replace(field, type=int)  # required: none makes no sense
            shown = "required" if field.name in required else f"default: {_show(field.default)}"
            text = f"{field.help} ({shown})"
            kwargs: Dict[str, Any] = dict(
                dest=field.name, type=_argparse_type(field), metavar=_metavar(field),
                help=text.replace("%", "%%"))  # argparse %-formats help strings
            if field.base is bool:
                kwargs.update(nargs="?", const=True)  # `--strict` alone, or `--strict false`
            if field.name in required:
                kwargs["required"] = True
            group.add_argument(*field.flags, f"--{field.name}", **kwargs)
    return parser


def _unexpected(token: str) -> str:
    if token.startswith("-"):
        return _unknown_field(token.lstrip("-").split("=", 1)[0])
    return f"unexpected argument {token!r}: options are written --<field> <value>"


def parse_command_line(entry: str, argv: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """The options given on a `train.py`/`test.py` command line, typed: field -> value.

    Only the explicit options are returned (not the defaults). A bad command line (unknown
    option, a value of the wrong type, a bad `--gpu`, a missing required option) ends the
    program with one line on stderr and exit status 2; `--help` prints every field and exits 0.

    Args:
        entry: 'train' or 'test'.
        argv: the arguments without the program name; None: `sys.argv[1:]`.
    """
    parser = make_parser(entry)
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if extra:
        parser.error(_unexpected(extra[0]))
    return vars(args)


def config_from_argv(entry: str, argv: Optional[Iterable[str]] = None) -> EasyDict:
    """Parse a `train.py`/`test.py` command line into the config.

    Raises:
        SystemExit: a bad command line (one line on stderr, status 2).
        UsageError: values that parse but cannot be used together (see `build_config`).
    """
    return build_config(parse_command_line(entry, argv), entry=entry)


def describe_config(cfg: EasyDict) -> List[str]:
    """One `key: value` line per field, for the log."""
    return [f"{k}: {cfg[k]!r}" for k in sorted(cfg)]
