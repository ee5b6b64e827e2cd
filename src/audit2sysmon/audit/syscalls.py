"""Which syscall a SYSCALL record names: raw logs give the architecture and the number.

`arch=c000003e syscall=59` is execve on x86_64; `ausearch -i` text already writes
`arch=x86_64 syscall=execve`. The numbers are the audit userspace's own tables (`_tables.py`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from . import _tables

__all__ = ["ARCH_NUMBERS", "syscall_name"]

# The names `ausearch -i` prints for each AUDIT_ARCH value (and names older ones printed).
ARCH_NUMBERS: Final = {name: elf for elf, (name, _) in _tables.ARCHES.items()} | _tables.ARCH_ALIASES


def syscall_name(arch: str | None, number: str | None) -> str | None:
    """The syscall's name from a record's `arch=` and `syscall=` text, None when unknown."""
    if arch is None or number is None:
        return None
    return _name_of(arch, number)


@lru_cache(maxsize=4096)
def _name_of(arch: str, number: str) -> str | None:
    """`(c000003e, 59)` → `execve`. Memoised: a log uses few (arch, syscall) pairs, many times,
    and the answer depends on nothing but the tables."""
    if not number.isdecimal():
        return number
    elf = ARCH_NUMBERS.get(arch)
    if elf is None:
        try:
            elf = int(arch, 16)
        except ValueError:
            return None
    known = _tables.ARCHES.get(elf)
    return _tables.SYSCALLS[known[1]].get(int(number)) if known is not None else None
