"""What the map stage reads of one audit event, extracted without any state.

The map stage has two halves. *Extraction* (this module) reads the records of one event:
the syscall's name, arguments and outcome, the argv, the PATH items, the socket address, user
names. It needs nothing but the event and the user database. *Applying* (`mapping.Mapper`)
keeps everything that crosses events: the process table, logins, sockets, directories, the
outbox and the EventRecordIDs.

The split is what lets `--jobs N` work (docs/performance.md): worker processes parse,
correlate and extract, and one process applies the facts in log order, so the output is the
same bytes as one process writes. Facts are NamedTuples of plain values because they cross a
process boundary: as plain tuples (`to_plain`) they cost a fraction of what records would.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..audit.records import AuditEvent, Record, SourceLocation, ValueKind
from ..audit.types import ANOM_ABEND, EXECVE, LOGIN, OBJ_PID, PATH, PROCTITLE, SOCKADDR, SYSCALL
from .argv import execve_argv, execve_damage
from .calls import Call, call_of, syscall_name
from .paths import PathItem, cwd_of, file_type, path_items
from .sockaddr import AF_INET, AF_INET6, SocketAddress, from_interpreted
from .sockaddr import decode as decode_sockaddr
from .syscalls import CallKind, CallSpec, spec_of
from .users import UserDb

__all__ = [
    "Abend",
    "Actor",
    "EventFacts",
    "Exec",
    "Files",
    "Login",
    "NewSocket",
    "Opened",
    "Ptrace",
    "Signal",
    "SocketUse",
    "Syscall",
    "extract",
]

O_ACCMODE, O_WRONLY = 3, 1
# ptrace(2) requests that attach a tracer (sys/ptrace.h): what Sysmon logs as ProcessAccess.
PTRACE_ATTACHES = {0x10: "PTRACE_ATTACH", 0x4206: "PTRACE_SEIZE"}
# The one signal that always ends the process it is sent to (the same number on every
# architecture Linux runs on), raw and as `ausearch -i` names it.
SIGKILL, SIGKILL_NAME = 9, "SIGKILL"
# socket(2) types and protocols that are TCP or UDP (SOCK_STREAM/DGRAM, IPPROTO_IP/TCP/UDP).
SOCKET_TYPES = {1: "tcp", 2: "udp"}
INET_PROTOCOLS = frozenset({0, 6, 17})


class Actor(NamedTuple):
    """A process as one SYSCALL or ANOM_ABEND record shows it."""

    pid: int
    image: str | None
    comm: str | None
    uid: int | None
    user: str  # Sysmon's User: the record's own name for the uid first, then the user database


class Login(NamedTuple):
    """A LOGIN record: session `ses` started at the event's time."""

    ses: int


class Abend(NamedTuple):
    """An ANOM_ABEND record: `actor` was killed by a core-dumping signal."""

    actor: Actor


class Exec(NamedTuple):
    """What only a successful execve/execveat adds to its actor. `files`: the (device, inode)
    of the files its PATH records name (the program, a script's interpreter, the loader), read
    only when asked (a live host hashes the program: `extract(…, exec_files=True)`)."""

    ppid: int | None
    ses: int | None
    tty_index: int
    command_line: str
    argv0: str
    cwd: str | None
    files: tuple[tuple[str, str], ...] = ()


class NewSocket(NamedTuple):
    """socket(): whether it is an inet/inet6 socket, and `tcp`, `udp` or `other`."""

    inet: bool
    protocol: str


class SocketUse(NamedTuple):
    """bind, connect, accept, send, receive: the socket (a0) and the address of the SOCKADDR
    record (for a send or receive, the datagram's peer)."""

    fd: int | None
    address: SocketAddress | None


class Opened(NamedTuple):
    """An open call: whether it opened for reading (O_RDONLY or O_RDWR)."""

    for_reading: bool


class Ptrace(NamedTuple):
    """ptrace(2): whether the request attaches (PTRACE_ATTACH, PTRACE_SEIZE), the pid it names
    (a thread's id when a thread is attached), and the process the OBJ_PID record says it is
    (its pid, the uid that owns it, that uid's name)."""

    attaches: bool
    target: int | None
    object_pid: int | None
    object_uid: int | None
    object_user: str


class Signal(NamedTuple):
    """kill, tkill, tgkill: whether the signal is SIGKILL, and the processes it was sent to as
    their OBJ_PID records show them (pid, the name of the uid that owns it; one record per
    process, so a process group gives several)."""

    kills: bool
    targets: tuple[tuple[int, str], ...]


Detail = Exec | NewSocket | SocketUse | Opened | Ptrace | Signal
"""What a call of one kind (syscalls.py) adds: Exec only for a successful exec."""


