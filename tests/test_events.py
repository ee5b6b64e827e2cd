"""ProcessTerminate, NetworkConnect, FileCreate, FileDelete and RawAccessRead from audit events.

Small hand-written events pin each rule of docs/mapping.md (the records are shaped like those of
tests/fixtures/live, which the corpus tests at the end convert whole); counts over the real
logs are taken with regular expressions independent of the converter.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timezone
from pathlib import Path

import pytest

from audit2sysmon import Converter, Unresolved, convert
from audit2sysmon.errors import ConfigError
from audit2sysmon.sysmon.guid import ZERO_GUID

LIVE = Path(__file__).parent / "fixtures" / "live"
API = {"hostname": "h", "machine_id": "01020304", "local_users": False}
PROC = (
    'ppid={ppid} pid={pid} auid=1000 uid={uid} gid=0 euid={uid} suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
    'tty=pts1 ses=3 comm="x" exe={exe} key=(null)'
)


def syscall(ms: int, number: int, outcome: str, args: str = "a0=0 a1=0 a2=0 a3=0", *, pid: int = 500,
            uid: int = 0, exe: str = '"/usr/bin/tool"', ppid: int = 1) -> str:
    return (f"type=SYSCALL msg=audit(1700000000.{ms:03d}:{ms}): arch=c000003e syscall={number} {outcome} "
            f"{args} items=0 " + PROC.format(ppid=ppid, pid=pid, uid=uid, exe=exe))


def record(ms: int, kind: str, body: str) -> str:
    return f"type={kind} msg=audit(1700000000.{ms:03d}:{ms}): {body}"


def path(ms: int, item: int, name: str, mode: str, nametype: str, inode: int = 10) -> str:
    return record(ms, "PATH", f'item={item} name="{name}" inode={inode} dev=fe:00 mode={mode} ouid=0 ogid=0 '
                  f"rdev=00:00 nametype={nametype}")


def cwd(ms: int, directory: str = "/home/u") -> str:
    return record(ms, "CWD", f'cwd="{directory}"')


def events(lines: list[str], **options) -> list:
    return list(convert(lines, **{**API, **options}))


def only(lines: list[str], event_id: int, **options):
    found = [e for e in events(lines, **options) if e.event_id == event_id]
    assert len(found) == 1, found
    return found[0]


EXEC = syscall(1, 59, "success=yes exit=0")
EXIT = syscall(2, 231, "")


# --- ProcessTerminate ------------------------------------------------------------------------------


def test_terminate_names_the_identity_that_ended():
    create, terminate = events([EXEC, EXIT])
    assert (create.event_id, terminate.event_id) == (1, 5)
    assert [name for name, _ in terminate.fields] == ["RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User"]
    assert terminate.get("ProcessGuid") == create.get("ProcessGuid")
    assert (terminate.get("Image"), terminate.get("User"), terminate.get("UtcTime")) == (
        "/usr/bin/tool", "root", "2023-11-14 22:13:20.002")
    assert (terminate.record_id, create.record_id) == (2, 1)


def test_a_pid_reused_after_exit_is_a_new_identity():
    again = syscall(3, 231, "", exe='"/usr/bin/other"')
    first, second = [e for e in events([EXEC, EXIT, again]) if e.event_id == 5]
    assert first.get("ProcessGuid") != second.get("ProcessGuid")
    assert second.get("Image") == "/usr/bin/other"


def test_terminate_without_an_image_is_the_unknown_process():
    event = only([syscall(1, 231, "", exe="(null)")], 5)
    assert event.get("Image") == "<unknown process>"
    assert "<Data Name=\"Image\">&lt;unknown process&gt;</Data>" in event.to_xml()
    assert event.get("ProcessGuid") != ZERO_GUID  # the record itself showed the process


def kill(ms: int, target: int, signal: int, *, pid: int = 500, number: int = 62) -> list[str]:
    """kill(target, signal) (62; tkill is 200) as audit logs it with its OBJ_PID record."""
    return [syscall(ms, number, "success=yes exit=0", f"a0={target:x} a1={signal:x} a2=0 a3=0", pid=pid),
            record(ms, "OBJ_PID", f'opid={target} oauid=1000 ouid=1000 oses=3 obj=unconfined ocomm="sleep"')]


def test_a_sigkill_ends_the_process_it_was_sent_to():
    sleeper = syscall(1, 59, "success=yes exit=0", pid=600, exe='"/usr/bin/sleep"', uid=1000, ppid=500)
    create, killed = events([sleeper, *kill(2, 600, 9)], passwd=None)
    assert (killed.event_id, killed.get("ProcessGuid"), killed.get("Image")) == (5, create.get("ProcessGuid"), "/usr/bin/sleep")
    assert (killed.get("ProcessId"), killed.get("User"), killed.get("UtcTime")) == ("600", "1000", "2023-11-14 22:13:20.002")
    # The pid's identity ended: a later record of it is a new process, ended by its own exit.
    later = [e for e in events([sleeper, *kill(2, 600, 9), syscall(3, 231, "", pid=600)]) if e.event_id == 5]
    assert len(later) == 2 and later[1].get("ProcessGuid") != create.get("ProcessGuid")


def test_only_sigkill_is_certain_death():
    sleeper = syscall(1, 59, "success=yes exit=0", pid=600, exe='"/usr/bin/sleep"')
    assert [e.event_id for e in events([sleeper, *kill(2, 600, 15), *kill(3, 600, 1, number=200)])] == [1]
    failed = kill(2, 600, 9)
    failed[0] = failed[0].replace("success=yes exit=0", "success=no exit=-3")
    assert [e.event_id for e in events([sleeper, *failed])] == [1]


def test_a_sigkill_to_a_process_never_seen_ends_an_unknown_process():
    event = only(kill(2, 700, 9, number=200), 5, passwd=None)  # tkill
    assert (event.get("ProcessId"), event.get("Image"), event.get("User")) == ("700", "<unknown process>", "1000")
    assert event.get("ProcessGuid") != ZERO_GUID


def test_a_core_dump_ends_the_process():
    abend = record(2, "ANOM_ABEND", 'auid=1000 uid=1000 gid=1000 ses=3 pid=500 comm="x" exe="/usr/bin/tool" sig=11 res=1')
    create, terminate = events([EXEC, abend], passwd=None)
    assert (terminate.event_id, terminate.get("ProcessGuid"), terminate.get("User")) == (5, create.get("ProcessGuid"), "1000")


# --- NetworkConnect -----------------------------------------------------------------------------------

LISTEN = [
    syscall(1, 41, "success=yes exit=3", "a0=a a1=80001 a2=0 a3=0"),  # socket(AF_INET6, SOCK_STREAM|CLOEXEC)
    syscall(2, 49, "success=yes exit=0", "a0=3 a1=7ffd a2=1c a3=0"),  # bind(3, [::1]:8080)
    record(2, "SOCKADDR", "saddr=0A001F90000000000000000000000000000000000000000100000000"),
]


def test_connect_in_progress_writes_the_destination_and_an_unknown_source():
    tcp = syscall(0, 41, "success=yes exit=3", "a0=2 a1=1 a2=0 a3=0")  # socket(AF_INET, SOCK_STREAM)
    connect = syscall(1, 42, "success=no exit=-115", "a0=3 a1=7fff a2=10 a3=0")
    event = only([tcp, connect, record(1, "SOCKADDR", "saddr=020000097F0000010000000000000000")], 3)
    assert dict(event.fields) == {
        "RuleName": "-", "UtcTime": "2023-11-14 22:13:20.001", "ProcessGuid": event.get("ProcessGuid"),
        "ProcessId": "500", "Image": "/usr/bin/tool", "User": "root", "Protocol": "tcp", "Initiated": "true",
        "SourceIsIpv6": "false", "SourceIp": "0.0.0.0", "SourceHostname": "-", "SourcePort": "0",
        "SourcePortName": "-", "DestinationIsIpv6": "false", "DestinationIp": "127.0.0.1",
        "DestinationHostname": "-", "DestinationPort": "9", "DestinationPortName": "-",
    }


def test_refused_connects_and_unix_sockets_are_not_network_events():
    refused = syscall(1, 42, "success=no exit=-111", "a0=3 a1=7fff a2=10 a3=0")
    unix = syscall(2, 42, "success=yes exit=0", "a0=3 a1=7fff a2=6e a3=0")
    lines = [refused, record(1, "SOCKADDR", "saddr=020000097F0000010000000000000000"),
             unix, record(2, "SOCKADDR", "saddr=01002F7661722F72756E2F6E7363642F736F636B657400")]
    assert [e for e in events(lines) if e.event_id == 3] == []


def test_accept_writes_the_peer_as_source_and_the_bound_address_as_destination():
    accept = syscall(3, 288, "success=yes exit=5", "a0=3 a1=7ffd a2=7ffc a3=80000")
    peer = record(3, "SOCKADDR", "saddr=0A00D431000000000000000000000000000000000000000100000000")
    event = only([*LISTEN, accept, peer], 3)
    assert [event.get(f) for f in ("Initiated", "Protocol", "SourceIsIpv6", "SourceIp", "SourcePort",
                                    "DestinationIp", "DestinationPort")] == [
        "false", "tcp", "true", "0:0:0:0:0:0:0:1", "54321", "0:0:0:0:0:0:0:1", "8080"]


def test_protocol_comes_from_the_socket_type():
    udp = syscall(1, 41, "success=yes exit=4", "a0=2 a1=2 a2=0 a3=0")
    icmp = syscall(2, 41, "success=yes exit=5", "a0=2 a1=2 a2=1 a3=0")  # ping socket: not TCP/UDP
    lines = [udp, icmp]
    for ms, fd in ((3, 4), (4, 5)):
        lines += [syscall(ms, 42, "success=yes exit=0", f"a0={fd} a1=7fff a2=10 a3=0"),
                  record(ms, "SOCKADDR", "saddr=02000035080808080000000000000000")]
    (event,) = [e for e in events(lines) if e.event_id == 3]
    assert (event.get("Protocol"), event.get("DestinationIp"), event.get("DestinationPort")) == ("udp", "8.8.8.8", "53")


def test_an_unknown_protocol_is_written_as_a_dash_and_counted():
    conv = Converter(**API)
    connect = [syscall(1, 42, "success=yes exit=0", "a0=3 a1=7fff a2=10 a3=0"),
               record(1, "SOCKADDR", "saddr=020000097F0000010000000000000000")]
    written = [e for line in connect for e in conv.feed(line)] + conv.flush()
    assert [e.get("Protocol") for e in written] == ["-"]
    assert conv.stats.unresolved == {Unresolved.PROTOCOL: 1}


def test_an_accept_tells_tcp_and_a_datagram_address_udp():
    accept = [syscall(1, 43, "success=yes exit=5", "a0=3 a1=7ffd a2=7ffc a3=0"),
              record(1, "SOCKADDR", "saddr=0200D4317F0000010000000000000000")]
    received = [syscall(2, 45, "success=yes exit=1", "a0=6 a1=7ffd a2=10 a3=0"),
                record(2, "SOCKADDR", "saddr=0200D4327F0000010000000000000000")]
    assert [e.get("Protocol") for e in events(accept + received)] == ["tcp", "udp"]


SENDTO, RECVFROM, SENDMSG, RECVMSG = 44, 45, 46, 47


def datagram(ms: int, number: int, fd: int, saddr: str, *, pid: int = 500) -> list[str]:
    return [syscall(ms, number, "success=yes exit=1", f"a0={fd:x} a1=7ffd a2=1 a3=0", pid=pid),
            record(ms, "SOCKADDR", f"saddr={saddr}")]


PEER = "0200D4317F0000020000000000000000"  # 127.0.0.2:54321
DNS = "02000035080808080000000000000000"  # 8.8.8.8:53


def test_udp_is_one_flow_per_socket_sent_or_received():
    client = [syscall(1, 41, "success=yes exit=4", "a0=2 a1=80002 a2=0 a3=0"),  # socket(AF_INET, SOCK_DGRAM|CLOEXEC)
              *datagram(2, SENDTO, 4, DNS), *datagram(3, RECVFROM, 4, DNS), *datagram(4, SENDMSG, 4, DNS)]
    server = [syscall(5, 41, "success=yes exit=3", "a0=2 a1=2 a2=0 a3=0", pid=501),
              syscall(6, 49, "success=yes exit=0", "a0=3 a1=7ffd a2=10 a3=0", pid=501),  # bind(3, 0.0.0.0:53)
              record(6, "SOCKADDR", "saddr=02000035000000000000000000000000"),
              *datagram(7, RECVMSG, 3, PEER, pid=501), *datagram(8, RECVFROM, 3, DNS, pid=501),
              *datagram(9, SENDTO, 3, PEER, pid=501)]
    sent, received = [e for e in events(client + server) if e.event_id == 3]
    assert [sent.get(f) for f in ("ProcessId", "Protocol", "Initiated", "SourceIp", "SourcePort",
                                   "DestinationIp", "DestinationPort")] == [
        "500", "udp", "true", "0.0.0.0", "0", "8.8.8.8", "53"]
    assert [received.get(f) for f in ("ProcessId", "Protocol", "Initiated", "SourceIp", "SourcePort",
                                       "DestinationIp", "DestinationPort")] == [
        "501", "udp", "false", "127.0.0.2", "54321", "0.0.0.0", "53"]


def test_a_connected_udp_socket_is_written_at_its_connect_only():
    lines = [syscall(1, 41, "success=yes exit=4", "a0=2 a1=2 a2=0 a3=0"),
             syscall(2, 42, "success=yes exit=0", "a0=4 a1=7fff a2=10 a3=0"), record(2, "SOCKADDR", f"saddr={DNS}"),
             *datagram(3, SENDTO, 4, DNS), *datagram(4, RECVFROM, 4, DNS),
             syscall(5, 41, "success=yes exit=4", "a0=2 a1=2 a2=0 a3=0"),  # fd 4 again: a new socket
             *datagram(6, SENDTO, 4, PEER)]
    assert [(e.get("Initiated"), e.get("DestinationIp")) for e in events(lines)] == [
        ("true", "8.8.8.8"), ("true", "127.0.0.2")]


def test_a_v4_mapped_peer_is_written_as_ipv4_on_the_accepting_side():
    accept = syscall(3, 288, "success=yes exit=5", "a0=3 a1=7ffd a2=7ffc a3=80000")
    mapped = record(3, "SOCKADDR", "saddr=0A00D4310000000000000000000000000000FFFF7F00000100000000")
    event = only([*LISTEN, accept, mapped], 3)
    assert [event.get(f) for f in ("SourceIsIpv6", "SourceIp", "SourcePort", "DestinationIsIpv6", "DestinationIp")] == [
        "false", "127.0.0.1", "54321", "false", "0.0.0.0"]
    client = [syscall(1, 41, "success=yes exit=3", "a0=a a1=1 a2=0 a3=0"),
              syscall(2, 42, "success=yes exit=0", "a0=3 a1=7fff a2=1c a3=0"),
              record(2, "SOCKADDR", "saddr=0A001F900000000000000000000000000000FFFF7F00000100000000")]
    assert only(client, 3).get("DestinationIp") == "0:0:0:0:0:ffff:7f00:1"  # the client's side, as Sysmon


# --- FileCreate, FileDelete, RawAccessRead ------------------------------------------------------------


def openat(ms: int, dirfd: str, flags: str, outcome: str = "success=yes exit=3") -> str:
    return syscall(ms, 257, outcome, f"a0={dirfd} a1=7ffd a2={flags} a3=1b6")


def test_file_create_of_a_relative_name_is_under_the_cwd():
    lines = [openat(1, "ffffff9c", "241"), cwd(1), path(1, 0, "/home/u", "040755", "PARENT"),
             path(1, 1, "./sub/../new.txt", "0100644", "CREATE")]
    event = only(lines, 11, passwd=None)
    assert [name for name, _ in event.fields][-3:] == ["TargetFilename", "CreationUtcTime", "User"]
    assert (event.get("TargetFilename"), event.get("CreationUtcTime"), event.get("User")) == (
        "/home/u/new.txt", event.get("UtcTime"), "-")


def test_file_create_through_a_dirfd_uses_the_directory_seen_before():
    known = [openat(1, "ffffff9c", "241"), cwd(1), path(1, 0, "/srv/data/", "040755", "PARENT", inode=77),
             path(1, 1, "/srv/data/a", "0100644", "CREATE", inode=78)]
    # The kernel writes the CWD as the PARENT name of a dirfd-relative name; the inode is right.
    via_fd = [openat(2, "5", "241"), cwd(2), path(2, 0, "/home/u", "040755", "PARENT", inode=77),
              path(2, 1, "b", "0100644", "CREATE", inode=79)]
    unknown = [openat(3, "6", "241"), cwd(3), path(3, 0, "/home/u", "040755", "PARENT", inode=90),
               path(3, 1, "c", "0100644", "CREATE", inode=91)]
    conv = Converter(**API)
    written = [e for line in known + via_fd + unknown for e in conv.feed(line)] + conv.flush()
    assert [e.get("TargetFilename") for e in written] == ["/srv/data/a", "/srv/data/b", "<unknown directory>/c"]
    assert conv.stats.unresolved == {Unresolved.DIRECTORY: 1}


def test_a_file_in_a_directory_shown_later_waits_for_it():
    """The PARENT name of a dirfd create is the CWD, its inode the real directory's; here the
    directory's path appears only when a later unlink names the file through the CWD."""
    via_fd = [openat(1, "5", "241"), cwd(1), path(1, 0, "/home/u", "040755", "PARENT", inode=90),
              path(1, 1, "x", "0100644", "CREATE", inode=91)]
    other = [openat(2, "ffffff9c", "241"), cwd(2), path(2, 0, "/home/u", "040755", "PARENT", inode=10),
             path(2, 1, "y", "0100644", "CREATE", inode=92)]
    shown = [syscall(5, 87, "success=yes exit=0"), cwd(5), path(5, 0, "sub/", "040755", "PARENT", inode=90),
             path(5, 1, "sub/x", "0100644", "DELETE", inode=91)]
    names = [(e.event_id, e.get("TargetFilename")) for e in events(via_fd + other + shown)]
    assert names == [(11, "/home/u/sub/x"), (11, "/home/u/y"), (23, "/home/u/sub/x")]
    live = [(e.event_id, e.get("TargetFilename")) for e in events(via_fd + other + shown, hold_events=False)]
    assert live == [(11, "<unknown directory>/x"), (11, "/home/u/y"), (23, "/home/u/sub/x")]
    # Not shown within the window: written as unknown, in its place in the output.
    later = [openat(4, "ffffff9c", "241"), cwd(4), path(4, 0, "/home/u", "040755", "PARENT", inode=10),
             path(4, 1, "z", "0100644", "CREATE", inode=93)]
    gone = [(e.event_id, e.get("TargetFilename")) for e in events(via_fd + other + later + shown, max_open_events=1)]
    assert gone == [live[0], live[1], (11, "/home/u/z"), live[2]]


