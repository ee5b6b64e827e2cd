"""The other Sysmon events from a real kernel: terminate, network, file create/delete, raw read.

The workload's driver lists what it did under ``activity`` in the truth file (files created and
deleted several ways, also through directory fds of directories the log shows late or never;
TCP connects/accepts, a UDP connect and UDP datagrams on 127.0.0.1 and ``::1``, an IPv4 client
of a dual-stack listener; reads of a loop device), and every process it started exits (one
killed by SIGKILL, one by SIGTERM, which audit does not show). The counts the tests expect come from
``logtext`` (an independent reading of the log text), the values from the truth file and the
rules of docs/mapping.md (e.g. a connect's unknown local end is the any-address, port 0).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from . import logtext
from .auditd_capture import Capture
from .test_live_processcreate import ZERO_GUID, assert_no_problems, interpretation

pytestmark = pytest.mark.live

Event = tuple[int, dict[str, str]]
OPENS = {"open": 1, "openat": 2, "openat2": None, "creat": None}
LOOPBACK = {"127.0.0.1": "127.0.0.1", "::1": "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1": "0:0:0:0:0:ffff:7f00:1"}
DATAGRAMS = ("sendto", "sendmsg", "recvfrom", "recvmsg")
KILLS = {"kill": "a1", "tkill": "a1", "tgkill": "a2"}
UNSPECIFIED = {False: "0.0.0.0", True: "0:0:0:0:0:0:0:0"}


@pytest.fixture(scope="session")
def all_events(convert: Callable) -> Callable[..., list[Event]]:
    """Every event (EventID, field → value) of a form of a capture, converted once."""
    cache: dict[tuple[Path, str | None], list[Event]] = {}

    def events(capture: Capture, path: Path | None = None, tz: str | None = None) -> list[Event]:
        key = (capture.directory, str(path) if path else None)
        if key not in cache:
            options = {"tz": ZoneInfo(tz)} if tz else {}
            cache[key] = [(e.event_id, dict(e.fields)) for e in convert(capture.lines(path), **options)]
        return cache[key]

    return events


def of(events: list[Event], event_id: int) -> list[dict[str, str]]:
    return [fields for eid, fields in events if eid == event_id]


def acts(capture: Capture, kind: str) -> list[dict]:
    return [act for act in capture.truth["activity"] if act["kind"] == kind]


def _family(saddr: bytes | None) -> int | None:
    return int.from_bytes(saddr[:2], "little") if saddr and len(saddr) >= 2 else None


def _expected_counts(capture: Capture) -> dict[int, int]:
    """How many events of each kind the log's records call for (docs/mapping.md rules)."""
    counts = dict.fromkeys((3, 5, 9, 10, 11, 23), 0)
    flowed: set[tuple[int, int]] = set()  # (pid, fd) of sockets whose flow was written
    for call in logtext.syscalls(capture.lines()):
        kinds = [nametype for _, nametype, _ in call.paths]
        fd = int(call.syscall.fields["a0"].decode(), 16)
        if call.name == "exit_group":
            counts[5] += 1
        elif call.name in KILLS:  # a SIGKILL ends each process it was sent to
            counts[5] += len(call.targets) * (call.success and int(call.syscall.fields[KILLS[call.name]], 16) == 9)
        elif call.name == "socket" and call.success:
            flowed.discard((call.pid, call.exit))
        elif call.name == "ptrace":  # PTRACE_ATTACH or PTRACE_SEIZE that succeeded
            counts[10] += call.success and int(call.syscall.fields["a0"].decode(), 16) in (0x10, 0x4206)
        elif call.name in OPENS and call.success and "CREATE" in kinds:
            counts[11] += 1
        elif call.name in OPENS and call.success:
            index = OPENS[call.name]
            flags = int(call.syscall.fields[f"a{index}"], 16) if index is not None else 0
            block = [mode for _, nametype, mode in call.paths if nametype != "PARENT" and mode.startswith("06")]
            counts[9] += bool(block) and call.name != "creat" and flags & 3 != 1
        elif call.name in ("unlink", "unlinkat") and call.success:
            counts[23] += any(nt == "DELETE" and not mode.startswith("04") for _, nt, mode in call.paths)
        elif _family(call.saddr) in (2, 10):
            connected = call.name == "connect" and (call.success or call.exit == -115)
            first_datagram = call.name in DATAGRAMS and call.success and (call.pid, fd) not in flowed
            counts[3] += connected or first_datagram or (call.name in ("accept", "accept4") and call.success)
            if connected or first_datagram:
                flowed.add((call.pid, fd))
    return counts


# --- the harness: the capture holds what the workload did -------------------------------------


