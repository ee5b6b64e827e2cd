"""The conversion: lines → records → audit events → facts → Sysmon events.

`Converter` owns all state of one conversion (its reader: parser, correlation window; its
mapper: process table, record counter), so two conversions never share anything and a
long-running pipeline can feed it line by line. It reads in three ways, all through the same
steps: `feed` one line, `feed_input` a whole file or stream (with worker processes when
`jobs` > 1), and `stream` a live source that says when it has caught up (a followed log,
standard input). `convert()` is the one-call form over any iterable of lines.
"""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Protocol, Self

from ._pipeline.parallel import CHUNK_BYTES, CHUNK_LINES, ParallelReader, line_chunks, stream_chunks
from ._pipeline.reader import ErrorHandler, FactReader, ReadStats
from ._version import __version__
from .audit.records import SourceLocation, Stamp
from .audit.serials import SerialGap
from .errors import ConfigError, ConversionWarning, Damage, NotConverted, Unresolved
from .live.host import LocalHost
from .mapping.facts import EventFacts
from .mapping.mapper import Applied, Mapper, MapperStats
from .mapping.users import UserDb
from .options import Options
from .sysmon.config import SysmonConfig
from .sysmon.event import SysmonEvent, format_utc_time
from .sysmon.schema import SCHEMA_VERSION

__all__ = ["ConversionStats", "Converter", "Opened", "WarningHandler", "convert"]

WarningHandler = ErrorHandler
_TICK = 0xFFF  # `feed_input` hands control back at least every 4096 lines


@dataclass(frozen=True, slots=True)
class Opened:
    """In a live source (`Converter.stream`): the lines after this come from `path`, numbered
    from 1 (a followed log rotated, or was truncated)."""

    path: str


@dataclass(frozen=True, slots=True)
class ConversionStats:
    """What a conversion read and wrote so far; the figures add up (docs/cli.md `--stats`).

    `lines` = `records` + `skipped` + `rejected`. No exec is lost silently: `exec_syscalls`
    counts the successful execve/execveat SYSCALL records read, and each became a
    ProcessCreate or is counted under a `NotConverted` reason in `exec_rejected`, so
    `exec_syscalls == process_create + sum(exec_rejected.values())` (tests/test_hostile.py
    checks it on every fixture log). `damaged` counts events that were converted although
    their records show damage (cut, lost, late or duplicated records), by `Damage` kind; each
    one was also reported to the converter's `on_warning` with file and line. `lost_events`
    counts audit events that never reached the log, by the serial numbers they skipped (only
    with `Options.serial_gaps`); each gap is one warning. `unresolved` counts the events written
    with a value the log did not hold (an unknown parent, protocol or directory), by which
    (docs/mapping.md says what is written for each). With a Sysmon configuration,
    `filtered` counts the events it dropped, by EventID (a dropped ProcessCreate's exec is also
    under `NotConverted.FILTERED`), and `rule_names` the events it logged, by RuleName.

    A snapshot (`Converter.stats`): each figure is counted by the one stage that sees it
    (the reader counts lines, the mapper the events it made, the converter its accounting).
    """

    lines: int = 0
    records: int = 0
    skipped: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    events: int = 0
    exec_syscalls: int = 0
    process_create: int = 0
    written: int = 0
    exec_rejected: Counter[NotConverted] = field(default_factory=Counter)
    damaged: Counter[Damage] = field(default_factory=Counter)
    lost_events: int = 0
    unresolved: Counter[Unresolved] = field(default_factory=Counter)
    filtered: Counter[int] = field(default_factory=Counter)
    rule_names: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Accounts:
    """The converter's own counts: every audit event applied, every exec, every warning."""

    events: int = 0
    exec_syscalls: int = 0
    written: int = 0
    exec_rejected: Counter[NotConverted] = field(default_factory=Counter)
    damaged: Counter[Damage] = field(default_factory=Counter)
    lost_events: int = 0


class MapStage(Protocol):
    """What a converter uses of its map stage (`mapping.Mapper`).

    Typed as a protocol rather than as the class: a compiled build checks attribute types at
    run time, and tests/test_hostile.py puts a failing stage in the Mapper's place to prove
    that a bug in one event does not end a conversion.
    """

    stats: MapperStats

    def apply(self, event: EventFacts) -> Applied: ...

    def flush(self) -> list[SysmonEvent]: ...

    def reconfigure(self, config: SysmonConfig | None) -> None: ...

    def service(self, event_id: int, values: dict[str, str], msec: int) -> list[SysmonEvent]: ...


