"""Rebuild a program's argument vector from the EXECVE records of one exec.

The kernel writes `argc=N a0=… a1=…` but splits what does not fit in one record: a large
argc continues in further EXECVE records of the same event (no `argc` there), and a long
argument becomes `aN_len=L aN[0]=… aN[1]=…` chunks, possibly across records. The parser
already decoded every value (hex or quoted, or `ausearch -i` text) to bytes; this module only
puts the pieces back in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from ..audit.records import Record, ValueKind

__all__ = ["execve_argv", "execve_damage"]

# Indexes and counts have at most 10 digits (argc is below 2^31): a longer number in a hostile
# line is not an argument, and never reaches int(), which is quadratic in the digits and refuses
# more than 4,300 of them (found by fuzzing).
_ARG_KEY = re.compile(r"a(\d{1,10})(?:\[(\d{1,10})\])?$")
_LEN_KEY = re.compile(r"a(\d{1,10})_len$")
# The second number `_arg_key` gives for an argument written whole, for `aN_len`, and for
# a key that names no argument.
_WHOLE = -1
_LENGTH = -2
_OTHER = -3


@lru_cache(maxsize=4096)
def _arg_key(key: str) -> tuple[int, int]:
    """`aN[C]` → (N, C); `aN` → (N, `_WHOLE`); `aN_len` → (N, `_LENGTH`); any other key
    (`argc`) → (-1, `_OTHER`).

    Memoised: a compiler's exec has dozens of arguments, and the same keys `a0`, `a1`, …
    come back in every exec, so the patterns and int() ran for the same few keys again
    and again (a pure function of the key; bounded, the key is input)."""
    match = _ARG_KEY.match(key)
    if match is not None:
        chunk = match.group(2)
        return int(match.group(1)), _WHOLE if chunk is None else int(chunk)
    match = _LEN_KEY.match(key)
    return (int(match.group(1)), _LENGTH) if match is not None else (-1, _OTHER)


def _count(value: bytes) -> int | None:
    """A decimal count of at most 10 digits (`argc`, `aN_len`), else None."""
    return int(value) if value.isdigit() and len(value) <= 10 else None


def execve_argv(records: Iterable[Record]) -> list[bytes] | None:
    """argv of the exec from its EXECVE records, or None when there are none.

    Arguments are ordered by index whatever order the records came in. A wrong `argc`
    never makes this loop over absent indexes: only arguments present are used, cut at
    `argc` when one was written.
    """
    argc: int | None = None
    whole: dict[int, bytes] = {}
    chunks: dict[int, dict[int, bytes]] = {}
    seen = False
    for rec in records:
        seen = True
        for f in rec.fields:
            if f.key == "argc":
                count = _count(f.value)
                argc = count if count is not None else argc
                continue
            index, chunk = _arg_key(f.key)
            if chunk == _WHOLE:
                whole.setdefault(index, f.value)
            elif chunk >= 0:
                chunks.setdefault(index, {}).setdefault(chunk, f.value)
    if not seen:
        return None
    argv: list[bytes] = []
    for index in sorted(whole.keys() | chunks.keys()):
        if argc is not None and index >= argc:
            break
        if index in whole:
            argv.append(whole[index])
        else:
            parts = chunks[index]
            argv.append(b"".join([parts[i] for i in sorted(parts)]))
    return argv


def execve_damage(records: Iterable[Record]) -> str | None:
    """Why the EXECVE records of one exec cannot be the kernel's complete output, or None.

    The kernel writes `argc` once and then every argument 0..argc-1, a long one as chunks
    `aN[0]`, `aN[1]`, … after `aN_len`. A gap, an index past `argc` or a missing `argc` means
    records were lost, cut or forged; the argv is still rebuilt from what is present (see
    `execve_argv`), and this reason lets the converter say so.
    """
    argc: int | None = None
    args: set[int] = set()
    chunked: dict[int, set[int]] = {}
    declared: dict[int, int] = {}  # aN_len: hex digits, or bytes of quoted chunks
    written: dict[int, int] = {}  # the same measure over the chunks present
    for rec in records:
        for f in rec.fields:
            if f.key == "argc":
                argc = _count(f.value)
                if argc is None:
                    return f"EXECVE argc={f.text[:20]!r} is not a count"
                continue
            index, chunk = _arg_key(f.key)
            if chunk == _WHOLE:
                args.add(index)
            elif chunk >= 0:
                chunked.setdefault(index, set()).add(chunk)
                size = len(f.raw) if f.kind is ValueKind.HEX else len(f.value)
                written[index] = written.get(index, 0) + size
            elif chunk == _LENGTH:
                chunked.setdefault(index, set())
                length = _count(f.value)
                if length is not None and f.kind is not ValueKind.INTERPRETED:
                    declared[index] = length
    if argc is None:
        return "EXECVE records without argc (the first EXECVE record of the exec is missing)"
    present = args | chunked.keys()
    beyond = [i for i in present if i >= argc]
    if beyond:
        return f"EXECVE argc={argc} but argument a{min(beyond)} is present"
    if len(present) < argc:  # never walk range(argc): a forged argc may be huge
        first = next(i for i in range(len(present) + 1) if i not in present)
        return f"EXECVE argc={argc} but {argc - len(present)} argument(s) missing, first a{first}"
    for index, parts in sorted(chunked.items()):
        if parts != set(range(len(parts))) or not parts:
            gap = next(i for i in range(len(parts) + 1) if i not in parts)
            return f"EXECVE argument a{index} is missing chunk a{index}[{gap}]"
        if index in declared and written.get(index, 0) != declared[index]:
            got = written.get(index, 0)
            return f"EXECVE argument a{index} has {got} of a{index}_len={declared[index]} (chunks missing)"
    return None
