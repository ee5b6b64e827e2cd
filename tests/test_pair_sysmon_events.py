"""Our ProcessTerminate, FileCreate and FileDelete against real Sysmon for Linux 1.5.2.

`fixtures/live/pair-dev` holds what auditd and Sysmon wrote for the same workload. Every event
of ours must have its Sysmon twin (same pid, and same TargetFilename for file events) agreeing
field by field up to the differences docs/mapping.md lists; Sysmon's events that audit could
not see (before the rules were loaded, or of syscalls no rule asked for) are listed here with
the reason, so a new unexplained one fails.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from test_pair_sysmon import DATA, EVENT_ID, PAIR, _unescape

from audit2sysmon import convert
from audit2sysmon.sysmon.guid import ZERO_GUID

# Sysmon events with no audit record behind them, and why (checked in the log below).
SYSMON_ONLY = {
    # auditd writing its pid file and log: before any rule was loaded.
    (11, "2417", "/run/auditd.pid"), (11, "2417", "/tmp/a2s-wl/log/audit.log"),
    # a write of /proc/self/loginuid: Sysmon's "new file" test (atime == mtime == ctime) holds for
    # proc files; the open created nothing, and no rule audits opens without O_CREAT.
    (11, "2449", "/proc/2449/loginuid"),
}


def _sysmon(event_id: int) -> list[dict[str, str]]:
    events = []
    for line in (PAIR / "sysmon.log").read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        match = EVENT_ID.search(line)
        if match and int(match.group(1)) == event_id:
            events.append({k: _unescape(v) for k, v in DATA.findall(line)})
    return events


@pytest.fixture(scope="module")
def ours() -> list:
    machine = _sysmon(1)[0]["ProcessGuid"][1:9]
    with open(PAIR / "audit.log", "rb") as log:
        return list(convert(log, machine_id=machine, passwd=PAIR.parent / "passwd", local_users=False))


def _close_in_time(a: str, b: str) -> bool:
    """Sysmon's clock is boot time + uptime : a few ms off the audit stamp."""
    return abs((datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds()) < 1.0


def test_every_terminate_has_its_sysmon_twin(ours):
    theirs = {t["ProcessId"]: t for t in _sysmon(5)}
    creates = {e.get("ProcessId"): e.get("ProcessGuid") for e in ours if e.event_id == 1}
    sysmon_creates = {t["ProcessId"]: t["ProcessGuid"] for t in _sysmon(1)}
    terminates = [e for e in ours if e.event_id == 5]
    assert len(terminates) > 20
    audit_exits = (PAIR / "audit.log").read_bytes().count(b" syscall=231 ")
    assert len(terminates) == audit_exits
    for event in terminates:
        pid = event.get("ProcessId")
        twin = theirs[pid]
        assert twin["User"] == event.get("User"), pid
        assert _close_in_time(twin["UtcTime"], event.get("UtcTime")), pid
        if twin["Image"] == "-":
            # Sysmon caches a forked child that never exec'd without a path; we know it still
            # runs its parent's image (documented difference).
            assert event.get("Image") == "/usr/bin/python3.11"
        else:
            assert twin["Image"] == event.get("Image"), pid
        # The terminate links to the create of the same process, in both.
        assert (twin["ProcessGuid"] == sysmon_creates.get(pid)) == (event.get("ProcessGuid") == creates.get(pid))
        assert event.get("ProcessGuid") != ZERO_GUID


@pytest.mark.parametrize("event_id", [11, 23])
def test_every_file_event_has_its_sysmon_twin(ours, event_id):
    theirs = {(t["ProcessId"], t["TargetFilename"]): t for t in _sysmon(event_id)}
    mine = [e for e in ours if e.event_id == event_id]
    assert mine
    for event in mine:
        twin = theirs[(event.get("ProcessId"), event.get("TargetFilename"))]
        for name in ("RuleName", "Image", "User"):
            assert twin[name] == event.get(name), name
        assert _close_in_time(twin["UtcTime"], event.get("UtcTime"))
        if event_id == 11:
            assert event.get("CreationUtcTime") == event.get("UtcTime")
            assert twin["CreationUtcTime"] == twin["UtcTime"]
        else:
            assert [twin[f] for f in ("Hashes", "IsExecutable", "Archived")] == ["-", "-", "-"]
    matched = {(event_id, e.get("ProcessId"), e.get("TargetFilename")) for e in mine}
    unmatched = {(event_id, pid, name) for pid, name in theirs} - matched
    assert unmatched == {key for key in SYSMON_ONLY if key[0] == event_id}


def test_sysmon_only_file_events_have_no_audit_record():
    log = (PAIR / "audit.log").read_text(encoding="utf-8", errors="replace")
    for _, pid, name in SYSMON_ONLY:
        assert name not in log
    first_rule = re.search(r"audit\((\d+)\.(\d+):\d+\): .*op=add_rule", log)
    rules_from = datetime.fromtimestamp(int(first_rule.group(1)), timezone.utc).replace(
        microsecond=int(first_rule.group(2)) * 1000, tzinfo=None)
    auditd = [t for t in _sysmon(11) if t["ProcessId"] == "2417"]
    assert auditd and all(datetime.fromisoformat(t["UtcTime"]) < rules_from for t in auditd)