class Converter:
    """Converts audit log lines to Sysmon events, one line at a time.

    Example:
        >>> conv = Converter(hostname="web01", machine_id="2424faa4")
        >>> conv.feed('type=SYSCALL msg=audit(1635279071.159:1385): arch=c000003e syscall=59 '
        ...           'success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=2669 auid=0 uid=0 '
        ...           'gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="id" '
        ...           'exe="/usr/bin/id" key=(null)')
        []
        >>> [e.get("CommandLine") for e in conv.flush()]
        ['id']
    """

    def __init__(
        self,
        options: Options | None = None,
        *,
        on_error: ErrorHandler | None = None,
        on_warning: WarningHandler | None = None,
        path: str = "<input>",
        jobs: int = 1,
        **kwargs: Any,
    ) -> None:
        """`on_error` gets each rejected line (a `ParseError` naming file and line); the line
        is skipped. `on_warning` gets damage noticed in an event that was still converted
        (a `ConversionWarning` located at the event's first telling record); nothing is
        skipped. `jobs` > 1 reads whole inputs (`feed_input`) with that many worker processes
        (0: one per CPU); the output is the same."""
        if options is not None and kwargs:
            raise TypeError("give either an Options object or keyword options, not both")
        options = options if options is not None else Options.from_kwargs(**kwargs)
        self._config = options.sysmon_config()
        # The configuration is read once: the mapper and a reload start from this object.
        if isinstance(options.config, (str, os.PathLike)):
            options = replace(options, config=self._config)
        self.options = options
        self.jobs = _jobs(jobs)
        self._accounts = _Accounts()
        self._on_warning = on_warning
        self._users = UserDb.from_options(self.options.passwd, self.options.local_users)
        self._reader: FactReader | ParallelReader
        if self.jobs > 1:
            self._reader = ParallelReader(self.options, self._users, self.jobs, on_error=on_error, on_gap=self._lost)
            self._reader.start_file(path)
        else:
            self._reader = FactReader(self.options, self._users, on_error=on_error, path=path, on_gap=self._lost)
        live = self.options.hash_images or self.options.proc_parents
        self._mapper: MapStage = Mapper(self.options, self._users, host=LocalHost() if live else None)

    @property
    def stats(self) -> ConversionStats:
        """The counts so far (a snapshot)."""
        read: ReadStats = self._reader.stats
        own, mapped = self._accounts, self._mapper.stats
        exec_rejected = Counter(own.exec_rejected)
        if mapped.filtered[1]:  # the configuration dropped them after they were converted
            exec_rejected[NotConverted.FILTERED] += mapped.filtered[1]
        return ConversionStats(
            read.lines, read.records, read.skipped, read.rejected, Counter(read.reasons),
            own.events, own.exec_syscalls, mapped.process_create, own.written,
            exec_rejected, Counter(own.damaged), own.lost_events, Counter(mapped.unresolved),
            Counter(mapped.filtered), Counter(mapped.rule_names),
        )  # fmt: skip

    def start_file(self, path: str) -> None:
        """Name the input that the next lines come from (line numbers restart at 1)."""
        self._reader.start_file(path)

    def feed(self, line: str | bytes, lineno: int | None = None) -> list[SysmonEvent]:
        """Read one line; return the Sysmon events it completes (often none)."""
        facts = self._reader.feed(line, lineno)
        return self.apply(facts) if facts else []

    def feed_input(
        self, source: BinaryIO | Iterable[str | bytes], path: str = "<input>", *, chunk_size: int | None = None
    ) -> Iterator[list[SysmonEvent]]:
        """Read one whole input: a binary stream or any iterable of lines, named `path`.

        Yields the Sysmon events as they become final, a list at a time; reading in this
        process, also an empty list at least every 4096 lines (a caller's moment to show
        progress or stop). Call `flush` after the last input. With `jobs` > 1 worker processes read it in chunks of
        about `chunk_size` bytes of a stream or lines of an iterable (parallel.py has the
        defaults); the events are the same as one process gives, in the same order.
        """
        reader = self._reader
        if isinstance(reader, FactReader):
            reader.start_file(path)
            read, apply = reader.feed, self.apply  # what `feed` does, one call less per line
            for count, line in enumerate(source, 1):
                read_facts = read(line)
                events = apply(read_facts) if read_facts else []
                if events or not count & _TICK:
                    yield events
            return
        if isinstance(source, io.IOBase):
            chunks = stream_chunks(source, path, chunk_size or CHUNK_BYTES)
        else:
            chunks = line_chunks(source, path, chunk_size or CHUNK_LINES)
        for facts in reader.read(chunks):
            events = self.apply(facts)
            if events:
                yield events

    def stream(
        self,
        source: Iterable[str | bytes | Opened | None],
        path: str = "<stdin>",
        *,
        idle_close: float | None = None,
    ) -> Iterator[list[SysmonEvent]]:
        """Read a live source in this process, as its lines come: a followed log, a pipe.

        The source yields lines, `Opened` when the lines that follow come from another file,
        and None when it has nothing more for now. This yields the events as they become
        final, and an empty list whenever the source has caught up: the caller's moment to
        write out at once what it holds. With `idle_close` (seconds), a source that stays quiet
        that long after its last line has the events still open in it closed, as `flush`
        does, before that empty list; reading goes on.
        """
        self.start_file(path)
        last_line: float | None = None  # when the last line not yet closed by idleness came
        for item in source:
            if item is None:
                if idle_close is not None and last_line is not None and time.monotonic() - last_line >= idle_close:
                    last_line = None
                    closed = self.flush()
                    if closed:
                        yield closed
                yield []
            elif isinstance(item, Opened):
                self.start_file(item.path)
            else:
                if idle_close is not None:
                    last_line = time.monotonic()
                events = self.feed(item)
                if events:
                    yield events

    # -- a service on a live host: Sysmon's own events --------------------------------------

    def started(self) -> list[SysmonEvent]:
        """The events Sysmon writes when its service starts: its configuration (EventID 16),
        then its state `Started` (EventID 4)."""
        return self._configuration() + self._state("Started")

    def reload(self, config: SysmonConfig | None) -> list[SysmonEvent]:
        """Apply `config` from now on (a reload: SIGHUP) and say so, as Sysmon does when its
        configuration changes (EventID 16). None: log every event with RuleName `-`."""
        self._mapper.reconfigure(config)
        self._config = config
        return self._configuration()

    def stopped(self) -> list[SysmonEvent]:
        """The state `Stopped` (EventID 4), which Sysmon writes last; call after `flush`."""
        return self._state("Stopped")

    def _configuration(self) -> list[SysmonEvent]:
        config = self._config
        values = {
            "UtcTime": format_utc_time(_now_msec()),
            "Configuration": config.path or "-" if config is not None else "-",
            "ConfigurationFileHash": config.file_hashes if config is not None else "-",
        }
        return self._written(self._mapper.service(16, values, _now_msec()))

    def _state(self, state: str) -> list[SysmonEvent]:
        values = {"UtcTime": format_utc_time(_now_msec()), "State": state, "Version": __version__,
                  "SchemaVersion": SCHEMA_VERSION}
        return self._written(self._mapper.service(4, values, _now_msec()))

    def flush(self) -> list[SysmonEvent]:
        """End of input: close every open event and release every held one."""
        reader = self._reader
        facts = reader.finish() if isinstance(reader, ParallelReader) else reader.flush()
        return self.apply(facts) + self._written(self._mapper.flush())

    @property
    def input_lines(self) -> int:
        """Lines read from the current input so far (with `jobs` > 1: handed to the workers)."""
        reader = self._reader
        return reader.input_lines if isinstance(reader, ParallelReader) else reader.lineno

    def close(self) -> None:
        """Stop the worker processes of a `jobs` > 1 converter (`with Converter(…)` does it)."""
        if isinstance(self._reader, ParallelReader):
            self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(self, facts: Iterable[EventFacts]) -> list[SysmonEvent]:
        """Map the facts of audit events, in order; return the Sysmon events now final.

        `feed` reads the facts itself; with `--jobs` worker processes read them
        (parallel.py) and the converter, which owns the process table, applies them here.
        """
        out: list[SysmonEvent] = []
        for one in facts:
            out.extend(self._apply(one))
        return self._written(out)

    def _apply(self, facts: EventFacts) -> list[SysmonEvent]:
        """Map the facts of one audit event; a bug in one event must not end a conversion."""
        self._accounts.events += 1
        try:
            applied = self._mapper.apply(facts)
        except Exception as exc:
            # Reported and skipped (the fuzz harness fails on this report, so it is not a
            # place to hide bugs).
            self._warn(Damage.INTERNAL, facts.where, f"{Damage.INTERNAL} on audit event {_stamp_text(facts)}: "
                       f"{exc!r}; event skipped")
            self._account(facts, None, failed=True)
            return []
        self._account(facts, applied, failed=False)
        return applied.events

    def _account(self, facts: EventFacts, applied: Applied | None, *, failed: bool) -> None:
        """Count every successful exec record of the event and report what its records show.

        The map stage converts one SYSCALL per event; counting the exec records here, apart
        from it, is what makes a lost exec visible ("no event lost": exec_syscalls =
        process_create + exec_rejected).
        """
        for where in facts.cut:
            # The kernel ends every SYSCALL record with key=; without it the line was cut (a
            # full disk, a truncated copy) and what follows the cut, maybe success=, is gone.
            self._warn(Damage.CUT, where, f"SYSCALL record of audit event {_stamp_text(facts)} ends before "
                       "its last field key= (cut line?); converted from what is present")
        if facts.late:
            self._warn(Damage.LATE, facts.where, f"records of audit event {_stamp_text(facts)} came after "
                       "the event was closed (beyond the correlation window, or a duplicated event); "
                       "converted as an event of their own")
        execs = facts.execs
        if not execs:
            if facts.orphan and not facts.late:
                self._warn(Damage.ORPHAN, facts.where, f"EXECVE records of audit event {_stamp_text(facts)} "
                           "without their SYSCALL record (lost, or beyond the correlation window): not converted")
            return
        accounts = self._accounts
        accounts.exec_syscalls += len(execs)
        missing = len(execs) - (1 if applied is not None and applied.process_created else 0)
        duplicates = min(len(execs) - 1, missing)
        if duplicates > 0:
            accounts.exec_rejected[NotConverted.DUPLICATE] += duplicates
            self._warn(Damage.DUPLICATE, execs[1], f"audit event {_stamp_text(facts)} has {len(execs)} "
                       "SYSCALL records of one exec (duplicated lines?); converted once")
        if missing > duplicates:
            if failed:
                reason = NotConverted.INTERNAL
            elif applied is not None and applied.exec_missed is not None:
                reason = applied.exec_missed
            else:
                reason = NotConverted.NO_PID
            accounts.exec_rejected[reason] += missing - duplicates
        if facts.execve_damage is not None:
            self._warn(Damage.EXECVE, facts.execve_where, f"audit event {_stamp_text(facts)}: {facts.execve_damage}; "
                       "the command line holds the arguments present")
        elif not facts.has_execve:
            self._warn(Damage.NO_EXECVE, execs[0], f"audit event {_stamp_text(facts)}: successful exec without "
                       "EXECVE record (lost or outside the correlation window); command line from "
                       "PROCTITLE or comm")

    def _lost(self, gap: SerialGap) -> None:
        """Audit events that never reached the log: counted, and one warning per gap."""
        self._accounts.lost_events += gap.missing
        node = f" of node {gap.node}" if gap.node is not None else ""
        self._warn(
            Damage.LOST,
            gap.where.source,
            f"{gap.missing} audit event(s){node} never reached the log: serial numbers "
            f"{gap.first & 0xFFFFFFFF}-{gap.last & 0xFFFFFFFF} skipped before this record (lost by the "
            "kernel or by auditd's queue, or a rotated log removed before it was read)",
        )

    def _warn(self, kind: Damage, where: SourceLocation | None, reason: str) -> None:
        self._accounts.damaged[kind] += 1
        if self._on_warning is not None:
            path = where.path if where is not None else self._reader_path()
            self._on_warning(ConversionWarning(kind, reason, path=path, line=where.line if where else None))

    def _reader_path(self) -> str:
        reader = self._reader
        return reader.path if isinstance(reader, FactReader) else "<input>"

    def _written(self, out: list[SysmonEvent]) -> list[SysmonEvent]:
        self._accounts.written += len(out)
        return out