def test_capture_holds_the_activity(capture: Capture) -> None:
    calls = logtext.syscalls(capture.lines())
    driver = capture.truth["driver_pid"]
    mine = [c for c in calls if c.pid == driver and c.success]
    created = {name for c in mine if c.name in OPENS for name, nt, _ in c.paths if nt == "CREATE"}
    deleted = {name for c in mine if c.name in ("unlink", "unlinkat") for name, nt, _ in c.paths if nt == "DELETE"}
    problems = [f"no CREATE record for {a['path']}" for a in acts(capture, "create")
                if not any(a["path"].endswith(name) for name in created)]
    problems += [f"no DELETE record for {a['path']}" for a in acts(capture, "delete")
                 if not any(a["path"].endswith(name) for name in deleted)]
    connects = [c for c in calls if c.pid == driver and c.name == "connect" and _family(c.saddr) in (2, 10)]
    if len(connects) != len(acts(capture, "connect")):
        problems.append(f"{len(connects)} inet connects in the log, truth lists {len(acts(capture, 'connect'))}")
    assert_no_problems(problems, capture)


# --- the conversion ------------------------------------------------------------------------------


def test_one_event_per_record_that_calls_for_one(capture: Capture, all_events: Callable) -> None:
    events = all_events(capture)
    got = {eid: len(of(events, eid)) for eid in (3, 5, 9, 10, 11, 23)}
    assert got == _expected_counts(capture)
    assert all(got[eid] for eid in (3, 5, 10, 11, 23)), got


def test_record_ids_count_up_in_output_order(capture: Capture, convert: Callable) -> None:
    ids = [e.record_id for e in convert(capture.lines())]
    assert ids == list(range(1, len(ids) + 1))


def _driver_guid(capture: Capture, events: list[Event]) -> str:
    driver = str(capture.truth["driver_pid"])
    return next(f["ProcessGuid"] for f in of(events, 1) if f["ProcessId"] == driver)


def test_file_events_match_truth(capture: Capture, all_events: Callable) -> None:
    events = all_events(capture)
    truth = capture.truth
    driver, guid = str(truth["driver_pid"]), _driver_guid(capture, events)
    problems = []
    for event_id, kind in ((11, "create"), (23, "delete")):
        mine = [f for f in of(events, event_id) if f["ProcessId"] == driver]
        for act in acts(capture, kind):
            found = [f for f in mine if f["TargetFilename"] == act["path"]]
            if len(found) != 1:
                names = sorted(f["TargetFilename"] for f in mine)
                problems.append(f"{act['how']}: {len(found)} events {event_id} for {act['path']} (have {names})")
                continue
            want = {"Image": truth["driver_exe"], "ProcessGuid": guid, "User": "-", "RuleName": "-"}
            if event_id == 11:
                want["CreationUtcTime"] = found[0]["UtcTime"]
            else:
                want.update(Hashes="-", IsExecutable="-", Archived="-")
            problems += [f"{act['how']} {field}: got {found[0][field]!r}, want {value!r}"
                         for field, value in want.items() if found[0][field] != value]
    deleted_dirs = [f for f in of(events, 23) if f["TargetFilename"].endswith("/sub dir")]
    if deleted_dirs:
        problems.append(f"rmdir gave FileDelete: {deleted_dirs}")
    assert_no_problems(problems, capture)


def test_network_events_match_truth(capture: Capture, all_events: Callable) -> None:
    events = all_events(capture)
    truth = capture.truth
    driver, guid = str(truth["driver_pid"]), _driver_guid(capture, events)
    mine = [f for f in of(events, 3) if f["ProcessId"] == driver]
    wanted = [a for a in truth["activity"] if a["kind"] in ("connect", "accept", "send", "receive")]
    assert len(mine) == len(wanted), [(f["Initiated"], f["DestinationIp"], f["DestinationPort"]) for f in mine]
    problems = []
    for act, event in zip(wanted, mine):
        ip, v6 = LOOPBACK[act["ip"]], "true" if act["ipv6"] else "false"
        want = {
            "Image": truth["driver_exe"], "ProcessGuid": guid, "User": "root", "Protocol": act["protocol"],
            "SourceIsIpv6": v6, "DestinationIsIpv6": v6, "SourceHostname": "-", "SourcePortName": "-",
            "DestinationHostname": "-", "DestinationPortName": "-",
        }
        if act["kind"] in ("connect", "send"):
            want.update(Initiated="true", SourceIp=UNSPECIFIED[act["ipv6"]], SourcePort="0",
                        DestinationIp=ip, DestinationPort=str(act["port"]))
        elif act["kind"] == "receive":  # the server's bind() named port 0: the kernel chose it
            want.update(Initiated="false", SourceIp=ip, SourcePort=str(act["peer_port"]),
                        DestinationIp=ip, DestinationPort="0")
        elif act.get("listener_ipv6", act["ipv6"]) != act["ipv6"]:  # an IPv4 peer of a [::] listener
            want.update(Initiated="false", SourceIp=ip, SourcePort=str(act["peer_port"]),
                        DestinationIp=UNSPECIFIED[act["ipv6"]], DestinationPort="0")
        else:  # the listener's address is known from its bind()
            want.update(Initiated="false", SourceIp=ip, SourcePort=str(act["peer_port"]),
                        DestinationIp=ip, DestinationPort=str(act["port"]))
        problems += [f"{act['kind']} {act['protocol']} {act['ip']} {field}: got {event[field]!r}, want {value!r}"
                     for field, value in want.items() if event[field] != value]
    assert_no_problems(problems, capture)


