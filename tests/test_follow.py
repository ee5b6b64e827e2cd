"""Following a growing log: appends, partial lines, rotation, truncation, and clean stops."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from cli_setup import API, DEV, FIXED, UTC
from hypothesis import given
from hypothesis import strategies as st

from audit2sysmon import Converter, Opened, Options
from audit2sysmon.cli import main
from audit2sysmon.inputs import LineSplitter, follow_file

DEADLINE = 60.0  # seconds a helper waits for the follower before giving up (never reached when it works)


# `--follow` on the fixture logs: deterministic TimeCreated, and nothing asked of this machine
# (its files and processes are not the log's).
FOLLOW = [*FIXED, "--time-created", "event", "--no-hashes", "--no-proc-parents"]
SERVICE = re.compile(rb"<EventID>(?:4|16)</EventID>")


def following_options(pid: int) -> Options:
    """The options the CLI builds for FOLLOW in process `pid`: no holding back for parents,
    serial gaps checked, this process's pid in Execution, and the two service events (16, 4)
    ahead of the log's events."""
    return Options.from_kwargs(**API, hold_events=False, serial_gaps=True, execution_pid=pid, first_record_id=3)


def library_output(lines: list[bytes], pid: int | None = None) -> tuple[bytes, bytes]:
    """(what is written before the end of input, everything): the library's view of the stream,
    without the service's own events (see `events_of`)."""
    conv = Converter(following_options(os.getpid() if pid is None else pid))
    live = [event for line in lines for event in conv.feed(line)]
    final = live + conv.flush()

    def text(events):
        return b"".join((event.to_syslog(UTC) + "\n").encode() for event in events)

    return text(live), text(final)


def events_of(output: bytes) -> bytes:
    """A follower's output without its service events: configuration and state (EventIDs 16
    and 4), written with the wall clock's time."""
    return b"".join(line for line in output.splitlines(keepends=True) if not SERVICE.search(line))


def service_events(output: bytes) -> list[tuple[int, str]]:
    """(EventID, State or Configuration) of each service event of a follower's output."""
    found = []
    for line in output.splitlines():
        if SERVICE.search(line):
            event_id = int(re.search(rb"<EventID>(\d+)<", line).group(1))
            value = re.search(rb'<Data Name="(?:State|Configuration)">([^<]*)<', line).group(1).decode()
            found.append((event_id, value))
    return found


def gapless(lines: list[bytes]) -> list[bytes]:
    """The capture's events renumbered 1..n in log order: it was cut down to one process tree,
    and a live log of everything the kernel wrote has no gaps in its serial numbers."""
    lines = [line for line in lines if b"type=DAEMON_" not in line]
    stamps = dict.fromkeys(line.split(b"msg=audit(")[1].split(b")")[0] for line in lines)
    serials = {stamp: i for i, stamp in enumerate(stamps, 1)}
    return [
        line.replace(stamp, stamp.split(b":")[0] + b":%d" % serials[stamp])
        for line in lines
        for stamp in [line.split(b"msg=audit(")[1].split(b")")[0]]
    ]


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def until_caught_up(lines) -> list[bytes | Opened]:
    """Lines (and `Opened` markers) from a follow generator up to its next 'caught up' marker."""
    got = []
    for line in lines:
        if line is None:
            return got
        got.append(line)
    return got


# -- the follower on its own -----------------------------------------------------------------


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_line_splitter_gives_the_lines_whatever_the_chunks(chunks):
    splitter = LineSplitter()
    lines = [line for chunk in chunks for line in splitter.push(chunk)]
    data = b"".join(chunks)
    assert data == b"".join(lines) + splitter.rest()
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    assert data.count(b"\n") == len(lines)


