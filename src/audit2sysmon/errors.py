"""Every exception audit2sysmon raises or reports, under one root that knows where it happened,
and the reasons a conversion counts.

A bad line must never stop a conversion: the stages raise these, the converter counts and
reports them (`file:line:col: reason`) and goes on with the next line. Damage noticed in an
event that was still converted is reported as a `ConversionWarning` of a `Damage` kind; a
successful exec that did not become a ProcessCreate is counted under a `NotConverted` reason.
The reasons are enums whose values are the text the reports print, so `--stats`, the
warnings and the counters all say the same.
"""

from __future__ import annotations

import enum

__all__ = [
    "Audit2SysmonError",
    "ConfigError",
    "ConversionError",
    "ConversionWarning",
    "Damage",
    "NotConverted",
    "ParseError",
    "Unresolved",
]


class Audit2SysmonError(ValueError):
    """Root of all audit2sysmon errors; `path`, `line` and `column` locate the input."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.line = line
        self.column = column
        self.text = text
        # The input line as read, set by the converter when it rejects a line (--rejects
        # keeps it verbatim; with --jobs the line was read in another process).
        self.source_line: bytes | None = None

    def located(self, path: str | None = None, line: int | None = None) -> Audit2SysmonError:
        """Fill in the location when the raiser did not know it (the parser sees one line)."""
        if path is not None and self.path is None:
            self.path = path
        if line is not None and self.line is None:
            self.line = line
        return self

    def __str__(self) -> str:
        where = ":".join(
            str(part) for part in (self.path or "<input>", self.line, self.column) if part is not None
        )
        return f"{where}: {self.reason}"


class ParseError(Audit2SysmonError):
    """A line that is not an audit record in any supported text form."""


class ConfigError(Audit2SysmonError):
    """An option or option file (passwd, machine id, zone) that cannot be used."""


class ConversionError(Audit2SysmonError):
    """An audit event the map stage could not convert because of a bug in audit2sysmon.

    `Mapper.apply` raises it for facts whose extraction failed; a converter reports it as a
    `Damage.INTERNAL` warning, skips the event and goes on.
    """


class _Reason(str, enum.Enum):
    """A counted reason: equal to its text, and printed as it."""

    def __str__(self) -> str:
        return str(self.value)


class Damage(_Reason):
    """What was wrong with an audit event that was still converted (`ConversionWarning.kind`)."""

    LATE = "records came after their event was closed"
    EXECVE = "EXECVE records incomplete or inconsistent"
    NO_EXECVE = "successful exec without EXECVE record"
    DUPLICATE = "duplicate SYSCALL record in one audit event"
    CUT = "SYSCALL record cut short"
    ORPHAN = "EXECVE records without their SYSCALL record"
    INTERNAL = "internal error (bug) in the map stage"
    LOST = "audit events lost before the log was read (serial numbers skipped)"


class NotConverted(_Reason):
    """Why a successful execve/execveat SYSCALL record did not become a ProcessCreate."""

    DUPLICATE = "duplicate SYSCALL record in one audit event (converted once)"
    NOT_SELECTED = "ProcessCreate (EventID 1) is not among the selected events"
    FILTERED = "dropped by the Sysmon configuration's rules"
    NO_PID = "SYSCALL record without a usable pid"
    INTERNAL = "internal error (bug) in the map stage"


class Unresolved(_Reason):
    """A value the log did not hold, written as docs/mapping.md defines for "unknown"."""

    PARENT = "ProcessCreate parent the log never showed: Parent* fields -"
    PROTOCOL = "NetworkConnect Protocol unknown (no socket() record, no use that tells): -"
    DIRECTORY = "file name in a directory the log never showed: <unknown directory>/name"


class ConversionWarning(Audit2SysmonError):
    """Damage in an audit event that was converted all the same (`on_warning`): located at the
    event's first telling record, with its `kind`. Nothing was skipped."""

    def __init__(self, kind: Damage, reason: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(reason, path=path, line=line)
        self.kind = kind