def convert(
    lines: Iterable[str | bytes], *, on_error: ErrorHandler | None = None, jobs: int = 1, **options: Any
) -> Iterator[SysmonEvent]:
    """Sysmon events from audit log lines (str or bytes), in log order.

    Options are those of `Options` (`tz`, `hostname`, `machine_id`, `passwd`, …). `jobs` > 1
    reads the lines with that many worker processes; the events are the same.

    Example:
        >>> lines = [
        ...     'node=vm type=SYSCALL msg=audit(1635279071.159:7): arch=c000003e syscall=59 success=yes '
        ...     'exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=42 auid=1000 uid=1000 gid=1000 euid=1000 '
        ...     'suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts3 ses=2 comm="ls" '
        ...     'exe="/usr/bin/ls" key="exec"',
        ...     'node=vm type=EXECVE msg=audit(1635279071.159:7): argc=2 a0="ls" a1=2D6C61',
        ...     'node=vm type=CWD msg=audit(1635279071.159:7): cwd="/home/alice"',
        ... ]
        >>> event = next(convert(lines, machine_id="2424faa4", passwd=None, local_users=False))
        >>> event.get("Image"), event.get("CommandLine"), event.get("CurrentDirectory")
        ('/usr/bin/ls', 'ls -la', '/home/alice')
        >>> event.get("LogonGuid"), event.get("User")
        ('{2424faa4-0000-0000-e803-000003000000}', '1000')
    """
    with Converter(on_error=on_error, jobs=jobs, **options) as conv:
        for events in conv.feed_input(lines):
            yield from events
        yield from conv.flush()


def _stamp_text(facts: EventFacts) -> str:
    """The audit event's stamp as the log writes it, for warnings (`1635279071.159:1385`)."""
    return str(Stamp(facts.msec, facts.serial))


def _now_msec() -> int:
    return time.time_ns() // 1_000_000


def _jobs(jobs: int) -> int:
    if not isinstance(jobs, int) or jobs < 0:
        raise ConfigError(f"jobs must be a whole number >= 0 (0: one per CPU), not {jobs!r}")
    return jobs or os.cpu_count() or 1
