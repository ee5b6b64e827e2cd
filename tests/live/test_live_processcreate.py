"""ProcessCreate from what a real kernel and auditd logged while a known workload ran.

Two kinds of test: the harness's own (the capture really holds every exec the truth lists, with
the argv, cwd, user and session the workload meant), which need nothing of audit2sysmon; and the
conversion's, which compare ``audit2sysmon.convert`` with the truth field by field and the raw,
ENRICHED and ``ausearch -i`` forms of one capture with each other. The conversion tests fail
(they are not skipped) while ``audit2sysmon.convert`` does not exist.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from . import logtext
from .auditd_capture import INTERPRETATIONS, Capture

pytestmark = pytest.mark.live

FIELDS = [
    "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "FileVersion", "Description",
    "Product", "Company", "OriginalFileName", "CommandLine", "CurrentDirectory", "User",
    "LogonGuid", "LogonId", "TerminalSessionId", "IntegrityLevel", "Hashes", "ParentProcessGuid",
    "ParentProcessId", "ParentImage", "ParentCommandLine", "ParentUser",
]
ALWAYS_DASH = ["RuleName", "FileVersion", "Description", "Product", "Company", "OriginalFileName", "Hashes"]
ZERO_GUID = "{00000000-0000-0000-0000-000000000000}"
INTERPRETED_EXEC = re.compile(rb"\bsyscall=(?:execve|execveat) success=yes\b")
interpretation = pytest.mark.parametrize(
    "lc_all,tz", INTERPRETATIONS, ids=[f"{lc.split('.')[0]}-{tz.replace('/', '_')}" for lc, tz in INTERPRETATIONS]
)
Event = dict[str, str]


def successful(capture: Capture) -> list[dict]:
    return [run for run in capture.truth["runs"] if run["success"]]


def by_pid(items: list, pid_of: Callable[[object], int]) -> dict[int, list]:
    """Items grouped by pid, each group in the order given (the exec order of that pid)."""
    groups: dict[int, list] = defaultdict(list)
    for item in items:
        groups[pid_of(item)].append(item)
    return groups


def paired(runs: list[dict], items: list, pid_of: Callable[[object], int]) -> list[tuple[dict, object]]:
    """Each run with the item of the same pid at the same position among that pid's execs."""
    groups = by_pid(items, pid_of)
    seen: dict[int, int] = defaultdict(int)
    pairs = []
    for run in runs:
        group = groups.get(run["pid"], [])
        position = seen[run["pid"]]
        seen[run["pid"]] += 1
        pairs.append((run, group[position] if position < len(group) else None))
    return pairs


def parent_run(runs: list[dict], child: dict) -> dict | None:
    """The latest successful run of the child's parent pid listed before the child."""
    earlier = runs[: runs.index(child)]
    return next((r for r in reversed(earlier) if r["pid"] == child["ppid"]), None)


def guid_parts(guid: str) -> tuple[int, int, int]:
    """(machine, seconds, key) of a Sysmon GUID."""
    return struct.unpack("<IIQ", uuid.UUID(guid).bytes_le)


def assert_no_problems(problems: list[str], capture: Capture) -> None:
    assert not problems, f"{len(problems)} problems (capture in {capture.directory}):\n" + "\n".join(problems[:40])


# --- the harness: the capture holds what the workload did -------------------------------------


def test_no_audit_records_were_lost(capture: Capture) -> None:
    assert capture.lost_records == 0


def test_capture_holds_every_exec_of_the_workload(capture: Capture) -> None:
    log_execs = logtext.execs(capture.lines())
    runs = capture.truth["runs"]
    problems = []
    succeeded = [e for e in log_execs if e.success]
    for run, found in paired(successful(capture), succeeded, lambda e: e.pid):
        if found is None:
            problems.append(f"{run['note']}: no successful exec of pid {run['pid']} in the log")
            continue
        want = (run["syscall"], run["ppid"], run["uid"], run["ses"], run["image"], run["exec_argv"], run["cwd"])
        got = (found.name, found.ppid, found.uid, found.ses, found.exe, found.argv, found.cwd)
        if got != want:
            problems.append(f"{run['note']}: log has {got!r:.300}, truth {want!r:.300}")
    for run in runs:
        if not run["success"] and not any(e.pid == run["pid"] and not e.success for e in log_execs):
            problems.append(f"{run['note']}: no failed exec of pid {run['pid']} in the log")
    assert len(succeeded) == len(successful(capture)), "the log has execs the truth does not list"
    assert_no_problems(problems, capture)


