"""The one configuration object: defaults, the stage/dataset rules, and command-line overrides.

`build_config` is the only place a config is made. Everything downstream receives the resulting
EasyDict as an argument; nothing imports a global config.

Any field of `default_config()` can be overridden on the command line of `train.py`/`test.py`
as `--<field> <value>` (tuples as comma lists: `--input_img_shape 96,96`; booleans as
`true/false`; `none` for an optional field), e.g.::

    python main/train.py --mode rgb_only --end_epoch 2 --train_batch_size 2 --img_resnet_type 34
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence

from easydict import EasyDict

ROOT_DIR = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), ".."))

MODES = ("rgb_only", "pose_only", "rgb+pose")
DATASETS = ("Kinetics", "Mimetics", "NTU")


def default_config() -> EasyDict:
    """The original release's defaults (Kinetics50, ResNet-18, 8 x 224 x 224 clips)."""
    return EasyDict(
        # --- experiment ---
        mode="rgb+pose",  # rgb_only, pose_only, rgb+pose
        dataset="Kinetics",  # Kinetics, Mimetics (test only), NTU
        subset="50",  # Kinetics{subset}_{train,val}.json, Mimetics{subset}.json
        class_num=None,  # None: from the annotation file (categories, else max label + 1)
        pose_gate=True,  # False: the no-gate ablation
        gate_input="pose",  # 'pose' (the paper) or 'pose+rgb' (the gate also sees the RGB feature)
        # The gate regulariser's target: 'pose' (the paper: 1 for every clip) or 'swap' (1 for
        # the clips whose scene context augmentation took from another class, 0 for the others).
        gate_target="pose",
        gate_hidden=0,  # > 0: the gate gets a hidden ReLU layer of this width (0 = the paper's Linear)
        # True: the RGB term of the aggregator is scaled by how far the rgb_only and pose_only
        # stages' own classifiers (kept by the merge tool) agree on the clip's action.
        stream_agreement=False,
        # --- model ---
        img_resnet_type=18,  # 18, 34, 50
        pose_resnet_type=18,
        agg_feat_dim=512,
        dropout=0.5,
        pretrained="imagenet",  # 'imagenet' (torchvision weights API), a local file, or 'none'
        # --- input ---
        video_shape=None,  # None: (256,) shorter side, (240, 320) for NTU
        input_img_shape=(224, 224),
        input_hm_shape=(56, 56),
        hm_sigma=0.5,
        paf_sigma=1.0,
        top_k_pose=5,
        frame_per_seg=8,
        frame_interval=8,
        pose_frame_factor=1,
        pose_score_thr=0.1,
        # --- training ---
        lr=None,  # None: 5e-3 for rgb_only/pose_only, 5e-4 for rgb+pose
        lr_dec_epoch=(21, 26),
        lr_dec_factor=10.0,
        end_epoch=30,
        momentum=0.9,
        weight_decay=1e-4,
        train_batch_size=8,
        train_aug=True,
        reg_weight=1.5,  # lambda of the pose-gate BCE loss
        # Context augmentation in the rgb+pose stage (off by default: the paper's recipe).
        # With probability `context_aug_prob` a clip's pixels outside its people's pose boxes
        # are replaced by another clip's frames, so scene context stops predicting the label.
        context_aug_prob=0.0,
        context_aug_box_margin=0.15,
        max_iters_per_epoch=None,  # None: the whole epoch (a cap for smoke runs)
        init_snapshot=None,  # rgb+pose start; None: <model_dir>/snapshot_0.pth.tar (the merge output)
        fusion_frozen_bn=False,  # True: frozen streams use their BN statistics in rgb+pose
        # --- testing ---
        test_infer_num=10,
        test_batch_size=16,
        test_epoch=None,
        # --- runtime ---
        num_thread=4,  # DataLoader workers
        gpu_ids=None,  # None: CPU unless one GPU is visible; '0', '0,1', '0-3'
        continue_train=False,
        overwrite=False,  # True: a stage started without --continue may replace its snapshots
        strict=False,  # True: every data problem (a skipped clip, a zeroed pose) is an error
        seed=None,
        log_interval=20,
        progress_bar=True,
        # --- directories ---
        root_dir=ROOT_DIR,
        data_dir=osp.join(ROOT_DIR, "data"),
        output_dir=osp.join(ROOT_DIR, "output"),
        model_dir=None,  # None: <output_dir>/model_dump
        vis_dir=None,
        log_dir=None,
        result_dir=None,
    )


