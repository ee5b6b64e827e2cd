"""The command as a service: streaming standard input, `--plugin`, signals, `--syslog`, outputs.

These run the real command in its own process, fed through a pipe as auditd feeds a plugin,
and read what it writes while it runs; a real auditd and rsyslog are in tests/live/.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_setup import DEV, FIXED, LIVE

from audit2sysmon import convert
from audit2sysmon.cli.output import LineFile
from audit2sysmon.live.host import LocalHost
from audit2sysmon.sysmon.render.xml import event_xml

DEADLINE = 30.0
SERVICE = [*FIXED, "--time-created", "event", "--no-hashes", "--no-proc-parents", "-f", "json"]
PAIR_CONFIG = LIVE / "pair-config-dev" / "config.xml"


def gapless(lines: list[bytes]) -> list[bytes]:
    """The capture renumbered 1..n in log order (it was cut down to one process tree; a live
    stream has no gaps in its serial numbers), without auditd's own DAEMON records."""
    lines = [line for line in lines if b"type=DAEMON_" not in line]
    stamps = dict.fromkeys(line.split(b"msg=audit(")[1].split(b")")[0] for line in lines)
    serials = {stamp: i for i, stamp in enumerate(stamps, 1)}
    return [line.replace(s, s.split(b":")[0] + b":%d" % serials[s]) for line in lines
            for s in [line.split(b"msg=audit(")[1].split(b")")[0]]]


def with_eoe(lines: list[bytes]) -> list[bytes]:
    """As auditd's dispatcher sends records to a plugin: each event followed by its EOE."""
    out: list[bytes] = []
    for i, line in enumerate(lines):
        out.append(line)
        stamp = line.split(b"msg=audit(")[1].split(b")")[0]
        later = [other for other in lines[i + 1 :] if b"msg=audit(%s)" % stamp in other]
        if not later:
            node = line.split(b" ", 1)[0] + b" " if line.startswith(b"node=") else b""
            out.append(node + b"type=EOE msg=audit(%s): \n" % stamp)
    return out


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line)["Event"] for line in path.read_bytes().splitlines()]


def ids(path: Path) -> list[int]:
    return [e["System"]["EventID"] for e in events(path)]


def start(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "audit2sysmon", *argv], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[int, str]:
    """Send `sig` (0: none, the input has ended) and wait; (exit status, standard error)."""
    if sig and proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, proc.stderr.read().decode()


def first_events(lines: list[bytes], count: int) -> list[bytes]:
    """The lines up to the end (the PROCTITLE) of the `count`-th successful exec event."""
    execs: list[bytes] = []
    for index, line in enumerate(lines):
        if b" syscall=59 success=yes " in line:
            execs.append(line.split(b"msg=audit(")[1].split(b")")[0])
        elif b"type=PROCTITLE" in line and len(execs) == count and b"msg=audit(%s)" % execs[-1] in line:
            return lines[: index + 1]
    return lines


# -- standard input is read as it comes ----------------------------------------------------------


