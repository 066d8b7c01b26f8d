"""Reading the data sets' files without ever failing anonymously.

Every reader of an annotation or pose file turns malformed content (a JSON syntax error, a
missing key, a value of the wrong type, a wrong joint count) into a `DataError` whose message
starts with the file's path and says what is wrong, instead of the bare `JSONDecodeError`,
`KeyError` or `float()` `ValueError` a user could not trace back to a file.

A problem with one *entry* of an annotation file (one video) is a `FieldError` instead: the
loader leaves that video out and counts it, the rest of the file stays usable.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping, Optional

import numpy as np

from common.errors import DataError

# Video ids become int64 tensors.
INT64_LIMIT = 2 ** 63


class FieldError(Exception):
    """One entry of an annotation file lacks a field the loader needs, or has a wrong value.

    Attributes:
        reason: 'missing_field' (absent or null) or 'bad_field' (present, unusable).
        detail: one line naming the entry (the video id where there is one) and the field.
        path: the file at fault when it is not the annotation file being read (e.g. the
            kinetics-skeleton label file); None for the annotation file itself.
    """

    def __init__(self, reason: str, detail: str, path: Optional[str] = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.path = path


def short_repr(value: Any, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters (a field may hold a whole list)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: Any) -> str:
    """JSON's name for the type of a parsed value ('object', 'list', 'string', ...)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def key_state(content: Mapping[str, Any], key: str) -> str:
    """'missing' when `key` is not in `content`, else the JSON type name of its value."""
    return "missing" if key not in content else type_name(content[key])


def strip_path(message: str, path: str) -> str:
    """A `DataError` message without its leading `<path>: ` (for a Problem's detail)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def read_file_bytes(path: str, what: str) -> bytes:
    """The bytes of a data file; `DataError` (`<path>: <what> not found`, or why it cannot be
    read) instead of an OSError that would not say which kind of file it was."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the {what} ({err.strerror or err})") from None


def require_list_field(content: Any, key: str, path: str, what: str) -> list:
    """`content[key]` of a parsed JSON file that must be an object holding a `key` list;
    otherwise `DataError` saying what the file holds instead."""
    if isinstance(content, dict) and isinstance(content.get(key), list):
        return content[key]
    found = (f"'{key}' is {key_state(content, key)}" if isinstance(content, dict)
             else f"the top level is {type_name(content)}")
    raise DataError(f"{path}: not a {what} (needs an object with a '{key}' list; {found})")


def read_json_file(path: str, what: str) -> Any:
    """Parse a JSON file.

    Args:
        path: the file.
        what: what the file should be, for the messages ('annotation file', 'pose file', ...).
    Returns:
        the parsed value (any JSON type: the caller checks the layout).
    Raises:
        DataError: `<path>: ...` when the file is missing, unreadable, empty or not JSON
            (with the line and column of a syntax error).
    """
    raw = read_file_bytes(path, what)
    if not raw.strip():
        raise DataError(f"{path}: empty file (expected a {what} in JSON)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column "
                        f"{err.colno}); the {what} is truncated or damaged") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text, so not a JSON {what}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a {what}") from None
    except ValueError as err:  # e.g. an integer literal of more than 4300 digits
        raise DataError(f"{path}: not valid JSON ({err})") from None


def number_array(values: Any, path: str, where: str) -> np.ndarray:
    """A JSON list of numbers (nested lists allowed) as a flat float32 array.

    NaN/inf (JSON `NaN`, `Infinity`, or `null`, which numpy reads as NaN) are kept: the dataset
    zeroes such joints and reports them. Raises `DataError` naming `path` and `where` when the
    value is not a list or holds something that is not a number.
    """
    if not isinstance(values, list):
        raise DataError(f"{path}: {where} is {type_name(values)}, not a list of numbers")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as err:
        raise DataError(f"{path}: {where} is not a (rectangular) list of numbers "
                        f"({str(err).splitlines()[0]})") from None
    return array.reshape(-1)


def parse_float(token: str) -> float:
    """A number of a text file; Kinect exports write NaN in several spellings ('NaN',
    '-nan(ind)', '1.#QNAN'). Raises ValueError for anything else."""
    try:
        return float(token)
    except ValueError:
        if "nan" in token.lower():
            return math.nan
        raise


# --------------------------------------------------------------------------- entry fields
def int_value(value: Any) -> Optional[int]:
    """`value` as an int when it is a JSON integer (or an integral number such as 3.0), within
    int64; None otherwise (booleans, strings, fractions, NaN/inf, lists...)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -INT64_LIMIT < value < INT64_LIMIT else None
    if isinstance(value, float) and value.is_integer() and abs(value) < INT64_LIMIT:
        return int(value)
    return None


def int_field(entry: Mapping[str, Any], name: str, where: str,
              minimum: Optional[int] = None, path: Optional[str] = None) -> int:
    """The integer field `name` of an annotation entry.

    Raises:
        FieldError: 'missing_field' when absent or null; 'bad_field' when not an integer or
            below `minimum`. The detail reads `<where>: '<name>' ...`.
    """
    if entry.get(name) is None:
        raise FieldError("missing_field", f"{where} has no '{name}'", path)
    value = int_value(entry[name])
    if value is None:
        raise FieldError("bad_field", f"{where}: '{name}' is {short_repr(entry[name])}, "
                                      "not an integer", path)
    if minimum is not None and value < minimum:
        raise FieldError("bad_field", f"{where}: '{name}' is {value}, expected >= {minimum}",
                         path)
    return value


def name_field(entry: Mapping[str, Any], name: str, where: str) -> str:
    """A field that names a file or folder: a non-empty string (or an integer, read as its
    decimal text) that is one path component (no '/', not '.' or '..').

    Raises:
        FieldError: 'missing_field' when absent, null or empty; 'bad_field' otherwise.
    """
    value = entry.get(name)
    if value is None or value == "":
        raise FieldError("missing_field", f"{where} has no '{name}'")
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise FieldError("bad_field", f"{where}: '{name}' is {short_repr(value)}, not a name")
    if "/" in text or "\0" in text or text in (".", ".."):
        raise FieldError("bad_field", f"{where}: '{name}' is {short_repr(value)}, not a single "
                                      "file or folder name")
    return text
