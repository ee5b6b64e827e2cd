"""One run of the command: inputs into one `Converter`, events out, reports, the exit status.

Everything about reading and converting lives in the library (`Converter.feed_input` for
files, `Converter.stream` for a followed log or standard input); this module wires inputs,
output, progress, signals and reports to it, and keeps the exit status honest: 0 when every
input could be read (malformed lines do not count), 1 when an input could not be read or the
output not written, 2 for a usage error. See docs/cli.md.

Live (`--follow`, `--plugin`), the command is a service as Sysmon for Linux is: it writes
Sysmon's own events (configuration, then `Started`; `Stopped` last), stops cleanly on
SIGTERM or SIGINT (what is complete is written, exit 0), and on SIGHUP reopens its output
file and reloads its configuration, on SIGUSR1 reopens its output file (logrotate's
`postrotate`). See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import BinaryIO, TextIO

from ..convert import Converter, Opened
from ..errors import Audit2SysmonError
from ..inputs import (
    POLL_INTERVAL,
    READ_ERRORS,
    FileIdentity,
    Source,
    follow_file,
    open_source,
    read_error,
    rotation_number,
    standard_input,
)
from ..live.syslog import SyslogSender
from ..options import Options
from ..sysmon.config import SysmonConfig, load_config
from ..sysmon.event import SysmonEvent
from ..sysmon.render import formatter
from .args import PROG, build_parser, expand_paths, is_live, options_from_args
from .output import EventWriter, OutputError, SyslogWriter, Target, open_output, silence_stdout
from .report import Progress, Reporter, format_stats

__all__ = ["IDLE_CLOSE", "Run", "Signals", "main"]

IDLE_CLOSE = 1.0
"""Seconds a live source may stay quiet before the events still open in it are closed.

auditd writes all records of an event within microseconds, and an exec event closes on its
PROCTITLE at once; this only releases the rare event that has no closing record."""


class Signals:
    """What signals asked for, set by their handlers and acted on by the run between lines."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reopen = False  # SIGHUP, SIGUSR1: the output file again, by its name
        self.reload = False  # SIGHUP: the configuration again, from its file


class Run:
    """One invocation: a converter, its output, its reports and the exit status."""

    def __init__(
        self,
        args: argparse.Namespace,
        converter_options: Options,
        *,
        out: Target,
        rejects: Target | None,
        stdin: BinaryIO,
        err: TextIO,
        poll_interval: float,
        idle_close: float,
    ) -> None:
        self.args = args
        self.err = err
        self.stdin = stdin
        self.status = 0
        self.signals = Signals()
        self.stop = self.signals.stop
        self.poll_interval = poll_interval
        self.idle_close = idle_close
        self.live = is_live(args)
        self.progress: Progress | None = None
        self.reporter = Reporter(self.say, rejects)
        self.writer: EventWriter | SyslogWriter = (
            SyslogWriter(SyslogSender(args.syslog_socket))
            if args.syslog
            else EventWriter(out, formatter(args.format, tz=converter_options.tz))
        )
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
        live = self.live
        batch, followed = (paths[:-1], paths[-1]) if live and paths else (paths, None)
        self.progress = self._progress_for(batch) if not live else None
        done_bytes = 0
        try:
            if live:
                self._write_now(self.conv.started())
            for path in batch:
                if self.stop.is_set():
                    break
                done_bytes = self._read(path, done_bytes)
            if followed is not None and not self.stop.is_set():
                self._follow(followed, self._set_member_read_before(followed))
            self.writer.write(self.conv.flush())
            if live:
                self.writer.write(self.conv.stopped())
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
        if isinstance(self.writer, SyslogWriter) and self.writer.sender.dropped:
            self.say(f"{PROG}: {self.writer.sender.dropped} event(s) the syslog daemon did not take "
                     f"({self.writer.sender.path})")
        return self.status

    def _progress_for(self, paths: list[str]) -> Progress | None:
        if "-" in paths or not self.err.isatty():
            return None
        return Progress(sum(_size(path) for path in paths), self.err)

    def _read(self, path: str, done_bytes: int) -> int:
        """Convert one input into the running conversion; return the bytes done so far.

        Standard input is read as it comes (a pipe from a live producer), unless it is
        compressed or not a real file descriptor; files are read whole."""
        if path == "-":
            fd = _fileno(self.stdin)
            if fd is not None:
                self._stream("<stdin>", standard_input(fd, self.stop, self.poll_interval))
                return done_bytes
            return self._read_whole(open_source(path, self.stdin), done_bytes)
        try:
            source = open_source(path, self.stdin)
        except OSError as exc:
            self.fail(f"cannot read {path}: {exc.strerror or exc}")
            return done_bytes
        self.last_opened = (path, source.identity())
        return self._read_whole(source, done_bytes)

    def _read_whole(self, source: Source, done_bytes: int) -> int:
        try:
            self._write(self.conv.feed_input(source.lines, source.name), source, done_bytes)
            self.files_read += 1
        except READ_ERRORS as exc:
            self.fail(read_error(source.name, self.conv.input_lines, exc))
        finally:
            position = source.position() if self.progress is not None else 0
            source.close()
        return done_bytes + position

    def _write(self, batches: Iterable[list[SysmonEvent]], source: Source, done_bytes: int) -> None:
        """Write what the converter gives; move the progress bar; stop when asked."""
        writer, progress = self.writer, self.progress
        for events in batches:
            writer.write(events)
            if progress is not None:
                progress.advance(done_bytes + source.position())
            if self.stop.is_set():
                break

    def _set_member_read_before(self, followed: str) -> FileIdentity | None:
        """The file read just before `followed` if it belongs to the same rotated set."""
        last = self.last_opened
        if last is None or followed == "-" or rotation_number(last[0])[0] != rotation_number(followed)[0]:
            return None
        return last[1]

    def _follow(self, path: str, after: FileIdentity | None) -> None:
        """Read `path` (or standard input) as it grows until a signal stops it."""
        if path == "-":
            self._read("-", 0)
            return
        if not os.path.exists(path):
            self.say(f"{PROG}: {path} does not exist yet; waiting for it")
        lines = follow_file(path, self.stop, self.poll_interval, after=after, from_end=self.args.from_end)
        self._stream(path, lines)

    def _stream(self, name: str, lines: Iterator[bytes | Opened | None]) -> None:
        """Convert a live source: what is final is written out each time the source has caught
        up (an empty list from `Converter.stream`); between lines, act on signals."""
        writer = self.writer
        try:
            for events in self.conv.stream(lines, name, idle_close=self.idle_close):
                writer.write(events)
                if not events:
                    writer.flush()
                    self._on_signals()
            self.files_read += 1
        except READ_ERRORS as exc:
            self.fail(read_error(name, self.conv.input_lines, exc))

    def _write_now(self, events: list[SysmonEvent]) -> None:
        self.writer.write(events)
        self.writer.flush()

    def _on_signals(self) -> None:
        """SIGHUP: reload the configuration, reopen the output; SIGUSR1: reopen the output."""
        signals = self.signals
        if signals.reopen:  # first: what follows (a reload's EventID 16) goes to the new file
            signals.reopen = False
            self.writer.reopen()
        if signals.reload:
            signals.reload = False
            self._reload()

    def _reload(self) -> None:
        """The configuration file again; one that cannot be used now leaves the old one in
        force (a service must not stop over a bad edit), and says why."""
        path = self.args.config
        config: SysmonConfig | None = None
        if path is not None:
            try:
                config = load_config(path)
            except Audit2SysmonError as exc:
                self.say(f"{PROG}: configuration not reloaded, the previous one stays in force: {exc}")
                return
            for warning in config.warnings:
                self.say(f"{PROG}: {path}: warning: {warning}")
        self._write_now(self.conv.reload(config))


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
    err = sys.stderr
    try:
        args = parser.parse_args(argv)
        if args.check_config is not None:
            return check_config(args.check_config, sys.stdout, err)
        try:
            options = options_from_args(args)
        except Audit2SysmonError as exc:
            parser.error(str(exc) if exc.path is not None else exc.reason)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
    with ExitStack() as stack:
        if args.log is not None:
            try:  # line-buffered: a service's messages reach the file as they are made
                err = stack.enter_context(open(args.log, "a", encoding="utf-8", errors="backslashreplace", buffering=1))
            except OSError as exc:
                print(f"{PROG}: cannot write {args.log}: {exc.strerror}", file=err)
                return 1
        return _main(args, options, err, stack, poll_interval, idle_close, parser)
    return 0  # pragma: no cover - the block above returns


