"""Recipe files: config fields written in a TOML file, read as data (never executed).

`python main/train.py --config FILE`, `main/test.py --config FILE` and
`tool/train_all.py --config FILE` read one (the option may be repeated: a later file wins).
The files of `configs/` are such recipes.

The layout, one rule: every config field sits in the table of its group, the groups that
`python main/train.py --help` lists ([network], [input], [data], [training], [testing],
[runtime], [paths])::

    [network]
    mode = "rgb_only"

    [training]
    end_epoch = 30
    lr_dec_epoch = [21, 26]

A recipe may also hold per-stage tables, `[stage.<mode>.<group>]`, whose fields apply only to
that stage's calls (TOML needs quotes around rgb+pose: `[stage."rgb+pose".training]`). The
order of precedence, lowest first: the defaults, the files' shared fields, the files' fields of
the stage being run, the command line.

Values are TOML's own types: strings, integers, floats, booleans, and arrays of integers for the
shapes (`input_img_shape = [224, 224]`, `video_shape = [256]`). TOML has no none: an optional
field is left at none by leaving it out. A key that is no field, a field under another group's
table, a value of the wrong type or out of the field's range (`train.py --help` shows each range),
or a file that is not TOML is refused with one line that names the file and the field.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping

from common.errors import UsageError
from common.stages import MODES, STAGES
from main.config import FIELD_BY_NAME, GROUP_NAMES, nearest_fields
from main.config_values import range_error, value_from_python

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

STAGE_TABLE = "stage"


@dataclass(frozen=True)
class RecipeFile:
    """One recipe file, checked and typed.

    Attributes:
        path: the file, as the user named it (for messages).
        fields: field -> value, for every stage.
        stages: stage name -> its own fields (field -> value).
    """

    path: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _typed_fields(path: str, groups: Any, where: str) -> Dict[str, Any]:
    """The `[<group>]` tables of `groups` (a TOML table) as field -> checked value.

    Args:
        where: the tables' prefix in messages ('' or 'stage.rgb_only.').
    """
    out: Dict[str, Any] = {}
    for group, table in groups.items():
        if group not in GROUP_NAMES:
            hint = (f"; write it under [{where}{FIELD_BY_NAME[group].group}]"
                    if group in FIELD_BY_NAME else "")
            raise UsageError(f"{path}: [{where}{group}] is not a group of fields (the groups are "
                             f"{', '.join(GROUP_NAMES)}){hint}")
        if not isinstance(table, dict):
            raise UsageError(f"{path}: {where}{group} must be a table, [{where}{group}]")
        for name, value in table.items():
            found = FIELD_BY_NAME.get(name)
            if found is None:
                close = nearest_fields(name)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise UsageError(f"{path}: [{where}{group}] {name} is not a config field{hint}")
            if where and name == "mode":
                raise UsageError(f"{path}: [{where}{group}] mode: a stage's table cannot change "
                                 "its mode")
            if found.group != group:
                raise UsageError(f"{path}: [{where}{group}] {name}: the field belongs under "
                                 f"[{where}{found.group}]")
            try:
                out[name] = value_from_python(found, value)
            except ValueError as err:
                raise UsageError(f"{path}: [{where}{group}] {name}: {err}") from None
            problem = range_error(found, out[name], f"[{where}{group}] {name}")
            if problem:
                raise UsageError(f"{path}: {problem}")
    return out


def read_recipe(path: str) -> RecipeFile:
    """Read and check one recipe file (see the module docstring for the layout).

    Raises:
        UsageError: the file cannot be read, is not TOML, or holds something that is not a
            config field of the right group and type; one line naming the file and the field.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise UsageError(f"{path}: cannot read the config file ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path}: not a TOML file ({err})") from None
    stages_table = data.pop(STAGE_TABLE, {})
    if not isinstance(stages_table, dict):
        raise UsageError(f"{path}: {STAGE_TABLE} must hold tables, [{STAGE_TABLE}.<mode>.<group>]")
    stages: Dict[str, Dict[str, Any]] = {}
    for mode, groups in stages_table.items():
        if mode not in STAGES:
            raise UsageError(f"{path}: [{STAGE_TABLE}.{mode}]: {mode!r} is not a stage; the "
                             f"stages are {', '.join(MODES)}")
        if not isinstance(groups, dict):
            raise UsageError(f"{path}: {STAGE_TABLE}.{mode} must hold tables, "
                             f"[{STAGE_TABLE}.{mode}.<group>]")
        stages[mode] = _typed_fields(path, groups, f"{STAGE_TABLE}.{mode}.")
    loose = [k for k, v in data.items() if not isinstance(v, dict)]
    if loose:
        name = loose[0]
        place = (f"under [{FIELD_BY_NAME[name].group}]" if name in FIELD_BY_NAME else
                 "in the table of its group")
        raise UsageError(f"{path}: {name} stands outside any table: write each field {place}")
    return RecipeFile(path, _typed_fields(path, data, ""), stages)


def recipe_overrides(recipes: Iterable[RecipeFile], mode: str) -> Dict[str, Any]:
    """What the files give a call of stage `mode`: each file's shared fields, then the stage's
    own; a later file's replace an earlier one's."""
    recipes = list(recipes)
    out: Dict[str, Any] = {}
    for recipe in recipes:
        out.update(recipe.fields)
    for recipe in recipes:
        out.update(recipe.stages.get(mode, {}))
    return out
