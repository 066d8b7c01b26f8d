"""The options train_all.py forwards: `--<field>`, `--<stage>.<field>` and recipe files.

Every option names a config field of main/config.py; train_all.py hands it, as text, to the
train.py and test.py calls of every stage, or of one stage when it is written with the stage's
name (`--rgb+pose.lr 0.0005`). A recipe file (`--config FILE`, main/config_file.py) gives the
same options: its shared tables for every stage, its `[stage.<mode>.<group>]` tables for one.
Only the names are checked here; `check_train_argv` is train.py's own check of the values.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from common.errors import UsageError
from common.stages import MODES, STAGES
from main.cli import make_parser as make_entry_parser
from main.config import FIELD_BY_NAME, FIELDS, unknown_field
from main.config_file import read_recipe
from main.config_values import Field, show_value

# An option as train_all.py keeps it: (its stage, or None for every stage; field; value text).
Option = Tuple[Optional[str], str, str]
# The driver's own options, for the nearest-name hints of a mistyped option.
DRIVER_OPTIONS = ("output_dir", "config", "test_datasets", "fusion_dir", "restart",
                  "nproc_per_node", "dry_run", "quiet")
# Fields the driver sets itself for every call, with why a user cannot forward them.
DRIVER_FIELDS: Mapping[str, str] = {
    "mode": "train_all.py runs every stage in its own mode",
    "output_dir": "each stage writes into <--output_dir>/<stage folder>",
    "test_epoch": "each stage is tested at its last epoch (end_epoch - 1)",
    "continue_train": "train_all.py resumes a stage on its own (--restart starts it over)",
    "overwrite": "train_all.py replaces a stage's snapshots only with --restart",
}
# Fields that would make the stages share one folder if given to all of them.
PER_STAGE_ONLY: Tuple[str, ...] = ("model_dir", "result_dir")


def _field_named(name: str) -> Optional[Field]:
    """The field of an option name: `--<field>`, or one of its flags (`--gpu`, `--continue`)."""
    if name in FIELD_BY_NAME:
        return FIELD_BY_NAME[name]
    return next((f for f in FIELDS if f"--{name}" in f.flags), None)


def _unknown_option(name: str, scope: Optional[str]) -> str:
    """'unknown config field --<name>', with the nearest names a user may have meant."""
    return unknown_field(name, prefix=f"{scope}." if scope else "",
                         extra=DRIVER_OPTIONS if scope is None else ())


def read_overrides(tokens: Sequence[str], stage: Optional[str] = None) -> List[Option]:
    """Config options as (stage or None, field, value text), in command-line order.

    Accepts `--field value`, `--field=value`, a bare boolean `--field` (true) and, unless
    `stage` is given, `--<stage>.<field> value`. Only the names are checked here; the values are
    checked by train.py's own parser (`check_train_argv`).

    Args:
        tokens: the options, as on a command line.
        stage: the tokens are all that stage's own (``plan_stages`' `stage_overrides`): a stage
            prefix is refused and every option is returned with this stage.

    Raises:
        UsageError: an unknown field or stage, a field the driver sets itself, a field that
            would make the stages share a folder, or an option without its value.
    """
    out: List[Option] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise UsageError(f"unexpected argument {token!r}: options are written "
                             "--<field> <value> or --<stage>.<field> <value>")
        name, has_value, value = token[2:].partition("=")
        scope: Optional[str] = stage
        if "." in name:  # no field name has a dot
            prefix, _, name = name.partition(".")
            if stage is not None:
                raise UsageError(f"{token.split('=')[0]}: the options of stage {stage} are "
                                 "written without a stage prefix")
            if prefix not in STAGES:
                raise UsageError(f"{token.split('=')[0]}: {prefix!r} is not a stage; per-stage "
                                 f"options are --<stage>.<field> with a stage of "
                                 f"{', '.join(MODES)}")
            scope = prefix
        found = _field_named(name)
        if found is None:
            raise UsageError(_unknown_option(name, scope))
        option = f"--{scope + '.' if scope else ''}{name}"
        if found.name in DRIVER_FIELDS:
            raise UsageError(f"{option}: {DRIVER_FIELDS[found.name]}; leave it out")
        if scope is None and found.name in PER_STAGE_ONLY:
            raise UsageError(f"{option} for every stage would make them share one folder; give "
                             f"it per stage (--rgb_only.{found.name} DIR ...) or leave it out")
        if not has_value:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is not None and not following.startswith("--"):
                value, i = following, i + 1
            elif found.base is bool:
                value = "true"  # a bare boolean, as train.py reads it
            else:
                raise UsageError(f"{option} needs a value")
        out.append((scope, found.name, value))
        i += 1
    return out


def as_argv(pairs: Iterable[Tuple[str, str]]) -> List[str]:
    return [token for name, value in pairs for token in (f"--{name}", value)]


def check_train_argv(entry_argv: Sequence[str], where: str) -> Dict[str, Any]:
    """train.py's own parse of a command line, its errors raised as `UsageError` rather than
    ending the program (its parser exits; here nothing may have started yet)."""
    parser = make_entry_parser("train")

    def error(message: str) -> None:
        raise UsageError(f"{where}{message}")

    parser.error = error  # type: ignore[method-assign]
    args, extra = parser.parse_known_args(list(entry_argv))
    if extra:
        raise UsageError(f"{where}unexpected argument {extra[0]!r}")
    return vars(args)


def file_options(paths: Sequence[str]) -> List[Option]:
    """The recipe files' fields as options, in file order: each file's shared fields, then its
    stages' own (see main/config_file.py for the layout).

    Raises:
        UsageError: a file that cannot be read or used, or a field the driver sets itself;
            the message starts with the file's path.
    """
    out: List[Option] = []
    for path in paths:
        recipe = read_recipe(path)
        tokens = [f"--{name}={show_value(value)}" for name, value in recipe.fields.items()]
        tokens += [f"--{mode}.{name}={show_value(value)}"
                   for mode, fields in recipe.stages.items() for name, value in fields.items()]
        try:
            out += read_overrides(tokens)
        except UsageError as err:
            raise UsageError(f"{path}: {err}") from None
    return out


def by_stage(options: Iterable[Option]) -> Tuple[Dict[str, str], Dict[str, Dict[str, str]]]:
    """(shared field -> value text, stage -> its own field -> value text); a later option
    replaces an earlier one, as on train.py's command line."""
    shared: Dict[str, str] = {}
    own: Dict[str, Dict[str, str]] = {name: {} for name in STAGES}
    for scope, name, value in options:
        (own[scope] if scope else shared)[name] = value
    return shared, own
