"""Every exception audit2sysmon raises, under one root that knows where it happened.

A bad line must never stop a conversion: the stages raise these, the converter counts and
reports them (`file:line:col: reason`) and goes on with the next line.
"""

from __future__ import annotations


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

    def located(self, path: str | None = None, line: int | None = None) -> "Audit2SysmonError":
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
