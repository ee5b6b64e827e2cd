"""`--follow` against a real auditd that rotates its log: every exec exactly once.

A follower looks at the log's name a few times a second. When auditd rotates twice between two
looks, or the follower is stalled (CPU starvation, a blocked output pipe) while it rotates
several times, the files in between must still be read, oldest first; and when auditd has
already removed one of them (``num_logs``), the events it held are reported lost, by the
serial numbers they skipped. Only execve is audited here, so the log is small and every exec
of the workload is one ``/bin/true <tag>`` ProcessCreate that must appear exactly once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .auditd_capture import RULE_KEY, PrivateAuditd

pytestmark = pytest.mark.live

EXEC_RULES = [["-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", RULE_KEY]]
# Rotated only when told (SIGUSR1): never by size during a test.
ROTATING = {"max_log_file": "1000", "max_log_file_action": "ROTATE", "num_logs": "99"}
EXECS = 20
DEADLINE = 60.0


def run_execs(tag: str, count: int = EXECS) -> list[str]:
    """Exec `/bin/true <tag>-<i>` `count` times, as fast as a shell loop can; their command lines."""
    subprocess.run(["/bin/sh", "-c", f'for i in $(seq 1 {count}); do /bin/true {tag}-$i; done'], check=True)
    return [f"/bin/true {tag}-{i}" for i in range(1, count + 1)]


@contextmanager
def follower(log: Path, out: Path, err: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`audit2sysmon --follow -f json --stats -o out log` in its own process; SIGTERM at the end."""
    command = [sys.executable, "-m", "audit2sysmon", "--follow", "-f", "json", "--stats",
               "--no-local-users", "--tz", "UTC", "-o", str(out), str(log)]
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(command, stderr=stderr)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise


def command_lines(out: Path) -> Counter[str]:
    """How often each ProcessCreate CommandLine was written."""
    seen: Counter[str] = Counter()
    if out.exists():
        for line in out.read_bytes().splitlines():
            event = json.loads(line)["Event"]
            if event["System"]["EventID"] == 1:
                seen[event["EventData"]["CommandLine"]] += 1
    return seen


def wait_for_command(out: Path, command: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while command not in command_lines(out):
        if time.monotonic() > deadline:
            raise AssertionError(f"the follower did not write {command!r} within {DEADLINE} s")
        time.sleep(0.05)


def finish(auditd: PrivateAuditd, out: Path, proc: subprocess.Popen[bytes]) -> None:
    """Let auditd write everything, wait until the follower wrote the last exec, then stop it."""
    last = run_execs("a2s-follow-last", 1)[0]
    auditd.wait_for_marker()
    wait_for_command(out, last)
    proc.send_signal(signal.SIGTERM)
    assert 0 == proc.wait(timeout=DEADLINE)


@pytest.fixture
def auditd(tmp_path: Path, live_machine: None, request: pytest.FixtureRequest) -> Iterator[PrivateAuditd]:
    settings = {**ROTATING, **getattr(request, "param", {})}
    directory = tmp_path / "auditd"
    directory.mkdir(mode=0o750)
    with PrivateAuditd(directory, "RAW", rules=EXEC_RULES, settings=settings) as running:
        yield running


def test_two_rotations_between_two_looks_lose_nothing(auditd: PrivateAuditd, tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    expected: list[str] = []
    with follower(auditd.log, out, err) as proc:
        expected += run_execs("a2s-follow-warm")
        wait_for_command(out, expected[-1])
        for round_ in range(5):  # the middle file of each pair lives for about 20 execs
            expected += run_execs(f"a2s-follow-r{round_}a")
            auditd.rotate()
            expected += run_execs(f"a2s-follow-r{round_}b")
            auditd.rotate()
        expected += run_execs("a2s-follow-tail")
        finish(auditd, out, proc)
    seen = command_lines(out)
    assert {} == {command: seen[command] for command in expected if seen[command] != 1}
    assert b"never reached the log" not in err.read_bytes()


def test_a_stalled_follower_reads_every_file_it_missed(auditd: PrivateAuditd, tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    expected: list[str] = []
    with follower(auditd.log, out, err) as proc:
        expected += run_execs("a2s-follow-warm")
        wait_for_command(out, expected[-1])
        proc.send_signal(signal.SIGSTOP)  # starved: it looks at nothing for 3 s
        started = time.monotonic()
        for round_ in range(4):
            expected += run_execs(f"a2s-follow-stalled{round_}", 50)
            auditd.rotate()
        time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
        proc.send_signal(signal.SIGCONT)
        expected += run_execs("a2s-follow-tail")
        finish(auditd, out, proc)
    seen = command_lines(out)
    assert {} == {command: seen[command] for command in expected if seen[command] != 1}
    assert b"never reached the log" not in err.read_bytes()


@pytest.mark.parametrize("auditd", [{"num_logs": "2"}], indirect=True)
def test_a_file_removed_before_it_was_read_is_reported_lost(auditd: PrivateAuditd, tmp_path: Path) -> None:
    """With num_logs = 2 auditd keeps one rotated file: three rotations while the follower is
    stopped remove the second file it would have read. Its execs cannot be converted; the
    serial numbers they skipped say how many events were lost, and where."""
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    with follower(auditd.log, out, err) as proc:
        kept = run_execs("a2s-follow-warm")
        wait_for_command(out, kept[-1])
        proc.send_signal(signal.SIGSTOP)
        kept += run_execs("a2s-follow-held")  # in the file the follower has open
        auditd.rotate()
        lost = run_execs("a2s-follow-removed", 50)  # in the file that will be removed
        auditd.rotate()
        kept += run_execs("a2s-follow-rotated")
        auditd.rotate()
        kept += run_execs("a2s-follow-live")
        proc.send_signal(signal.SIGCONT)
        finish(auditd, out, proc)
    seen = command_lines(out)
    assert {} == {command: seen[command] for command in kept if seen[command] != 1}
    assert {} == {command: seen[command] for command in lost if seen[command]}
    report = err.read_text()
    warnings = [line for line in report.splitlines() if "never reached the log" in line]
    assert len(warnings) == 1, report
    lost_count = int(report.split("audit events lost before reading")[1].split()[0])
    assert lost_count >= len(lost), report  # each exec is one event; other execs of the machine may add some
    assert str(auditd.log) in warnings[0]  # the first record after the gap is in the live log
