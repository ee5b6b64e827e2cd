"""The conversion pipeline: lines → records → audit events → Sysmon events.

`Converter` owns all state of one conversion (parser, correlation window, process table,
record counter), so two conversions never share anything and a long-running pipeline can
feed it line by line. `convert()` is the one-call form over any iterable of lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .correlate import Correlator
from .errors import Audit2SysmonError, ParseError
from .mapping import Mapper
from .options import Options
from .parse import Parser
from .sysmon import SysmonEvent
from .users import UserDb

ErrorHandler = Callable[[Audit2SysmonError], None]
_WRONG_FORM = {
    True: "interpreted (ausearch -i) line, but the input format is raw",
    False: "raw audit record, but the input format is interpreted",
}


@dataclass(slots=True)
class ConversionStats:
    """What a conversion read and wrote; the figures add up (see docs/cli.md `--stats`).

    `lines` = `records` + `skipped` + `rejected`; every successful execve/execveat SYSCALL
    becomes one ProcessCreate (`exec_syscalls` == `process_create`).
    """

    lines: int = 0
    records: int = 0
    skipped: int = 0
    rejected: int = 0
    events: int = 0
    exec_syscalls: int = 0
    process_create: int = 0
    written: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


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
        path: str = "<input>",
        **kwargs: Any,
    ) -> None:
        if options is not None and kwargs:
            raise TypeError("give either an Options object or keyword options, not both")
        self.options = options if options is not None else Options.from_kwargs(**kwargs)
        self.stats = ConversionStats()
        self._on_error = on_error
        self._parser = Parser(tz=self.options.tz, path=path)
        self._path = path
        self._lineno = 0
        # input_format raw/interpreted: the parser detects the form per line; a line of the
        # other form is rejected rather than read (None: auto, both are read).
        form = self.options.input_format
        self._interpreted = None if form == "auto" else form == "interpreted"
        self._correlator = Correlator(
            max_open=self.options.max_open_events, max_age_ms=self.options.max_event_age_ms
        )
        self._mapper = Mapper(
            self.options, UserDb.from_options(self.options.passwd, self.options.local_users)
        )

    def start_file(self, path: str) -> None:
        """Name the input that the next lines come from (line numbers restart at 1)."""
        self._path = path
        self._parser = Parser(tz=self.options.tz, path=path)
        self._lineno = 0

    def feed(self, line: str | bytes, lineno: int | None = None) -> list[SysmonEvent]:
        """Read one line; return the Sysmon events it completes (often none)."""
        stats = self.stats
        stats.lines += 1
        self._lineno += 1
        try:
            number = lineno if lineno is not None else self._lineno
            record = self._parser.parse(line, number)
            if record is not None and self._interpreted is not None and record.interpreted != self._interpreted:
                raise ParseError(_WRONG_FORM[record.interpreted], path=self._path, line=number)
        except Audit2SysmonError as exc:
            stats.rejected += 1
            stats.reasons[exc.reason] += 1
            if self._on_error is not None:
                self._on_error(exc)
            return []
        if record is None:
            stats.skipped += 1
            return []
        stats.records += 1
        out: list[SysmonEvent] = []
        for event in self._correlator.add(record):
            stats.events += 1
            out.extend(self._mapper.add(event))
        return self._count(out)

    def flush(self) -> list[SysmonEvent]:
        """End of input: close every open event and release every held one."""
        out: list[SysmonEvent] = []
        for event in self._correlator.flush():
            self.stats.events += 1
            out.extend(self._mapper.add(event))
        out.extend(self._mapper.flush())
        return self._count(out)

    def _count(self, out: list[SysmonEvent]) -> list[SysmonEvent]:
        self.stats.written += len(out)
        self.stats.exec_syscalls = self._mapper.stats.exec_syscalls
        self.stats.process_create = self._mapper.stats.process_create
        return out


def convert(
    lines: Iterable[str | bytes], *, on_error: ErrorHandler | None = None, **options: Any
) -> Iterator[SysmonEvent]:
    """Sysmon events from audit log lines (str or bytes), in log order.

    Options are those of `Options` (`tz`, `hostname`, `machine_id`, `passwd`, …).

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
    conv = Converter(on_error=on_error, **options)
    for line in lines:
        yield from conv.feed(line)
    yield from conv.flush()
