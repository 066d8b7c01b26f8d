"""What the JPEG decoder says about damaged data, caught while it decodes.

libjpeg(-turbo), which OpenCV decodes JPEGs with, does not fail on a damaged entropy-coded
segment (a scan cut short, flipped bytes, a stray marker): it prints a warning such as
`Corrupt JPEG data: premature end of data segment` on the process's stderr and returns an image
whose damaged part is grey or garbage. OpenCV gives no access to that warning, and the other
decoders at hand (PIL, torchvision) notice a stray marker at most, not a scan cut short or
garbled, and would cost a second decode. So `catch_decoder_output` runs OpenCV's decode with
file descriptor 2 pointed at a private file for the call's duration and returns what was
written there: the pixels stay exactly OpenCV's, for a few system calls per frame.
`damage_warning` tells the decoder's damage warnings from anything else, which is passed on to
the real stderr.
"""
from __future__ import annotations

import os
import tempfile
import threading
from typing import Callable, Optional, Tuple, TypeVar

T = TypeVar("T")

# libjpeg's warnings about the image data itself (JWRN_HIT_MARKER, JWRN_EXTRANEOUS_DATA,
# JWRN_HUFF_BAD_CODE, JWRN_ARITH_BAD_CODE, JWRN_JPEG_EOF, JWRN_MUST_RESYNC...): the pixels after
# the damage are not the file's.
DAMAGE_PREFIXES = ("Corrupt JPEG data", "Premature end of JPEG file")
# Damage warnings about metadata only, which leave the pixels alone.
METADATA_WARNINGS = ("bad ICC marker",)

# One capture file per process: a forked loader worker must not share the parent's (nor its
# file offset), so the owner's pid is kept with it. The lock keeps two threads of one process
# from swapping file descriptor 2 under each other.
_lock = threading.Lock()
_capture = {"pid": -1, "file": None}


def _capture_fd() -> int:
    """This process's capture file (created on first use), empty and positioned at 0."""
    if _capture["pid"] != os.getpid():
        _capture["file"] = tempfile.TemporaryFile(buffering=0)
        _capture["pid"] = os.getpid()
    return _capture["file"].fileno()


def catch_decoder_output(decode: Callable[[], T]) -> Tuple[T, str]:
    """Run `decode()` with its writes to file descriptor 2 caught.

    Returns:
        `(decode's result, what it wrote to stderr)` ('' almost always).
    """
    with _lock:
        fd = _capture_fd()
        try:
            saved: Optional[int] = os.dup(2)
        except OSError:  # no stderr at all: restore that state after
            saved = None
        os.dup2(fd, 2)
        try:
            result = decode()
        finally:
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
        size = os.lseek(fd, 0, os.SEEK_CUR)
        if size == 0:
            return result, ""
        os.lseek(fd, 0, os.SEEK_SET)
        written = os.read(fd, size)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
    return result, written.decode("utf-8", errors="replace")


def damage_warning(output: str) -> Optional[str]:
    """The first line of the decoder's `output` that reports damaged image data, None when
    there is none. The other lines (not the decoder's damage warnings: another thread's
    output, a benign libjpeg note) are written on to stderr, so that nothing is swallowed."""
    damage: Optional[str] = None
    passed_on = []
    for line in output.splitlines():
        text = line.strip()
        if text.startswith(DAMAGE_PREFIXES) and not any(w in text for w in METADATA_WARNINGS):
            damage = damage or text
        elif text:
            passed_on.append(line)
    if passed_on:
        try:
            os.write(2, ("\n".join(passed_on) + "\n").encode("utf-8", errors="replace"))
        except OSError:
            pass  # stderr is closed: there is nowhere to pass it on to
    return damage
