"""An independent reading of the captured log text, to check the harness and the converter.

Deliberately small and regex-based, sharing no code with ``audit2sysmon``: it only understands
what the live workload makes the kernel write (SYSCALL of an exec, its EXECVE/CWD records, LOGIN),
so that the counts and values the tests expect do not come from the code under test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

# arch code → (execve, execveat) numbers, for the ABIs a CI machine may have.
EXEC_SYSCALLS = {
    "c000003e": {59: "execve", 322: "execveat"},  # x86_64
    "40000003": {11: "execve", 358: "execveat"},  # i386
    "c00000b7": {221: "execve", 281: "execveat"},  # aarch64
}
_HEADER = re.compile(rb"type=(\w+) msg=audit\((\d+)\.(\d+):(\d+)\): ")
_FIELD = re.compile(rb"(?:^|\s)([\w\[\]-]+)=(\"[^\"]*\"|\S*)")
_ARG = re.compile(rb"^a(\d+)(?:\[(\d+)\])?$")
_SUCCESS_EXEC = re.compile(rb"\barch=(c000003e|40000003|c00000b7) syscall=(\d+) success=yes\b")


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    seconds: int
    millis: int
    serial: int
    fields: dict[str, bytes]

    @property
    def event(self) -> tuple[int, int, int]:
        return (self.seconds, self.millis, self.serial)

    @property
    def utc_time(self) -> str:
        """Sysmon's UtcTime of this record's timestamp."""
        stamp = datetime.fromtimestamp(self.seconds, tz=timezone.utc)
        return f"{stamp:%Y-%m-%d %H:%M:%S}.{self.millis:03d}"


@dataclass(frozen=True, slots=True)
class Exec:
    """One execve/execveat SYSCALL with what the other records of its event say."""

    syscall: Record
    name: str
    success: bool
    pid: int
    ppid: int
    uid: int
    ses: int
    exe: str
    argv: list[str]
    cwd: str | None


def records(lines: list[bytes]) -> list[Record]:
    """The raw (or ENRICHED: the part before the 0x1d separator) records of a log."""
    out = []
    for line in lines:
        raw = line.split(b"\x1d", 1)[0]
        header = _HEADER.search(raw)
        if header is None:
            continue
        body = raw[header.end():]
        fields = {m.group(1).decode(): m.group(2) for m in _FIELD.finditer(body)}
        kind, secs, millis, serial = header.groups()
        out.append(Record(kind.decode(), int(secs), int(millis), int(serial), fields))
    return out


def text(value: bytes) -> str:
    """An audit string value: ``"quoted"`` as is, else hex-encoded bytes (``(null)`` stays)."""
    if value.startswith(b'"'):
        return value[1:-1].decode("utf-8", "surrogateescape")
    try:
        return bytes.fromhex(value.decode()).decode("utf-8", "surrogateescape")
    except ValueError:
        return value.decode("utf-8", "surrogateescape")


def _argv(execve: list[Record]) -> list[str]:
    argc = next(int(r.fields["argc"]) for r in execve if "argc" in r.fields)
    pieces: dict[int, dict[int, bytes]] = {}
    for record in execve:
        for name, value in record.fields.items():
            if match := _ARG.match(name.encode()):
                index, chunk = int(match.group(1)), int(match.group(2) or 0)
                pieces.setdefault(index, {})[chunk] = value
    args = []
    for index in range(argc):
        chunks = pieces[index]
        if len(chunks) == 1:
            args.append(text(chunks[0]))
        else:  # aN[i] chunks are always hex
            args.append(bytes.fromhex(b"".join(chunks[i] for i in sorted(chunks)).decode())
                        .decode("utf-8", "surrogateescape"))
    return args


def execs(lines: list[bytes]) -> list[Exec]:
    """Every execve/execveat SYSCALL of the log, in log order, with argv and cwd of its event."""
    out = []
    for record, group in _syscall_records(lines):
        names = EXEC_SYSCALLS.get(record.fields["arch"].decode(), {})
        name = names.get(int(record.fields["syscall"]))
        if name is None:
            continue
        execve = [r for r in group if r.kind == "EXECVE"]
        cwd = next((text(r.fields["cwd"]) for r in group if r.kind == "CWD"), None)
        out.append(Exec(
            syscall=record, name=name, success=record.fields["success"] == b"yes",
            pid=int(record.fields["pid"]), ppid=int(record.fields["ppid"]),
            uid=int(record.fields["uid"]), ses=int(record.fields["ses"]),
            exe=text(record.fields["exe"]), argv=_argv(execve) if execve else [], cwd=cwd,
        ))
    return out


def _syscall_records(lines: list[bytes]) -> list[tuple[Record, list[Record]]]:
    """(SYSCALL record, all records of its event) in log order, grouped by the event key."""
    by_event: dict[tuple[int, int, int], list[Record]] = {}
    for record in records(lines):
        by_event.setdefault(record.event, []).append(record)
    return [(record, group) for group in by_event.values() for record in group if record.kind == "SYSCALL"]


def count_successful_execs(data: bytes) -> int:
    """Successful execve/execveat SYSCALL records, counted with one regex over the text."""
    return sum(
        1 for m in _SUCCESS_EXEC.finditer(data)
        if int(m.group(2)) in EXEC_SYSCALLS[m.group(1).decode()]
    )


def login_times(lines: list[bytes]) -> dict[int, int]:
    """Session id → seconds of the LOGIN record that started it."""
    return {
        int(r.fields["ses"]): r.seconds
        for r in records(lines)
        if r.kind == "LOGIN" and r.fields.get("res") == b"1"
    }


# x86_64 numbers of the syscalls behind the other Sysmon events (the live rules are 64-bit only).
X86_64_SYSCALLS = {
    231: "exit_group", 2: "open", 257: "openat", 437: "openat2", 85: "creat", 87: "unlink",
    263: "unlinkat", 41: "socket", 49: "bind", 42: "connect", 43: "accept", 288: "accept4", 101: "ptrace",
    44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 62: "kill", 200: "tkill", 234: "tgkill",
}


@dataclass(frozen=True, slots=True)
class Syscall:
    """A SYSCALL of one of ``X86_64_SYSCALLS`` with its PATH items, SOCKADDR bytes and the pids
    of its OBJ_PID records (the processes a signal was sent to)."""

    syscall: Record
    name: str
    pid: int
    success: bool
    exit: int | None
    paths: list[tuple[str, str, str]]  # (name, nametype, mode) in record order
    saddr: bytes | None
    targets: list[int]


def syscalls(lines: list[bytes]) -> list[Syscall]:
    """Every x86_64 SYSCALL of ``X86_64_SYSCALLS`` in log order, with its PATH and SOCKADDR records."""
    out = []
    for record, group in _syscall_records(lines):
        if record.fields.get("arch") != b"c000003e":
            continue
        name = X86_64_SYSCALLS.get(int(record.fields["syscall"]))
        if name is None:
            continue
        paths = [(text(r.fields.get("name", b"(null)")), r.fields.get("nametype", b"").decode(),
                  r.fields.get("mode", b"").decode()) for r in group if r.kind == "PATH"]
        saddr = next((bytes.fromhex(r.fields["saddr"].decode()) for r in group if r.kind == "SOCKADDR"), None)
        exit_ = record.fields.get("exit")
        targets = [int(r.fields["opid"]) for r in group if r.kind == "OBJ_PID"]
        out.append(Syscall(record, name, int(record.fields["pid"]), record.fields.get("success") == b"yes",
                           int(exit_) if exit_ is not None else None, paths, saddr, targets))
    return out
