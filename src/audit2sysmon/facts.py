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
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar

from .argv import execve_argv, execve_damage
from .calls import Call, call_of, syscall_name
from .correlate import PROCTITLE, SYSCALL, AuditEvent
from .paths import PATH, PathItem, cwd_of, path_items
from .records import Record, ValueKind
from .sockaddr import AF_INET, AF_INET6, SocketAddress, from_interpreted
from .sockaddr import decode as decode_sockaddr
from .users import UserDb

SOCKADDR = 1306
EXECVE = 1309
LOGIN = 1006
ANOM_ABEND = 1701
EXEC_CALLS = ("execve", "execveat")
# Calls whose relative names start at the directory fd in a0 rather than at the CWD.
DIRFD_CALLS = frozenset(
    {
        "openat", "openat2", "unlinkat", "mkdirat", "mknodat", "fchmodat", "fchownat", "newfstatat",
        "fstatat64", "faccessat", "faccessat2", "readlinkat", "utimensat", "futimesat", "execveat",
        "statx", "name_to_handle_at",
    }
)
# Calls with two directory fds (or one not in a0): only their absolute names are learned.
OTHER_DIRFD_CALLS = frozenset({"renameat", "renameat2", "linkat", "symlinkat"})
OPEN_CALLS = frozenset({"open", "openat", "openat2", "creat"})
SOCKET_CALLS = frozenset({"bind", "connect", "accept", "accept4"})
# Where the open flags are: open(path, flags), openat(dirfd, path, flags); openat2 passes a
# struct whose flags audit does not log, creat() is write-only.
OPEN_FLAGS_ARG = {"open": 1, "openat": 2}
O_ACCMODE, O_WRONLY = 3, 1
# socket(2) types and protocols that are TCP or UDP (SOCK_STREAM/DGRAM, IPPROTO_IP/TCP/UDP).
SOCKET_TYPES = {1: "tcp", 2: "udp"}
INET_PROTOCOLS = frozenset({0, 6, 17})

# Where a record came from, for warnings: (path, line), or None for records built in code.
Where = tuple[str, int] | None


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
    """What only a successful execve/execveat adds to its actor."""

    ppid: int | None
    ses: int | None
    tty_index: int
    command_line: str
    cwd: str | None


class Syscall(NamedTuple):
    """The event's first SYSCALL record, with what its call's handler reads.

    Only the fields the call needs are filled (the others keep their empty defaults):
    `address` for bind/connect/accept, `protocol` and `inet` for socket(), `for_reading` for
    the open calls, `items` and `cwd` whenever the event has PATH records.
    """

    actor: Actor
    name: str | None
    success: bool
    exit_code: int | None
    execed: Exec | None = None
    fd: int | None = None  # a0, the socket of bind/connect/accept
    address: SocketAddress | None = None
    inet: bool = False
    protocol: str = ""
    for_reading: bool = False
    has_paths: bool = False
    items: tuple[PathItem, ...] = ()
    cwd: str | None = None
    learn_relative: bool = False
    resolve_relative: bool = False


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
    where: Where
    late: bool
    title: str | None
    extras: tuple[Login | Abend, ...]
    syscall: Syscall | None
    execs: tuple[Where, ...]  # successful exec SYSCALL records
    cut: tuple[Where, ...]  # SYSCALL records that end before key=
    orphan: bool  # EXECVE records without any SYSCALL record
    execve_damage: str | None
    execve_where: Where
    has_execve: bool
    failure: str | None = None


def extract(event: AuditEvent, users: UserDb) -> EventFacts:
    """The facts of `event`; `users` turns `ausearch -i` names into uids and uids into names."""
    syscalls = event.all(SYSCALL)
    first = syscalls[0] if syscalls else None
    title: str | None = None
    extras: tuple[Login | Abend, ...] = ()
    call: Call | None = None
    syscall: Syscall | None = None
    failure: str | None = None
    try:
        title = _proctitle(event)
        extras = _extras(event, users)
        if first is not None:
            call = call_of(event, first)
            syscall = _syscall(event, first, call, users, title)
    except Exception as exc:  # noqa: BLE001 - reported by the converter, which goes on
        failure = repr(exc)
    execs: tuple[Where, ...] = ()
    cut: tuple[Where, ...] = ()
    for rec in syscalls:  # one, unless lines were duplicated
        if (call.success and call.name in EXEC_CALLS) if rec is first and call is not None else _successful_exec(rec):
            execs += (_where(rec),)
        if rec.get("key") is None:
            cut += (_where(rec),)
    execve = event.all(EXECVE) if execs else ()
    event_id = event.event_id
    return EventFacts(
        event.node,
        event_id.msec,
        event_id.serial,
        _where(event.records[0]),
        event.late,
        title,
        extras,
        syscall,
        execs,
        cut,
        not syscalls and event.first(EXECVE) is not None,
        execve_damage(execve) if execve else None,
        _where(execve[0]) if execve else None,
        bool(execve),
        failure,
    )


# EventFacts as nested plain tuples: what crosses a process boundary (`--jobs`).
Plain = tuple[Any, ...]