def _main(
    args: argparse.Namespace,
    options: Options,
    err: TextIO,
    stack: ExitStack,
    poll_interval: float,
    idle_close: float,
    parser: argparse.ArgumentParser,
) -> int:
    """`main` once the arguments are read and the messages have their stream."""
    if isinstance(options.config, SysmonConfig):
        for warning in options.config.warnings:
            print(f"{PROG}: {options.config.path}: warning: {warning}", file=err)
    paths, problems = expand_paths(["-"] if args.plugin else args.files)
    live = is_live(args)
    try:
        out = open_output(stack, args.output, sys.stdout.buffer, append=live)
        rejects = open_output(stack, args.rejects, None, append=live) if args.rejects else None
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
        with _handle_signals(run.signals, enabled=live):
            return run.run(paths)
    except OutputError as exc:
        cause = exc.__cause__
        if not isinstance(cause, BrokenPipeError):  # the reader left (`| head`): be quiet
            print(f"{PROG}: cannot write output: {cause}", file=err)
        elif out is sys.stdout.buffer:
            silence_stdout()
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
    return 0  # pragma: no cover - every path above returns


def check_config(path: str, out: TextIO, err: TextIO) -> int:
    """`--check-config FILE`: the rules as understood (what `sysmon -c` shows), or why the
    file cannot be used; 0 or 2."""
    try:
        config = load_config(path)
    except Audit2SysmonError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 2
    text = config.describe()
    print(text, file=out, end="" if text.endswith("\n") else "\n")
    return 0


def _fileno(stream: BinaryIO) -> int | None:
    """The file descriptor under `stream`, None for an in-memory stream."""
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


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
def _handle_signals(signals: Signals, *, enabled: bool) -> Iterator[None]:
    """While live: SIGINT and SIGTERM ask for a clean stop (write what is complete, exit 0),
    SIGHUP for a reload and a reopened output, SIGUSR1 for a reopened output."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signals.stop.set()

    def hangup(signum: int, frame: FrameType | None) -> None:
        signals.reload = signals.reopen = True

    def rotate(signum: int, frame: FrameType | None) -> None:
        signals.reopen = True

    handlers = {signal.SIGINT: stop, signal.SIGTERM: stop, signal.SIGHUP: hangup, signal.SIGUSR1: rotate}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
