"""What a config field is and which values it takes, from the command line or a file.

A `Field` states a field's type; `value_from_text` reads a command-line string as that type,
`value_from_python` checks a value that is already typed (a snapshot's saved config, a recipe
file's TOML value, a Python override) and `show_value` writes a value back as the command line
spells it. A field's `Range` says which of those values it takes (`range_error`); the type checks
and the range checks are separate because a snapshot's saved values are type-checked only (they
were valid for the code that trained it). The field table itself is `main.config.FIELDS`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union, get_args, get_origin


@dataclass(frozen=True)
class Range:
    """The values a number field takes, or each item of a tuple field.

    Attributes:
        min, max: the bounds; None: unbounded on that side.
        min_open, max_open: the bound itself is excluded (`> 0` rather than `0 or more`).
        lengths: tuple fields: the numbers of items allowed (None: any).
        increasing: tuple fields: each item above the one before.
    """

    min: Optional[float] = None
    max: Optional[float] = None
    min_open: bool = False
    max_open: bool = False
    lengths: Optional[Tuple[int, ...]] = None
    increasing: bool = False

    def holds(self, value: Any) -> bool:
        """`value` (a number, or a tuple of numbers) is inside the range."""
        if isinstance(value, tuple):
            if self.lengths is not None and len(value) not in self.lengths:
                return False
            if self.increasing and any(b <= a for a, b in zip(value, value[1:])):
                return False
            return all(self.holds(v) for v in value)
        low = self.min is None or (value > self.min if self.min_open else value >= self.min)
        high = self.max is None or (value < self.max if self.max_open else value <= self.max)
        return low and high

    def _number_words(self) -> str:
        low, high = _number(self.min), _number(self.max)
        if self.min is not None and self.max is not None:
            return (f"in {'(' if self.min_open else '['}{low}, {high}"
                    f"{')' if self.max_open else ']'}")
        if self.min is not None:
            return f"> {low}" if self.min_open else f"{low} or more"
        if self.max is not None:
            return f"< {high}" if self.max_open else f"{high} or less"
        return "any number"

    def words(self) -> str:
        """The range in words, for messages and `--help` (`1 or more`, `in [0, 1)`)."""
        item = self._number_words()
        if self.lengths is None and not self.increasing:
            return item
        items = "positive integers" if item == "1 or more" else f"integers, each {item}"
        if self.lengths == (2,):
            return f"H,W of {items}"
        if self.lengths == (1, 2):
            return f"one number (the shorter side) or H,W of {items}"
        return f"{'increasing ' if self.increasing else ''}{items}"


def _number(x: Optional[float]) -> str:
    """A bound as a user writes it: whole numbers without a decimal point or exponent."""
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# The ranges most fields share.
AT_LEAST_ONE = Range(min=1)
AT_LEAST_ZERO = Range(min=0)
POSITIVE = Range(min=0, min_open=True)
PROBABILITY = Range(min=0, max=1)
SHAPE_HW = Range(min=1, lengths=(2,))


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
        range: the values a number or tuple field takes (None: any value of its type, or
            `choices`); `none` is always allowed for an optional field.
    """

    name: str
    type: Any
    default: Any
    group: str
    help: str
    choices: Optional[Tuple[Any, ...]] = None
    flags: Tuple[str, ...] = ()
    metavar: Optional[str] = None
    range: Optional[Range] = None

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


def value_from_text(field: Field, text: str) -> Any:
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
    elif clean.lower() in ("none", "") or not clean.strip("()[] "):
        value = ()  # an empty list: `--lr_dec_epoch none` is a run without a decay
    else:  # Tuple[int, ...]: the original wrote shapes as (224, 224), so brackets may stay.
        items = clean.strip("()[]").split(",")
        if all(re.fullmatch(r"[+-]?\d+", t.strip()) for t in items):
            value = tuple(int(t) for t in items)
    if value is None or (field.choices is not None and value not in field.choices):
        raise ValueError(f"expected {_expected(field)}, got {text!r}")
    return value


_INVALID = object()  # what `value_from_python` cannot use (None is a valid value)


def value_from_python(field: Field, value: Any) -> Any:
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


def range_error(field: Field, value: Any, label: Optional[str] = None) -> Optional[str]:
    """'<label> must be <range>, got <value>' when a typed `value` is outside the field's
    range; None when it is inside (or the field has no range, or the value is none).

    Args:
        label: how the message names the field; None: its option (`--lr`).
    """
    if field.range is None or value is None or field.range.holds(value):
        return None
    return (f"{label or field.option} must be {field.range.words()}, "
            f"got {show_value(value)}")


def show_value(value: Any) -> str:
    """A value as it is written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "none"
    return str(value)


def same_value(a: Any, b: Any) -> bool:
    """Equal once a snapshot's round trip is undone: lists are tuples, 8 == 8.0."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return type(a) is type(b) and a == b
