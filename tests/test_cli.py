"""The audit2sysmon command end to end on real captures: formats, inputs, reports, exit codes."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cli_setup import API, DEV, FIXED, LIVE, UTC
from lxml import etree

from audit2sysmon import convert
from audit2sysmon.cli import main
from audit2sysmon.inputs import order_inputs

EXEC_OK = re.compile(rb" syscall=(?:59|322) success=yes ")
RENDER = {
    "syslog": lambda event: event.to_syslog(UTC),
    "xml": lambda event: event.to_xml(),
    "json": lambda event: event.to_json(),
}
SYSLOG_HEAD = re.compile(rb"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d vm sysmon: (<Event>.*</Event>)\Z")


def dev_lines() -> list[bytes]:
    return DEV.read_bytes().splitlines(keepends=True)


def expected(lines: list[bytes], fmt: str = "syslog", **options) -> bytes:
    """What the library makes of the same lines: the CLI must add nothing and lose nothing."""
    render = RENDER[fmt]
    return b"".join((render(event) + "\n").encode() for event in convert(lines, **{**API, **options}))


def cli(capsys, tmp_path: Path, *argv: object) -> tuple[int, bytes, str]:
    """Run the command in-process with output to a file: (status, output bytes, stderr)."""
    out = tmp_path / "out.log"
    out.unlink(missing_ok=True)
    status = main([*FIXED, "-o", str(out), *map(str, argv)])
    return status, out.read_bytes() if out.exists() else b"", capsys.readouterr().err


def split_at_child(lines: list[bytes]) -> int:
    """Index of a child's exec SYSCALL line whose parent's exec comes earlier in the log."""
    events = [e for e in convert(lines, **API) if e.event_id == 1]
    guids = {e.get("ProcessGuid"): e for e in events}
    for child in events:
        parent = guids.get(child.get("ParentProcessGuid"))
        if parent is None:
            continue
        pattern = re.compile(rb" syscall=(?:59|322) success=yes .* pid=%s " % child.get("ProcessId").encode())
        parent_at = next(i for i, l in enumerate(lines) if b" pid=%s " % parent.get("ProcessId").encode() in l
                         and EXEC_OK.search(l))
        return next(i for i, l in enumerate(lines) if i > parent_at and pattern.search(l))
    raise AssertionError("no parent/child pair in the capture")


# -- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["syslog", "xml", "json"])
def test_every_format_converts_every_exec(capsys, tmp_path, fmt):
    status, out, err = cli(capsys, tmp_path, "-f", fmt, "--events", "1", DEV)
    assert (0, "") == (status, err)
    lines = out.splitlines()
    assert len(EXEC_OK.findall(DEV.read_bytes())) == len(lines)
    for line in lines:
        if fmt == "json":
            event = json.loads(line)["Event"]
            assert 1 == event["System"]["EventID"]
            assert event["EventData"]["Image"].startswith("/")
            continue
        if fmt == "syslog":
            match = SYSLOG_HEAD.match(line)
            assert match, line
            line = match.group(1)
        root = etree.fromstring(line)
        assert "1" == root.findtext("System/EventID")
        assert "testhost" != root.findtext("System/Computer")  # the log's node= wins
    assert expected(dev_lines(), fmt, events=frozenset({1})) == out


def test_events_selects_the_event_kinds(capsys, tmp_path):
    status, out, _ = cli(capsys, tmp_path, "-f", "xml", "--events", "5,11", DEV)
    kinds = {etree.fromstring(line).findtext("System/EventID") for line in out.splitlines()}
    assert (0, {"5", "11"}) == (status, kinds)
    assert 2 == main([*FIXED, "--events", "1,2", str(DEV)])


def test_syslog_header_in_the_given_zone(capsys, tmp_path):
    _, utc, _ = cli(capsys, tmp_path, DEV)
    _, berlin, _ = cli(capsys, tmp_path, "--tz", "Europe/Berlin", DEV)
    first_utc, first_berlin = utc.splitlines()[0], berlin.splitlines()[0]
    stamp = datetime.strptime(first_utc[:15].decode(), "%b %d %H:%M:%S")
    local = datetime.strptime(first_berlin[:15].decode(), "%b %d %H:%M:%S")
    assert 3600 == (local - stamp).total_seconds()  # the capture is in November: CET
    assert first_utc[15:] == first_berlin[15:]


def test_hostname_names_lines_without_node(capsys, tmp_path):
    bare = tmp_path / "bare.log"
    bare.write_bytes(DEV.read_bytes().replace(b"node=vm ", b""))
    _, out, _ = cli(capsys, tmp_path, "-f", "xml", bare)
    computers = {etree.fromstring(line).findtext("System/Computer") for line in out.splitlines()}
    assert {"testhost"} == computers


def test_time_created_now_is_the_conversion_time(capsys, tmp_path):
    before = datetime.now(timezone.utc)
    _, out, _ = cli(capsys, tmp_path, "-f", "xml", "--time-created", "now", DEV)
    after = datetime.now(timezone.utc)
    for line in out.splitlines():
        stamp = etree.fromstring(line).find("System/TimeCreated").get("SystemTime")
        moment = datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
        assert before.replace(microsecond=0) <= moment <= after


# -- inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["-"]], ids=["no-file", "dash"])
def test_standard_input(capsys, tmp_path, monkeypatch, args):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(DEV.read_bytes())))
    status, out, _ = cli(capsys, tmp_path, *args)
    assert 0 == status
    assert expected(dev_lines()) == out


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gz", "bz2", "xz"])
def test_compressed_input_by_magic_bytes(capsys, tmp_path, compress):
    packed = tmp_path / "audit-archive"  # no telling suffix: the magic bytes decide
    packed.write_bytes(compress(DEV.read_bytes()))
    status, out, err = cli(capsys, tmp_path, packed)
    assert (0, "") == (status, err)
    assert expected(dev_lines()) == out


def test_compressed_standard_input(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(DEV.read_bytes()))))
    assert expected(dev_lines()) == cli(capsys, tmp_path)[1]


@pytest.fixture
def rotated(tmp_path):
    """dev-raw split so that a parent's exec is in audit.log.1 and its child's in audit.log."""
    lines = dev_lines()
    cut = split_at_child(lines)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "audit.log.2.gz").write_bytes(gzip.compress(b"".join(lines[: cut // 2])))
    (logs / "audit.log.1").write_bytes(b"".join(lines[cut // 2 : cut]))
    (logs / "audit.log").write_bytes(b"".join(lines[cut:]))
    (logs / "unrelated.txt").write_bytes(b"not an audit log\n")
    return logs, lines, cut


def test_rotated_set_carries_processes_across_files(capsys, tmp_path, rotated):
    logs, lines, cut = rotated
    shuffled = [logs / "audit.log", logs / "audit.log.2.gz", logs / "audit.log.1"]
    status, out, err = cli(capsys, tmp_path, "-f", "xml", *shuffled)
    assert (0, "") == (status, err)
    assert expected(lines, "xml") == out
    events = [etree.fromstring(line) for line in out.splitlines()]
    data = [{d.get("Name"): d.text for d in e.iter("Data")} for e in events]
    guids = {d["ProcessGuid"] for d in data}
    child_pid = re.search(rb" pid=(\d+) ", lines[cut]).group(1).decode()
    child = next(d for d in data if d["ProcessId"] == child_pid and d["ParentProcessGuid"] in guids)
    parent = next(d for d in data if d["ProcessGuid"] == child["ParentProcessGuid"])
    assert child["ParentProcessId"] == parent["ProcessId"]
    assert child["ParentImage"] == parent["Image"]


def test_directory_is_its_rotated_set(capsys, tmp_path, rotated):
    logs, lines, _ = rotated
    status, out, err = cli(capsys, tmp_path, logs)
    assert (0, "") == (status, err)
    assert expected(lines) == out


def test_rotation_order():
    given = ["b.log", "audit.log", "audit.log.10", "-", "audit.log.2.gz", "audit.log.1", "b.log.1"]
    assert ["b.log.1", "b.log", "audit.log.10", "audit.log.2.gz", "audit.log.1", "audit.log", "-"] == (
        order_inputs(given)
    )


def test_input_format_rejects_the_other_form(capsys, tmp_path):
    stats = _stats(capsys, tmp_path, "--input-format", "interpreted", DEV)
    assert DEV.read_bytes().count(b"\n") == stats["rejected"]
    assert 0 == stats["events written"]
    assert "raw audit record, but the input format is interpreted" in cli(capsys, tmp_path, "--input-format", "interpreted", DEV)[2]


# -- malformed lines -----------------------------------------------------------------------

GARBAGE = [b"this is not an audit record\n", b"type=SYSCALL msg=audit(12\n", b"\xff\xfe\x00 binary junk\n"]


def test_malformed_lines_are_reported_and_kept(capsys, tmp_path):
    lines = dev_lines()
    dirty = list(lines)
    positions = [3, 100, 400]  # 0-based; inserted front to back
    for pos, bad in zip(positions, GARBAGE):
        dirty.insert(pos, bad)
    dirty.insert(200, b"\n")  # blank: skipped, not rejected
    log = tmp_path / "dirty.log"
    log.write_bytes(b"".join(dirty))
    rejects = tmp_path / "rejects.log"
    status, out, err = cli(capsys, tmp_path, "--rejects", rejects, log)
    assert 0 == status
    assert expected(lines) == out
    reported = err.splitlines()
    bad_numbers = [i + 1 for i, line in enumerate(dirty) if line in GARBAGE]
    assert [f"{log}:{n}:" for n in bad_numbers] == [re.match(r"(.*?:\d+:)", r).group(1) for r in reported]
    assert b"".join(GARBAGE) == rejects.read_bytes()


def test_malformed_line_reports_are_rate_limited(capsys, tmp_path):
    log = tmp_path / "bad.log"
    log.write_bytes(b"garbage %d\n" * 25 % tuple(range(25)))
    status, out, err = cli(capsys, tmp_path, log)
    assert (0, b"") == (status, out)
    reported = err.splitlines()
    assert [f"{log}:{n}:" for n in range(1, 21)] == [re.match(r"(.*?:\d+:)", r).group(1) for r in reported[:20]]
    assert 21 == len(reported)
    assert "5 more malformed" in reported[-1]


# -- exit status ---------------------------------------------------------------------------


def test_unreadable_file_is_named_and_the_others_converted(capsys, tmp_path):
    missing = tmp_path / "gone.log"
    status, out, err = cli(capsys, tmp_path, missing, DEV)
    assert 1 == status
    assert f"cannot read {missing}: No such file or directory" in err
    assert expected(dev_lines()) == out


def test_damaged_archive_is_a_read_error(capsys, tmp_path):
    broken = tmp_path / "audit.log.1.gz"
    broken.write_bytes(gzip.compress(DEV.read_bytes())[:5000])
    status, _, err = cli(capsys, tmp_path, broken)
    assert 1 == status
    assert re.search(rf"{re.escape(str(broken))}: read error after line \d+: ", err)


def test_directory_without_audit_logs(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = cli(capsys, tmp_path, empty)
    assert 1 == status
    assert f"no audit.log files in directory {empty}" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--no-such-option"],
        ["-f", "csv"],
        ["--tz", "Mars/Olympus"],
        ["--machine-id", "xyz"],
        ["--window-events", "0"],
        ["--window-ms", "soon"],
        ["--input-format", "binary"],
        ["--passwd", "/nonexistent/passwd"],
    ],
)
def test_usage_errors_exit_2(capsys, tmp_path, argv):
    status = main([*argv, "-o", str(tmp_path / "out"), str(DEV)])
    err = capsys.readouterr().err
    assert 2 == status
    assert "error:" in err


def test_help_and_version(capsys):
    assert 0 == main(["--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--follow" in text and "--window-ms" in text
    assert 0 == main(["--version"])
    from audit2sysmon.audit import parse

    build = "pure Python" if parse.__file__.endswith(".py") else "compiled"
    why = "(: .+)?" if build == "pure Python" else ""  # the reason a wheel recorded: tests/test_build.py
    assert re.fullmatch(rf"audit2sysmon \d+\.\d+\.\d+\S* \({build}{why}\)\n", capsys.readouterr().out)


# -- stats and progress ----------------------------------------------------------------------

STAT_ROW = re.compile(r"\s+(\S.*?)\s{2,}(\d+)$")


def _stats(capsys, tmp_path, *argv) -> dict[str, int]:
    _, _, err = cli(capsys, tmp_path, "--stats", *argv)
    rows = {}
    for line in err.splitlines():
        match = STAT_ROW.match(line)
        if match:
            rows[match.group(1).split(" (")[0].strip()] = int(match.group(2))
    return rows


def test_stats_add_up(capsys, tmp_path):
    log = tmp_path / "mixed.log"
    data = DEV.read_bytes()
    log.write_bytes(b"# a comment\n\n" + data + b"".join(GARBAGE))
    stats = _stats(capsys, tmp_path, log, DEV)
    total_lines = 2 * data.count(b"\n") + 2 + len(GARBAGE)
    assert total_lines == stats["lines read"]
    assert stats["lines read"] == stats["records"] + stats["skipped"] + stats["rejected"]
    assert (2, len(GARBAGE)) == (stats["skipped"], stats["rejected"])
    assert 2 * len(EXEC_OK.findall(data)) == stats["successful execve/execveat"]
    assert stats["successful execve/execveat"] == stats["ProcessCreate events written"]
    assert stats["records"] > stats["audit events"] > 0


def test_log_takes_the_messages_that_go_to_standard_error(capsys, tmp_path):
    """--log appends what the command says (rejected lines, --stats) to a file, for an auditd
    plugin whose standard error is /dev/null; two runs append to one log."""
    log = tmp_path / "mixed.log"
    log.write_bytes(DEV.read_bytes() + b"".join(GARBAGE))
    messages = tmp_path / "audit2sysmon.err"
    for _ in range(2):
        status, out, err = cli(capsys, tmp_path, "--stats", "--log", messages, log)
        assert (status, err) == (0, "") and out
    text = messages.read_text(encoding="utf-8")
    plain_status, _, plain_err = cli(capsys, tmp_path, "--stats", log)
    assert plain_status == 0 and text == 2 * plain_err
    assert text.count("audit2sysmon: statistics") == 2 and "mixed.log:" in text
    status, _, err = cli(capsys, tmp_path, "--log", tmp_path / "no" / "such" / "dir" / "x.err", log)
    assert status == 1 and "cannot write" in err and "x.err" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(capsys, tmp_path, monkeypatch):
    status, _, err = cli(capsys, tmp_path, DEV)
    assert (0, "") == (status, err)  # captured stderr is not a terminal: no bar
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert 0 == main([*FIXED, "-o", str(tmp_path / "out"), str(DEV)])
    assert "B/s" in terminal.getvalue() or "100%" in terminal.getvalue()


def test_progress_bar_with_jobs_starts_no_thread_before_the_workers_fork(tmp_path, monkeypatch):
    """tqdm's monitor thread would be running when --jobs forks its workers."""
    from tqdm._monitor import TMonitor

    monkeypatch.setattr(sys, "stderr", _Terminal())
    outputs = []
    for jobs in ("1", "2"):
        assert 0 == main([*FIXED, "-j", jobs, "-o", str(tmp_path / f"out{jobs}"), str(DEV)])
        assert not any(isinstance(t, TMonitor) for t in threading.enumerate())
        outputs.append((tmp_path / f"out{jobs}").read_bytes())
    assert outputs[0] == outputs[1] and outputs[0]


