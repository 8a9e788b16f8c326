"""The one progress-bar style: live on a terminal, throttled ASCII lines in a log, never on stdout."""

from __future__ import annotations

import io
import sys

import pytest

from genderclass import progress as progress_module
from genderclass.progress import LOG_INTERVAL_S, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream_type, interval", [(Terminal, 0.1), (io.StringIO, LOG_INTERVAL_S)])
def test_bar_goes_to_stderr_live_on_a_terminal_throttled_in_a_log(monkeypatch, capsys, stream_type, interval):
    stream = stream_type()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress(range(3), desc="evaluate")
    assert list(bar) == [0, 1, 2]
    assert bar.mininterval == interval
    assert bar.maxinterval >= bar.mininterval  # tqdm's monitor must not redraw a log more often
    assert "evaluate" in stream.getvalue() and "3/3" in stream.getvalue()
    assert capsys.readouterr().out == ""  # stdout carries results only
    if stream_type is io.StringIO:
        assert stream.getvalue().isascii()


def test_disabled_bar_writes_nothing(monkeypatch):
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress(total=5, desc="predict", disable=True)
    bar.update(5)
    bar.close()
    assert stream.getvalue() == ""


def test_every_long_operation_uses_it():
    from genderclass.cli import commands
    from genderclass.data import cache
    from genderclass.evaluation import evaluate

    for module in (commands, cache, evaluate):
        assert module.progress is progress_module.progress
        assert not hasattr(module, "tqdm")  # no second, differently configured bar


def test_in_a_log_every_update_is_a_line_and_a_log_message_starts_its_own(monkeypatch):
    """stderr redirected to a file: no carriage-return redraws, and a message logged while a bar
    runs does not continue the bar's line."""
    import logging

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_S", 0.0)  # every update is written
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("genderclass.test_progress")
    logger.addHandler(handler)
    try:
        bar = progress(total=3, desc="predict")
        bar.update(1)
        logger.warning("skipped broken.jpg")
        bar.update(2)
        bar.close()
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert "skipped broken.jpg" in lines  # a whole line, not glued to the bar
    assert any(line.startswith("predict") and "3/3" in line for line in lines)
    assert all(line.strip() for line in lines)
