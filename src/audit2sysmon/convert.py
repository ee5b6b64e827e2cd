"""The conversion pipeline: lines → records → audit events → Sysmon events.

`Converter` owns all state of one conversion (its `FactReader`: parser and correlation
window; the map stage: process table, record counter), so two conversions never share
anything and a long-running pipeline can feed it line by line. `convert()` is the one-call form over any iterable of lines.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, Self

from .correlate import SerialGap
from .errors import ConfigError, ParseError
from .facts import EventFacts, Where
from .mapping import Mapper, MapperStats
from .options import Options
from .parallel import (
    CHUNK_BYTES,
    CHUNK_LINES,
    ParallelReader,
    line_chunks,
    stream_chunks,
)
from .reader import ErrorHandler, FactReader, LineCounts
from .records import EventId
from .sysmon import SysmonEvent
from .users import UserDb

# Why a successful exec SYSCALL record read did not become a ProcessCreate (`exec_rejected`).
EXEC_DUPLICATE = "duplicate SYSCALL record in one audit event (converted once)"
EXEC_NOT_SELECTED = "ProcessCreate (EventID 1) is not among the selected events"
EXEC_NO_PID = "SYSCALL record without a usable pid"
EXEC_INTERNAL = "internal error (bug) in the map stage"
# Kinds of damage a converted event showed (`damaged`; details go to `on_warning`).
DAMAGE_LATE = "records came after their event was closed"
DAMAGE_EXECVE = "EXECVE records incomplete or inconsistent"
DAMAGE_NO_EXECVE = "successful exec without EXECVE record"
DAMAGE_DUPLICATE = "duplicate SYSCALL record in one audit event"
DAMAGE_CUT = "SYSCALL record cut short"
DAMAGE_ORPHAN = "EXECVE records without their SYSCALL record"
DAMAGE_INTERNAL = "internal error (bug) in the map stage"
DAMAGE_LOST = "audit events lost before the log was read (serial numbers skipped)"


@dataclass(slots=True)
class ConversionStats(LineCounts):
    """What a conversion read and wrote; the figures add up (see docs/cli.md `--stats`).

    `lines` = `records` + `skipped` + `rejected`. No exec is lost silently: `exec_syscalls`
    counts the successful execve/execveat SYSCALL records read, and each became a
    ProcessCreate or is counted under a reason in `exec_rejected`, so
    `exec_syscalls == process_create + sum(exec_rejected.values())` (tests/test_hostile.py
    checks it on every fixture log). `damaged` counts events that were converted although
    their records show damage (cut, lost, late or duplicated records), by kind; each one
    was also reported to the converter's `on_warning` with file and line. `lost_events`
    counts audit events that never reached the log, by the serial numbers they skipped
    (only with `Options.serial_gaps`); each gap is one warning.
    """

    events: int = 0
    exec_syscalls: int = 0
    process_create: int = 0
    written: int = 0
    exec_rejected: Counter[str] = field(default_factory=Counter)
    damaged: Counter[str] = field(default_factory=Counter)
    lost_events: int = 0


class MapStage(Protocol):
    """What a converter uses of its map stage (`mapping.Mapper`).

    Typed as a protocol rather than as the class: a compiled build checks attribute types at
    run time, and tests/test_hostile.py puts a failing stage in the Mapper's place to prove
    that a bug in one event does not end a conversion.
    """

    stats: MapperStats

    def apply(self, event: EventFacts) -> list[SysmonEvent]: ...

    def flush(self) -> list[SysmonEvent]: ...


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
        on_warning: ErrorHandler | None = None,
        path: str = "<input>",
        jobs: int = 1,
        **kwargs: Any,
    ) -> None:
        """`on_error` gets each rejected line (a `ParseError` naming file and line); the line
        is skipped. `on_warning` gets damage noticed in an event that was still converted
        (a `ParseError` located at the event's first telling record); nothing is skipped.
        `jobs` > 1 reads whole inputs (`feed_input`) with that many worker processes
        (0: one per CPU); the output is the same."""
        if options is not None and kwargs:
            raise TypeError("give either an Options object or keyword options, not both")
        self.options = options if options is not None else Options.from_kwargs(**kwargs)
        self.stats = ConversionStats()
        self.jobs = _jobs(jobs)
        self._on_warning = on_warning
        self._users = UserDb.from_options(self.options.passwd, self.options.local_users)
        self._reader = FactReader(
            self.options, self._users, on_error=on_error, path=path, counts=self.stats, on_gap=self._lost
        )
        self._mapper: MapStage = Mapper(self.options, self._users)
        self._workers = (
            ParallelReader(self.options, self._users, self.jobs, on_error=on_error, counts=self.stats) if self.jobs > 1 else None
        )

    def start_file(self, path: str) -> None:
        """Name the input that the next lines come from (line numbers restart at 1)."""
        self._reader.start_file(path)

    def feed(self, line: str | bytes, lineno: int | None = None) -> list[SysmonEvent]:
        """Read one line; return the Sysmon events it completes (often none).

        Lines are read in this process: a converter with `jobs` > 1 reads with `feed_input`.
        """
        if self._workers is not None:
            raise ConfigError("a converter with jobs > 1 reads whole inputs: use feed_input()")
        facts = self._reader.feed(line, lineno)
        return self.apply(facts) if facts else []

    def feed_input(
        self, source: BinaryIO | Iterable[str | bytes], path: str = "<input>", *, chunk_size: int | None = None
    ) -> Iterator[list[SysmonEvent]]:
        """Read one whole input: a binary stream or any iterable of lines, named `path`.

        Yields the Sysmon events as they become final, a list at a time; call `flush` after
        the last input. With `jobs` > 1 worker processes read it in chunks of about
        `chunk_size` bytes of a stream or lines of an iterable (parallel.py has the
        defaults); the events are the same as one process gives, in the same order.
        """
        workers = self._workers
        if workers is None:
            self.start_file(path)
            for line in source:
                events = self.feed(line)
                if events:
                    yield events
            return
        if isinstance(source, io.IOBase):
            chunks = stream_chunks(source, path, chunk_size or CHUNK_BYTES)
        else:
            chunks = line_chunks(source, path, chunk_size or CHUNK_LINES)
        for facts in workers.read(chunks):
            events = self.apply(facts)
            if events:
                yield events

    def flush(self) -> list[SysmonEvent]:
        """End of input: close every open event and release every held one."""
        facts = self._workers.finish() if self._workers is not None else self._reader.flush()
        return self.apply(facts) + self._count(self._mapper.flush())

    @property
    def input_lines(self) -> int:
        """Lines read from the current input so far (with `jobs` > 1: handed to the workers)."""
        return self._workers.input_lines if self._workers is not None else self._reader.lineno

    def close(self) -> None:
        """Stop the worker processes of a `jobs` > 1 converter (`with Converter(…)` does it)."""
        if self._workers is not None:
            self._workers.close()

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
        return self._count(out)

    def _apply(self, facts: EventFacts) -> list[SysmonEvent]:
        """Map the facts of one audit event and account for every successful exec in it.

        The map stage reads one SYSCALL per event; counting the exec records here, apart from
        it, is what makes a lost exec visible (issue 7's "no event lost" identity).
        """
        stats = self.stats
        stats.events += 1
        execs = facts.execs
        before = self._mapper.stats.process_create
        try:
            out = self._mapper.apply(facts)
            failed = False
        except Exception as exc:  # noqa: BLE001 - the contract: nothing in the input stops a conversion
            # A bug, but one event must not end a long conversion: it is reported and skipped
            # (the fuzz harness fails on this report, so it is not a place to hide bugs).
            self._warn(DAMAGE_INTERNAL, facts.where, f"{DAMAGE_INTERNAL} on audit event {_event_id(facts)}: "
                       f"{exc!r}; event skipped")
            out, failed = [], True
        for where in facts.cut:
            # The kernel ends every SYSCALL record with key=; without it the line was cut (a
            # full disk, a truncated copy) and what follows the cut, maybe success=, is gone.
            self._warn(DAMAGE_CUT, where, f"SYSCALL record of audit event {_event_id(facts)} ends before "
                       "its last field key= (cut line?); converted from what is present")
        if facts.late:
            self._warn(DAMAGE_LATE, facts.where, f"records of audit event {_event_id(facts)} came after "
                       "the event was closed (beyond the correlation window, or a duplicated event); "
                       "converted as an event of their own")
        if not execs:
            if facts.orphan and not facts.late:
                self._warn(DAMAGE_ORPHAN, facts.where, f"EXECVE records of audit event {_event_id(facts)} "
                           "without their SYSCALL record (lost, or beyond the correlation window): not converted")
            return out
        stats.exec_syscalls += len(execs)
        missing = len(execs) - (self._mapper.stats.process_create - before)
        duplicates = min(len(execs) - 1, missing)
        if duplicates > 0:
            stats.exec_rejected[EXEC_DUPLICATE] += duplicates
            self._warn(DAMAGE_DUPLICATE, execs[1], f"audit event {_event_id(facts)} has {len(execs)} "
                       "SYSCALL records of one exec (duplicated lines?); converted once")
        if missing > duplicates:
            reason = EXEC_INTERNAL if failed else EXEC_NOT_SELECTED if 1 not in self.options.events else EXEC_NO_PID
            stats.exec_rejected[reason] += missing - duplicates
        if facts.execve_damage is not None:
            self._warn(DAMAGE_EXECVE, facts.execve_where, f"audit event {_event_id(facts)}: {facts.execve_damage}; "
                       "the command line holds the arguments present")
        elif not facts.has_execve:
            self._warn(DAMAGE_NO_EXECVE, execs[0], f"audit event {_event_id(facts)}: successful exec without "
                       "EXECVE record (lost or outside the correlation window); command line from "
                       "PROCTITLE or comm")
        return out

    def _lost(self, gap: SerialGap) -> None:
        """Audit events that never reached the log: counted, and one warning per gap."""
        self.stats.lost_events += gap.missing
        source = gap.where.source
        node = f" of node {gap.node}" if gap.node is not None else ""
        self._warn(
            DAMAGE_LOST,
            (source.path, source.line) if source is not None else None,
            f"{gap.missing} audit event(s){node} never reached the log: serial numbers "
            f"{gap.first & 0xFFFFFFFF}-{gap.last & 0xFFFFFFFF} skipped before this record (lost by the "
            "kernel or by auditd's queue, or a rotated log removed before it was read)",
        )

    def _warn(self, kind: str, where: Where, reason: str) -> None:
        self.stats.damaged[kind] += 1
        if self._on_warning is not None:
            self._on_warning(ParseError(reason, path=where[0] if where else self._reader.path,
                                        line=where[1] if where else None))

    def _count(self, out: list[SysmonEvent]) -> list[SysmonEvent]:
        self.stats.written += len(out)
        self.stats.process_create = self._mapper.stats.process_create
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


def _event_id(facts: EventFacts) -> str:
    """The audit event's stamp as the log writes it, for warnings (`1635279071.159:1385`)."""
    return str(EventId(facts.msec, facts.serial))


def _jobs(jobs: int) -> int:
    if not isinstance(jobs, int) or jobs < 0:
        raise ConfigError(f"jobs must be a whole number >= 0 (0: one per CPU), not {jobs!r}")
    return jobs or os.cpu_count() or 1
