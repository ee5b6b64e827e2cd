"""The audit side: audit records as the kernel and auditd write them, read and grouped into
events. Nothing here knows about Sysmon.

- `records`: the model (`Record`, `Field`, `ValueKind`, `Stamp`, `SourceLocation`, `AuditEvent`).
- `types`, `syscalls`: record types and syscall names (from the generated `_tables`).
- `parse`: one line of any text form → `Record` (the grammar `audit.lark`, and a fast path).
- `correlate`: records → `AuditEvent`s; `seams` and `serials` hold what it needs to know of
  where a log may be cut and of serial numbers.
"""

from .correlate import Correlator, CorrelatorStats
from .parse import Parser, parse_line
from .records import AuditEvent, Field, Record, SourceLocation, Stamp, ValueKind

__all__ = [
    "AuditEvent",
    "Correlator",
    "CorrelatorStats",
    "Field",
    "Parser",
    "Record",
    "SourceLocation",
    "Stamp",
    "ValueKind",
    "parse_line",
]