def test_opening_an_existing_file_is_no_file_create():
    lines = [openat(1, "ffffff9c", "241"), cwd(1), path(1, 0, "/home/u/old", "0100644", "NORMAL")]
    assert [e for e in events(lines) if e.event_id == 11] == []


def test_file_delete_keeps_the_name_as_sysmon_does_and_skips_directories():
    unlink = [syscall(1, 87, "success=yes exit=0", uid=1000), cwd(1), path(1, 0, "/home/u/", "040755", "PARENT"),
              path(1, 1, "./x", "0100644", "DELETE")]
    rmdir_at = [syscall(2, 263, "success=yes exit=0", "a0=ffffff9c a1=7ffd a2=200 a3=0"), cwd(2),
                path(2, 0, "/home/u/", "040755", "PARENT"), path(2, 1, "d", "040755", "DELETE")]
    (event,) = [e for e in events(unlink + rmdir_at, passwd=None) if e.event_id == 23]
    assert [event.get(f) for f in ("TargetFilename", "User", "Hashes", "IsExecutable", "Archived")] == [
        "/home/u/./x", "1000", "-", "-", "-"]


@pytest.mark.parametrize("flags,reads", [("0", 1), ("2", 1), ("1", 0), ("80000", 1)])
def test_raw_access_read_is_an_open_of_a_block_device_that_can_read(flags, reads):
    lines = [openat(1, "ffffff9c", flags), cwd(1), path(1, 0, "/dev/sda", "060660", "NORMAL")]
    found = [e for e in events(lines) if e.event_id == 9]
    assert len(found) == reads
    if reads:
        assert [found[0].get(f) for f in ("Device", "User", "Image")] == ["/dev/sda", "-", "/usr/bin/tool"]


