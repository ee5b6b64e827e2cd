"""Every event of ours against real Sysmon for Linux 1.5.2's, field by field, on one real pair.

`fixtures/live/pair-events-dev` holds what auditd and Sysmon (collect-all, hashes on) wrote for
the same workload: ptrace by and of threads, and many ways of creating and removing files. Each
event is matched to its twin by EventID, process and object (the file, the traced pid); the
twins must agree on every field. The only allowances are the differences docs/mapping.md lists,
each written below with the narrowest check that still holds, so a new difference, or a listed
one that no longer happens, fails.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from test_pair_sysmon import DATA, EVENT_ID, _unescape

from audit2sysmon import convert
from audit2sysmon.sysmon.guid import ZERO_GUID

PAIR = Path(__file__).parent / "fixtures" / "live" / "pair-events-dev"
TRUTH = json.loads((PAIR / "truth.json").read_text(encoding="utf-8"))
RUNS = {str(run["pid"]): run for run in TRUTH["runs"]}
DRIVER = str(TRUTH["driver_pid"])
F = "/tmp/a2s-wl/ev/f/"

Fields = dict[str, str]
Key = tuple[int, tuple[str, ...]]
# What identifies an event's twin: its process and the object it acts on.
KEYS = {
    1: ("ProcessId",),
    5: ("ProcessId",),
    10: ("SourceProcessId", "TargetProcessId"),
    11: ("ProcessId", "TargetFilename"),
    23: ("ProcessId", "TargetFilename"),
}
# The pid each GUID field belongs to, for checking that GUIDs link the same processes.
GUIDS = {
    "ProcessGuid": "ProcessId",
    "ParentProcessGuid": "ParentProcessId",
    "SourceProcessGUID": "SourceProcessId",
    "TargetProcessGUID": "TargetProcessId",
}
TIMES = ("UtcTime", "CreationUtcTime")

# Events only Sysmon wrote, how many, and why (docs/mapping.md, "The other events").
ONLY_SYSMON = {
    # One ProcessTerminate per exiting thread; the sleeper (three threads) was killed by SIGTERM,
    # so audit has no exit_group for it at all, and the tracer's second thread ended on its own.
    (5, ("15899",)): 3,
    (5, ("15902",)): 1,
    # Re-opened with O_CREAT a millisecond after its creation: Sysmon's "new file" test holds
    # again, though nothing was created; audit's PATH record says so.
    (11, ("15905", F + "x-reopen")): 1,
    # The driver's own output files, outside the directory the audit rules watch.
    (11, (DRIVER, "/tmp/a2s-wl/ev-driver.out")): 1,
    (11, (DRIVER, "/tmp/a2s-wl/ev-truth.json")): 1,
}
# Events only we wrote: an openat2() create (Sysmon hooks open, openat and creat only).
ONLY_OURS = {(11, ("15909", F + "x-openat2")): 1}


def _allowed_difference(event_id: int, field: str, theirs: Fields, ours: Fields) -> bool:
    """A field that may differ, and how (each one a row of docs/mapping.md's differences)."""
    pid = ours.get("ProcessId") or ours.get("SourceProcessId")
    run = RUNS.get(pid or "")
    if field == "Hashes" and event_id == 1:
        return ours[field] == "-"  # a log converter does not have the file
    if field.startswith("Parent") and event_id == 1 and pid == DRIVER:
        # The driver's parent started before auditing did: Sysmon read /proc; the log never shows it.
        return ours[field] == (ZERO_GUID if field == "ParentProcessGuid" else "-")
    if field == "SourceThreadId" and event_id == 10:
        return ours[field] == ours["SourceProcessId"]  # audit records carry no thread id
    if field == "SourceUser" and event_id == 10:
        return run is not None and ours[field] == run["user"]  # Sysmon's is erratic (`news` for root)
    if field == "User" and event_id == 5:
        return theirs[field] == "-" and run is not None and ours[field] == run["user"]  # ditto
    return False


def _sysmon() -> list[tuple[int, Fields]]:
    events = []
    for line in (PAIR / "sysmon.log").read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        match = EVENT_ID.search(line)
        if match and int(match.group(1)) in KEYS:
            events.append((int(match.group(1)), {k: _unescape(v) for k, v in DATA.findall(line)}))
    return events


@pytest.fixture(scope="module")
def pair() -> tuple[list[tuple[int, Fields]], list[tuple[int, Fields]]]:
    theirs = _sysmon()
    machine = next(fields for event_id, fields in theirs if event_id == 1)["ProcessGuid"][1:9]
    with open(PAIR / "audit.log", "rb") as log:
        # Sysmon writes only argv[0] of a parent it saw start: --parent-argv0 does the same.
        ours = [(e.event_id, dict(e.fields)) for e in convert(log, machine_id=machine, parent_argv0=True,
                                                                passwd=PAIR.parent / "passwd", local_users=False)]
    return theirs, ours


def _by_key(events: list[tuple[int, Fields]]) -> dict[Key, list[Fields]]:
    grouped: dict[Key, list[Fields]] = defaultdict(list)
    for event_id, fields in events:
        if event_id in KEYS:
            grouped[(event_id, tuple(fields[k] for k in KEYS[event_id]))].append(fields)
    return grouped


def _created(events: list[tuple[int, Fields]]) -> dict[str, str]:
    return {fields["ProcessId"]: fields["ProcessGuid"] for event_id, fields in events if event_id == 1}


def _linked(created: dict[str, str]) -> Callable[[str, Fields], bool | None]:
    """Whether a GUID field names the process its ProcessCreate gave (None: no create of it)."""
    def linked(field: str, fields: Fields) -> bool | None:
        pid = fields[GUIDS[field]]
        return fields[field] == created[pid] if pid in created else None
    return linked


def test_every_event_has_its_twin_or_a_listed_reason(pair):
    theirs, ours = (_by_key(events) for events in pair)
    only_sysmon = {key: len(theirs[key]) - len(ours.get(key, [])) for key in theirs
                   if len(theirs[key]) > len(ours.get(key, []))}
    only_ours = {key: len(ours[key]) - len(theirs.get(key, [])) for key in ours
                 if len(ours[key]) > len(theirs.get(key, []))}
    assert (only_sysmon, only_ours) == (ONLY_SYSMON, ONLY_OURS)
    assert {key[0] for key in ours} == set(KEYS), "every event type of the pair is compared"


def test_twins_agree_field_by_field(pair):
    theirs_all, ours_all = pair
    theirs, ours = _by_key(theirs_all), _by_key(ours_all)
    their_link, our_link = _linked(_created(theirs_all)), _linked(_created(ours_all))
    problems, compared = [], 0
    for key in sorted(set(theirs) & set(ours)):
        for t, o in zip(theirs[key], ours[key]):
            compared += 1
            assert list(o) == list(t), f"{key}: field order"
            for field in t:
                if field in TIMES:  # Sysmon's clock (boot time + uptime) is a few ms off the audit stamp
                    gap = abs((datetime.fromisoformat(t[field]) - datetime.fromisoformat(o[field])).total_seconds())
                    if gap > 1.0:
                        problems.append(f"{key} {field}: {t[field]} vs {o[field]}")
                elif field in GUIDS:  # Sysmon's GUID bytes differ by design; they link the same processes
                    if o[field] == ZERO_GUID and t[field] != ZERO_GUID:
                        if not _allowed_difference(key[0], field, t, o):
                            problems.append(f"{key} {field}: zero")
                    elif their_link(field, t) and not our_link(field, o):
                        problems.append(f"{key} {field}: Sysmon links it to its ProcessCreate, ours does not")
                elif t[field] != o[field] and not _allowed_difference(key[0], field, t, o):
                    problems.append(f"{key} {field}: Sysmon {t[field]!r}, ours {o[field]!r}")
    assert compared > 40
    assert problems == []


def test_each_allowance_is_used(pair):
    """Each allowed difference really occurs in this pair: an allowance nothing needs any more
    is one to remove from the code and from docs/mapping.md."""
    theirs, ours = (_by_key(events) for events in pair)
    used = set()
    for key in set(theirs) & set(ours):
        for t, o in zip(theirs[key], ours[key]):
            used |= {(key[0], field) for field in t if field not in TIMES and t[field] != o[field]
                     and _allowed_difference(key[0], field, t, o)}
    assert used == {(1, "Hashes"), (1, "ParentProcessGuid"), (1, "ParentImage"), (1, "ParentCommandLine"),
                    (1, "ParentUser"), (10, "SourceThreadId"), (10, "SourceUser"), (5, "User")}