def to_plain(facts: EventFacts) -> Plain:
    """`facts` as nested plain tuples of str, int, bool, bytes and None, which `marshal` can
    write (parallel.py), at a ninth of the cost of pickling NamedTuples.

    Pickle rebuilds a NamedTuple through its Python-level `__new__` and takes it apart
    through `__getnewargs__`: 1.0 µs per line to dump and 0.5 to load the facts of the
    benchmark log, against 0.3 and 0.2 as plain tuples and 0.12 and 0.10 with marshal.
    `from_plain` is the inverse.
    Fields are copied one by one: slicing and unpacking would build tuples in between.
    """
    f, s = facts, facts.syscall
    extras = tuple([(x.ses,) if isinstance(x, Login) else (tuple(x.actor),) for x in f.extras]) if f.extras else ()
    syscall = None
    if s is not None:
        execed, address = s.execed, s.address
        syscall = (
            tuple(s.actor), s.name, s.success, s.exit_code,
            None if execed is None else tuple(execed),
            s.fd,
            None if address is None else tuple(address),
            s.inet, s.protocol, s.for_reading, s.has_paths,
            tuple([tuple(item) for item in s.items]) if s.items else (),
            s.cwd, s.learn_relative, s.resolve_relative,
        )  # fmt: skip
    return (
        f.node, f.msec, f.serial, f.where, f.late, f.title, extras, syscall, f.execs, f.cut,
        f.orphan, f.execve_damage, f.execve_where, f.has_execve, f.failure,
    )  # fmt: skip


def from_plain(p: Plain) -> EventFacts:
    """The `EventFacts` that `to_plain` made `p` from."""
    extras = (
        tuple([Abend(_built(Actor, x[0])) if isinstance(x[0], tuple) else Login(x[0]) for x in p[6]]) if p[6] else ()
    )
    s = p[7]
    syscall = None
    if s is not None:
        execed, address = s[4], s[6]
        syscall = _built(Syscall, (
            _built(Actor, s[0]), s[1], s[2], s[3],
            None if execed is None else _built(Exec, execed),
            s[5],
            None if address is None else _built(SocketAddress, address),
            s[7], s[8], s[9], s[10],
            tuple([_built(PathItem, item) for item in s[11]]) if s[11] else (),
            s[12], s[13], s[14],
        ))  # fmt: skip
    return _built(EventFacts, (
        p[0], p[1], p[2], p[3], p[4], p[5], extras, syscall, p[8], p[9], p[10], p[11], p[12], p[13], p[14],
    ))  # fmt: skip


_T = TypeVar("_T", bound=tuple[Any, ...])


def _built(cls: type[_T], values: Iterable[Any]) -> _T:
    """A NamedTuple from its values in C (its `_make` and `__new__` run Python code)."""
    return tuple.__new__(cls, values)


def _where(rec: Record) -> Where:
    source = rec.source
    return (source.path, source.line) if source is not None else None


def _successful_exec(rec: Record) -> bool:
    return rec.text("success") == "yes" and syscall_name(rec) in EXEC_CALLS


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
    return Actor(pid, rec.text("exe"), rec.text("comm"), uid, _user_name(rec, uid, users))


def _syscall(event: AuditEvent, rec: Record, call: Call, users: UserDb, title: str | None) -> Syscall | None:
    actor = _actor(rec, users)
    if actor is None:
        return None
    name = call.name
    if name in EXEC_CALLS and call.success:
        execed = Exec(
            _number(rec, "ppid", users),
            _number(rec, "ses", users),
            _tty_index(rec.text("tty")),
            _command_line(event, rec, title),
            cwd_of(event),
        )
        return Syscall(actor, name, True, call.exit_code(), execed)
    has_paths = event.first(PATH) is not None
    socket_call = name in SOCKET_CALLS
    return Syscall(  # by position: keywords cost twice as much, once per event
        actor,
        name,
        call.success,
        call.exit_code(),
        None,
        call.arg(0) if socket_call else None,
        _socket_address(event) if socket_call else None,
        name == "socket" and _is_inet(call),
        _socket_protocol(call) if name == "socket" else "",
        name in OPEN_CALLS and _opened_for_reading(call),
        has_paths,
        tuple(path_items(event)) if has_paths else (),
        cwd_of(event) if has_paths else None,
        has_paths and _relative_to_cwd(call, learning=True),
        has_paths and _relative_to_cwd(call, learning=False),
    )


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
    if own and not own.startswith("unknown(") and not own.isdecimal():
        return own
    return users.name(uid) if uid is not None else "-"


def _proctitle(event: AuditEvent) -> str | None:
    """PROCTITLE as a command line: NUL-separated argv, joined by spaces (maybe truncated)."""
    rec = event.first(PROCTITLE)
    if rec is None:
        return None
    f = rec.get("proctitle")
    if f is None or f.kind is ValueKind.NULL:
        return None
    return f.value.replace(b"\x00", b" ").decode("utf-8", "surrogateescape")


def _command_line(event: AuditEvent, syscall: Record, title: str | None) -> str:
    """argv joined by single spaces: EXECVE records, else PROCTITLE, else comm."""
    argv = execve_argv(event.all(EXECVE))
    if argv is not None:
        return b" ".join(argv).decode("utf-8", "surrogateescape")
    return title or syscall.text("comm") or "-"


def _tty_index(tty: str | None) -> int:
    """The controlling tty's index as Sysmon reads it: `pts3` → 3, `tty1` → 1, `(none)` → 0."""
    match = _TTY_INDEX.search(tty or "")
    return int(match.group(1)) if match else 0


_TTY_INDEX = re.compile(r"^(?:pts|tty)(\d+)$")


def _relative_to_cwd(call: Call, *, learning: bool) -> bool:
    """Whether the call's relative names start at the CWD (no dirfd, or AT_FDCWD)."""
    if call.name in DIRFD_CALLS:
        return call.is_dirfd_cwd(0)
    return not (learning and call.name in OTHER_DIRFD_CALLS)


def _opened_for_reading(call: Call) -> bool:
    """Not write-only: O_RDONLY or O_RDWR (openat2's flags are not logged: counted as a read)."""
    if call.name == "creat":
        return False
    index = OPEN_FLAGS_ARG.get(call.name or "")
    if index is None:
        return True
    flags = call.arg(index)
    if flags is not None:
        return flags & O_ACCMODE != O_WRONLY
    return "O_WRONLY" not in call.arg_text(index)


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

