"""Where the events go: rendered lines written in batches, and what a failed write means."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import BinaryIO

from ..sysmon.event import SysmonEvent

__all__ = ["EventWriter", "OutputError", "open_output", "silence_stdout"]

_BATCH_LINES = 512


class OutputError(Exception):
    """The output (or --rejects file) could not be written; ends the run with status 1."""


class EventWriter:
    """Renders events and writes them as UTF-8 lines, a batch at a time (one write call)."""

    def __init__(self, stream: BinaryIO, render: Callable[[SysmonEvent], str]) -> None:
        self._stream = stream
        self._render = render
        self._lines: list[str] = []

    def write(self, events: Iterable[SysmonEvent]) -> None:
        self._lines.extend(map(self._render, events))
        if len(self._lines) >= _BATCH_LINES:
            self._drain()

    def flush(self) -> None:
        """Write what is batched and push it to the file (a follower's reader sees it now)."""
        self._drain()
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from exc

    def _drain(self) -> None:
        if not self._lines:
            return
        # The renderers escape every character that could not be encoded; surrogateescape
        # only guards the promise that no byte is ever lost.
        data = ("\n".join(self._lines) + "\n").encode("utf-8", "surrogateescape")
        self._lines.clear()
        try:
            self._stream.write(data)
        except OSError as exc:
            raise OutputError(exc) from exc


def open_output(stack: ExitStack, name: str, stdout: BinaryIO | None) -> BinaryIO:
    if name == "-" and stdout is not None:
        return stdout
    return stack.enter_context(open(name, "wb"))


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file: nothing to silence
        pass
