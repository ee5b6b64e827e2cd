"""UDP flows, dual-stack accepts, files through directory fds and deaths by signal, from a real
kernel's records (`fixtures/live/events-dev`, captured with the rules of
examples/audit2sysmon.rules, the optional ones included), checked against what the workload
did (`truth.json`) by the rules of docs/mapping.md.
"""

from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import pytest

from audit2sysmon import Converter, Unresolved

EVENTS_DEV = Path(__file__).parent / "fixtures" / "live" / "events-dev"
TRUTH = json.loads((EVENTS_DEV / "truth.json").read_text(encoding="utf-8"))
DRIVER = str(TRUTH["driver_pid"])
API = {"hostname": "h", "machine_id": "01020304", "local_users": False, "passwd": EVENTS_DEV.parent / "passwd"}


def _convert(name: str = "audit.log", **options) -> tuple[list[tuple[int, dict[str, str]]], Converter]:
    conv = Converter(**{**API, **options})
    with open(EVENTS_DEV / name, "rb") as log:
        events = [(e.event_id, dict(e.fields)) for e in conv.feed_input(log)] + [
            (e.event_id, dict(e.fields)) for e in conv.flush()]
    return events, conv


@pytest.fixture(scope="module")
def converted():
    return _convert()


def _acts(kind: str) -> list[dict]:
    return [act for act in TRUTH["activity"] if act["kind"] == kind]


def _network(events) -> list[dict[str, str]]:
    return [fields for event_id, fields in events if event_id == 3 and fields["ProcessId"] == DRIVER]


def _sysmon_ip(address: str) -> str:
    """Sysmon's text of an address: dotted quad, or eight %x groups (no `::`)."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ip)
    return ":".join(f"{int(group, 16):x}" for group in ip.exploded.split(":"))


def test_files_through_directory_fds(converted):
    """A directory the log shows later (an unlink through the cwd names it) gives the absolute
    name; one it never shows gives the documented marker, counted."""
    events, conv = converted
    names = {event_id: [f["TargetFilename"] for e, f in events if e == event_id and f["ProcessId"] == DRIVER]
             for event_id in (11, 23)}
    later, never = _acts("create")
    assert later["path"] in names[11] and later["path"] in names[23]
    assert never["path"] not in names[11] + names[23]
    marked = "<unknown directory>/" + never["path"].rsplit("/", 1)[1]
    assert names[11].count(marked) == names[23].count(marked) == 1
    assert conv.stats.unresolved[Unresolved.DIRECTORY] == 2


def test_udp_is_one_flow_per_socket_each_side(converted):
    events, _ = converted
    udp = [f for f in _network(events) if f["Protocol"] == "udp"]
    sends, receives = _acts("udp send"), _acts("udp receive")
    want = []
    for send, receive in zip(sends, receives):
        to_ip, to_port = send["to"]
        from_ip, from_port = receive["from"]
        v6 = "true" if ":" in to_ip else "false"
        unspecified = "0:0:0:0:0:0:0:0" if ":" in to_ip else "0.0.0.0"
        want.append({"Initiated": "true", "SourceIsIpv6": v6, "SourceIp": unspecified, "SourcePort": "0",
                     "DestinationIsIpv6": v6, "DestinationIp": _sysmon_ip(to_ip), "DestinationPort": str(to_port)})
        # The server bound port 0 (the kernel chose): its bind() record shows no more.
        want.append({"Initiated": "false", "SourceIsIpv6": v6, "SourceIp": _sysmon_ip(from_ip),
                     "SourcePort": str(from_port), "DestinationIsIpv6": v6, "DestinationIp": _sysmon_ip(to_ip),
                     "DestinationPort": "0"})
    assert [{k: f[k] for k in want[0]} for f in udp] == want


def test_a_dual_stack_listener_writes_its_ipv4_peers_as_ipv4(converted):
    events, _ = converted
    tcp = [f for f in _network(events) if f["Protocol"] == "tcp"]
    connects, accepts = _acts("tcp connect"), _acts("tcp accept")
    got = [(f["Initiated"], f["SourceIsIpv6"], f["SourceIp"], f["SourcePort"], f["DestinationIp"], f["DestinationPort"])
           for f in tcp]
    want = []
    for connect, accept in zip(connects, accepts):
        to_ip, port = connect["to"]
        unspecified = "0:0:0:0:0:0:0:0" if ":" in to_ip else "0.0.0.0"
        want.append(("true", "true" if ":" in to_ip else "false", unspecified, "0", _sysmon_ip(to_ip), str(port)))
        peer_ip, peer_port = accept["from"]
        assert peer_ip == "::ffff:127.0.0.1"  # what the kernel handed the listener
        # The listener is bound to [::] (inet6); the peer is written as IPv4, so the local end
        # (another family) is the IPv4 any-address.
        want.append(("false", "false", "127.0.0.1", str(peer_port), "0.0.0.0", "0"))
    assert got == want


def test_sigkill_ends_a_process_sigterm_is_not_seen(converted):
    events, _ = converted
    terminated = {f["ProcessId"]: f for event_id, f in events if event_id == 5}
    created = {f["ProcessId"]: f for event_id, f in events if event_id == 1}
    killed, termed = TRUTH["runs"]
    assert (killed["killed_by"], termed["killed_by"]) == ("SIGKILL", "SIGTERM")
    pid = str(killed["pid"])
    assert terminated[pid]["ProcessGuid"] == created[pid]["ProcessGuid"]
    assert (terminated[pid]["Image"], terminated[pid]["User"]) == ("/usr/bin/sleep", "root")
    assert str(termed["pid"]) in created and str(termed["pid"]) not in terminated


def test_ausearch_text_gives_the_same_events(converted):
    raw = [e for e in converted[0] if e[0] != 1]
    interpreted, _ = _convert("interpreted-C-UTC.txt", tz=timezone.utc)
    assert raw and [e for e in interpreted if e[0] != 1] == raw


def test_worker_processes_give_the_same_events(converted):
    assert _convert(jobs=2)[0] == converted[0]