def test_login_session_starts_with_a_login_record(capture: Capture) -> None:
    logins = logtext.login_times(capture.lines())
    sessions = {run["ses"] for run in capture.truth["runs"] if run["auid"] is not None}
    assert sessions and sessions <= logins.keys()


@interpretation
def test_interpreted_text_holds_every_exec(capture: Capture, lc_all: str, tz: str) -> None:
    path = capture.interpretations[(lc_all, tz)]
    if path is None:
        pytest.skip(capture.missing[(lc_all, tz)])
    count = len(INTERPRETED_EXEC.findall(path.read_bytes()))
    assert count == logtext.count_successful_execs(capture.log.read_bytes()) == len(successful(capture))


# --- the conversion ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def converted(convert: Callable) -> Callable[..., list[Event]]:
    """ProcessCreate events (field → value) of a form of a capture, converted once per session."""
    cache: dict[tuple[Path, str | None], list[Event]] = {}

    def events(capture: Capture, path: Path | None = None, tz: str | None = None,
               lines: list[bytes] | None = None, name: str | None = None) -> list[Event]:
        key = (capture.directory, name or (str(path) if path else None))
        if key not in cache:
            options = {"tz": ZoneInfo(tz)} if tz else {}
            source = lines if lines is not None else capture.lines(path)
            cache[key] = [
                {field: event.get(field) for field in FIELDS}
                for event in convert(source, **options) if event.event_id == 1
            ]
        return cache[key]

    return events


def test_one_process_create_per_successful_exec_record(capture: Capture, converted: Callable) -> None:
    events = converted(capture)
    assert len(events) == logtext.count_successful_execs(capture.log.read_bytes())


def test_failed_exec_gives_no_process_create(capture: Capture, converted: Callable) -> None:
    failed = {str(run["pid"]) for run in capture.truth["runs"] if not run["success"]}
    assert failed
    assert [e for e in converted(capture) if e["ProcessId"] in failed] == []


def test_process_create_fields_match_truth(capture: Capture, converted: Callable) -> None:
    events = converted(capture)
    log_execs = [e for e in logtext.execs(capture.lines()) if e.success]
    exec_of = dict((id(run), found) for run, found in paired(successful(capture), log_execs, lambda e: e.pid))
    problems = []
    for run, event in paired(successful(capture), events, lambda e: int(e["ProcessId"])):
        if event is None:
            problems.append(f"{run['note']}: no ProcessCreate for pid {run['pid']}")
            continue
        want = {
            "UtcTime": exec_of[id(run)].syscall.utc_time,
            "ProcessId": str(run["pid"]),
            "Image": run["image"],
            "CommandLine": " ".join(run["exec_argv"]),
            "CurrentDirectory": run["cwd"],
            "User": run["user"],
            "LogonId": str(run["uid"]),
            "TerminalSessionId": str(run["ses"]),
            "IntegrityLevel": "no level",
            "ParentProcessId": str(run["ppid"]),
            **{field: "-" for field in ALWAYS_DASH},
        }
        problems += [
            f"{run['note']} (pid {run['pid']}) {field}: got {event[field]!r:.200}, want {value!r:.200}"
            for field, value in want.items() if event[field] != value
        ]
    assert_no_problems(problems, capture)


