"""What a SYSCALL record says was called: the syscall's name, its arguments and outcome.

Raw logs give the architecture and the syscall number (`arch=c000003e syscall=42`) and the
first four arguments in hex without `0x`; `ausearch -i` already wrote names (`syscall=connect`,
`a0=AT_FDCWD`, `a2=O_RDONLY|O_CLOEXEC`, `exit=EINPROGRESS(Operation now in progress)`).
`Call` reads both forms, and unfolds i386's `socketcall` multiplexer (its SOCKETCALL record
holds the real arguments) so that the map stage sees `connect` whatever the ABI.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..audit.records import AuditEvent, Record
from ..audit.syscalls import syscall_name as _named
from ..audit.types import SOCKETCALL
from .syscalls import SOCKETCALLS

__all__ = ["AT_FDCWD", "EINPROGRESS", "Call", "call_of", "syscall_name"]

AT_FDCWD = 0xFFFFFF9C  # -100 as the kernel logs an int argument: 32 bits of two's complement
EINPROGRESS = 115
_ARG_KEYS = ("a0", "a1", "a2", "a3")


@dataclass(slots=True, init=False)
class Call:
    """One syscall: `name` (None when the table does not know it), arguments and outcome.

    The arguments are read from `args_record` (the SYSCALL record, or the SOCKETCALL record
    of an i386 socketcall) only when a handler asks: most calls are never looked at that closely.
    Read-only by contract, with a written `__init__` (one per event: the `dataclass` one
    is Python code even in the compiled build; audit/records.py says more).
    """

    name: str | None
    args_record: Record | None
    success: bool
    exit: str | None

    def __init__(self, name: str | None, args_record: Record | None, success: bool, exit: str | None) -> None:
        self.name = name
        self.args_record = args_record
        self.success = success
        self.exit = exit

    def arg(self, index: int) -> int | None:
        """Argument `index` as a number (raw hex, or `0x…` in `ausearch -i`), else None."""
        text = self.arg_text(index)
        if not text:
            return None
        try:
            return int(text, 16)
        except ValueError:
            return None

    def arg_text(self, index: int) -> str:
        """Argument `index` (0-3) as written (symbolic in `ausearch -i`), '' when absent."""
        rec = self.args_record
        return (rec.text(_ARG_KEYS[index]) if rec is not None and index < 4 else None) or ""

    def exit_code(self) -> int | None:
        """The return value as a number: `exit=-115` and `exit=EINPROGRESS(…)` both give -115."""
        text = self.exit
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            return -EINPROGRESS if text.startswith("EINPROGRESS") else None

    def is_dirfd_cwd(self, index: int) -> bool:
        """True when argument `index` (a dirfd) is AT_FDCWD: names resolve against CWD."""
        value = self.arg(index)
        if value is not None:
            return value & 0xFFFFFFFF == AT_FDCWD
        return self.arg_text(index) == "AT_FDCWD"


def call_of(event: AuditEvent, rec: Record) -> Call:
    """The call the SYSCALL record `rec` of `event` describes (socketcall unfolded)."""
    name = syscall_name(rec)
    args: Record | None = rec
    if name == "socketcall":
        sub = rec.text("a0") or ""
        number = int(sub, 16) if _is_hex(sub) else None
        name = SOCKETCALLS.get(number) if number is not None else sub
        args = event.first(SOCKETCALL)
    return Call(name, args, rec.text("success") == "yes", rec.text("exit"))


def syscall_name(rec: Record) -> str | None:
    """The syscall's name: `ausearch -i` already wrote it; raw logs need arch + number."""
    return _named(rec.text("arch"), rec.text("syscall"))


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True
