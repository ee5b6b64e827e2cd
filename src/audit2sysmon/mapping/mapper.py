"""Audit events → Sysmon for Linux events, with the process table behind the process fields.

The facts of each audit event are read once: its SYSCALL record teaches the process table (track.py) and,
by the syscall it names, may become one Sysmon event whose fields follow Sysmon's own
semantics (docs/mapping.md has the table of sources and deliberate differences):

| syscall (successful)                      | Sysmon event                          |
|-------------------------------------------|---------------------------------------|
| execve, execveat                          | 1 ProcessCreate                       |
| connect (also EINPROGRESS), accept(4)     | 3 NetworkConnect, inet/inet6 only     |
| a datagram socket's first send or receive | 3 NetworkConnect, once per socket     |
| exit_group; an ANOM_ABEND record; SIGKILL | 5 ProcessTerminate                    |
| open, openat, openat2 of a block device   | 9 RawAccessRead, unless write-only    |
| open, openat, openat2, creat: PATH CREATE | 11 FileCreate                         |
| unlink, unlinkat: PATH DELETE, not a dir  | 23 FileDelete                         |

socket() and bind() are read for the protocol and local address of later connects/accepts.
Every event kind goes through the same outbox, so output order is log order.

Holding: a child names its parent by pid, and a file created through a directory fd names
its directory by inode. When that parent's identity or that directory's path is already
known the event is final at once. When it is not, and holding is allowed (batch
conversion), the event waits in the outbox until a later record shows it, or until the
window of newer events passes; the outbox releases events strictly in order, so output
order stays the log's order. EventRecordIDs are assigned at release.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple, TypeVar

from ..errors import ConversionError, NotConverted, Unresolved
from ..options import Options
from ..sysmon.config import SysmonConfig
from ..sysmon.config.manifest import DEFAULT_HASHES
from ..sysmon.event import SysmonEvent, format_utc_time, make_event, written_values
from ..sysmon.guid import ZERO_GUID, logon_guid, sysmon_guid
from . import sockaddr
from .calls import EINPROGRESS
from .facts import Actor, EventFacts, Exec, Login, NewSocket, Opened, Ptrace, Signal, SocketUse, Syscall
from .guids import event_key, machine_id_from_node
from .host import Host
from .paths import DirectoryKey, PathItem, PathResolver, Unplaced
from .sockaddr import SocketAddress, SocketInfo, SocketTable
from .syscalls import SYSCALLS, CallKind
from .track import Process, ProcessTable
from .users import UNSET_ID, UserDb

__all__ = ["UNKNOWN_PROCESS", "Applied", "Mapper", "MapperStats"]

UNKNOWN_PROCESS = "<unknown process>"


ParentKey = tuple["str | None", int]
"""A parent by node and pid."""


@dataclass(slots=True, init=False)
class _Queued:
    """An event in the outbox. It may still wait: a ProcessCreate for its parent's identity
    (`awaits_parent`), a file event for the directory of its `unplaced` name
    (`awaits_directory`). A written `__init__`: one per event written, and the `dataclass`
    one is Python code even in the compiled build."""

    event_id: int
    values: dict[str, str]
    node: str | None
    computer: str
    msec: int
    seq: int
    awaits_parent: ParentKey | None
    awaits_directory: DirectoryKey | None
    unplaced: Unplaced | None

    def __init__(
        self, event_id: int, values: dict[str, str], node: str | None, computer: str, msec: int, seq: int
    ) -> None:
        self.event_id = event_id
        self.values = values
        self.node = node
        self.computer = computer
        self.msec = msec
        self.seq = seq
        self.awaits_parent = None
        self.awaits_directory = None
        self.unplaced = None


@dataclass(slots=True)
class MapperStats:
    """Counts for `--stats`: what the map stage made of the events it saw.

    `process_create` counts the ProcessCreate events written; `unresolved` the events written
    with a value the log did not hold, by which; `filtered` the events a Sysmon configuration
    dropped, by EventID, and `rule_names` the events it logged, by RuleName.
    """

    process_create: int = 0
    unresolved: Counter[Unresolved] = field(default_factory=Counter)
    filtered: Counter[int] = field(default_factory=Counter)
    rule_names: Counter[str] = field(default_factory=Counter)


class Applied(NamedTuple):
    """What applying one event's facts gave: the Sysmon events now final (of this event or of
    earlier ones the outbox held), whether its successful exec became a ProcessCreate, and
    if not, why not."""

    events: list[SysmonEvent]
    process_created: bool = False
    exec_missed: NotConverted | None = None


class Mapper:
    """Turns audit events into Sysmon events; owns the process table and session times.

    It reads an event only through its `EventFacts` (facts.py), which a worker process may
    have extracted (`--jobs`).
    """

    def __init__(
        self, options: Options, users: UserDb, table: ProcessTable | None = None, host: Host | None = None
    ) -> None:
        """`host`: the live host the log comes from, asked for what only it knows (Hashes, a
        parent that started before auditing did) when `options` ask for it."""
        self.options = options
        self.users = users
        self.table = table if table is not None else ProcessTable()
        self.stats = MapperStats()
        self._outbox: deque[_Queued] = deque()
        # Children held for a parent, per (node, ppid), and file events held for a directory,
        # per (node, dev, inode), in outbox order: expiry pops the head.
        self._waiting: dict[ParentKey, deque[_Queued]] = {}
        self._unplaced: dict[DirectoryKey, deque[_Queued]] = {}
        self._logins: dict[tuple[str | None, int], int] = {}
        self._sockets = SocketTable()
        self._paths = PathResolver()
        self._machine_ids: dict[str, int] = {}
        self._record_id = options.first_record_id
        self._seq = 0
        self._hostname = options.hostname_or_default()
        self._config = options.sysmon_config()
        self._hashing = host if host is not None and options.hash_images else None
        self._proc = host if host is not None and options.proc_parents else None

    def reconfigure(self, config: SysmonConfig | None) -> None:
        """Apply `config` to the events released from now on (a reload: SIGHUP)."""
        self._config = config

    def service(self, event_id: int, values: dict[str, str], msec: int) -> list[SysmonEvent]:
        """A service event (EventID 4 state, 16 configuration) at `msec`, behind every event
        before it; never filtered (Sysmon does not filter them either)."""
        self._seq += 1
        self._outbox.append(_Queued(event_id, values, None, self._hostname, msec, self._seq))
        return self._release(msec, force=False)

    # -- input ---------------------------------------------------------------------------

    def apply(self, event: EventFacts) -> Applied:
        """Learn from the facts of one audit event; return the Sysmon events now final.

        Facts whose extraction failed (a bug) raise `ConversionError`: there is nothing to learn.
        """
        if event.failure is not None:
            raise ConversionError(event.failure)
        self._seq += 1
        for extra in event.extras:
            if isinstance(extra, Login):
                self._learn_login(event, extra.ses)
            else:
                self._terminate(event, extra.actor, self._observe(event, extra.actor))
        missed: NotConverted | None = None
        created = False
        call = event.syscall
        if call is not None:
            detail = call.detail
            if isinstance(detail, Exec):
                missed = self._process_create(event, call.actor, detail)
                created = missed is None
            else:
                self._learn_syscall(event, call)
        # Without Applied's generated (Python) constructor: one per event (facts.py says more).
        return tuple.__new__(Applied, (self._release(event.msec, force=False), created, missed))

    def flush(self) -> list[SysmonEvent]:
        """End of input: everything held is final now, unknown parents stay unknown."""
        return self._release(0, force=True)

    # -- learning ------------------------------------------------------------------------

    def _learn_login(self, event: EventFacts, ses: int) -> None:
        if ses != UNSET_ID:
            self._logins[(event.node, ses)] = event.msec // 1000
            if len(self._logins) > 65536:
                self._logins.pop(next(iter(self._logins)))

    def _learn_syscall(self, event: EventFacts, call: Syscall) -> None:
        """Any syscall but a successful exec: the process doing it, what it names, and the
        handler of its kind (syscalls.py)."""
        proc = self._observe(event, call.actor)
        files = call.files
        if files is not None:
            self._paths.learn(event.node, files.cwd, files.items, files.learn_relative)
            if self._unplaced:
                self._place_waiting(files.items, event.node)
        handler = _HANDLER_OF_CALL.get(call.name or "")
        if handler is not None:
            handler(self, event, call, proc)

    def _fork(self, event: EventFacts, call: Syscall, parent: Process) -> None:
        node = event.node
        child = call.exit_code
        if call.success and child and child > 0 and not self._known_since(node, child, event):
            self.table.put(
                node,
                Process(
                    child,
                    self._guid(event, child),
                    parent.image,
                    parent.command_line,
                    parent.argv0,
                    parent.uid,
                    event.msec,
                    "fork",
                ),
            )

    def _known_since(self, node: str | None, pid: int, event: EventFacts) -> bool:
        """True when `pid` already has an identity from this event's time on.

        A vfork parent's syscall record is written when the parent resumes, i.e. after the
        child's exec record, but carries the earlier entry time: the child's exec identity
        must not be overwritten by the fork that preceded it.
        """
        known = self.table.get(node, pid)
        return known is not None and known.start_msec >= event.msec

    def _observe(self, event: EventFacts, actor: Actor) -> Process:
        """A process seen doing something: keep its identity, or learn a new one."""
        node, pid, image = event.node, actor.pid, actor.image
        known = self.table.get(node, pid)
        if known is None or (image is not None and known.image != image):
            known = self.table.put(
                node,
                Process(
                    pid,
                    self._guid(event, pid),
                    image,
                    event.title or actor.comm,
                    event.title_argv0 if event.title else actor.comm,
                    actor.uid,
                    event.msec,
                    "observed",
                ),
            )
        elif event.title:
            self.table.learn_command_line(node, pid, event.title, event.title_argv0)
        self._resolve_waiting(node, pid, known)
        return known

    # -- ProcessCreate -------------------------------------------------------------------

    def _process_create(self, event: EventFacts, actor: Actor, execed: Exec) -> NotConverted | None:
        """A successful exec: the new identity, and its ProcessCreate unless not selected."""
        node, msec, pid, uid, ppid, ses = event.node, event.msec, actor.pid, actor.uid, execed.ppid, execed.ses
        computer = node or self._hostname
        machine = self._machine_id(computer)
        guid = sysmon_guid(machine, msec // 1000, event_key(node, msec, event.serial, pid))
        values = {
            "RuleName": "-",
            "UtcTime": format_utc_time(msec),
            "ProcessGuid": guid,
            "ProcessId": str(pid),
            "Image": actor.image or "-",
            "CommandLine": execed.command_line,
            "CurrentDirectory": execed.cwd or "-",
            "User": actor.user,
            "LogonGuid": logon_guid(
                machine,
                self._logins.get((node, ses), 0) if ses is not None else 0,
                uid if uid is not None else 0,
                execed.tty_index,
            ),
            "LogonId": str(uid & 0xFFFF) if uid is not None else "-",
            "TerminalSessionId": str(ses if ses is not None else UNSET_ID),
            "IntegrityLevel": "no level",
            "Hashes": self._image_hashes(actor.image, execed.files),
            "ParentProcessId": str(ppid) if ppid is not None else "-",
        }
        self.table.put(node, Process(pid, guid, actor.image, execed.command_line, execed.argv0, uid, msec, "exec"))
        if 1 not in self.options.events:
            return NotConverted.NOT_SELECTED
        pending = _Queued(1, values, node, computer, msec, self._seq)
        parent = self._parent(node, ppid, msec) if ppid is not None else None
        if parent is not None or ppid is None or not self.options.hold_events:
            self._set_parent(pending, parent)
        else:
            pending.awaits_parent = (node, ppid)
            self._waiting.setdefault((node, ppid), deque()).append(pending)
        self._outbox.append(pending)
        return None

    def _image_hashes(self, image: str | None, files: tuple[tuple[str, str], ...]) -> str:
        """Hashes of the executed file, read on the live host; `-` otherwise (a log converter
        does not have the file)."""
        if self._hashing is None or image is None:
            return "-"
        config = self._config
        return self._hashing.image_hashes(image, files, config.hash_algorithms if config else DEFAULT_HASHES)

    def _parent(self, node: str | None, ppid: int, msec: int) -> Process | None:
        """The parent's identity: the table's, else (on a live host) the running process of
        that pid, if it started before the child did (else the pid was reused since)."""
        parent = self.table.get(node, ppid)
        if parent is not None or self._proc is None or not self._proc.is_local(node):
            return parent
        found = self._proc.process(ppid)
        if found is None or found.start_msec > msec:
            return None
        start = found.start_msec
        guid = sysmon_guid(self._machine_id(node or self._hostname), start // 1000, event_key(node, start, 0, ppid))
        return self.table.put(
            node,
            Process(ppid, guid, found.image, found.command_line, found.argv0, found.uid, found.start_msec, "host"),
        )

    def _set_parent(self, pending: _Queued, parent: Process | None) -> None:
        values = pending.values
        if parent is None:
            self.stats.unresolved[Unresolved.PARENT] += 1
            values.update(
                ParentProcessGuid=ZERO_GUID, ParentImage="-", ParentCommandLine="-", ParentUser="-"
            )
        else:
            values.update(
                ParentProcessGuid=parent.guid,
                ParentImage=parent.image or "-",
                ParentCommandLine=(parent.argv0 if self.options.parent_argv0 else parent.command_line) or "-",
                ParentUser=self.users.name(parent.uid) if parent.uid is not None else "-",
            )
        pending.awaits_parent = None

    def _resolve_waiting(self, node: str | None, pid: int, parent: Process | None) -> None:
        waiting = self._waiting.pop((node, pid), None)
        for pending in waiting or ():
            self._set_parent(pending, parent)

    # -- ProcessTerminate ----------------------------------------------------------------

    def _exit_group(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        self._terminate(event, call.actor, proc)

    def _terminate(self, event: EventFacts, actor: Actor, proc: Process) -> None:
        """ProcessTerminate of the identity that ended; later records of the pid start anew.

        Also what an ANOM_ABEND record means: a process killed by a core-dumping signal
        makes no exit_group.
        """
        self._ended(event, proc, actor.user)

    def _ended(self, event: EventFacts, proc: Process, user: str) -> None:
        self._queue(5, event, {**self._process_fields(event, proc), "User": user})
        self.table.exited(event.node, proc.pid)

    def _signal(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """A SIGKILL ends every process it was delivered to, which then makes no exit_group.

        Other signals can be caught, so only SIGKILL is certain to end one. A target the log
        never showed is an `<unknown process>`, as Sysmon writes a process it never saw.
        """
        sent = call.detail
        if not call.success or not isinstance(sent, Signal) or not sent.kills:
            return
        node = event.node
        for pid, user in sent.targets:
            target = self.table.get(node, pid)
            if target is None:
                target = Process(pid, self._guid(event, pid), None, None, None, None, event.msec, "observed")
            self._ended(event, target, user)

    # -- NetworkConnect ------------------------------------------------------------------

    def _socket(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """socket(): remember whether the new fd is TCP or UDP (other kinds are not written)."""
        fd, created = call.exit_code, call.detail
        if call.success and fd is not None and fd >= 0 and isinstance(created, NewSocket) and created.inet:
            self._sockets.put(event.node, proc.pid, fd, SocketInfo(created.protocol))

    def _bind(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """bind(): the local address of later accepts on (and connects from) this fd."""
        use = call.detail
        if not isinstance(use, SocketUse):
            return
        fd, local = use
        if call.success and fd is not None and local is not None:
            known = self._sockets.get(event.node, proc.pid, fd)
            self._sockets.put(event.node, proc.pid, fd, replace(known, local=local))

    def _connect(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """Every connect that succeeded or is in progress: a TCP connection, or the peer a UDP
        socket now sends to."""
        if call.success or call.exit_code == -EINPROGRESS:
            self._network(event, call, proc, initiated=True, implies=None)

    def _accept(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """A connection accepted: only stream sockets accept, so the socket is TCP."""
        if call.success:
            self._network(event, call, proc, initiated=False, implies="tcp")

    def _send(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """A datagram sent to an address (sendto, sendmsg): a UDP client's flow, written for
        the socket's first one unless its connect was written."""
        if call.success:
            self._network(event, call, proc, initiated=True, implies="udp", once=True)

    def _receive(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """A datagram received with its sender's address (recvfrom, recvmsg): a UDP server's
        flow, written for the socket's first one; the sender is the source."""
        if call.success:
            self._network(event, call, proc, initiated=False, implies="udp", once=True)

    def _network(
        self,
        event: EventFacts,
        call: Syscall,
        proc: Process,
        *,
        initiated: bool,
        implies: str | None,
        once: bool = False,
    ) -> None:
        """connect, send: SOCKADDR is the destination; accept, receive: it is the peer, i.e.
        the source.

        The protocol is the socket's, as its socket() record showed it, else what the call
        `implies` (only a stream socket accepts; an address on a send or receive is a
        datagram's); a connect of a socket the log never showed is written with Protocol `-`.
        The other end is this host's own address, which audit does not log: the bound
        address when an audited bind() showed it, else the unspecified address, port 0. A
        `once` call is written only for a socket none of whose flows was written yet.
        """
        use = call.detail
        if not isinstance(use, SocketUse) or use.address is None:
            return
        remote, node, fd = use.address, event.node, use.fd
        info = self._sockets.get(node, proc.pid, fd) if fd is not None else SocketInfo()
        if once and info.reported:
            return
        protocol = info.protocol or implies
        if protocol == "other":
            return
        if fd is not None:
            self._sockets.put(node, proc.pid, fd, replace(info, protocol=protocol, reported=True))
        if not initiated:
            remote = sockaddr.unmapped(remote)
            if (accepted := call.exit_code) is not None and accepted >= 0 and not once:
                self._sockets.put(node, proc.pid, accepted, replace(info, protocol=protocol, reported=True))
        if protocol is None:
            self.stats.unresolved[Unresolved.PROTOCOL] += 1
        local = info.local if info.local is not None and info.local.is_ipv6 == remote.is_ipv6 else None
        local = local or sockaddr.unspecified(remote.is_ipv6)
        source, destination = (local, remote) if initiated else (remote, local)
        self._queue(
            3,
            event,
            {
                **self._process_fields(event, proc),
                "User": call.actor.user,
                "Protocol": protocol or "-",
                "Initiated": "true" if initiated else "false",
                **_endpoint("Source", source),
                **_endpoint("Destination", destination),
            },
        )

    # -- ProcessAccess -------------------------------------------------------------------

    def _ptrace(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """A tracer attaching to a process (PTRACE_ATTACH, PTRACE_SEIZE), as Sysmon logs it.

        TargetProcessId is the pid the call named (a thread's id when a thread is attached),
        the target's identity that of the process the OBJ_PID record names. Audit records
        carry no thread id, so SourceThreadId is the tracer's pid.
        """
        access = call.detail
        if not call.success or not isinstance(access, Ptrace) or not access.attaches:
            return
        target = self.table.get(event.node, access.object_pid) if access.object_pid is not None else None
        self._queue(
            10,
            event,
            {
                "RuleName": "-",
                "UtcTime": format_utc_time(event.msec),
                "SourceProcessGUID": proc.guid,
                "SourceProcessId": str(proc.pid),
                "SourceThreadId": str(proc.pid),
                "SourceImage": proc.image or UNKNOWN_PROCESS,
                "TargetProcessGUID": target.guid if target is not None else ZERO_GUID,
                "TargetProcessId": str(access.target) if access.target is not None else "-",
                "TargetImage": (target.image if target is not None else None) or UNKNOWN_PROCESS,
                "GrantedAccess": "0x0",
                "CallTrace": "-",
                "SourceUser": call.actor.user,
                "TargetUser": access.object_user,
            },
        )

    # -- FileCreate, RawAccessRead, FileDelete -------------------------------------------

    def _open(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """A created file is a FileCreate; an existing block device opened to read, a RawAccessRead."""
        files, opened_as = call.files, call.detail
        if not call.success or files is None:
            return
        items = files.items
        created = next((i for i in items if i.nametype == "CREATE"), None)
        if created is not None:
            self._file_event(11, event, call, proc, created)
            return
        opened = next((i for i in reversed(items) if i.nametype != "PARENT"), None)
        reading = isinstance(opened_as, Opened) and opened_as.for_reading
        if opened is not None and opened.file_type == "block" and reading:
            self._file_event(9, event, call, proc, opened)

    def _unlink(self, event: EventFacts, call: Syscall, proc: Process) -> None:
        """unlink/unlinkat of anything but a directory (Sysmon logs no rmdir)."""
        if not call.success or call.files is None:
            return
        deleted = next((i for i in call.files.items if i.nametype == "DELETE"), None)
        if deleted is not None and not deleted.is_dir:
            self._file_event(23, event, call, proc, deleted)

    def _file_event(self, event_id: int, event: EventFacts, call: Syscall, proc: Process, item: PathItem) -> None:
        """The event of one file; a name in a directory the log has not shown yet waits for
        it (when holding is allowed), else is written `<unknown directory>/name`.

        Sysmon's FileCreate and RawAccessRead show the kernel's d_path, so `.`, `..` and
        doubled slashes are folded there; its FileDelete shows the name joined as passed.
        """
        files = call.files
        if event_id not in self.options.events or files is None:
            return
        path = self._paths.resolve(
            event.node, files.cwd, files.items, item, files.resolve_relative, normalise=event_id != 23
        )
        values = {
            **self._process_fields(event, proc),
            _NAME_FIELDS[event_id]: path if isinstance(path, str) else "-",
            # Sysmon ≥ 1.1 leaves the user out for root on these events.
            "User": "-" if call.actor.uid == 0 else call.actor.user,
        }
        if event_id == 11:
            values["CreationUtcTime"] = values["UtcTime"]
        elif event_id == 23:
            values.update(Hashes="-", IsExecutable="-", Archived="-")
        node = event.node
        pending = _Queued(event_id, values, node, node or self._hostname, event.msec, self._seq)
        if isinstance(path, Unplaced):
            pending.unplaced = path
            if path.directory is not None and self.options.hold_events:
                pending.awaits_directory = path.directory
                self._unplaced.setdefault(path.directory, deque()).append(pending)
            else:
                self._place(pending)
        self._outbox.append(pending)

    def _place_waiting(self, items: tuple[PathItem, ...], node: str | None) -> None:
        """Events waiting for a directory among `items` that the resolver has just learned."""
        for item in items:
            if item.is_dir and item.inode is not None:
                key: DirectoryKey = (node, *item.inode)
                if key in self._unplaced and self._paths.knows(key):
                    for pending in self._unplaced.pop(key):
                        self._place(pending)

    def _place(self, pending: _Queued) -> None:
        """Write the name of `pending` in its directory, or, while that is still unknown (no
        record showed it in time), as `<unknown directory>/name`."""
        unplaced = pending.unplaced
        if unplaced is not None:
            placed = self._paths.place(unplaced, normalise=pending.event_id != 23)
            if placed is None:
                self.stats.unresolved[Unresolved.DIRECTORY] += 1
            pending.values[_NAME_FIELDS[pending.event_id]] = placed or unplaced.marked
        pending.awaits_directory = None

    # -- shared --------------------------------------------------------------------------

    def _process_fields(self, event: EventFacts, proc: Process) -> dict[str, str]:
        """RuleName, UtcTime and the acting process, as every non-create event starts."""
        return {
            "RuleName": "-",
            "UtcTime": format_utc_time(event.msec),
            "ProcessGuid": proc.guid,
            "ProcessId": str(proc.pid),
            "Image": proc.image or UNKNOWN_PROCESS,
        }

    def _queue(self, event_id: int, event: EventFacts, values: dict[str, str]) -> None:
        """Put a final event in the outbox, behind everything that came before it."""
        if event_id in self.options.events:
            node = event.node
            self._outbox.append(
                _Queued(event_id, values, node, node or self._hostname, event.msec, self._seq)
            )

    # -- output --------------------------------------------------------------------------

    def _release(self, now_msec: int, *, force: bool) -> list[SysmonEvent]:
        """Emit, in order, every outbox entry that is final or whose wait has expired."""
        out: list[SysmonEvent] = []
        outbox = self._outbox
        window = self.options.max_open_events
        age = self.options.max_event_age_ms
        while outbox:
            head = outbox[0]
            parent, directory = head.awaits_parent, head.awaits_directory
            if parent is not None or directory is not None:
                expired = force or self._seq - head.seq > window or now_msec - head.msec > age
                if not expired:
                    break
                if directory is not None:
                    _drop_oldest(self._unplaced, directory)
                    self._place(head)
                elif parent is not None:
                    _drop_oldest(self._waiting, parent)
                    self._set_parent(head, None)
            outbox.popleft()
            event = self._emit(head)
            if event is not None:
                out.append(event)
        return out

    def _emit(self, queued: _Queued) -> SysmonEvent | None:
        """The event, with the next EventRecordID; None when the configuration drops it (a
        dropped event takes no EventRecordID and is never rendered, as in Sysmon)."""
        event_id, values = queued.event_id, queued.values
        config = self._config
        if config is not None:
            written = written_values(event_id, values)
            rule = config.decide(event_id, written)
            if rule is None:
                self.stats.filtered[event_id] += 1
                return None
            if "RuleName" in written:  # Sysmon's own events (4, 16) have none
                self.stats.rule_names[rule] += 1
                written["RuleName"] = rule
            if config.field_sizes:  # cut after deciding, as Sysmon does
                written = {name: config.cut(event_id, name, value) for name, value in written.items()}
            values = written
        if event_id == 1:
            self.stats.process_create += 1
        record_id = self._record_id
        self._record_id += 1
        return make_event(
            event_id,
            values,
            computer=queued.computer,
            record_id=record_id,
            time_created=self.options.time_created_for(queued.msec),
            execution_pid=self.options.execution_pid,
        )

    # -- field helpers -------------------------------------------------------------------

    def _guid(self, event: EventFacts, pid: int) -> str:
        node, msec = event.node, event.msec
        return sysmon_guid(
            self._machine_id(node or self._hostname), msec // 1000, event_key(node, msec, event.serial, pid)
        )

    def _machine_id(self, computer: str) -> int:
        if self.options.machine_id is not None:
            return self.options.machine_id
        mid = self._machine_ids.get(computer)
        if mid is None:
            if len(self._machine_ids) >= 4096:  # a cache: node names are unbounded input
                self._machine_ids.clear()
            mid = self._machine_ids[computer] = machine_id_from_node(computer)
        return mid


_Key = TypeVar("_Key")


def _drop_oldest(waits: dict[_Key, deque[_Queued]], key: _Key) -> None:
    """Take the oldest event waiting for `key` off its list: it is the outbox head, expired."""
    siblings = waits[key]
    siblings.popleft()
    if not siblings:
        del waits[key]


# The field that names the file of each file event.
_NAME_FIELDS = {9: "Device", 11: "TargetFilename", 23: "TargetFilename"}


def _endpoint(side: str, address: SocketAddress) -> dict[str, str]:
    return {
        f"{side}IsIpv6": "true" if address.is_ipv6 else "false",
        f"{side}Ip": address.ip,
        f"{side}Hostname": "-",
        f"{side}Port": str(address.port),
        f"{side}PortName": "-",
    }


_Handler = Callable[[Mapper, EventFacts, Syscall, Process], None]
# What each kind of call (syscalls.py) does once it is not a successful exec, as data.
_HANDLERS: dict[CallKind, _Handler] = {
    CallKind.FORK: Mapper._fork,
    CallKind.EXIT: Mapper._exit_group,
    CallKind.SOCKET: Mapper._socket,
    CallKind.BIND: Mapper._bind,
    CallKind.CONNECT: Mapper._connect,
    CallKind.ACCEPT: Mapper._accept,
    CallKind.OPEN: Mapper._open,
    CallKind.UNLINK: Mapper._unlink,
    CallKind.PTRACE: Mapper._ptrace,
    CallKind.SEND: Mapper._send,
    CallKind.RECEIVE: Mapper._receive,
    CallKind.SIGNAL: Mapper._signal,
}
_HANDLER_OF_CALL: dict[str, _Handler] = {
    name: _HANDLERS[spec.kind] for name, spec in SYSCALLS.items() if spec.kind in _HANDLERS
}