class Files(NamedTuple):
    """The event's PATH records, with what it takes to make their names absolute.

    `learn_relative` / `resolve_relative`: whether the call's relative names start at the
    CWD (no directory fd, or AT_FDCWD), for learning directories and for naming files.
    """

    items: tuple[PathItem, ...]
    cwd: str | None
    learn_relative: bool
    resolve_relative: bool


class Syscall(NamedTuple):
    """The event's first SYSCALL record: who called what, how it ended, and what its kind of
    call needs (`detail`, by `spec_of(name).kind`; `files` whenever there are PATH records)."""

    actor: Actor
    name: str | None
    success: bool
    exit_code: int | None
    detail: Detail | None = None
    files: Files | None = None


class EventFacts(NamedTuple):
    """Everything the map stage and the converter's accounting read of one audit event.

    The accounting fields let the converter report damage (cut, late, duplicated or orphaned
    records) with file and line, and count every successful exec, without the records.
    `failure` is set when extracting the map facts raised (a bug): the converter reports it
    and skips the event, as it does when applying raises.
    """

    node: str | None
    msec: int
    serial: int
    where: SourceLocation | None
    late: bool
    title: str | None  # PROCTITLE as a command line
    title_argv0: str | None  # its first argument
    extras: tuple[Login | Abend, ...]
    syscall: Syscall | None
    execs: tuple[SourceLocation | None, ...]  # successful exec SYSCALL records
    cut: tuple[SourceLocation | None, ...]  # SYSCALL records that end before key=
    orphan: bool  # EXECVE records without any SYSCALL record
    execve_damage: str | None
    execve_where: SourceLocation | None
    has_execve: bool
    failure: str | None = None


def extract(event: AuditEvent, users: UserDb, *, exec_files: bool = False) -> EventFacts:
    """The facts of `event`; `users` turns `ausearch -i` names into uids and uids into names;
    `exec_files` reads the files an exec's PATH records name (`Exec.files`)."""
    syscalls = event.all(SYSCALL)
    first = syscalls[0] if syscalls else None
    title: str | None = None
    title_argv0: str | None = None
    extras: tuple[Login | Abend, ...] = ()
    call: Call | None = None
    syscall: Syscall | None = None
    failure: str | None = None
    try:
        title, title_argv0 = _proctitle(event)
        extras = _extras(event, users)
        if first is not None:
            call = call_of(event, first)
            syscall = _syscall(event, first, call, users, title, title_argv0, exec_files)
    except Exception as exc:
        failure = repr(exc)
    execs: tuple[SourceLocation | None, ...] = ()
    cut: tuple[SourceLocation | None, ...] = ()
    for rec in syscalls:  # one, unless lines were duplicated
        if (call.success and _is_exec(call.name)) if rec is first and call is not None else _successful_exec(rec):
            execs += (rec.source,)
        if _cut(rec):
            cut += (rec.source,)
    execve = event.all(EXECVE) if execs else ()
    stamp = event.stamp
    # The facts of every event are built with `tuple.__new__`: a NamedTuple's own constructor
    # is generated Python code, even in the compiled build, and cost 3 % of a conversion.
    return tuple.__new__(EventFacts, (
        event.node,
        stamp.msec,
        stamp.serial,
        event.records[0].source,
        event.late,
        title,
        title_argv0,
        extras,
        syscall,
        execs,
        cut,
        not syscalls and event.first(EXECVE) is not None,
        execve_damage(execve) if execve else None,
        execve[0].source if execve else None,
        bool(execve),
        failure,
    ))  # fmt: skip


def _cut(rec: Record) -> bool:
    """A SYSCALL record that ends before `key=`, the last field the kernel writes. Looked for
    at the end first: a whole record's scan for the last key, on every event, cost more."""
    fields = rec.fields
    return not (fields and fields[-1].key == "key") and rec.get("key") is None


def _is_exec(name: str | None) -> bool:
    spec = spec_of(name)
    return spec is not None and spec.kind is CallKind.EXEC


def _successful_exec(rec: Record) -> bool:
    return rec.text("success") == "yes" and _is_exec(syscall_name(rec))


def _extras(event: AuditEvent, users: UserDb) -> tuple[Login | Abend, ...]:
    """LOGIN and ANOM_ABEND records, in record order (most events have none)."""
    found: list[Login | Abend] = []
    for rec in event.records:
        if rec.type_num == LOGIN:
            ses = _number(rec, "ses", users)
            if ses is not None:
                found.append(Login(ses))
        elif rec.type_num == ANOM_ABEND:
            actor = _actor(rec, users)
            if actor is not None:
                found.append(Abend(actor))
    return tuple(found)


