"""What the live host tells: the hashes of an executed file, and processes from /proc.

Only for a log read on the machine that writes it, as it is written: a file hashed now is the
file the kernel just ran only if nothing replaced it since, and /proc shows the processes
running now. So the file is opened without following a symbolic link (O_NOFOLLOW) at the path
the kernel logged, and hashed only if it is one of the files (device and inode) the exec's
PATH records name; a file swapped in between is written `-`, never hashed as the executed one.
Hashes are remembered by device, inode, size and modification time (bounded), and files above
`max_bytes` are not hashed. A parent from /proc is used only if it started before its child
(the mapper checks): a pid reused since is another process.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections import OrderedDict
from collections.abc import Sequence

from ..mapping.host import HostProcess
from ..sysmon.hashes import Digests

__all__ = ["MAX_HASHED_BYTES", "LocalHost"]

MAX_HASHED_BYTES = 256 << 20
"""Files larger than this are not hashed (Hashes `-`): hashing holds the event back."""
_CACHED_FILES = 4096
_READ = 1 << 20


class LocalHost:
    """This machine, as a mapping `Host`: hashes of executed files, processes from /proc."""

    def __init__(self, *, proc: str = "/proc", max_bytes: int = MAX_HASHED_BYTES, names: Sequence[str] = ()) -> None:
        """`names`: the node names this host's records carry (its host name, short and fully
        qualified, are always among them)."""
        self._proc = proc
        self._max_bytes = max_bytes
        full = socket.getfqdn()
        self._names = {socket.gethostname(), socket.gethostname().split(".")[0], full, *names}
        self._hashes: OrderedDict[tuple[int, int, int, int, tuple[str, ...]], str] = OrderedDict()
        self._boot_msec: int | None = None
        self._ticks = os.sysconf("SC_CLK_TCK")

    def is_local(self, node: str | None) -> bool:
        return node is None or node in self._names

    def image_hashes(self, image: str, files: Sequence[tuple[str, str]], algorithms: Sequence[str]) -> str:
        try:
            fd = os.open(image, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return "-"
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > self._max_bytes:
                return "-"
            if (_device(info.st_dev), str(info.st_ino)) not in {(dev.lower(), inode) for dev, inode in files}:
                return "-"  # not the file the kernel ran: replaced since, or not in the records
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, tuple(algorithms))
            known = self._hashes.get(key)
            if known is not None:
                self._hashes.move_to_end(key)
                return known
            digests = Digests(algorithms)
            while chunk := os.read(fd, _READ):
                digests.update(chunk)
            text = digests.text()
        except OSError:
            return "-"
        finally:
            os.close(fd)
        self._hashes[key] = text
        if len(self._hashes) > _CACHED_FILES:
            self._hashes.popitem(last=False)
        return text

    def process(self, pid: int) -> HostProcess | None:
        base = f"{self._proc}/{pid}"
        try:
            with open(f"{base}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            with open(f"{base}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"{base}/status", "rb") as handle:
                uid = next((int(line.split()[1]) for line in handle if line.startswith(b"Uid:")), None)
        except (OSError, IndexError, ValueError):
            return None
        try:
            image: str | None = os.readlink(f"{base}/exe")
        except OSError:
            image = None  # a kernel thread, or not ours to read
        if argv and argv[-1] == b"":
            argv.pop()
        words = [arg.decode("utf-8", "surrogateescape") for arg in argv]
        # Field 22 of stat (the 20th after the command name): start time in clock ticks since boot.
        start = self._boot() + int(fields[19]) * 1000 // self._ticks
        return HostProcess(image, " ".join(words) or None, words[0] if words else None, uid, start)

    def _boot(self) -> int:
        """The boot time (ms since the epoch): the kernel's `btime`, to the second."""
        if self._boot_msec is None:
            try:
                with open(f"{self._proc}/stat", "rb") as handle:
                    btime = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
            except (OSError, StopIteration, ValueError):
                btime = int(time.time() - time.monotonic())
            self._boot_msec = btime * 1000
        return self._boot_msec


def _device(st_dev: int) -> str:
    """A device number as PATH records write it: `fd:01` (major:minor, hex)."""
    return f"{os.major(st_dev):02x}:{os.minor(st_dev):02x}"
