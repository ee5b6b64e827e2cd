"""Audit record types: their names and numbers, and the kinds of record the stages tell apart.

Names and numbers come from the generated tables (`_tables.py`, libaudit's own list); the
constants below name the types the converter reads, so each number is written down once.
"""

from __future__ import annotations

from typing import Final

from . import _tables

__all__ = [
    "ANOM_ABEND",
    "BPRM_FCAPS",
    "CWD",
    "EOE",
    "EXECVE",
    "LOGIN",
    "OBJ_PID",
    "PATH",
    "PROCTITLE",
    "RECORD_TYPES",
    "SOCKADDR",
    "SOCKETCALL",
    "STANDS_ALONE",
    "SYSCALL",
    "auditd_own",
    "record_name",
    "record_number",
]

RECORD_TYPES: Final = _tables.RECORD_TYPES
_NUMBERS: Final = {name: number for number, name in RECORD_TYPES.items()}


def record_number(name: str) -> int | None:
    """`SYSCALL` -> 1300, `UNKNOWN[1334]` -> 1334, `1300` -> 1300; None for an unknown name."""
    number = _NUMBERS.get(name)
    if number is not None:
        return number
    if name.startswith("UNKNOWN[") and name.endswith("]") and name[8:-1].isdecimal():
        return int(name[8:-1])
    if name.isdecimal():
        return int(name)
    return None


def record_name(number: int) -> str:
    """The name of type `number`, `UNKNOWN[n]` (as auditd writes it) when no table knows it."""
    return RECORD_TYPES.get(number, f"UNKNOWN[{number}]")


LOGIN: Final = _NUMBERS["LOGIN"]
SYSCALL: Final = _NUMBERS["SYSCALL"]
PATH: Final = _NUMBERS["PATH"]
SOCKETCALL: Final = _NUMBERS["SOCKETCALL"]
SOCKADDR: Final = _NUMBERS["SOCKADDR"]
CWD: Final = _NUMBERS["CWD"]
EXECVE: Final = _NUMBERS["EXECVE"]
OBJ_PID: Final = _NUMBERS["OBJ_PID"]
EOE: Final = _NUMBERS["EOE"]
BPRM_FCAPS: Final = _NUMBERS["BPRM_FCAPS"]
PROCTITLE: Final = _NUMBERS["PROCTITLE"]
ANOM_ABEND: Final = _NUMBERS["ANOM_ABEND"]


# Types the kernel or user space never put in a multi-record event: USER (1005), user-space
# messages (1100-1199, 2100-2999), auditd's DAEMON_* (1200-1299) and KERNEL (2000). LOGIN
# (1006), AVC and CONFIG_CHANGE are *not* here: they come before the SYSCALL of their event.
# Unknown types (None) wait for the window rather than risk a split. A set, not a function:
# the correlator asks on every record, and a membership test costs a call less.
STANDS_ALONE: Final = frozenset((1005, 2000, *range(1100, 1300), *range(2100, 3000)))


def auditd_own(type_num: int | None) -> bool:
    """DAEMON_* records (1200-1299): auditd numbers them itself, apart from the kernel's serials."""
    return type_num is not None and 1200 <= type_num <= 1299