def test_guids_follow_the_reference_layout(capture: Capture, converted: Callable) -> None:
    events = converted(capture)
    logins = logtext.login_times(capture.lines())
    guids = [e["ProcessGuid"] for e in events]
    assert len(set(guids)) == len(guids), "two execs share a ProcessGuid"
    machines = {guid_parts(e["ProcessGuid"])[0] for e in events} | {guid_parts(e["LogonGuid"])[0] for e in events}
    assert len(machines) == 1, f"several machine parts: {machines}"
    problems = []
    for run, event in paired(successful(capture), events, lambda e: int(e["ProcessId"])):
        if event is None:
            continue
        _, secs, _ = guid_parts(event["ProcessGuid"])
        if _utc(secs) != event["UtcTime"][:19]:
            problems.append(f"{run['note']}: ProcessGuid seconds {_utc(secs)} != UtcTime {event['UtcTime']}")
        _, logon_secs, luid = guid_parts(event["LogonGuid"])
        want = (logins.get(run["ses"], 0), run["uid"], 0)
        got = (logon_secs, luid & 0xFFFFFFFF, luid >> 32)
        if got != want:
            problems.append(f"{run['note']}: LogonGuid (login secs, uid, tty) {got} != {want}")
    assert_no_problems(problems, capture)


def _utc(secs: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` of epoch seconds, to compare with UtcTime without its fraction."""
    return f"{datetime.fromtimestamp(secs, tz=timezone.utc):%Y-%m-%d %H:%M:%S}"


def test_parent_fields_describe_the_parent(capture: Capture, converted: Callable) -> None:
    events = converted(capture)
    runs = successful(capture)
    event_of = {id(run): event for run, event in paired(runs, events, lambda e: int(e["ProcessId"]))}
    problems = []
    for run in runs:
        event = event_of[id(run)]
        if event is None:
            problems.append(f"{run['note']}: no ProcessCreate for pid {run['pid']}")
            continue
        parent = parent_run(runs, run)
        parent_event = event_of.get(id(parent)) if parent else None
        if parent is None:
            want = {"ParentProcessGuid": ZERO_GUID, "ParentImage": "-", "ParentCommandLine": "-", "ParentUser": "-"}
        else:
            want = {
                "ParentProcessGuid": parent_event["ProcessGuid"] if parent_event else "(parent has no event)",
                "ParentImage": parent["image"],
                "ParentCommandLine": " ".join(parent["exec_argv"]),
                "ParentUser": parent["user"],
            }
        problems += [
            f"{run['note']} (pid {run['pid']}, parent {run['ppid']}) {field}: got {event[field]!r:.200}, want {value!r:.200}"
            for field, value in want.items() if event[field] != value
        ]
    assert_no_problems(problems, capture)


def _first_difference(left: list[Event], right: list[Event]) -> str:
    if len(left) != len(right):
        return f"{len(left)} events vs {len(right)}"
    for index, (a, b) in enumerate(zip(left, right)):
        fields = [f for f in FIELDS if a[f] != b[f]]
        if fields:
            return f"event {index} (pid {a['ProcessId']}): " + "; ".join(
                f"{f}: {a[f]!r:.120} vs {b[f]!r:.120}" for f in fields)
    return ""


@interpretation
def test_interpreted_text_gives_the_same_events(capture: Capture, converted: Callable, lc_all: str, tz: str) -> None:
    path = capture.interpretations[(lc_all, tz)]
    if path is None:
        pytest.skip(capture.missing[(lc_all, tz)])
    # Same events, GUIDs included; compared in time order, because a live log can write a
    # long exec's records after a later-stamped one (stamp = syscall entry), while ausearch
    # sorts events by time.
    raw = sorted(converted(capture), key=_time_order)
    interpreted = sorted(converted(capture, path, tz=tz), key=_time_order)
    assert raw, "no ProcessCreate from the raw log"
    assert interpreted == raw, _first_difference(interpreted, raw)


def _time_order(event: Event) -> tuple[str, str]:
    return (event["UtcTime"], event["ProcessGuid"])


@pytest.mark.parametrize("capture", ["ENRICHED"], indirect=True, ids=str.lower)
def test_enriched_log_without_enrichment_gives_the_same_events(capture: Capture, converted: Callable) -> None:
    """Only an ENRICHED capture has an enrichment to remove: names must not change events."""
    stripped = [line.split(b"\x1d", 1)[0].rstrip(b"\n") + b"\n" for line in capture.lines()]
    raw = converted(capture, lines=stripped, name="stripped")
    enriched = converted(capture)
    assert enriched, "no ProcessCreate from the ENRICHED log"
    assert raw == enriched, _first_difference(raw, enriched)
