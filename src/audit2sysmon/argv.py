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

from .records import Record

_ARG_KEY = re.compile(r"a(\d+)(?:\[(\d+)\])?$")


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
                if f.value.isdigit():
                    argc = int(f.value)
                continue
            match = _ARG_KEY.match(f.key)
            if match is None:
                continue
            index = int(match.group(1))
            if match.group(2) is None:
                whole.setdefault(index, f.value)
            else:
                chunks.setdefault(index, {}).setdefault(int(match.group(2)), f.value)
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
            argv.append(b"".join(parts[i] for i in sorted(parts)))
    return argv