def test_interpreted_records_give_the_same_events():
    stamp = "msg=audit(11/14/23 22:13:20.001:1) :"
    lines = [
        f"type=PROCTITLE {stamp} proctitle=tool",
        (f"type=PATH {stamp} item=0 name=/dev/sda inode=10 dev=fe:00 mode=block,660 ouid=root ogid=disk "
         "rdev=08:00 nametype=NORMAL"),
        f"type=CWD {stamp} cwd=/home/u",
        (f"type=SYSCALL {stamp} arch=x86_64 syscall=openat success=yes exit=3 a0=AT_FDCWD a1=0x7ffd "
         "a2=O_RDONLY|O_CLOEXEC a3=0x0 items=1 ppid=1 pid=500 auid=unset uid=root gid=root euid=root "
         "suid=root fsuid=root egid=root sgid=root fsgid=root tty=pts1 ses=3 comm=x exe=/usr/bin/tool key=(null)"),
    ]
    raw = [openat(1, "ffffff9c", "80000"), cwd(1), path(1, 0, "/dev/sda", "060660", "NORMAL"),
           record(1, "PROCTITLE", "proctitle=746F6F6C")]
    assert [e.fields for e in events(lines, tz=timezone.utc)] == [e.fields for e in events(raw)]


# --- selection and order ------------------------------------------------------------------------------