def _parse_value(text: str, default: Any, key: str) -> Any:
    """Turn a command-line string into the type of the default value."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if isinstance(default, bool):
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--{key}: expected true/false, got {text!r}")
    if isinstance(default, (tuple, list)):
        items = [t for t in text.replace("(", "").replace(")", "").split(",") if t.strip()]
        item_type = type(default[0]) if len(default) else float
        return tuple(_parse_scalar(t, item_type, key) for t in items)
    if default is None:
        # Optional fields without a typed default: int, then float, then a tuple, then string.
        if "," in text:
            return tuple(_guess_scalar(t) for t in text.split(",") if t.strip())
        return _guess_scalar(text)
    return _parse_scalar(text, type(default), key)


def _parse_scalar(text: str, kind: type, key: str) -> Any:
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError as err:
        raise ValueError(f"--{key}: cannot read {text!r} as {kind.__name__}") from err
    return text


def _guess_scalar(text: str) -> Any:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_overrides(tokens: Sequence[str], defaults: Dict[str, Any]) -> Dict[str, Any]:
    """Parse `--key value` / `--key=value` pairs against the known config fields."""
    out: Dict[str, Any] = {}
    i = 0
    tokens = list(tokens)
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise SystemExit(f"unexpected argument {tok!r}")
        key, sep, value = tok[2:].partition("=")
        if not sep:
            if i + 1 >= len(tokens):
                raise SystemExit(f"--{key} needs a value")
            value = tokens[i + 1]
            i += 1
        i += 1
        if key not in defaults:
            close = [k for k in defaults if key in k or k in key]
            hint = f" (did you mean {', '.join(close[:4])}?)" if close else ""
            raise SystemExit(f"unknown config field --{key}{hint}")
        try:
            out[key] = _parse_value(value, defaults[key], key)
        except ValueError as err:
            raise SystemExit(str(err)) from err
    return out


def build_config(overrides: Optional[Dict[str, Any]] = None) -> EasyDict:
    """Defaults, then the overrides, then the fields that depend on mode and dataset."""
    cfg = default_config()
    for key, value in (overrides or {}).items():
        if key not in cfg:
            raise KeyError(f"unknown config field {key!r}")
        cfg[key] = value
    finalize_config(cfg)
    return cfg


def finalize_config(cfg: EasyDict) -> EasyDict:
    """Fill the derived fields and check the combination is meaningful."""
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    if cfg.dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {cfg.dataset!r}")
    if cfg.lr is None:
        cfg.lr = 5e-4 if cfg.mode == "rgb+pose" else 5e-3
    if cfg.video_shape is None:
        cfg.video_shape = (240, 320) if cfg.dataset == "NTU" else (256,)
    if isinstance(cfg.video_shape, (int, float)):
        cfg.video_shape = (cfg.video_shape,)
    cfg.video_shape = tuple(int(v) for v in cfg.video_shape)
    cfg.input_img_shape = tuple(int(v) for v in cfg.input_img_shape)
    cfg.input_hm_shape = tuple(int(v) for v in cfg.input_hm_shape)
    cfg.lr_dec_epoch = tuple(int(v) for v in cfg.lr_dec_epoch)
    cfg.subset = str(cfg.subset)
    if cfg.gate_input not in ("pose", "pose+rgb"):
        raise ValueError("gate_input must be 'pose' or 'pose+rgb'")
    if cfg.gate_target not in ("pose", "swap"):
        raise ValueError("gate_target must be 'pose' or 'swap'")
    if cfg.gate_target == "swap" and not cfg.context_aug_prob > 0:
        raise ValueError("gate_target 'swap' needs context augmentation (--context_aug_prob > 0)")
    cfg.gate_hidden = int(cfg.gate_hidden)
    if cfg.gate_hidden < 0:
        raise ValueError("gate_hidden must be >= 0")
    if cfg.frame_interval % cfg.pose_frame_factor != 0:
        raise ValueError("pose_frame_factor must divide frame_interval")
    if cfg.test_infer_num < 1:
        raise ValueError("test_infer_num must be >= 1")
    for name in ("img_resnet_type", "pose_resnet_type"):
        if cfg[name] not in (18, 34, 50):
            raise ValueError(f"{name} must be 18, 34 or 50")
    cfg.model_dir = cfg.model_dir or osp.join(cfg.output_dir, "model_dump")
    cfg.vis_dir = cfg.vis_dir or osp.join(cfg.output_dir, "vis")
    cfg.log_dir = cfg.log_dir or osp.join(cfg.output_dir, "log")
    cfg.result_dir = cfg.result_dir or osp.join(cfg.output_dir, "result")
    return cfg


def make_parser(entry: str) -> argparse.ArgumentParser:
    """The original's flags; every other config field is accepted as `--<field> <value>`."""
    parser = argparse.ArgumentParser(
        description=f"IntegralAction {entry}",
        epilog="Any config field of main/config.py can be set as --<field> <value>.",
    )
    parser.add_argument("--gpu", dest="gpu_ids", type=str, default=None,
                        help="GPU ids: '0', '0,1' or '0-3'. Without it: one visible GPU, else CPU.")
    parser.add_argument("--mode", type=str, required=True, choices=MODES)
    parser.add_argument("--dataset", type=str, default=None, choices=DATASETS)
    parser.add_argument("--pretrained", type=str, default=None,
                        help="'imagenet', a local torchvision ResNet state-dict file, or 'none'")
    if entry == "train":
        parser.add_argument("--continue", dest="continue_train", action="store_true",
                            help="resume from the newest snapshot of this stage")
    else:
        parser.add_argument("--test_epoch", type=int, required=True)
    return parser


def config_from_argv(entry: str, argv: Optional[Iterable[str]] = None) -> EasyDict:
    """Parse a train.py/test.py command line into the config."""
    parser = make_parser(entry)
    args, rest = parser.parse_known_args(None if argv is None else list(argv))
    overrides = parse_overrides(rest, default_config())
    for key, value in vars(args).items():
        if value is not None and value is not False:
            overrides[key] = value
    try:
        return build_config(overrides)
    except ValueError as err:
        parser.error(str(err))
        raise  # unreachable: parser.error exits


def describe_config(cfg: EasyDict) -> List[str]:
    """One `key: value` line per field, for the log."""
    return [f"{k}: {cfg[k]!r}" for k in sorted(cfg)]