def test_follow_file_growth_partial_lines_truncation_and_rotation(tmp_path):
    log = tmp_path / "audit.log"
    stop = threading.Event()
    lines = follow_file(str(log), stop, poll_interval=0)
    assert [] == until_caught_up(lines)  # not there yet: it waits
    log.write_bytes(b"one\ntw")
    assert [Opened(str(log)), b"one\n"] == until_caught_up(lines)  # half a line waits for its end
    with open(log, "ab") as handle:
        handle.write(b"o\nthree\n")
    assert [b"two\n", b"three\n"] == until_caught_up(lines)
    log.write_bytes(b"new\n")  # truncated and rewritten, shorter than what was read
    assert [Opened(str(log)), b"new\n"] == until_caught_up(lines)
    with open(log, "ab") as old:  # the writer still holds the file it writes
        log.rename(tmp_path / "audit.log.1")
        old.write(b"last words\nunfinished")
    log.write_bytes(b"fresh\n")
    assert [b"last words\n", b"unfinished", Opened(str(log)), b"fresh\n"] == until_caught_up(lines)
    stop.set()
    assert [] == list(lines)


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def no_default_sigterm():
    """A SIGTERM that misses audit2sysmon's handler fails the test instead of killing the run."""

    def missed(signum, frame):
        raise AssertionError("SIGTERM arrived while audit2sysmon's handler was not installed")

    previous = signal.signal(signal.SIGTERM, missed)
    yield
    signal.signal(signal.SIGTERM, previous)


def follow_while(action, out, target, idle_close: float = 3600, poll_interval: float = 0.01) -> int:
    """Run `audit2sysmon --follow -o out target` in this process while `action` runs in a
    thread; SIGTERM (as a service manager would send) ends the follow once `action` returns
    or fails. Returns the exit status."""

    def driver() -> None:
        try:
            action()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=driver)
    thread.start()
    status = main([*FOLLOW, "--follow", "-o", str(out), str(target)], poll_interval=poll_interval, idle_close=idle_close)
    thread.join()
    return status


def test_follow_survives_rotation_and_stops_cleanly_on_sigterm(tmp_path, no_default_sigterm):
    lines = gapless(DEV.read_bytes().splitlines(keepends=True))
    data = b"".join(lines)
    quarter = len(data) // 4
    # Cut at byte offsets, so lines are split across writes (and across the rotation).
    part_a, part_b, part_c, part_d = [data[i * quarter : (i + 1) * quarter] for i in range(3)] + [data[3 * quarter :]]
    live, final = library_output(lines)
    log, out = tmp_path / "audit.log", tmp_path / "out.log"
    log.write_bytes(part_a)

    def writer() -> None:
        wait_for(lambda: out.exists() and events_of(out.read_bytes()), "the first events")
        with open(log, "ab") as old:
            old.write(part_b)
            old.flush()
            log.rename(tmp_path / "audit.log.1")  # rotation: the old file keeps its writer
            old.write(part_c)
        log.write_bytes(part_d)
        wait_for(lambda: events_of(out.read_bytes()) == live, "every event the stream completes")

    with contextlib.redirect_stderr(io.StringIO()) as report:
        assert 0 == follow_while(writer, out, log)
    assert final == events_of(out.read_bytes())  # SIGTERM flushed the events still open
    # A service's own events, as Sysmon writes them: configuration and Started first, Stopped last.
    assert [(16, "-"), (4, "Started"), (4, "Stopped")] == service_events(out.read_bytes())
    assert SERVICE.search(out.read_bytes().splitlines()[-1])
    # The line this test cut in two across the rotation is malformed on both sides (auditd
    # writes whole lines); no serial number is lost.
    assert "never reached the log" not in report.getvalue()


def test_follow_reads_the_older_files_of_a_set_first(tmp_path, no_default_sigterm):
    lines = gapless(DEV.read_bytes().splitlines(keepends=True))
    half = len(lines) // 2
    (tmp_path / "audit.log.1").write_bytes(b"".join(lines[:half]))
    (tmp_path / "audit.log").write_bytes(b"".join(lines[half:]))
    live, final = library_output(lines)
    out = tmp_path / "out.log"

    def set_converted() -> None:
        wait_for(lambda: out.exists() and events_of(out.read_bytes()) == live, "the set's events")

    assert 0 == follow_while(set_converted, out, tmp_path)
    assert final == events_of(out.read_bytes())