def test_every_process_of_the_workload_terminates(capture: Capture, all_events: Callable) -> None:
    events = all_events(capture)
    creates = of(events, 1)
    terminates = {f["ProcessId"]: f for f in of(events, 5)}
    last_run = {run["pid"]: run for run in capture.truth["runs"]}  # runs are listed in exec order
    problems = []
    for pid, run in last_run.items():
        event = terminates.get(str(pid))
        if run.get("killed_by") == "SIGTERM":  # no exit_group, no SIGKILL: audit shows no end
            if event is not None:
                problems.append(f"{run['note']}: a ProcessTerminate for pid {pid}")
            continue
        if event is None:
            problems.append(f"{run['note']}: no ProcessTerminate for pid {pid}")
            continue
        if run["success"]:
            guid = [c["ProcessGuid"] for c in creates if c["ProcessId"] == str(pid)][-1]
            want = {"Image": run["image"], "ProcessGuid": guid, "User": run["user"]}
        else:  # the forked child whose exec failed still runs the driver's image
            want = {"Image": capture.truth["driver_exe"], "User": run["user"]}
        problems += [f"{run['note']} (pid {pid}) {field}: got {event[field]!r}, want {value!r}"
                     for field, value in want.items() if event[field] != value]
        if event["ProcessGuid"] == ZERO_GUID:
            problems.append(f"{run['note']} (pid {pid}): zero ProcessGuid")
    assert_no_problems(problems, capture)


def test_raw_access_read_of_the_loop_device(capture: Capture, all_events: Callable) -> None:
    if capture.loop_missing:
        pytest.skip(capture.loop_missing)
    events = all_events(capture)
    (act,) = acts(capture, "raw_read")
    reads = [f for f in of(events, 9) if f["Device"] == act["device"]]
    assert len(reads) == 1, "one read-only open; the write-only one is no RawAccessRead"
    want = {"ProcessId": str(capture.truth["driver_pid"]), "Image": capture.truth["driver_exe"],
            "ProcessGuid": _driver_guid(capture, events), "User": "-"}
    assert {k: reads[0][k] for k in want} == want


def test_process_access_links_the_tracer_and_its_target(capture: Capture, all_events: Callable) -> None:
    """A child that ptrace-attaches to another child: one ProcessAccess whose GUIDs are the
    ProcessCreate GUIDs of both (docs/mapping.md lists the fields)."""
    events = all_events(capture)
    (act,) = acts(capture, "ptrace")
    assert act["attached"], "the tracer could not attach (ptrace refused)"
    tracer, target = str(act["tracer"]), str(act["target"])
    runs = {str(run["pid"]): run for run in capture.truth["runs"]}
    created = {f["ProcessId"]: f["ProcessGuid"] for f in of(events, 1)}
    (event,) = [f for f in of(events, 10) if f["SourceProcessId"] == tracer]
    want = {
        "RuleName": "-", "SourceProcessGUID": created[tracer], "SourceProcessId": tracer, "SourceThreadId": tracer,
        "SourceImage": runs[tracer]["image"], "TargetProcessGUID": created[target], "TargetProcessId": target,
        "TargetImage": runs[target]["image"], "GrantedAccess": "0x0", "CallTrace": "-",
        "SourceUser": runs[tracer]["user"], "TargetUser": runs[target]["user"],
    }
    assert {k: event[k] for k in want} == want


@interpretation
def test_interpreted_text_gives_the_same_other_events(capture: Capture, all_events: Callable,
                                                     lc_all: str, tz: str) -> None:
    path = capture.interpretations[(lc_all, tz)]
    if path is None:
        pytest.skip(capture.missing[(lc_all, tz)])
    raw = [e for e in all_events(capture) if e[0] != 1]
    interpreted = [e for e in all_events(capture, path, tz=tz) if e[0] != 1]
    assert raw
    first = next((pair for pair in zip(raw, interpreted) if pair[0] != pair[1]), None)
    assert (len(interpreted), first) == (len(raw), None)