def test_standard_input_writes_each_event_while_the_pipe_is_still_open(tmp_path):
    """Lines piped in, then a pause: the events are written at once, not at the end of input."""
    lines = first_events(DEV.read_bytes().splitlines(keepends=True), 8)
    assert sum(b" syscall=59 success=yes " in line for line in lines) == 8
    out = tmp_path / "out.jsonl"
    proc = start(*FIXED, "-f", "json", "-o", str(out), "-")
    try:
        proc.stdin.write(b"".join(lines))
        proc.stdin.flush()
        wait_for(lambda: 1 in ids(out), "an event while the pipe is open")
        assert proc.poll() is None, "still reading: the pipe is open"
        proc.stdin.close()
        status, err = stop(proc, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (0, "") == (status, err)
    batch = [json.loads(e.to_json())["Event"] for e in convert(lines, **_api())]
    assert batch == events(out)  # the same events as a batch conversion of those lines


def _api() -> dict:
    from cli_setup import API

    return API


# -- --plugin: auditd's dispatcher on standard input -----------------------------------------------


def test_plugin_streams_events_and_writes_sysmon_s_own_events(tmp_path):
    lines = with_eoe(gapless(DEV.read_bytes().splitlines(keepends=True)))
    out = tmp_path / "out.jsonl"
    proc = start(*SERVICE, "--plugin", "-o", str(out))
    try:
        wait_for(lambda: ids(out)[:2] == [16, 4], "configuration and Started at start")
        half = len(lines) // 2
        proc.stdin.write(b"".join(lines[:half]))
        proc.stdin.flush()
        wait_for(lambda: 1 in ids(out), "events while auditd still sends")
        proc.stdin.write(b"this is not an audit record\n")  # a plugin never exits on bad input
        proc.stdin.write(b"".join(lines[half:]))
        proc.stdin.flush()
        expected = [json.loads(e.to_json())["Event"]["EventData"] for e in convert(lines, **_api(), hold_events=False)]
        wait_for(lambda: len(events(out)) >= 2 + len(expected), "every event")
        assert proc.poll() is None
        status, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    written = events(out)
    assert 0 == status and [16, 4] == ids(out)[:2] and written[-1]["EventData"]["State"] == "Stopped"
    assert expected == [e["EventData"] for e in written[2:-1]]
    assert "<stdin>:" in err and "unexpected" in err  # the bad line, named; nothing else
    assert [e["System"]["EventRecordID"] for e in written] == list(range(1, len(written) + 1))


def test_sighup_reloads_the_configuration_and_reopens_the_output(tmp_path):
    lines = with_eoe(gapless(DEV.read_bytes().splitlines(keepends=True)))
    config = tmp_path / "config.xml"
    config.write_bytes(b'<Sysmon schemaversion="4.90"><EventFiltering/></Sysmon>')  # no sets: Sysmon's defaults
    out, rotated = tmp_path / "out.jsonl", tmp_path / "out.jsonl.1"
    proc = start(*SERVICE, "--plugin", "-c", str(config), "-o", str(out))
    try:
        wait_for(lambda: ids(out)[:2] == [16, 4], "the start")
        first = events(out)[0]["EventData"]
        assert first["Configuration"] == str(config)
        assert first["ConfigurationFileHash"] == "SHA256=" + hashlib.sha256(config.read_bytes()).hexdigest()
        third = len(lines) // 3
        proc.stdin.write(b"".join(lines[:third]))
        proc.stdin.flush()
        wait_for(lambda: 1 in ids(out), "creates under the first configuration")
        # logrotate: the file is moved, then the service is told to open it again.
        out.rename(rotated)
        new = '<Sysmon schemaversion="4.90"><HashAlgorithms>md5,sha256</HashAlgorithms><EventFiltering>' \
              '<ProcessCreate onmatch="include"/></EventFiltering></Sysmon>'  # nothing logged
        config.write_text(new, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: ids(out) == [16], "the reloaded configuration, in the new file")
        proc.stdin.write(b"".join(lines[third:]))
        proc.stdin.flush()
        time.sleep(1.5)  # past the idle close: what is complete has been written
        status, _ = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 0 == status
    reloaded = events(out)[0]["EventData"]
    data = config.read_bytes()
    assert reloaded["ConfigurationFileHash"] == (
        f"MD5={hashlib.md5(data).hexdigest()},SHA256={hashlib.sha256(data).hexdigest()}"
    )
    # Before: no sets, so Sysmon's defaults (creates and terminates); after: an empty include
    # set for ProcessCreate (none), terminates still by default.
    assert ids(rotated)[:2] == [16, 4] and set(ids(rotated)[2:]) == {1, 5}
    assert ids(out)[0] == 16 and ids(out)[-1] == 4 and set(ids(out)[1:-1]) == {5}
    old = events(rotated)
    everything = [e["System"]["EventRecordID"] for e in old + events(out)]
    assert everything == list(range(1, len(everything) + 1))  # one counter across the files


def test_a_configuration_that_breaks_on_reload_keeps_the_one_in_force(tmp_path):
    config = tmp_path / "config.xml"
    config.write_bytes(PAIR_CONFIG.read_bytes())
    out = tmp_path / "out.jsonl"
    proc = start(*SERVICE, "--plugin", "-c", str(config), "-o", str(out))
    try:
        wait_for(lambda: ids(out) == [16, 4], "the start")
        config.write_text("<Sysmon", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert proc.poll() is None
        status, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 0 == status and ids(out) == [16, 4, 4]
    assert "configuration not reloaded, the previous one stays in force" in err


# -- --syslog: the local syslog socket, as Sysmon sends --------------------------------------------

SYSLOG_MESSAGE = re.compile(rb"<14>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d\d:\d\d:\d\d sysmon: (<Event>.*</Event>)\Z")


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["datagram", "stream"])
def test_syslog_sends_one_message_per_event_as_sysmon_does(tmp_path, kind):
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, kind)
    server.bind(path)
    if kind == socket.SOCK_STREAM:
        server.listen(1)
    lines = first_events(DEV.read_bytes().splitlines(keepends=True), 5)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    proc = subprocess.Popen([sys.executable, "-m", "audit2sysmon", *FIXED, "--syslog", "--syslog-socket", path,
                             str(log)], stderr=subprocess.PIPE)
    received = b""
    server.settimeout(DEADLINE)
    if kind == socket.SOCK_STREAM:
        conn, _ = server.accept()
        while chunk := conn.recv(65536):
            received += chunk
        messages = received.split(b"\0")[:-1]  # glibc ends each message with a NUL on a stream
    else:
        expected_count = len(list(convert(lines, **_api())))
        messages = [server.recv(65536) for _ in range(expected_count)]
    _, err = proc.communicate(timeout=DEADLINE)
    server.close()
    assert (0, b"") == (proc.returncode, err)
    xml = [SYSLOG_MESSAGE.match(message) for message in messages]
    assert all(xml), messages[:1]
    assert [m.group(1).decode() for m in xml] == [event_xml(e) for e in convert(lines, **_api())]


