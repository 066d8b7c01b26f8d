"""What the JPEG decoder says about damaged data, caught while it decodes.

libjpeg(-turbo), which OpenCV decodes JPEGs with, does not fail on a damaged entropy-coded
segment (a scan cut short, flipped bytes, a stray marker): it prints a warning such as
`Corrupt JPEG data: premature end of data segment` on the process's stderr and returns an image
whose damaged part is grey or garbage. OpenCV gives no access to that warning, and the other
decoders at hand (PIL, torchvision) notice a stray marker at most, not a scan cut short or
garbled, and would cost a second decode. So OpenCV's decodes run inside
`catching_decoder_output`, with file descriptor 2 pointed at a private file, and what was
written there is read after each frame: the pixels stay exactly OpenCV's, for a few system
calls per clip. `damage_warning` tells the decoder's damage warnings from anything else, which
is passed on to the real stderr.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from typing import Iterator, List, Optional, Tuple

# libjpeg's warnings about the image data itself (JWRN_HIT_MARKER, JWRN_EXTRANEOUS_DATA,
# JWRN_HUFF_BAD_CODE, JWRN_ARITH_BAD_CODE, JWRN_JPEG_EOF, JWRN_MUST_RESYNC...): the pixels after
# the damage are not the file's.
DAMAGE_PREFIXES = ("Corrupt JPEG data", "Premature end of JPEG file")
# Damage warnings about metadata only, which leave the pixels alone.
METADATA_WARNINGS = ("bad ICC marker",)

# Keeps two threads of one process from swapping file descriptor 2 under each other.
_lock = threading.Lock()


class DecoderOutput:
    """What was written to file descriptor 2 inside a `catching_decoder_output` block."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.passed_on: List[str] = []

    def damage(self) -> Optional[str]:
        """The first damage warning (`damage_warning`) written since the last call, None when
        there is none. The rest of what was written is kept for the real stderr."""
        size = os.lseek(self._fd, 0, os.SEEK_CUR)
        if size == 0:
            return None
        os.lseek(self._fd, 0, os.SEEK_SET)
        written = os.read(self._fd, size).decode("utf-8", errors="replace")
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        damage, rest = damage_warning(written)
        self.passed_on.extend(rest)
        return damage


@contextlib.contextmanager
def catching_decoder_output() -> Iterator[DecoderOutput]:
    """Within the block, writes to file descriptor 2 go to a capture file of its own; read
    them with the yielded `DecoderOutput.damage()` after each decode. On leaving, stderr is
    restored and whatever was not a damage warning is written to it. Not to be nested.

    One block can span a whole clip: that is a handful of system calls per clip, plus one
    per frame to see whether anything was written.
    """
    # A capture file per block (one per clip): a few system calls, and no file shared with
    # forked loader workers.
    with _lock, tempfile.TemporaryFile(buffering=0) as capture:
        fd = capture.fileno()
        try:
            saved: Optional[int] = os.dup(2)
        except OSError:  # no stderr at all: restore that state after
            saved = None
        os.dup2(fd, 2)
        output = DecoderOutput(fd)
        try:
            yield output
        finally:
            output.damage()  # collect (and clear) anything written after the last look
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
                if output.passed_on:
                    os.write(2, ("\n".join(output.passed_on) + "\n").encode(
                        "utf-8", errors="replace"))


def damage_warning(output: str) -> Tuple[Optional[str], List[str]]:
    """`(the first line of the decoder's output that reports damaged image data or None, the
    other non-empty lines)`: those are no damage warning (another thread's output, a benign
    libjpeg note) and go on to stderr, so that nothing is swallowed."""
    damage: Optional[str] = None
    rest = []
    for line in output.splitlines():
        text = line.strip()
        if text.startswith(DAMAGE_PREFIXES) and not any(w in text for w in METADATA_WARNINGS):
            damage = damage or text
        elif text:
            rest.append(line)
    return damage, rest
