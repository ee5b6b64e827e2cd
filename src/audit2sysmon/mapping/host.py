"""What the mapper may ask of the host a live log comes from.

Some of Sysmon's fields come from the machine, not from the event: the hashes of the executed
file, and who a parent is that started before auditing did. A converter reading the log of
the machine it runs on, as the log is written (`--plugin`, `--follow`), can answer both; a
conversion of archives never asks, since the files have changed since. The live answers are
in `live/host.py`; the mapper knows only this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

__all__ = ["Host", "HostProcess"]


class HostProcess(NamedTuple):
    """A running process as the host shows it (/proc): its program, command line, argv[0],
    real uid, and start time (milliseconds since the epoch, UTC)."""

    image: str | None
    command_line: str | None
    argv0: str | None
    uid: int | None
    start_msec: int


class Host(Protocol):
    """The questions a mapper asks of a live host."""

    def image_hashes(self, image: str, files: Sequence[tuple[str, str]], algorithms: Sequence[str]) -> str:
        """Sysmon's Hashes text of the executed file `image`, or `-` when it cannot be hashed
        as the file the kernel ran: `files` are the (device, inode) pairs of the exec's PATH
        records, which the file opened now must be one of."""
        ...

    def process(self, pid: int) -> HostProcess | None:
        """The process running as `pid` now, or None."""
        ...

    def is_local(self, node: str | None) -> bool:
        """Whether records of `node` (None: no `node=`) are this host's own."""
        ...
