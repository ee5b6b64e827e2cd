"""ProcessCreate end to end on real kernel captures: truth.json is what really ran."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from audit2sysmon import convert
from audit2sysmon.sysmon.guid import ZERO_GUID

LIVE = Path(__file__).parent / "fixtures" / "live"
PASSWD = LIVE / "passwd"
MACHINE = "3d1219c7"
EXEC_OK = re.compile(rb" syscall=(59|322) success=yes ")
INTERPRETED = {
    "interpreted-C-UTC.txt": "UTC",
    "interpreted-de_DE-Europe_Berlin.txt": "Europe/Berlin",
    "interpreted-en_US-America_Chicago.txt": "America/Chicago",
}


def _convert(path: Path, **options):
    with open(path, "rb") as handle:
        return list(convert(handle, machine_id=MACHINE, passwd=PASSWD, local_users=False, **options))


def _creates(events):
    return [e for e in events if e.event_id == 1]


def _resolved(path: str) -> str:
    """The executable as the kernel names it: /bin/sh on this Debian is /usr/bin/dash."""
    return os.path.realpath(path)


@pytest.fixture(scope="module", params=["dev-raw", "dev-enriched"])
def capture(request):
    folder = LIVE / request.param
    truth = json.loads((folder / "truth.json").read_text())
    return folder, truth, _creates(_convert(folder / "audit.log"))


def test_one_processcreate_per_successful_exec(capture):
    folder, _, creates = capture
    expected = len(EXEC_OK.findall((folder / "audit.log").read_bytes()))
    assert expected == len(creates)
    assert expected > 20


def test_every_truth_run_has_its_processcreate(capture):
    _, truth, creates = capture
    by_pid: dict[int, list] = {}
    for event in creates:
        by_pid.setdefault(int(event.get("ProcessId")), []).append(event)
    for run in truth["runs"]:
        if not run["success"]:
            continue
        event = by_pid[run["pid"]][0]
        argv = " ".join(run["argv"])
        line = event.get("CommandLine")
        if "shebang" in run["note"]:
            # The kernel runs the interpreter with the script as an argument; so does Sysmon.
            assert line.endswith(" " + argv)
            assert event.get("Image") == _resolved(line.split(" ")[0])
        else:
            assert argv == line
            assert _resolved(run["path"]) == event.get("Image")
        assert str(run["pid"]) == event.get("ProcessId")
        assert run["cwd"] == event.get("CurrentDirectory")
        assert run["user"] == event.get("User")
        uid = {"root": 0, "nobody": 65534, "cloudsdk": 1000}[run["user"]]
        assert str(uid) == event.get("LogonId")
        assert f"{uid:08x}" == _logon_uid_hex(event.get("LogonGuid"))
        assert str(run["ppid"]) == event.get("ParentProcessId")
        assert _resolved(truth["driver_exe"]) == event.get("ParentImage")
        assert " ".join(truth["driver_argv"]) == event.get("ParentCommandLine")
        assert "root" == event.get("ParentUser")
        if run["auid"] is None:
            assert "4294967295" == event.get("TerminalSessionId")
        else:
            assert event.get("TerminalSessionId") != "4294967295"


def _logon_uid_hex(guid: str) -> str:
    """LogonGuid bytes 8–11 (the uid, little-endian) as big-endian hex."""
    tail = guid.strip("{}").split("-")
    raw = bytes.fromhex(tail[3] + tail[4])[:4]
    return raw[::-1].hex()


def test_failed_exec_has_no_processcreate(capture):
    _, truth, creates = capture
    failed = [r for r in truth["runs"] if not r["success"]]
    assert failed
    for run in failed:
        assert not any(run["argv"][0] in e.get("CommandLine") for e in creates)


def test_children_name_their_parent_guid(capture):
    _, _, creates = capture
    guid_of = {}
    linked = 0
    for event in creates:
        parent = guid_of.get(event.get("ParentProcessId"))
        if parent is not None:
            assert parent == event.get("ParentProcessGuid")
            linked += 1
        guid_of[event.get("ProcessId")] = event.get("ProcessGuid")
    assert linked >= 4
    assert len({e.get("ProcessGuid") for e in creates}) == len(creates)


def test_process_guid_seconds_are_utc_time(capture):
    _, _, creates = capture
    from datetime import datetime, timezone

    for event in creates:
        parts = event.get("ProcessGuid").strip("{}").split("-")
        secs = int(parts[2] + parts[1], 16)
        utc = datetime.strptime(event.get("UtcTime"), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        assert int(utc.timestamp()) == secs
        assert parts[0] == MACHINE


@pytest.mark.parametrize("folder", ["dev-raw", "dev-enriched"])
@pytest.mark.parametrize("name", sorted(INTERPRETED))
def test_interpreted_text_gives_the_same_events(folder, name):
    raw = _creates(_convert(LIVE / folder / "audit.log"))
    text = _creates(_convert(LIVE / folder / name, tz=ZoneInfo(INTERPRETED[name])))
    # EventRecordIDs count events and both inputs hold the same events: compare everything.
    assert [e.fields for e in raw] == [e.fields for e in text]


def test_converting_twice_gives_identical_output():
    first = [e.to_syslog() for e in _convert(LIVE / "dev-raw" / "audit.log")]
    second = [e.to_syslog() for e in _convert(LIVE / "dev-raw" / "audit.log")]
    assert first == second


def syscall_line(serial: int, call: str, pid: int, ppid: int, exe: str) -> str:
    """An x86_64 SYSCALL record as the kernel writes it; `call` is `syscall=N` and its outcome."""
    return (
        f"type=SYSCALL msg=audit(1700000000.{serial:03d}:{serial}): arch=c000003e {call} "
        f"a0=1 a1=2 a2=3 a3=4 items=1 ppid={ppid} pid={pid} auid=0 uid=0 gid=0 euid=0 suid=0 "
        f'fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="x" exe="{exe}" key=(null)'
    )


EXEC = "syscall=59 success=yes exit=0"
OPEN = "syscall=2 success=yes exit=3"


def test_pid_reuse_does_not_inherit_the_old_identity():
    """pid 500 runs /usr/bin/old, exits; a new pid 500 (seen via another syscall) is someone else."""
    lines = [
        syscall_line(1, EXEC, pid=500, ppid=1, exe="/usr/bin/old"),
        syscall_line(2, "syscall=231", pid=500, ppid=1, exe="/usr/bin/old"),
        syscall_line(3, OPEN, pid=500, ppid=1, exe="/usr/bin/new"),
        syscall_line(4, EXEC, pid=501, ppid=500, exe="/usr/bin/child"),
    ]
    events = list(convert(lines, hostname="h", machine_id="01020304", local_users=False))
    old, terminated, child = events
    assert (5, old.get("ProcessGuid")) == (terminated.event_id, terminated.get("ProcessGuid"))
    assert "/usr/bin/new" == child.get("ParentImage")
    assert old.get("ProcessGuid") != child.get("ParentProcessGuid")
    assert ZERO_GUID != child.get("ParentProcessGuid")


def test_parent_seen_only_later_is_waited_for():
    """A child whose parent shows up in the log after it still names that parent."""
    lines = [
        syscall_line(1, EXEC, pid=78, ppid=77, exe="/usr/bin/kid"),
        syscall_line(2, OPEN, pid=77, ppid=1, exe="/usr/bin/dad"),
    ]
    held = list(convert(lines, hostname="h", machine_id="01020304", local_users=False))
    assert "/usr/bin/dad" == held[0].get("ParentImage")
    live = list(convert(lines, hostname="h", machine_id="01020304", local_users=False, hold_events=False))
    assert "-" == live[0].get("ParentImage")
    assert ZERO_GUID == live[0].get("ParentProcessGuid")
