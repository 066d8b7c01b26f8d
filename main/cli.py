"""The command line of train.py and test.py, and the parser every entry point shares.

`make_parser(entry)` builds the options of `train.py`/`test.py` from the field table
(main/config.py): every field is `--<field> <value>` or `--<field>=<value>`, tuples as comma lists
(`--input_img_shape 96,96`), booleans as true/false/1/0/yes/no/on/off (a bare `--overwrite`
means true), `none` for an optional field. `--config FILE` (repeatable) reads a recipe file
first (main/config_file.py); the options given on the command line override its fields.
`parse_command_line` returns what the user set; `main.config.build_config` makes the config.

A command line that cannot be used ends the program with one line, `error: ... (see <prog>
--help)`, and exit status 2 (`OneLineParser`).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Dict, Iterable, NoReturn, Optional, Tuple

from easydict import EasyDict

from common.errors import UsageError
from common.runtime.device import parse_gpu_ids
from main.config import ENTRIES, FIELDS, GROUPS, build_config, unknown_field
from main.config_file import read_recipe, recipe_overrides
from main.config_values import Field, show_value, value_from_text

# Where the parsed namespace keeps the --config files (no field has this name).
CONFIG_DEST = "config_files"


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, `error: <message> (see <prog> --help)`, status 2.

    Every entry point (train.py, test.py, demo.py and the tools) parses with it, so a mistyped
    option reads the same everywhere.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _required(entry: str) -> Tuple[str, ...]:
    """The fields an entry point cannot run without (on the command line or in a file)."""
    return ("mode", "test_epoch") if entry == "test" else ("mode",)


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
            value = value_from_text(field, text)
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
    required = _required(entry)
    parser = OneLineParser(
        prog=f"{entry}.py",
        usage=("%(prog)s [--config FILE] --mode MODE"
               f"{' --test_epoch N' if entry == 'test' else ''} [--<field> VALUE ...]"),
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
    parser.add_argument(
        "--config", dest=CONFIG_DEST, action="append", metavar="FILE",
        help="a recipe file (TOML, see configs/): its fields are applied on top of the "
             "defaults, the command line's on top of them; may be repeated (a later file wins)")
    for group_name, description in GROUPS:
        group = parser.add_argument_group(group_name, description)
        for field in (f for f in FIELDS if f.group == group_name):
            if entry == "test" and field.name == "test_epoch":
                field = dataclasses.replace(field, type=int)  # required: none makes no sense
            shown = ("required" if field.name in required else
                     f"default: {show_value(field.default)}")
            text = f"{field.help} ({shown})"
            if field.range is not None:
                text += f" [range: {field.range.words()}]"
            kwargs: Dict[str, Any] = dict(
                dest=field.name, type=_argparse_type(field), metavar=_metavar(field),
                help=text.replace("%", "%%"))  # argparse %-formats help strings
            if field.base is bool:
                kwargs.update(nargs="?", const=True)  # `--strict` alone, or `--strict false`
            group.add_argument(*field.flags, f"--{field.name}", **kwargs)
    return parser


def _unexpected(token: str) -> str:
    if token.startswith("-"):
        return unknown_field(token.lstrip("-").split("=", 1)[0])
    return f"unexpected argument {token!r}: options are written --<field> <value>"


def parse_command_line(entry: str, argv: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """The options given on a `train.py`/`test.py` command line, typed: field -> value.

    Only the explicit options are returned (not the defaults): the fields of the `--config`
    files (their shared tables, then the tables of the stage being run), replaced by the
    options typed on the command line. A bad command line (unknown option, a value of the wrong
    type, a bad `--gpu`, a missing required option, a config file that cannot be used) ends the
    program with one line on stderr and exit status 2; `--help` prints every field and exits 0.

    Args:
        entry: 'train' or 'test'.
        argv: the arguments without the program name; None: `sys.argv[1:]`.
    """
    parser = make_parser(entry)
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if extra:
        parser.error(_unexpected(extra[0]))
    given = vars(args)
    paths = given.pop(CONFIG_DEST, [])
    try:
        recipes = [read_recipe(path) for path in paths]
    except UsageError as err:
        parser.error(str(err))
    mode = given.get("mode", recipe_overrides(recipes, "").get("mode"))
    overrides = {**recipe_overrides(recipes, mode), **given} if recipes else given
    missing = [f"--{name}" for name in _required(entry) if name not in overrides]
    if missing:  # argparse's own words, for options a file may give instead
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    return overrides


def config_from_argv(entry: str, argv: Optional[Iterable[str]] = None) -> EasyDict:
    """Parse a `train.py`/`test.py` command line into the config.

    Raises:
        SystemExit: a bad command line (one line on stderr, status 2).
        UsageError: values that parse but cannot be used together (see `build_config`).
    """
    return build_config(parse_command_line(entry, argv), entry=entry)

