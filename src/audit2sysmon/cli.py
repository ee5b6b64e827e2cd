"""The `audit2sysmon` command: flags → `Options`, files → one `Converter`, events → lines.

Everything about conversion lives in the library; this module only opens inputs (inputs.py),
writes output in batches, reports bad lines, and keeps the exit status honest:
0 when every input could be read (malformed lines do not count), 1 when an input could not be
read or the output not written, 2 for a usage error. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import gc
import lzma
import os
import signal
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import BinaryIO, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import __version__, build
from .convert import ConversionStats, Converter
from .correlate import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_OPEN
from .errors import Audit2SysmonError, ConfigError
from .inputs import (
    POLL_INTERVAL,
    FileIdentity,
    Opened,
    Source,
    expand_directory,
    follow_fd,
    follow_file,
    open_source,
    order_inputs,
    rotation_number,
)
from .options import SUPPORTED_EVENTS, Options
from .render import FORMATS, formatter
from .sysmon import SysmonEvent

PROG = "audit2sysmon"
IDLE_CLOSE = 1.0
"""Seconds a followed log may stay quiet before the events still open in it are closed.

auditd writes all records of an event within microseconds, and an exec event closes on its
PROCTITLE at once; this only releases the rare event that has no closing record."""
REPORT_LIMIT = 20
"""Malformed lines shown on standard error before they are only counted."""
_BATCH_LINES = 512
_TICK = 0xFFF  # every 4096 lines: progress bar update and stop check
_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)

_EPILOG = """\
examples:
  audit2sysmon /var/log/audit/audit.log > sysmon.log
  audit2sysmon /var/log/audit/                  # the whole rotated set, oldest first
  audit2sysmon -f json -o events.jsonl audit.log.2.gz audit.log.1 audit.log
  ausearch -i -if audit.log | audit2sysmon --tz Europe/Berlin
  audit2sysmon --passwd web01-passwd --no-local-users --machine-id 3d1219c7 web01/
  audit2sysmon --follow /var/log/audit/audit.log >> /var/log/sysmon-audit.log
  audit2sysmon --stats --rejects bad-lines.log audit.log > /dev/null

Input: raw, ENRICHED and `ausearch -i` text, syslog/journald lines; .gz/.bz2/.xz read
transparently. Exit status: 0 all input read (even with malformed lines), 1 an input could
not be read or the output not written, 2 usage error. Docs: docs/cli.md.
"""


class OutputError(Exception):
    """The output (or --rejects file) could not be written; ends the run with status 1."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; docs/cli.md describes every option at length."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert Linux audit logs (auditd) into Sysmon for Linux events.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="audit logs or log directories, read in order (rotated sets oldest first); "
        "none or '-' reads standard input",
    )
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE", default="-", help="write here (default: standard output)")
    out.add_argument("-f", "--format", choices=FORMATS, default="syslog", help="output format (default: syslog)")
    out.add_argument(
        "--time-created",
        choices=("event", "now"),
        default="event",
        help="TimeCreated: the event's time (default, deterministic) or the conversion time",
    )
    out.add_argument(
        "--events",
        metavar="IDS",
        help="comma-separated Sysmon EventIDs to write, among "
        + ",".join(map(str, sorted(SUPPORTED_EVENTS)))
        + " (default: all); e.g. --events 1 for ProcessCreate only",
    )
    src = parser.add_argument_group("input")
    src.add_argument(
        "--input-format",
        choices=("auto", "raw", "interpreted"),
        default="auto",
        help="auto detects raw or `ausearch -i` text per line (default); the others reject the other form",
    )
    src.add_argument(
        "--tz",
        metavar="ZONE",
        help="zone (e.g. Europe/Berlin) of `ausearch -i` times and of the syslog header (default: this machine's)",
    )
    src.add_argument("--hostname", metavar="NAME", help="Computer for lines without node= (default: this machine's name)")
    src.add_argument("--machine-id", metavar="HEX", help="machine part of the GUIDs (default: derived from the node name)")
    src.add_argument("--passwd", metavar="FILE", help="passwd file of the host that wrote the log, for user names")
    src.add_argument(
        "--no-local-users",
        action="store_true",
        help="do not look uids up in this machine's account database",
    )
    win = parser.add_argument_group("correlation window")
    win.add_argument(
        "--window-events", type=int, metavar="N", help=f"events held open at most (default: {DEFAULT_MAX_OPEN})"
    )
    win.add_argument(
        "--window-ms",
        type=int,
        metavar="MS",
        help=f"log-time age after which an open event closes (default: {DEFAULT_MAX_AGE_MS})",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--follow",
        action="store_true",
        help="after the last file, keep reading it as it grows, like tail -F (survives rotation); "
        "stop with Ctrl-C or SIGTERM",
    )
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="read the input with N worker processes (0: one per CPU); the output is the same "
        "(default: 1, all in this process)",
    )
    run.add_argument("--stats", action="store_true", help="print counts on standard error at the end")
    run.add_argument("--rejects", metavar="FILE", help="write malformed lines here, byte for byte")
    run.add_argument("--version", action="version", version=f"{PROG} {__version__} ({build()})")
    return parser


