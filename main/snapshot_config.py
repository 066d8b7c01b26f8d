"""What a snapshot's own config decides when it is tested or resumed.

A snapshot stores the resolved config it was trained with. test.py, `--continue`, the demo and
tool/export.py rebuild the network and its input from it (`snapshot_fields` names which
fields), and refuse a command-line value that contradicts it; everything else comes from the
command line and the defaults, as for a fresh run (`main.config.build_config`).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from easydict import EasyDict

from common.errors import CheckpointError, UsageError
from common.stages import MODES
from common.train.checkpoint import load_snapshot
from common.train.snapshot_stages import check_stage, classifier_class_count, snapshot_stage
from main.config import (FIELD_BY_NAME, FIELDS, apply_overrides, build_config, default_config,
                         finalize_config)
from main.config_values import same_value, show_value, value_from_python

# Training fields that only matter when a run starts, so a resumed run does not take them from
# its snapshot: end_epoch (a user may extend a run), the weights a run starts from.
_NOT_RESUMED = ("end_epoch", "pretrained", "init_snapshot")
# Network fields that change only what evaluation makes of the network's outputs: the snapshot's
# value is the default, and test.py or a resumed run may set another (to choose it on a
# validation split, say); training does not depend on them.
_EVALUATION_ONLY = ("pose_fallback",)


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
    model is tested on Mimetics. The `_EVALUATION_ONLY` fields (pose_fallback) are the
    exception: the snapshot's value is their default, and an override replaces it, at test time
    and on resume alike. At test time the rules about training alone (e.g. `--gate_target swap`
    needs `--context_aug_prob`) are not checked: they held when the snapshot trained. A snapshot
    without a config (the authors') is `build_config`'s case, not this one's.

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
    cfg = apply_overrides(default_config(), overrides)
    taken = snapshot_fields(purpose, saved)
    for name in taken:
        if name in _EVALUATION_ONLY and name in overrides:
            continue
        field = FIELD_BY_NAME[name]
        try:
            value = value_from_python(field, saved[name])
        except ValueError as err:
            raise CheckpointError(f"{snapshot}: its config's {name} cannot be used ({err}); "
                                  "the snapshot's config is damaged") from None
        if name in overrides and not same_value(cfg[name], value):
            # --mode is required on the command line, so it cannot be left out.
            way_out = (f"use {field.option} {show_value(value)}" if field.name == "mode" else
                       f"leave out {field.option} (the snapshot decides)")
            raise UsageError(
                f"{field.option} {show_value(cfg[name])} contradicts {snapshot}, which was "
                f"trained with {name} {show_value(value)}: {way_out} or pick another snapshot")
        cfg[name] = value
    # Testing trains nothing: the training fields are not the snapshot's, and the rules about
    # them were met when it trained. A resumed run trains, and checks them.
    return finalize_config(cfg, entry=entry,
                           from_snapshot=[n for n in taken if n not in overrides],
                           given=tuple(overrides), training=purpose == "resume")


def read_inference_snapshot(path: str, mode: Optional[str]) -> Tuple[Dict[str, Any], str, int]:
    """A snapshot to run (the demo) or export: the snapshot, its stage and its class count
    (from its classifier's weights).

    Raises:
        CheckpointError: unreadable, of another stage than `mode` (`--mode`), the merge tool's
            output, or without classifier weights.
        UsageError: the stage cannot be told from the file and `mode` is None.
    """
    snap = load_snapshot(path, map_location="cpu")
    stage = snapshot_stage(snap)
    if mode is not None:
        check_stage(snap, mode, path)
    elif stage is None:
        raise UsageError(f"{path} does not say which stage trained it (the authors' format); "
                         f"pass --mode ({', '.join(MODES)})")
    return snap, mode or stage, classifier_class_count(snap, path)


def inference_config(saved: Optional[Mapping[str, Any]], path: str, *, mode: str,
                     mode_given: bool, test_infer_num: Optional[int] = None) -> EasyDict:
    """The network and input configuration of a snapshot's config `saved` (stored in `path`),
    else, for the authors' snapshots (None), the defaults for `mode`, as test.py does.
    `test_infer_num`: the clips per video, when given."""
    overrides: Dict[str, Any] = {}
    if mode_given or not saved:
        overrides["mode"] = mode
    if test_infer_num is not None:
        overrides["test_infer_num"] = test_infer_num
    if saved:
        return config_from_snapshot(saved, overrides, purpose="test", snapshot=path)
    return build_config(overrides)
