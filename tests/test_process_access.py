"""ProcessAccess (EventID 10) from ptrace, against real Sysmon for Linux on the same workload.

`fixtures/live/pair-events-dev`: a tracer attached to a process (PTRACE_ATTACH), and a non-main
thread of a tracer attached to a thread of that process. auditd logged each as a SYSCALL record
(`-S ptrace`) with the target in an OBJ_PID record. Every field of ours must be Sysmon's, up to
the differences docs/mapping.md lists: SourceThreadId (audit records carry no thread id: ours
is the tracer's pid) and SourceUser (Sysmon 1.5.2 named the wrong user for root tracers).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

from audit2sysmon import convert
from audit2sysmon.sysmon.guid import ZERO_GUID

PAIR = Path(__file__).parent / "fixtures" / "live" / "pair-events-dev"
EVENT_ID = re.compile(r"<EventID>(\d+)</EventID>")
DATA = re.compile(r'<Data Name="([A-Za-z]+)">(.*?)</Data>')
SAME = ("RuleName", "SourceProcessId", "SourceImage", "TargetProcessId", "TargetImage", "GrantedAccess",
        "CallTrace", "TargetUser")


def sysmon(event_id: int) -> list[dict[str, str]]:
    return [
        {k: html.unescape(v) for k, v in DATA.findall(line)}
        for line in (PAIR / "sysmon.log").read_text(encoding="utf-8").splitlines()
        if (m := EVENT_ID.search(line)) and int(m.group(1)) == event_id
    ]


def ours() -> list:
    theirs = sysmon(10)
    machine = theirs[0]["SourceProcessGUID"][1:9]
    lines = (PAIR / "audit.log").read_bytes().splitlines()
    return list(convert(lines, machine_id=machine, hostname="vm", passwd=PAIR.parent / "passwd", local_users=False))


def test_every_attach_sysmon_logged_is_ours_field_for_field():
    events = ours()
    mine = [dict(e.fields) for e in events if e.event_id == 10]
    theirs = sysmon(10)
    assert len(mine) == len(theirs) == 2
    for sysmon_event, event in zip(theirs, mine):
        assert {n: sysmon_event[n] for n in SAME} == {n: event[n] for n in SAME}
        assert event["SourceThreadId"] == event["SourceProcessId"]  # no thread id in audit records
        assert event["SourceUser"] == "root"  # the tracer ran as root (truth.json): Sysmon said news
        assert sysmon_event["SourceProcessGUID"][:9] == event["SourceProcessGUID"][:9]
        delta = datetime.fromisoformat(event["UtcTime"]) - datetime.fromisoformat(sysmon_event["UtcTime"])
        assert abs(delta.total_seconds()) < 1.0
    # The second attach names a thread of the target: TargetProcessId is that thread's id,
    # the target's identity (GUID, image) the process's, as in Sysmon.
    assert mine[1]["TargetProcessId"] != mine[0]["TargetProcessId"]
    assert mine[1]["TargetProcessGUID"] == mine[0]["TargetProcessGUID"] != ZERO_GUID


def test_source_and_target_guids_are_those_of_their_process_create_events():
    events = ours()
    created = {e.get("ProcessId"): e.get("ProcessGuid") for e in events if e.event_id == 1}
    for event in (e for e in events if e.event_id == 10):
        assert event.get("SourceProcessGUID") == created[event.get("SourceProcessId")]
        assert event.get("TargetProcessGUID") in created.values()


def test_requests_that_do_not_attach_are_not_process_access():
    """The capture also audited PTRACE_DETACH (0x11): Sysmon does not log it, nor do we."""
    log = (PAIR / "audit.log").read_text(encoding="utf-8")
    requests = re.findall(r"syscall=101 success=yes exit=0 a0=(\w+)", log)
    assert {"10", "11"} <= set(requests) and requests.count("10") == 2
    assert sum(1 for e in ours() if e.event_id == 10) == requests.count("10") + requests.count("4206")


def test_ausearch_i_text_of_an_attach_is_the_same_event():
    """`ausearch -i` of the first attach (as it printed it): the request by name, the pid in
    `0x` hex, the owner by name."""
    text = [
        "node=vm type=PROCTITLE msg=audit(12/02/26 08:28:03.233:245631) : proctitle=/usr/bin/python3 ptr2.py 15899 ",
        "node=vm type=OBJ_PID msg=audit(12/02/26 08:28:03.233:245631) : opid=15899 oauid=unset ouid=root oses=-1 "
        "ocomm=python3 ",
        "node=vm type=SYSCALL msg=audit(12/02/26 08:28:03.233:245631) : arch=x86_64 syscall=ptrace success=yes exit=0 "
        "a0=PTRACE_ATTACH a1=0x3e1b a2=0x0 a3=0x0 items=0 ppid=15898 pid=15902 auid=unset uid=root gid=root euid=root "
        "suid=root fsuid=root egid=root sgid=root fsgid=root tty=(none) ses=unset comm=python3 exe=/usr/bin/python3.11 "
        "key=ptrace ",
    ]
    from zoneinfo import ZoneInfo

    (event,) = [e for e in convert(text, tz=ZoneInfo("UTC"), local_users=False) if e.event_id == 10]
    raw = next(e for e in ours() if e.event_id == 10)
    assert (event.get("TargetProcessId"), event.get("SourceProcessId"), event.get("TargetUser"), event.get("UtcTime")) \
        == (raw.get("TargetProcessId"), raw.get("SourceProcessId"), raw.get("TargetUser"), raw.get("UtcTime"))