def _actor(rec: Record, users: UserDb) -> Actor | None:
    pid = _number(rec, "pid", users)
    if pid is None:
        return None
    uid = _number(rec, "uid", users)
    return tuple.__new__(Actor, (pid, rec.text("exe"), rec.text("comm"), uid, _user_name(rec, uid, users)))


def _syscall(
    event: AuditEvent,
    rec: Record,
    call: Call,
    users: UserDb,
    title: str | None,
    title_argv0: str | None,
    exec_files: bool,
) -> Syscall | None:
    actor = _actor(rec, users)
    if actor is None:
        return None
    name, success = call.name, call.success
    spec = spec_of(name)
    kind = spec.kind if spec is not None else None
    if kind is CallKind.EXEC and success:
        command_line, argv0 = _command_line(event, rec, title, title_argv0)
        execed = Exec(
            _number(rec, "ppid", users),
            _number(rec, "ses", users),
            _tty_index(rec.text("tty")),
            command_line,
            argv0,
            cwd_of(event),
            _files(event) if exec_files else (),
        )
        return Syscall(actor, name, True, call.exit_code(), execed)
    detail: Detail | None = None
    if kind is CallKind.SOCKET:
        detail = NewSocket(_is_inet(call), _socket_protocol(call))
    elif kind in _SOCKET_USES:
        detail = SocketUse(call.arg(0), _socket_address(event))
    elif kind is CallKind.OPEN and spec is not None:
        detail = Opened(_opened_for_reading(call, spec))
    elif kind is CallKind.PTRACE:
        detail = _ptrace(event, call, users)
    elif kind is CallKind.SIGNAL and spec is not None and spec.signal is not None:
        detail = _signal(event, call, spec.signal, users)
    files: Files | None = None
    if event.first(PATH) is not None and (success or _names_a_directory(event)):
        files = Files(
            tuple(path_items(event)),
            cwd_of(event),
            _relative_to_cwd(call, spec, learning=True),
            _relative_to_cwd(call, spec, learning=False),
        )
    return tuple.__new__(Syscall, (actor, name, success, call.exit_code(), detail, files))


# A tuple, not a set: `in` finds an enum member by identity, where a set hashes it through
# Enum's `__hash__`, Python code called for nearly every event in the pure-Python build.
_SOCKET_USES = (CallKind.BIND, CallKind.CONNECT, CallKind.ACCEPT, CallKind.SEND, CallKind.RECEIVE)


def _names_a_directory(event: AuditEvent) -> bool:
    """Whether a PATH record is a directory with an inode: all that the map stage learns from
    a failed call (a failed exec's PATH search, the most common failed call, names none)."""
    for rec in event.records:
        if rec.type_num == PATH and rec.get("inode") is not None and file_type(rec.text("mode")) == "dir":
            return True
    return False


def _files(event: AuditEvent) -> tuple[tuple[str, str], ...]:
    """(device, inode) of every PATH record that names a file rather than its directory."""
    found: list[tuple[str, str]] = []
    for rec in event.all(PATH):
        dev, inode = rec.text("dev"), rec.text("inode")
        if dev is not None and inode is not None and rec.text("nametype") != "PARENT":
            found.append((dev, inode))
    return tuple(found)


def _ptrace(event: AuditEvent, call: Call, users: UserDb) -> Ptrace:
    """The request (a number raw, `PTRACE_ATTACH` in `ausearch -i`), its pid argument, and the
    OBJ_PID record of the process it acts on."""
    request = call.arg(0)
    attaches = request in PTRACE_ATTACHES if request is not None else call.arg_text(0) in PTRACE_ATTACHES.values()
    target = event.first(OBJ_PID)
    if target is None:
        return Ptrace(attaches, call.arg(1), None, None, "-")
    uid = _number(target, "ouid", users)
    return Ptrace(attaches, call.arg(1), _number(target, "opid", users), uid, _owner_name(target, uid, users))


def _signal(event: AuditEvent, call: Call, index: int, users: UserDb) -> Signal:
    """The signal (a number raw, `SIGKILL` in `ausearch -i`) and its OBJ_PID targets."""
    number = call.arg(index)
    kills = number == SIGKILL if number is not None else call.arg_text(index) == SIGKILL_NAME
    targets: list[tuple[int, str]] = []
    for rec in event.all(OBJ_PID):
        pid = _number(rec, "opid", users)
        if pid is not None and pid > 0:
            targets.append((pid, _owner_name(rec, _number(rec, "ouid", users), users)))
    return Signal(kills, tuple(targets))


def _owner_name(rec: Record, uid: int | None, users: UserDb) -> str:
    """Name of an object's owner: the record's own name (ENRICHED `OUID`, `ausearch -i`), else
    the user database."""
    own = rec.enrichment("OUID")
    if own is None and rec.interpreted:
        own = rec.text("ouid")
    return _named(own, uid, users)