def options_from_args(args: argparse.Namespace) -> Options:
    """The library `Options` the flags stand for (ConfigError when a value is unusable)."""
    values: dict[str, object] = {
        "hostname": args.hostname,
        "machine_id": args.machine_id,
        "passwd": args.passwd,
        "local_users": not args.no_local_users,
        "input_format": args.input_format,
        "time_created": args.time_created,
        "hold_for_parent": not args.follow,
        "serial_gaps": args.follow,
    }
    if args.follow and args.jobs != 1:
        raise ConfigError("--follow reads as the file grows, in this process: it takes no --jobs")
    if args.jobs < 0:
        raise ConfigError(f"--jobs needs a number of worker processes >= 0, not {args.jobs}")
    if args.tz is not None:
        try:
            values["tz"] = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {args.tz!r} (use a name such as UTC or Europe/Berlin)") from None
    if args.events is not None:
        values["events"] = _event_ids(args.events)
    if args.window_events is not None:
        values["max_open_events"] = args.window_events
    if args.window_ms is not None:
        values["max_event_age_ms"] = args.window_ms
    return Options.from_kwargs(**{k: v for k, v in values.items() if v is not None})


def _event_ids(text: str) -> frozenset[int]:
    """`--events 1,3,5` → {1, 3, 5}; anything else is a usage error naming the bad part."""
    ids = set()
    for part in text.split(","):
        part = part.strip()
        if not part.isdecimal() or int(part) not in SUPPORTED_EVENTS:
            supported = ",".join(map(str, sorted(SUPPORTED_EVENTS)))
            raise ConfigError(f"--events: {part!r} is not one of the EventIDs {supported}")
        ids.add(int(part))
    return frozenset(ids)


class EventWriter:
    """Renders events and writes them as UTF-8 lines, a batch at a time (one write call)."""

    def __init__(self, stream: BinaryIO, render: Callable[[SysmonEvent], str]) -> None:
        self._stream = stream
        self._render = render
        self._lines: list[str] = []

    def write(self, events: Iterable[SysmonEvent]) -> None:
        self._lines.extend(map(self._render, events))
        if len(self._lines) >= _BATCH_LINES:
            self._drain()

    def flush(self) -> None:
        """Write what is batched and push it to the file (a follower's reader sees it now)."""
        self._drain()
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from exc

    def _drain(self) -> None:
        if not self._lines:
            return
        # The renderers escape every character that could not be encoded; surrogateescape
        # only guards the promise that no byte is ever lost.
        data = ("\n".join(self._lines) + "\n").encode("utf-8", "surrogateescape")
        self._lines.clear()
        try:
            self._stream.write(data)
        except OSError as exc:
            raise OutputError(exc) from exc


