"""Where the events go: rendered lines written in batches, and what a failed write means.

Three sinks: standard output, a file (`-o`), or the local syslog socket (`--syslog`, one
message per event, as Sysmon for Linux sends them). A file is written through `LineFile`: a
batch of whole lines per write, and a write that fails part way (a full disk) is cut back to
the last whole line, so a reader never finds half an event; a service appends to it and
reopens it on SIGHUP or SIGUSR1 (after logrotate moved it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import BinaryIO, Protocol

from ..live.syslog import SyslogSender
from ..sysmon.event import SysmonEvent
from ..sysmon.render.xml import event_xml

__all__ = ["EventWriter", "LineFile", "OutputError", "SyslogWriter", "Target", "open_output", "silence_stdout"]

_BATCH_LINES = 512


class OutputError(Exception):
    """The output (or --rejects file) could not be written; ends the run with status 1."""


class Target(Protocol):
    """What the event writer writes bytes to: standard output or a `LineFile`."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


class LineFile:
    """An output file that is only ever written whole lines at a time.

    `append` keeps what the file holds (a service restarting must not lose its earlier
    events); otherwise the file is emptied first, as a batch conversion expects. `reopen`
    opens the file by its name again (appending): logrotate renamed it, and the next events
    go to the new file.
    """

    def __init__(self, path: str, *, append: bool) -> None:
        self.path = path
        self._fd = self._open(append)

    def write(self, data: bytes) -> None:
        """Write `data` (whole lines) completely, or leave the file as it was."""
        before = os.lseek(self._fd, 0, os.SEEK_END)
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError:
            if done:
                with contextlib.suppress(OSError):  # the error raised says what went wrong first
                    os.ftruncate(self._fd, before)
            raise

    def flush(self) -> None:
        """Nothing is held back: every write went to the file."""

    def reopen(self) -> None:
        os.close(self._fd)
        self._fd = self._open(append=True)

    def close(self) -> None:
        os.close(self._fd)

    def _open(self, append: bool) -> int:
        mode = os.O_APPEND if append else os.O_TRUNC
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | mode, 0o640)


class EventWriter:
    """Renders events and writes them as UTF-8 lines, a batch at a time (one write call)."""

    def __init__(self, target: Target, render: Callable[[SysmonEvent], str]) -> None:
        self._target = target
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
            self._target.flush()
        except OSError as exc:
            raise OutputError(exc) from exc

    def reopen(self) -> None:
        """Write what is batched, then go on in a file newly opened by its name."""
        self.flush()
        if isinstance(self._target, LineFile):
            try:
                self._target.reopen()
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
            self._target.write(data)
        except OSError as exc:
            raise OutputError(exc) from exc


class SyslogWriter:
    """Each event to the syslog socket at once: `<Event>` XML, one message each (`--syslog`)."""

    def __init__(self, sender: SyslogSender) -> None:
        self.sender = sender

    def write(self, events: Iterable[SysmonEvent]) -> None:
        for event in events:
            self.sender.send(event_xml(event))

    def flush(self) -> None:
        """Every message was sent as it came."""

    def reopen(self) -> None:
        """A syslog daemon that restarted is connected to again at the next message."""
        self.sender.close()


def open_output(stack: ExitStack, name: str, stdout: BinaryIO | None, *, append: bool = False) -> Target:
    """Standard output for `-`, else the file `name` (appended to when `append`)."""
    if name == "-" and stdout is not None:
        return stdout
    target = LineFile(name, append=append)
    stack.callback(target.close)
    return target


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file: nothing to silence
        pass