def _number(rec: Record, key: str, users: UserDb) -> int | None:
    """A numeric field, also from `ausearch -i` names (`ses=unset`, `uid=root`)."""
    text = rec.text(key)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return users.uid(text) if rec.interpreted else None


def _user_name(rec: Record, uid: int | None, users: UserDb) -> str:
    """Name of the real uid: the record's own name first, then the user database."""
    own = rec.enrichment("UID")
    if own is None and rec.interpreted:
        own = rec.text("uid")
    return _named(own, uid, users)


def _named(own: str | None, uid: int | None, users: UserDb) -> str:
    """A name the record carries, unless it is only a number; else the user database's."""
    if own and own[:8] != "unknown(" and not own.isdecimal():  # a slice: `startswith` parses its arguments
        return own
    return users.name(uid) if uid is not None else "-"


def _proctitle(event: AuditEvent) -> tuple[str | None, str | None]:
    """PROCTITLE as a command line (NUL-separated argv, joined by spaces, maybe truncated),
    and its first argument; (None, None) without one."""
    rec = event.first(PROCTITLE)
    if rec is None:
        return None, None
    f = rec.get("proctitle")
    if f is None or f.kind is ValueKind.NULL:
        return None, None
    value = f.value
    return (
        value.replace(b"\x00", b" ").decode("utf-8", "surrogateescape"),
        value.partition(b"\x00")[0].decode("utf-8", "surrogateescape"),
    )


def _command_line(event: AuditEvent, syscall: Record, title: str | None, title_argv0: str | None) -> tuple[str, str]:
    """argv joined by single spaces, and argv[0]: EXECVE records, else PROCTITLE, else comm."""
    argv = execve_argv(event.all(EXECVE))
    if argv is not None:
        first = argv[0].decode("utf-8", "surrogateescape") if argv else ""
        return b" ".join(argv).decode("utf-8", "surrogateescape"), first
    if title:
        return title, title_argv0 or title
    comm = syscall.text("comm") or "-"
    return comm, comm


def _tty_index(tty: str | None) -> int:
    """The controlling tty's index as Sysmon reads it: `pts3` → 3, `tty1` → 1, `(none)` → 0."""
    match = _TTY_INDEX.search(tty or "")
    return int(match.group(1)) if match else 0


_TTY_INDEX = re.compile(r"^(?:pts|tty)(\d+)$")


def _relative_to_cwd(call: Call, spec: CallSpec | None, *, learning: bool) -> bool:
    """Whether the call's relative names start at the CWD (no dirfd, or AT_FDCWD)."""
    if spec is None:
        return True
    if spec.dirfd is not None:
        return call.is_dirfd_cwd(spec.dirfd)
    return not (learning and spec.other_dirfds)


def _opened_for_reading(call: Call, spec: CallSpec) -> bool:
    """Not write-only: O_RDONLY or O_RDWR (openat2's flags are not logged: counted as a read)."""
    if spec.write_only:
        return False
    if spec.flags is None:
        return True
    flags = call.arg(spec.flags)
    if flags is not None:
        return flags & O_ACCMODE != O_WRONLY
    return "O_WRONLY" not in call.arg_text(spec.flags)


def _is_inet(call: Call) -> bool:
    """socket()'s domain is AF_INET or AF_INET6 (a number raw, a name in `ausearch -i`)."""
    return call.arg(0) in (AF_INET, AF_INET6) or call.arg_text(0) in ("inet", "inet6")


def _socket_protocol(call: Call) -> str:
    """`tcp`/`udp` from socket()'s type and protocol arguments, `other` for anything else."""
    kind, protocol = call.arg(1), call.arg(2)
    if kind is None:  # ausearch -i: SOCK_STREAM, SOCK_DGRAM|SOCK_CLOEXEC, …
        text = call.arg_text(1)
        return "udp" if "SOCK_DGRAM" in text else "tcp" if "SOCK_STREAM" in text else "other"
    name = SOCKET_TYPES.get(kind & 0xF)
    if name is None or (protocol is not None and protocol not in INET_PROTOCOLS):
        return "other"
    return name


def _socket_address(event: AuditEvent) -> SocketAddress | None:
    """The inet/inet6 endpoint of the event's SOCKADDR record, raw or `ausearch -i`."""
    rec = event.first(SOCKADDR)
    field = rec.get("saddr") if rec is not None else None
    if field is None or field.kind is ValueKind.NULL:
        return None
    if field.kind is ValueKind.INTERPRETED:
        return from_interpreted(field.text)
    return decode_sockaddr(field.value)