class Reporter:
    """Malformed lines: `FILE:LINE: reason` on stderr (the first few), verbatim to --rejects.

    The error names file and line, and carries the line as read (`source_line`).
    """

    def __init__(
        self,
        say: Callable[[str], None],
        rejects: BinaryIO | None,
        limit: int = REPORT_LIMIT,
        what: str = "malformed line(s)",
    ) -> None:
        self._say = say
        self._rejects = rejects
        self._limit = limit
        self._what = what
        self.count = 0

    def __call__(self, error: Audit2SysmonError) -> None:
        self.count += 1
        if self.count <= self._limit:
            self._say(str(error))
        if self._rejects is not None and error.source_line is not None:
            line = error.source_line if error.source_line.endswith(b"\n") else error.source_line + b"\n"
            try:
                self._rejects.write(line)
            except OSError as exc:
                raise OutputError(exc) from exc

    def summary(self) -> None:
        hidden = self.count - self._limit
        if hidden > 0:
            kept = ", --rejects keeps them" if self._rejects is not None else ""
            self._say(f"{PROG}: {hidden} more {self._what} not shown (--stats counts them{kept})")


class _Progress:
    """A tqdm bar over the bytes of the input files; absent unless stderr is a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]  # only for terminals: costs startup time

        # No monitor thread: --jobs forks its workers after the bar exists, and forking while
        # another thread runs can leave a lock held in the child (Python 3.12 warns of it).
        tqdm.monitor_interval = 0
        self._bar = tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, file=stream, leave=False, dynamic_ncols=True
        )
        self._done = 0

    def advance(self, completed: int) -> None:
        """Move the bar to `completed` bytes of all files."""
        self._bar.update(completed - self._done)
        self._done = completed

    @contextmanager
    def hidden(self) -> Iterator[None]:
        """Clear the bar while a message is printed, then draw it again."""
        with self._bar.external_write_mode(file=self._bar.fp):
            yield

    def close(self) -> None:
        self._bar.close()


class Run:
    """One invocation: a converter, its output, its reports and the exit status."""

    def __init__(
        self,
        args: argparse.Namespace,
        converter_options: Options,
        *,
        out: BinaryIO,
        rejects: BinaryIO | None,
        stdin: BinaryIO,
        err: TextIO,
        poll_interval: float,
        idle_close: float,
    ) -> None:
        self.args = args
        self.err = err
        self.stdin = stdin
        self.status = 0
        self.stop = threading.Event()
        self.poll_interval = poll_interval
        self.idle_close = idle_close
        self.progress: _Progress | None = None
        self.reporter = Reporter(self.say, rejects)
        self.writer = EventWriter(out, formatter(args.format, tz=converter_options.tz))
        # Damage in events that were still converted: reported like malformed lines, not kept.
        self.warner = Reporter(self.say, None, what="warning(s) about damaged events")
        self.conv = Converter(converter_options, on_error=self.reporter, on_warning=self.warner, jobs=args.jobs)
        self.files_read = 0
        # The file opened last and what it is, whatever it is called later (--follow starts
        # after it when it is an older member of the followed file's rotated set).
        self.last_opened: tuple[str, FileIdentity] | None = None

    def say(self, message: str) -> None:
        if self.progress is not None:
            with self.progress.hidden():
                print(message, file=self.err)
        else:
            print(message, file=self.err)

    def fail(self, message: str) -> None:
        """An input could not be read: say what and why, go on, exit 1 at the end."""
        self.status = 1
        self.say(f"{PROG}: {message}")

    def run(self, paths: list[str]) -> int:
        with _collector_for_batches():
            return self._run(paths)

    def _run(self, paths: list[str]) -> int:
        follow = self.args.follow
        batch, followed = (paths[:-1], paths[-1]) if follow and paths else (paths, None)
        self.progress = self._progress_for(batch) if not follow else None
        done_bytes = 0
        try:
            for path in batch:
                if self.stop.is_set():
                    break
                done_bytes = self._read_file(path, done_bytes)
            if followed is not None and not self.stop.is_set():
                self._follow(followed, self._set_member_read_before(followed))
            self.writer.write(self.conv.flush())
            self.writer.flush()
        finally:
            self.conv.close()
            if self.progress is not None:
                self.progress.close()
                self.progress = None
        self.reporter.summary()
        self.warner.summary()
        if self.args.stats:
            print(format_stats(self.conv.stats, self.files_read), file=self.err, end="")
        return self.status

    def _progress_for(self, paths: list[str]) -> _Progress | None:
        if "-" in paths or not self.err.isatty():
            return None
        sizes = [_size(path) for path in paths]
        return _Progress(sum(sizes), self.err)

    def _read_file(self, path: str, done_bytes: int) -> int:
        """Convert one file into the running conversion; return the bytes done so far."""
        try:
            source = open_source(path, self.stdin)
        except OSError as exc:
            self.fail(f"cannot read {path}: {exc.strerror or exc}")
            return done_bytes
        if path != "-":
            self.last_opened = (path, source.identity())
        conv, writer = self.conv, self.writer
        try:
            if conv.jobs > 1:  # worker processes read it; events come a chunk at a time
                for events in conv.feed_input(source.lines, source.name):
                    writer.write(events)
                    if self._tick(source, done_bytes):
                        break
            else:
                conv.start_file(source.name)
                for lineno, line in enumerate(source.lines, 1):
                    events = conv.feed(line)
                    if events:
                        writer.write(events)
                    if not lineno & _TICK and self._tick(source, done_bytes):
                        break
            self.files_read += 1
        except _READ_ERRORS as exc:
            self.fail(f"{source.name}: read error after line {conv.input_lines}: {exc}")
        finally:
            position = source.position() if self.progress is not None else 0
            source.close()
        return done_bytes + position

    def _tick(self, source: Source, done_bytes: int) -> bool:
        """Move the progress bar to where `source` is; whether a stop was asked for."""
        if self.progress is not None:
            self.progress.advance(done_bytes + source.position())
        return self.stop.is_set()

    def _set_member_read_before(self, followed: str) -> FileIdentity | None:
        """The file read just before `followed` if it belongs to the same rotated set."""
        last = self.last_opened
        if last is None or followed == "-" or rotation_number(last[0])[0] != rotation_number(followed)[0]:
            return None
        return last[1]

    def _follow(self, path: str, after: FileIdentity | None) -> None:
        """Read `path` (or stdin) as it grows until SIGINT/SIGTERM; flush when caught up."""
        if path == "-":
            name, lines = "<stdin>", follow_fd(self.stdin.fileno(), self.stop, self.poll_interval)
        else:
            if not os.path.exists(path):
                self.say(f"{PROG}: {path} does not exist yet; waiting for it")
            name, lines = path, follow_file(path, self.stop, self.poll_interval, after=after)
        conv, writer = self.conv, self.writer
        conv.start_file(name)
        last_line: float | None = None  # monotonic time of the last line not yet closed by idleness
        try:
            for line in lines:
                if isinstance(line, Opened):
                    conv.start_file(line.path)
                    continue
                if line is None:
                    writer.flush()
                    now = time.monotonic()
                    if last_line is not None and now - last_line >= self.idle_close:
                        writer.write(conv.flush())  # close what stays open: see IDLE_CLOSE
                        writer.flush()
                        last_line = None
                    continue
                last_line = time.monotonic()
                events = conv.feed(line)
                if events:
                    writer.write(events)
            self.files_read += 1
        except OSError as exc:
            self.fail(f"cannot follow {name}: {exc.strerror or exc}")


def format_stats(stats: ConversionStats, files: int) -> str:
    """The `--stats` report: lines read = records + skipped + rejected (docs/cli.md)."""
    rows = [
        (f"lines read ({files} file{'s' if files != 1 else ''})", stats.lines),
        ("  records", stats.records),
        ("  skipped (blank, comment, separator)", stats.skipped),
        ("  rejected (malformed)", stats.rejected),
        ("audit events", stats.events),
        ("successful execve/execveat", stats.exec_syscalls),
        ("ProcessCreate events written", stats.process_create),
        ("events written", stats.written),
    ]
    if stats.lost_events:
        rows.append(("audit events lost before reading", stats.lost_events))
    width = max(len(label) for label, _ in rows)
    text = [f"{PROG}: statistics"]
    text += [f"  {label:<{width}} {value:>10}" for label, value in rows]
    for title, counts in (
        ("rejected lines by reason", stats.reasons),
        ("successful execs not written, by reason", stats.exec_rejected),
        ("converted events with damage, by kind", stats.damaged),
    ):
        text += _by_reason(title, counts)
    return "\n".join(text) + "\n"


def _by_reason(title: str, counts: Counter[str]) -> list[str]:
    """The ten most frequent reasons of a counter, and what the others add up to."""
    if not counts:
        return []
    top = counts.most_common(10)
    rows = [f"  {title}:"] + [f"  {count:>10}  {reason}" for reason, count in top]
    rest = sum(counts.values()) - sum(count for _, count in top)
    if rest:
        rows.append(f"  {rest:>10}  (other reasons)")
    return rows


def expand_paths(files: list[str]) -> tuple[list[str], list[str]]:
    """(paths in conversion order, error messages): directories become their audit.log set."""
    paths: list[str] = []
    problems: list[str] = []
    for name in files or ["-"]:
        if name != "-" and os.path.isdir(name):
            try:
                members = expand_directory(name)
            except OSError as exc:
                problems.append(f"cannot read directory {name}: {exc.strerror or exc}")
                continue
            if not members:
                problems.append(f"no audit.log files in directory {name}")
            paths.extend(members)
        else:
            paths.append(name)
    return order_inputs(paths), problems


def main(
    argv: list[str] | None = None,
    *,
    poll_interval: float = POLL_INTERVAL,
    idle_close: float = IDLE_CLOSE,
) -> int:
    """Run the command; return the exit status (also for --help, --version and usage errors).

    `poll_interval` and `idle_close` (seconds) are for tests: how often a followed file is
    looked at, and how long it must stay quiet before open events are closed.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            options = options_from_args(args)
        except Audit2SysmonError as exc:
            parser.error(exc.reason)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
    paths, problems = expand_paths(args.files)
    err = sys.stderr
    with ExitStack() as stack:
        try:
            out = _open_output(stack, args.output, sys.stdout.buffer)
            rejects = _open_output(stack, args.rejects, None) if args.rejects else None
        except OSError as exc:
            print(f"{PROG}: cannot write {exc.filename}: {exc.strerror}", file=err)
            return 1
        try:
            run = Run(
                args,
                options,
                out=out,
                rejects=rejects,
                stdin=sys.stdin.buffer,
                err=err,
                poll_interval=poll_interval,
                idle_close=idle_close,
            )
        except Audit2SysmonError as exc:  # the passwd file: an option that cannot be used
            parser.print_usage(err)
            print(f"{PROG}: error: {exc}", file=err)
            return 2
        for problem in problems:
            run.fail(problem)
        try:
            with _stop_on_signals(run.stop, enabled=args.follow):
                return run.run(paths)
        except OutputError as exc:
            cause = exc.__cause__
            if not isinstance(cause, BrokenPipeError):  # the reader left (`| head`): be quiet
                print(f"{PROG}: cannot write output: {cause}", file=err)
            elif out is sys.stdout.buffer:
                _silence_stdout()
            return 1
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=err)
            return 130
    return 0  # pragma: no cover - every path above returns


def _open_output(stack: ExitStack, name: str, stdout: BinaryIO | None) -> BinaryIO:
    if name == "-" and stdout is not None:
        return stdout
    return stack.enter_context(open(name, "wb"))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file: nothing to silence
        pass


@contextmanager
def _collector_for_batches() -> Iterator[None]:
    """Run the cyclic garbage collector less often while converting (restored after).

    A conversion allocates millions of short-lived tuples and dicts and makes almost no
    reference cycles, but every 700 allocations the collector walks the young objects, and
    every batch that survives (a chunk's facts, the process table) is walked again later.
    Collecting every 50,000 allocations instead saved 3-4 % of one process's time and 10 %
    of the `--jobs` main process's (docs/performance.md); what cyclic garbage there is (an
    exception's traceback) still goes, a little later. The library leaves the collector as
    the calling program set it: this is the command's choice.
    """
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _stop_on_signals(stop: threading.Event, *, enabled: bool) -> Iterator[None]:
    """While following, SIGINT and SIGTERM ask for a clean stop (flush, exit 0)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