def test_quiet_log_releases_an_event_that_never_closes(tmp_path, no_default_sigterm):
    # An exec whose PROCTITLE never comes: only the log going quiet can close it.
    lines = DEV.read_bytes().splitlines(keepends=True)
    first_exec = next(i for i, line in enumerate(lines) if b" syscall=59 success=yes " in line)
    serial = lines[first_exec].split(b"msg=audit(")[1].split(b")")[0]
    event = [line for line in lines if b"msg=audit(%s)" % serial in line and b"type=PROCTITLE" not in line]
    log, out = tmp_path / "audit.log", tmp_path / "out.log"
    log.write_bytes(b"".join(event))

    def idle_closed() -> None:
        wait_for(lambda: out.exists() and b"<EventID>1</EventID>" in out.read_bytes(), "the idle close")

    assert 0 == follow_while(idle_closed, out, log, idle_close=0.05)
    assert 1 == events_of(out.read_bytes()).count(b"\n")


def test_follow_standard_input_until_sigint(tmp_path):
    lines = gapless(DEV.read_bytes().splitlines(keepends=True))
    out = tmp_path / "out.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "audit2sysmon", *FOLLOW, "--follow", "-o", str(out), "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    live, final = library_output(lines, proc.pid)
    try:
        proc.stdin.write(b"".join(lines))
        proc.stdin.flush()  # the pipe stays open: only the signal ends the run
        wait_for(lambda: out.exists() and events_of(out.read_bytes()) == live, "the streamed events")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (0, b"") == (proc.returncode, err)
    assert final == events_of(out.read_bytes())


# -- rotation never skips a file -----------------------------------------------------------------


def rotate(log) -> None:
    """What auditd does on rotation: `.N` → `.N+1` from the oldest, the log → `.1`, a new log."""
    numbers = sorted((int(p.name.rsplit(".", 1)[1]) for p in log.parent.glob(log.name + ".*")), reverse=True)
    for number in numbers:
        os.rename(f"{log}.{number}", f"{log}.{number + 1}")
    os.rename(log, f"{log}.1")
    log.write_bytes(b"")


def drain(lines) -> list[bytes]:
    """Everything the follower has to give now: it looks until two looks in a row bring
    nothing (a rotation is noticed at the look after the one that reached the file's end)."""
    got: list[bytes] = []
    quiet = 0
    while quiet < 2:
        looked = until_caught_up(lines)
        quiet = 0 if looked else quiet + 1
        got += [line for line in looked if not isinstance(line, Opened)]
    return got


# A session of a live log: lines appended, rotations, and the moments the follower looks.
_STEPS = st.lists(st.one_of(st.integers(1, 5), st.just("rotate"), st.just("look")), max_size=40)


@given(_STEPS)
def test_every_line_is_read_once_in_order_however_often_the_log_rotates(tmp_path_factory, steps):
    log = tmp_path_factory.mktemp("rotating") / "audit.log"
    log.write_bytes(b"")
    stop = threading.Event()
    lines = follow_file(str(log), stop, poll_interval=0)
    read: list[bytes] = drain(lines)  # the follower starts: it opens the log
    written: list[bytes] = []
    for step in steps:
        if step == "rotate":
            rotate(log)
        elif step == "look":
            read += drain(lines)
        else:
            new = [b"line %d\n" % (len(written) + i) for i in range(step)]
            with open(log, "ab") as handle:
                handle.write(b"".join(new))
            written += new
    read += drain(lines)
    stop.set()
    assert written == read


def test_after_a_removed_file_the_remaining_ones_are_read_oldest_first(tmp_path):
    log = tmp_path / "audit.log"
    log.write_bytes(b"a\n")
    stop = threading.Event()
    lines = follow_file(str(log), stop, poll_interval=0)
    assert [Opened(str(log)), b"a\n"] == until_caught_up(lines)
    rotate(log)
    log.write_bytes(b"b\n")
    rotate(log)
    log.write_bytes(b"c\n")
    rotate(log)
    log.write_bytes(b"d\n")
    os.remove(f"{log}.3")  # the file being read, gone from the directory (it is still open)
    os.remove(f"{log}.2")  # one it never saw: lost
    assert [Opened(f"{log}.1"), b"c\n", Opened(str(log)), b"d\n"] == [
        line for line in until_caught_up(lines) + until_caught_up(lines) + until_caught_up(lines)
    ]
    stop.set()


