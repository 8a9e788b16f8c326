"""One progress-bar style for every long operation: preprocessing, evaluating, predicting a folder."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import TextIO

from tqdm import tqdm

_CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # a second bar's moves between lines: meaningless in a file
LOG_INTERVAL_S = 30.0  # stderr is a file or a pipe (a log): at most one update per this many seconds


class LogLines:
    """The file a bar writes to when stderr is a log: every update becomes a line of its own.

    tqdm redraws a bar in place ("\\r" + status, no newline), which in a file makes one long line
    that the next log message continues; here each status ends its line and blank redraws vanish.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = _CURSOR_MOVES.sub("", text).replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None, disable: bool = False) -> tqdm:
    """A tqdm bar on stderr (stdout carries results only): redrawn live on a terminal; in a log, an
    ASCII line at most every 30 s, so a long run leaves a readable trace instead of thousands of
    redraws. ``-q`` silences every bar (see ``cli.main.setup_logging``)."""
    live = sys.stderr.isatty()
    interval = 0.1 if live else LOG_INTERVAL_S
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit="img",
        file=sys.stderr if live else LogLines(sys.stderr),
        disable=disable,
        mininterval=interval,
        maxinterval=max(10.0, interval),
        ascii=None if live else True,
    )