def test_events_option_selects_what_is_written_but_not_what_is_learned():
    lines = [EXEC, EXIT]
    only_terminate = events(lines, events=[5])
    assert [e.event_id for e in only_terminate] == [5]
    assert only_terminate[0].get("ProcessGuid") == events(lines)[0].get("ProcessGuid")
    assert only_terminate[0].record_id == 1
    with pytest.raises(ConfigError):
        events(lines, events=[1, 12])  # 12: a Windows registry event


# --- the real logs --------------------------------------------------------------------------------------

SYSCALL_LINE = re.compile(rb"type=SYSCALL msg=audit\(([\d.:]+)\): arch=c000003e syscall=(\d+) (?:success=(\w+) )?")


@pytest.mark.parametrize("folder", ["busy-raw", "busy-enriched", "dev-raw", "pair-dev"])
def test_corpus_event_counts(folder):
    data = (LIVE / folder / "audit.log").read_bytes()
    calls = {m.group(1): (int(m.group(2)), m.group(3)) for m in SYSCALL_LINE.finditer(data)}
    kinds = {m.group(1): m.group(2) for m in re.finditer(rb"type=PATH msg=audit\(([\d.:]+)\):.* nametype=(\w+)", data)}
    expected = Counter()
    for key, (number, success) in calls.items():
        if number == 231:
            expected[5] += 1
        elif number in (2, 257, 85) and success == b"yes" and kinds.get(key) == b"CREATE":
            expected[11] += 1
        elif number in (87, 263) and success == b"yes" and kinds.get(key) == b"DELETE":
            expected[23] += 1
    with open(LIVE / folder / "audit.log", "rb") as log:
        got = Counter(e.event_id for e in convert(log, **API))
    assert {k: got[k] for k in (5, 11, 23)} == {k: expected[k] for k in (5, 11, 23)}
    assert expected[5] > 0 and expected[11] > 0 and expected[23] > 0
    with open(LIVE / folder / "audit.log", "rb") as log:
        ids = [e.record_id for e in convert(log, **API)]
    assert ids == list(range(1, len(ids) + 1))


def test_busy_log_connects_in_progress():
    with open(LIVE / "busy-raw" / "audit.log", "rb") as log:
        network = [e for e in convert(log, **API) if e.event_id == 3]
    data = (LIVE / "busy-raw" / "audit.log").read_bytes()
    assert len(network) == len(re.findall(rb"syscall=42 success=no exit=-115 ", data)) == 4
    assert {(e.get("DestinationIp"), e.get("DestinationPort"), e.get("Initiated")) for e in network} == {
        ("127.0.0.1", "9", "true")}
