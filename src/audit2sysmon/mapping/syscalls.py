"""What each syscall means to the converter: one table that extraction and mapping both read.

A syscall's *kind* says which Sysmon event it can become and which facts extraction must read
for it (facts.py); the mapper has one handler per kind (mapper.py). The argument positions
say where a call's directory fd and open flags are. A syscall not in the table is still read
for the process doing it (every SYSCALL record shows its actor), and for the directories its
PATH records name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["SOCKETCALLS", "SYSCALLS", "CallKind", "CallSpec", "spec_of"]


class CallKind(enum.Enum):
    """What a successful call of this kind tells the converter."""

    EXEC = "exec"  # a new program: ProcessCreate (1)
    FORK = "fork"  # a child pid that runs its parent's image until it execs
    EXIT = "exit"  # the process ended: ProcessTerminate (5)
    SOCKET = "socket"  # a socket's family and protocol, for later connects and accepts
    BIND = "bind"  # a socket's local address
    CONNECT = "connect"  # NetworkConnect (3), initiated
    ACCEPT = "accept"  # NetworkConnect (3), accepted
    SEND = "send"  # a datagram sent to an address: NetworkConnect (3), once per socket
    RECEIVE = "receive"  # a datagram received from an address: NetworkConnect (3), once per socket
    OPEN = "open"  # FileCreate (11) of a created file; RawAccessRead (9) of a block device
    UNLINK = "unlink"  # FileDelete (23)
    PTRACE = "ptrace"  # ProcessAccess (10), when it attaches
    SIGNAL = "signal"  # ProcessTerminate (5) of the processes a SIGKILL ended
    NAMES = "names"  # only names files: their directories are remembered (paths.py)


@dataclass(frozen=True, slots=True)
class CallSpec:
    """One syscall's entry.

    `dirfd`: the argument holding the directory fd its relative names start at (`AT_FDCWD`
    means the CWD). `other_dirfds`: it takes directory fds elsewhere too (renameat, linkat), so
    only the absolute names of its PATH records are learned. `flags`: the argument holding
    open(2) flags (openat2 passes a struct whose flags audit does not log). `write_only`: it
    always opens for writing (creat). `signal`: the argument holding the signal number (kill,
    tkill, tgkill).
    """

    kind: CallKind
    dirfd: int | None = None
    other_dirfds: bool = False
    flags: int | None = None
    write_only: bool = False
    signal: int | None = None


_NAMES_AT = CallSpec(CallKind.NAMES, dirfd=0)
_DIRFD_NAMING = (
    "mkdirat", "mknodat", "fchmodat", "fchownat", "newfstatat", "fstatat64", "faccessat",
    "faccessat2", "readlinkat", "utimensat", "futimesat", "statx", "name_to_handle_at",
)  # fmt: skip
_NAMES_TWO_DIRS = CallSpec(CallKind.NAMES, other_dirfds=True)

SYSCALLS: Final[dict[str, CallSpec]] = {
    "execve": CallSpec(CallKind.EXEC),
    "execveat": CallSpec(CallKind.EXEC, dirfd=0),
    **dict.fromkeys(("clone", "clone3", "fork", "vfork"), CallSpec(CallKind.FORK)),
    "exit_group": CallSpec(CallKind.EXIT),
    "socket": CallSpec(CallKind.SOCKET),
    "bind": CallSpec(CallKind.BIND),
    "connect": CallSpec(CallKind.CONNECT),
    **dict.fromkeys(("accept", "accept4"), CallSpec(CallKind.ACCEPT)),
    **dict.fromkeys(("sendto", "sendmsg", "sendmmsg"), CallSpec(CallKind.SEND)),
    **dict.fromkeys(("recvfrom", "recvmsg", "recvmmsg"), CallSpec(CallKind.RECEIVE)),
    "open": CallSpec(CallKind.OPEN, flags=1),
    "openat": CallSpec(CallKind.OPEN, dirfd=0, flags=2),
    "openat2": CallSpec(CallKind.OPEN, dirfd=0),
    "creat": CallSpec(CallKind.OPEN, write_only=True),
    "unlink": CallSpec(CallKind.UNLINK),
    "unlinkat": CallSpec(CallKind.UNLINK, dirfd=0),
    "ptrace": CallSpec(CallKind.PTRACE),
    **dict.fromkeys(("kill", "tkill"), CallSpec(CallKind.SIGNAL, signal=1)),
    "tgkill": CallSpec(CallKind.SIGNAL, signal=2),
    **dict.fromkeys(_DIRFD_NAMING, _NAMES_AT),
    **dict.fromkeys(("renameat", "renameat2", "linkat", "symlinkat"), _NAMES_TWO_DIRS),
}

# i386 reaches the socket calls through socketcall(2), whose first argument says which one
# (linux/net.h); its SOCKETCALL record holds the real arguments.
SOCKETCALLS: Final[dict[int, str]] = {
    1: "socket", 2: "bind", 3: "connect", 5: "accept", 11: "sendto", 12: "recvfrom", 16: "sendmsg",
    17: "recvmsg", 18: "accept4", 19: "recvmmsg", 20: "sendmmsg",
}  # fmt: skip


def spec_of(name: str | None) -> CallSpec | None:
    """The table's entry for syscall `name`, None for a call the converter does not read."""
    return SYSCALLS.get(name) if name is not None else None