def test_follow_after_a_set_member_reads_what_rotated_meanwhile(tmp_path):
    log = tmp_path / "audit.log"
    (tmp_path / "audit.log.1").write_bytes(b"old\n")
    log.write_bytes(b"was live\n")
    older = os.stat(tmp_path / "audit.log.1")
    rotate(log)  # while the command converted audit.log.1, auditd rotated
    log.write_bytes(b"new\n")
    stop = threading.Event()
    lines = follow_file(str(log), stop, poll_interval=0, after=(older.st_dev, older.st_ino))
    assert [Opened(f"{log}.1"), b"was live\n", Opened(str(log)), b"new\n"] == (
        until_caught_up(lines) + until_caught_up(lines)
    )
    stop.set()


def test_a_command_following_a_set_reports_the_events_of_a_removed_file_lost(tmp_path, no_default_sigterm):
    """Serial numbers tell what the follower could not read: an exec in a file that was
    removed before it was read is one warning naming the line after the gap, and a count."""
    lines = [line for line in DEV.read_bytes().splitlines(keepends=True) if b"type=DAEMON_" not in line]
    stamps = dict.fromkeys(line.split(b"msg=audit(")[1].split(b")")[0] for line in lines)
    # Renumber the capture's events 1..n in log order: it was cut down to one process tree,
    # and a live log of everything the kernel wrote has no gaps.
    serials = {stamp: i for i, stamp in enumerate(stamps, 1)}
    body = [
        line.replace(stamp, stamp.split(b":")[0] + b":%d" % serials[stamp])
        for line in lines
        for stamp in [line.split(b"msg=audit(")[1].split(b")")[0]]
    ]
    third = len(body) // 3
    # Cut where no event is open: after a PROCTITLE.
    cuts = [next(i for i in range(k * third, len(body)) if b"type=PROCTITLE" in body[i]) + 1 for k in (1, 2)]
    first, removed, last = body[: cuts[0]], body[cuts[0] : cuts[1]], body[cuts[1] :]
    log, out = tmp_path / "audit.log", tmp_path / "out.log"
    log.write_bytes(b"".join(first))
    first_events, _ = library_output(first)
    assert first_events

    def rotate_twice_and_remove() -> None:
        # Once it has written all that the first file makes final, the follower has caught up;
        # right after that write it looks at the name once, then waits its poll interval (1 s):
        # everything below happens in that wait, before it looks again, as when it is starved
        # of CPU. (Its first events alone would not do: on a busy machine it may still be
        # reading the first file, and see the second one.)
        wait_for(lambda: out.exists() and events_of(out.read_bytes()) == first_events, "the first file's events")
        time.sleep(0.2)  # its one look after the write
        rotate(log)
        log.write_bytes(b"".join(removed))
        rotate(log)
        os.remove(f"{log}.1")  # gone before the follower looked: lost
        log.write_bytes(b"".join(last))
        wait_for(lambda: b"/usr/bin/" in out.read_bytes().rsplit(b"\n", 2)[-2], "the last file's events")
        time.sleep(0.2)

    with contextlib.redirect_stderr(io.StringIO()) as report:
        assert 0 == follow_while(rotate_twice_and_remove, out, log, poll_interval=1.0)
    missing = len({line.split(b"msg=audit(")[1].split(b")")[0] for line in removed})
    warnings = [line for line in report.getvalue().splitlines() if "never reached the log" in line]
    assert [f"{missing} audit event(s)"] == [w.split(": ", 1)[1].split(" of node")[0] for w in warnings]


def test_from_end_reads_only_what_is_written_from_now_on(tmp_path):
    log = tmp_path / "audit.log"
    log.write_bytes(b"already there\n")
    stop = threading.Event()
    lines = follow_file(str(log), stop, poll_interval=0, from_end=True)
    assert [Opened(str(log))] == until_caught_up(lines)
    with open(log, "ab") as handle:
        handle.write(b"new\n")
    assert [b"new\n"] == until_caught_up(lines)
    rotate(log)
    log.write_bytes(b"after rotation\n")  # a new file is read from its start
    assert [b"after rotation\n"] == drain(lines)
    stop.set()