# -- the installed command -----------------------------------------------------------------


def test_module_entry_point(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "audit2sysmon", *FIXED, "-f", "json", str(DEV)],
        capture_output=True,
        check=False,
    )
    assert (0, b"") == (done.returncode, done.stderr)
    assert expected(dev_lines(), "json") == done.stdout
    bad = subprocess.run([sys.executable, "-m", "audit2sysmon", "--format", "csv"], capture_output=True, check=False)
    assert 2 == bad.returncode
    assert b"invalid choice" in bad.stderr


def test_closed_pipe_is_quiet(tmp_path):
    big = LIVE / "busy-raw" / "audit.log"  # large and undamaged: stderr must stay empty
    done = subprocess.run(
        f"{sys.executable} -m audit2sysmon {' '.join(FIXED)} {big} | head -n 1",
        shell=True,
        capture_output=True,
        check=False,
    )
    assert 1 == done.stdout.count(b"\n")
    assert b"" == done.stderr


def test_damaged_events_are_converted_and_reported(capsys, tmp_path):
    """An exec whose EXECVE lost an argument is written, and the damage named with its line."""
    log = tmp_path / "cut.log"
    lines = [line for line in DEV.read_bytes().splitlines(keepends=True)]
    index = next(i for i, line in enumerate(lines) if b"type=EXECVE" in line and b"argc=2 " in line)
    lines[index] = re.sub(rb" a1=\S+", b"", lines[index])
    log.write_bytes(b"".join(lines))
    status, out, err = cli(capsys, tmp_path, "--stats", "--events", "1", log)
    assert 0 == status
    assert f"{log}:{index + 1}: " in err and "argument(s) missing" in err
    assert "converted events with damage, by kind:" in err
    assert len(EXEC_OK.findall(DEV.read_bytes())) == len(out.splitlines())
