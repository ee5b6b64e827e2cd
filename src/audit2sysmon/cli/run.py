"""One run of the command: inputs into one `Converter`, events out, reports, the exit status.

Everything about reading and converting lives in the library (`Converter.feed_input` for
files, `Converter.stream` for a followed log); this module wires inputs, output, progress,
signals and reports to it, and keeps the exit status honest: 0 when every input could be
read (malformed lines do not count), 1 when an input could not be read or the output not
written, 2 for a usage error. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import gc
import lzma
import os
import signal
import sys
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import BinaryIO, TextIO

from ..convert import Converter, Opened
from ..errors import Audit2SysmonError
from ..inputs import POLL_INTERVAL, FileIdentity, Source, follow_fd, follow_file, open_source, rotation_number
from ..options import Options
from ..sysmon.config import SysmonConfig, load_config
from ..sysmon.event import SysmonEvent
from ..sysmon.render import formatter
from .args import PROG, build_parser, expand_paths, options_from_args
from .output import EventWriter, OutputError, open_output, silence_stdout
from .report import Progress, Reporter, format_stats

__all__ = ["IDLE_CLOSE", "Run", "main"]

IDLE_CLOSE = 1.0
"""Seconds a followed log may stay quiet before the events still open in it are closed.

auditd writes all records of an event within microseconds, and an exec event closes on its
PROCTITLE at once; this only releases the rare event that has no closing record."""
_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


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
        self.progress: Progress | None = None
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

    def _progress_for(self, paths: list[str]) -> Progress | None:
        if "-" in paths or not self.err.isatty():
            return None
        return Progress(sum(_size(path) for path in paths), self.err)

    def _read_file(self, path: str, done_bytes: int) -> int:
        """Convert one file into the running conversion; return the bytes done so far."""
        try:
            source = open_source(path, self.stdin)
        except OSError as exc:
            self.fail(f"cannot read {path}: {exc.strerror or exc}")
            return done_bytes
        if path != "-":
            self.last_opened = (path, source.identity())
        try:
            self._write(self.conv.feed_input(source.lines, source.name), source, done_bytes)
            self.files_read += 1
        except _READ_ERRORS as exc:
            self.fail(f"{source.name}: read error after line {self.conv.input_lines}: {exc}")
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
        """Read `path` (or stdin) as it grows until SIGINT/SIGTERM; flush when caught up."""
        lines: Iterator[bytes | Opened | None]
        if path == "-":
            name, lines = "<stdin>", follow_fd(self.stdin.fileno(), self.stop, self.poll_interval)
        else:
            if not os.path.exists(path):
                self.say(f"{PROG}: {path} does not exist yet; waiting for it")
            name, lines = path, follow_file(path, self.stop, self.poll_interval, after=after)
        writer = self.writer
        try:
            for events in self.conv.stream(lines, name, idle_close=self.idle_close):
                writer.write(events)
                if not events:  # caught up: what is final goes out now
                    writer.flush()
            self.files_read += 1
        except OSError as exc:
            self.fail(f"cannot follow {name}: {exc.strerror or exc}")


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
    if isinstance(options.config, SysmonConfig):
        for warning in options.config.warnings:
            print(f"{PROG}: {options.config.path}: warning: {warning}", file=err)
    paths, problems = expand_paths(args.files)
    with ExitStack() as stack:
        try:
            out = open_output(stack, args.output, sys.stdout.buffer)
            rejects = open_output(stack, args.rejects, None) if args.rejects else None
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
    print(config.describe(), file=out, end="" if config.describe().endswith("\n") else "\n")
    return 0


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
