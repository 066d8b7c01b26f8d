"""The command-line layer's shared pieces: a parser whose errors are one line."""
from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, `error: <message> (see <prog> --help)`, status 2.

    Every entry point (train.py, test.py, demo.py and the tools) parses with it, so a mistyped
    option reads the same everywhere.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
