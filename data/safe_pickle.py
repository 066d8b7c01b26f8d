"""Reading a pickle that may only hold numpy arrays and plain containers.

A pickle can name any importable callable and have it called while loading (`os.system` is one
`__reduce__` away), so a data file from elsewhere is never given to `pickle.load` as it is.
`load_array_pickle` admits only what a skeleton annotation file is made of: dicts, lists,
tuples, strings and numbers (pickle opcodes, no global needed), numpy arrays, dtypes and scalars
(the few numpy functions that rebuild them, under numpy 1's `numpy.core` and numpy 2's
`numpy._core` names) and a handful of harmless builtins. Any other global is refused with one
line naming the file and the global, before anything is called.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, FrozenSet, Tuple

import numpy as np

from common.errors import DataError
from data.parsing import read_file_bytes

# (module, name) of every global the file may name. numpy 1 writes `numpy.core.*`, numpy 2
# `numpy._core.*`; both spellings are read, whichever numpy is installed.
ALLOWED_GLOBALS: FrozenSet[Tuple[str, str]] = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    # Protocol 2 writes bytes as `_codecs.encode(text, 'latin1')`; sets and bytearrays as calls.
    ("_codecs", "encode"),
    # (protocol 2 names builtins `__builtin__`, Python 2's name).
    *((module, name) for module in ("builtins", "__builtin__")
      for name in ("set", "frozenset", "bytearray", "complex")),
})
# numpy 2 keeps `numpy.core` only as a deprecated alias: a numpy-1 name is looked up in its new
# home so that reading an old file warns about nothing.
_NUMPY_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"

# What a damaged or foreign pickle raises while loading (never a reason for a traceback).
_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                ImportError, IndexError, KeyError, OverflowError, MemoryError)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside `ALLOWED_GLOBALS`."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module = module
        self.name = name


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler whose `find_class` admits only `ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(module, name)
        if module.startswith("numpy.core."):
            module = _NUMPY_CORE + module[len("numpy.core"):]
        elif module.startswith("numpy._core.") and _NUMPY_CORE == "numpy.core":
            module = "numpy.core" + module[len("numpy._core"):]
        return super().find_class(module, name)


def load_array_pickle(path: str, what: str) -> Any:
    """The content of the pickle file `path`, read with `ArrayUnpickler`.

    Args:
        what: what the file is, for messages ('skeleton annotation file').
    Raises:
        DataError: `<path>: ...` for a missing or empty file, a truncated or damaged pickle,
            or one naming a global that is not allowed (the global is named; nothing of the
            file was run).
    """
    raw = read_file_bytes(path, what)
    try:
        return ArrayUnpickler(io.BytesIO(raw)).load()
    except RefusedGlobal as err:
        raise DataError(
            f"{path}: refused to load: the pickle names {err.module}.{err.name}, which a {what} "
            "never holds (only numpy arrays and plain containers are read, so that loading "
            "the file cannot run code from it)") from None
    except _LOAD_ERRORS as err:
        detail = str(err).splitlines()[0] if str(err) else "no detail"
        raise DataError(f"{path}: not a readable pickle, truncated or damaged "
                        f"({type(err).__name__}: {detail}); download or write the {what} "
                        "again") from None
