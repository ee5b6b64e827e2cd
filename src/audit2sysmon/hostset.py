"""One host's logs, oldest first, through one converter: what `audit2sysmon HOSTDIR` does.

The command converts a log folder as one conversion (one process table, one EventRecordID
counter) over its rotated set, oldest file first; a damaged file ends that file, counted, and
the next one is read. Engines that convert many hosts at once (audit2sysmon.spark) need the
same, per host, from inputs they hold in memory or as rows of lines, plus the figures of a
per-host report. This module is that part, shared, so an engine adds only its own plumbing.

Reading inputs is the library's (`inputs`: opening by magic bytes, rotated sets, what a read
error is); this adds the per-host conversion and report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .convert import ConversionStats, Converter
from .errors import Audit2SysmonError
from .inputs import READ_ERRORS, Source, read_error
from .options import Options
from .sysmon.event import SysmonEvent

__all__ = ["REPORT_LIMIT", "HostConversion", "HostReport"]

REPORT_LIMIT = 20
"""Messages kept per host and kind (the command shows as many malformed lines on stderr)."""


@dataclass(slots=True)
class HostReport:
    """What converting one host gave besides its events.

    `error` is set when the host could not be converted at all (an unusable option, such as
    a passwd file that is not one); `read_errors` names each input that ended early and why.
    `rejects` and `warnings` keep the first `REPORT_LIMIT` messages of malformed lines and of
    damage in converted events (their counts are in `stats`).
    """

    host: str
    stats: ConversionStats = field(default_factory=ConversionStats)
    inputs_read: int = 0
    read_errors: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class HostConversion:
    """Converts one host's inputs, given oldest first, into one stream of Sysmon events."""

    def __init__(self, host: str, options: Options, *, jobs: int = 1) -> None:
        """`jobs` > 1 reads each input with worker processes (`Converter(jobs=…)`): the same
        events, for a host too large for one core. An unusable option is reported, not raised."""
        self._report = HostReport(host)
        self._converter: Converter | None = None
        try:
            self._converter = Converter(options, on_error=self._reject, on_warning=self._warn, jobs=jobs)
        except Audit2SysmonError as exc:
            self._report.error = str(exc)


    @property
    def report(self) -> HostReport:
        """What converting the host gave so far besides its events (the counts as of now)."""
        if self._converter is not None:
            self._report.stats = self._converter.stats
        return self._report

    def read(self, source: Source) -> Iterator[list[SysmonEvent]]:
        """The events of one input as they become final, a list at a time; closes `source`.

        A read error ends the input and is reported as the command reports it; the events
        of the lines before it stay, and the next input continues the same conversion.
        """
        try:
            yield from self.read_lines(source.lines, source.name)
        finally:
            source.close()

    def read_lines(self, lines: Iterable[str | bytes], name: str) -> Iterator[list[SysmonEvent]]:
        """The events of one input given as lines (rows of a table), as `read` does."""
        conv = self._converter
        if conv is None:
            return
        try:
            yield from conv.feed_input(lines, name)
            self._report.inputs_read += 1
        except READ_ERRORS as exc:
            self._report.read_errors.append(read_error(name, conv.input_lines, exc))

    def finish(self) -> list[SysmonEvent]:
        """End of the host's input: the events still held, and the worker processes stopped."""
        conv = self._converter
        if conv is None:
            return []
        try:
            return conv.flush()
        finally:
            conv.close()

    def close(self) -> None:
        """Take the counts into the report and stop the worker processes (also of a
        conversion abandoned before `finish`)."""
        if self._converter is not None:
            self._converter.close()

    def _reject(self, error: Audit2SysmonError) -> None:
        if len(self._report.rejects) < REPORT_LIMIT:
            self._report.rejects.append(str(error))

    def _warn(self, error: Audit2SysmonError) -> None:
        if len(self._report.warnings) < REPORT_LIMIT:
            self._report.warnings.append(str(error))