def test_syslog_without_a_daemon_counts_what_it_could_not_send(tmp_path):
    lines = first_events(DEV.read_bytes().splitlines(keepends=True), 3)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    proc = subprocess.run([sys.executable, "-m", "audit2sysmon", *FIXED, "--syslog", "--syslog-socket",
                           str(tmp_path / "nobody"), str(log)], capture_output=True, timeout=DEADLINE)
    count = len(list(convert(lines, **_api())))
    assert 0 == proc.returncode
    assert f"{count} event(s) the syslog daemon did not take".encode() in proc.stderr


# -- an output file is never left with part of a line ----------------------------------------------


def test_a_write_that_fails_part_way_leaves_whole_lines(tmp_path):
    """A file size limit (as a full disk) stops a write in the middle of a line: what was
    written of it is taken back, and the error is raised."""
    path = tmp_path / "out.log"
    code = f"""
import resource, signal, sys
from audit2sysmon.cli.output import LineFile
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
out = LineFile({str(path)!r}, append=False)
out.write(b"x" * 599 + b"\\n")
try:
    out.write(b"y" * 599 + b"\\n")
except OSError as exc:
    print(exc.errno)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE)
    assert str(errno.EFBIG) == proc.stdout.strip(), proc.stderr  # 400 bytes went, then the limit
    assert b"x" * 599 + b"\n" == path.read_bytes()  # without taking them back: 1,000 bytes


def test_a_service_appends_and_a_conversion_starts_the_file_anew(tmp_path):
    path = tmp_path / "out.log"
    path.write_bytes(b"before\n")
    LineFile(str(path), append=True).write(b"service\n")
    assert b"before\nservice\n" == path.read_bytes()
    LineFile(str(path), append=False).write(b"batch\n")
    assert b"batch\n" == path.read_bytes()


# -- what the live host tells ------------------------------------------------------------------------


def _identity(path: str) -> tuple[str, str]:
    info = os.stat(path)
    return f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}", str(info.st_ino)


def test_the_host_hashes_the_file_the_kernel_ran_and_nothing_else(tmp_path):
    program = tmp_path / "program"
    program.write_bytes(os.urandom(4096))
    host = LocalHost()
    right = [_identity(str(program))]
    data = program.read_bytes()
    assert host.image_hashes(str(program), right, ("SHA256",)) == f"SHA256={hashlib.sha256(data).hexdigest()}"
    assert host.image_hashes(str(program), right, ("SHA1", "MD5", "SHA256", "IMPHASH")) == (
        f"SHA1={hashlib.sha1(data).hexdigest()},MD5={hashlib.md5(data).hexdigest()},"
        f"SHA256={hashlib.sha256(data).hexdigest()}"
    )
    # Replaced since the exec (another inode at that path): not the executed file.
    replacement = tmp_path / "replacement"
    replacement.write_bytes(b"other")
    replacement.rename(program)
    assert host.image_hashes(str(program), right, ("SHA256",)) == "-"
    # A symbolic link at the logged path is not followed.
    link = tmp_path / "link"
    link.symlink_to(program)
    assert host.image_hashes(str(link), [_identity(str(program))], ("SHA256",)) == "-"
    # Over the size cap: not hashed.
    assert LocalHost(max_bytes=4).image_hashes(str(program), [_identity(str(program))], ("SHA256",)) == "-"


def test_the_host_knows_a_running_process_from_proc():
    found = LocalHost().process(os.getpid())
    assert found is not None
    assert found.image == os.path.realpath(sys.executable)
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as handle:
        argv = handle.read().split(b"\0")[:-1]
    assert found.argv0 == argv[0].decode() and found.command_line == b" ".join(argv).decode()
    assert found.uid == os.getuid()
    assert found.start_msec <= time.time() * 1000
    assert LocalHost().process(2**22 + 12345) is None  # above pid_max: nobody


def test_a_live_converter_fills_hashes_and_a_parent_that_started_before_the_log(tmp_path):
    """An exec of this machine's /bin/true by a child of this test process: the Hashes of
    /bin/true, and this process (which the log never showed) as the parent."""
    exe = os.path.realpath("/bin/true")
    dev, inode = _identity(exe)
    now = int(time.time())
    lines = [
        f'type=SYSCALL msg=audit({now}.000:7): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 '
        f'items=2 ppid={os.getpid()} pid=999999 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
        f'tty=(none) ses=4294967295 comm="true" exe="{exe}" key="exec"',
        f'type=EXECVE msg=audit({now}.000:7): argc=1 a0="/bin/true"',
        f'type=PATH msg=audit({now}.000:7): item=0 name="/bin/true" inode={inode} dev={dev} mode=0100755 '
        f'ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0',
        f'type=PROCTITLE msg=audit({now}.000:7): proctitle=2F62696E2F74727565',
    ]
    plain = next(convert(lines, local_users=False))
    live = next(convert(lines, local_users=False, hash_images=True, proc_parents=True))
    with open(exe, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    assert (plain.get("Hashes"), live.get("Hashes")) == ("-", f"SHA256={digest}")
    assert plain.get("ParentImage") == "-"
    assert live.get("ParentImage") == os.path.realpath(sys.executable)
    assert live.get("ParentProcessGuid") != plain.get("ParentProcessGuid")
    older = [line.replace(f"({now}.000:7)", "(1000000000.000:7)") for line in lines]  # before this process
    assert next(convert(older, local_users=False, proc_parents=True)).get("ParentImage") == "-"


def test_compressed_standard_input_through_a_real_pipe_is_read_whole(tmp_path):
    import gzip

    out = tmp_path / "out.jsonl"
    proc = subprocess.run([sys.executable, "-m", "audit2sysmon", *FIXED, "-f", "json", "-o", str(out), "-"],
                          input=gzip.compress(DEV.read_bytes()), capture_output=True, timeout=DEADLINE)
    assert (0, b"") == (proc.returncode, proc.stderr)
    assert [json.loads(e.to_json())["Event"] for e in convert(DEV.read_bytes().splitlines(), **_api())] == events(out)
