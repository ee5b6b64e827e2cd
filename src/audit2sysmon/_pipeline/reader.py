"""Lines → audit events → their facts: the first half of a conversion, in one process.

A conversion is two halves. `FactReader` parses lines, correlates records into events and
extracts each event's facts (mapping/facts.py); the converter applies the facts to its process
table and writes Sysmon events. Nothing the reader keeps crosses into the output except
through the facts, so `--jobs` workers each run a reader over a chunk of the log
(parallel.py) while one converter applies everything in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..audit.correlate import Correlator
from ..audit.parse import Parser
from ..audit.seams import SeamState
from ..audit.serials import SerialGap, SerialGaps
from ..errors import Audit2SysmonError, ParseError
from ..mapping.facts import EventFacts, extract
from ..mapping.users import UserDb
from ..options import Options

__all__ = ["ErrorHandler", "FactReader", "GapHandler", "ReadStats"]

ErrorHandler = Callable[[Audit2SysmonError], None]
GapHandler = Callable[[SerialGap], None]
_WRONG_FORM = {
    True: "interpreted (ausearch -i) line, but the input format is raw",
    False: "raw audit record, but the input format is interpreted",
}


@dataclass(slots=True)
class ReadStats:
    """What became of the lines read: `lines` = `records` + `skipped` + `rejected`."""

    lines: int = 0
    records: int = 0
    skipped: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: ReadStats) -> None:
        """Count in the lines another reader read (a `--jobs` worker's chunk)."""
        self.lines += other.lines
        self.records += other.records
        self.skipped += other.skipped
        self.rejected += other.rejected
        self.reasons.update(other.reasons)


class FactReader:
    """Reads lines into the facts of the audit events they complete, one line at a time.

    `seed` starts the correlation from the state a previous chunk left (parallel.py).
    `lineno` is the number of the line read last (0 before the first line of an input).
    `stats` counts the lines this reader read.
    """

    def __init__(
        self,
        options: Options,
        users: UserDb,
        *,
        on_error: ErrorHandler | None = None,
        path: str = "<input>",
        seed: SeamState | None = None,
        on_gap: GapHandler | None = None,
    ) -> None:
        """`on_error` gets each rejected line; `on_gap` the serial gaps found when
        `options.serial_gaps` is on."""
        self.options = options
        self.stats = ReadStats()
        self.correlator = Correlator(
            max_open=options.max_open_events, max_age_ms=options.max_event_age_ms, seed=seed
        )
        self._users = users
        self._on_error = on_error
        self._on_gap = on_gap
        self._gaps = SerialGaps() if options.serial_gaps else None
        self._exec_files = options.hash_images  # a live host hashes the files an exec ran
        # input_format raw/interpreted: the parser detects the form per line; a line of the
        # other form is rejected rather than read (None: auto, both are read).
        form = options.input_format
        self._interpreted = None if form == "auto" else form == "interpreted"
        self._parser = Parser(tz=options.tz, path=path)
        self.path = path
        self.lineno = 0

    def start_file(self, path: str, first_line: int = 1) -> None:
        """Name the input that the next lines come from; they are numbered from `first_line`."""
        self.path = path
        self._parser.path = path
        self.lineno = first_line - 1

    def feed(self, line: str | bytes, lineno: int | None = None) -> list[EventFacts]:
        """Read one line; return the facts of the events it completes (often none)."""
        counts = self.stats
        counts.lines += 1
        self.lineno += 1
        try:
            number = lineno if lineno is not None else self.lineno
            record = self._parser.parse(line, number)
            if record is not None and self._interpreted is not None and record.interpreted != self._interpreted:
                raise ParseError(_WRONG_FORM[record.interpreted], path=self.path, line=number)
        except Audit2SysmonError as exc:
            counts.rejected += 1
            counts.reasons[exc.reason] += 1
            if self._on_error is not None:
                exc.source_line = _as_bytes(line)
                self._on_error(exc)
            return []
        if record is None:
            counts.skipped += 1
            return []
        counts.records += 1
        if self._gaps is not None:
            self._report_gaps(self._gaps.feed(record))
        events = self.correlator.feed(record)
        if not events:  # most records complete no event
            return []
        users, files = self._users, self._exec_files
        return [extract(event, users, exec_files=files) for event in events]

    def flush(self) -> list[EventFacts]:
        """End of input: the facts of every event still open."""
        if self._gaps is not None:
            self._report_gaps(self._gaps.flush())
        users, files = self._users, self._exec_files
        return [extract(event, users, exec_files=files) for event in self.correlator.flush()]

    def _report_gaps(self, gaps: list[SerialGap]) -> None:
        if self._on_gap is not None:
            for gap in gaps:
                self._on_gap(gap)


def _as_bytes(line: str | bytes) -> bytes:
    """The line as bytes again (a str line may hold a lone surrogate that no codec takes)."""
    if not isinstance(line, str):
        return bytes(line)
    try:
        return line.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return line.encode("utf-8", "backslashreplace")
