"""Audit events → Sysmon for Linux events, with the process table behind the parent fields.

Each `AuditEvent` is read once: its SYSCALL record teaches the process table (track.py)
and, for a successful execve/execveat, becomes a ProcessCreate whose fields follow Sysmon's
own semantics (see docs/mapping.md for the table of sources and deliberate differences).

Parents: a child names its parent by pid. When the parent's identity is already known the
event is final at once. When it is not, and holding is allowed (batch conversion), the
event waits in the outbox until a later record of that pid shows who it is, or until the
window of newer events passes; the outbox releases events strictly in order, so output
order stays the log's order. EventRecordIDs are assigned at release.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from . import _tables
from .argv import execve_argv
from .correlate import AuditEvent
from .guid import ZERO_GUID, event_key, logon_guid, machine_id_from_node, sysmon_guid
from .options import Options
from .records import Record, ValueKind
from .sysmon import SysmonEvent, format_utc_time, make_event
from .track import Process, ProcessTable
from .users import UNSET_ID, UserDb

SYSCALL = 1300
EXECVE = 1309
CWD = 1307
PROCTITLE = 1327
LOGIN = 1006


@dataclass(slots=True)
class _Pending:
    """A ProcessCreate whose values are known except, perhaps, its parent's identity."""

    values: dict[str, str]
    node: str | None
    computer: str
    msec: int
    ppid: int
    waiting: bool
    seq: int


@dataclass(slots=True)
class MapperStats:
    """Counts for `--stats`: what the map stage made of the events it saw."""

    exec_syscalls: int = 0
    process_create: int = 0
    parents_unknown: int = 0
    held: int = 0


class Mapper:
    """Turns audit events into Sysmon events; owns the process table and session times."""

    def __init__(self, options: Options, users: UserDb, table: ProcessTable | None = None) -> None:
        self.options = options
        self.users = users
        self.table = table if table is not None else ProcessTable()
        self.stats = MapperStats()
        self._outbox: deque[_Pending] = deque()
        self._waiting: dict[tuple[str | None, int], list[_Pending]] = {}
        self._logins: dict[tuple[str | None, int], int] = {}
        self._machine_ids: dict[str, int] = {}
        self._record_id = options.first_record_id
        self._seq = 0
        self._hostname = options.hostname_or_default()

    # -- input ---------------------------------------------------------------------------

    def add(self, event: AuditEvent) -> list[SysmonEvent]:
        """Learn from one audit event; return the Sysmon events that are now final."""
        self._seq += 1
        for rec in event.records:
            if rec.type_num == LOGIN:
                self._learn_login(event.node, rec)
        syscall = event.first(SYSCALL)
        if syscall is not None:
            self._learn_syscall(event, syscall)
        return self._release(event.event_id.msec, force=False)

    def flush(self) -> list[SysmonEvent]:
        """End of input: everything held is final now, unknown parents stay unknown."""
        return self._release(0, force=True)

    # -- learning ------------------------------------------------------------------------

    def _learn_login(self, node: str | None, rec: Record) -> None:
        ses = self._number(rec, "ses")
        if ses is not None and ses != UNSET_ID:
            self._logins[(node, ses)] = rec.event_id.msec // 1000
            if len(self._logins) > 65536:
                self._logins.pop(next(iter(self._logins)))

    def _learn_syscall(self, event: AuditEvent, rec: Record) -> None:
        pid = self._number(rec, "pid")
        if pid is None:
            return
        node = event.node
        name = _syscall_name(rec)
        success = _success(rec)
        if name in ("execve", "execveat"):
            if success:
                self.stats.exec_syscalls += 1
                self._process_create(event, rec, pid)
                return
        # Any other syscall shows the process doing something: its identity so far.
        self._observe(event, rec, pid)
        if success and name in ("clone", "clone3", "fork", "vfork"):
            child = self._number(rec, "exit")
            parent = self.table.get(node, pid)
            if child and child > 0 and parent is not None and not self._known_since(node, child, event):
                self.table.put(
                    node,
                    Process(
                        child,
                        self._guid(node, event, child),
                        parent.image,
                        parent.command_line,
                        parent.uid,
                        event.event_id.msec,
                        "fork",
                    ),
                )
        elif name == "exit_group":
            self.table.exited(node, pid)

    def _known_since(self, node: str | None, pid: int, event: AuditEvent) -> bool:
        """True when `pid` already has an identity from this event's time on.

        A vfork parent's syscall record is written when the parent resumes, i.e. after the
        child's exec record, but carries the earlier entry time: the child's exec identity
        must not be overwritten by the fork that preceded it.
        """
        known = self.table.get(node, pid)
        return known is not None and known.start_msec >= event.event_id.msec

    def _observe(self, event: AuditEvent, rec: Record, pid: int) -> None:
        """A process seen doing something: keep its identity, or learn a new one."""
        node = event.node
        image = rec.text("exe")
        known = self.table.get(node, pid)
        if known is None or (image is not None and known.image != image):
            known = self.table.put(
                node,
                Process(
                    pid,
                    self._guid(node, event, pid),
                    image,
                    _proctitle(event) or rec.text("comm"),
                    self._number(rec, "uid"),
                    event.event_id.msec,
                    "observed",
                ),
            )
        else:
            title = _proctitle(event)
            if title:
                self.table.learn_command_line(node, pid, title)
        self._resolve_waiting(node, pid, known)

    # -- ProcessCreate -------------------------------------------------------------------

    def _process_create(self, event: AuditEvent, rec: Record, pid: int) -> None:
        node = event.node
        msec = event.event_id.msec
        computer = node or self._hostname
        machine = self._machine_id(computer)
        uid = self._number(rec, "uid")
        ppid = self._number(rec, "ppid")
        image = rec.text("exe")
        command_line = _command_line(event, rec)
        cwd_rec = event.first(CWD)
        ses = self._number(rec, "ses")
        guid = sysmon_guid(machine, msec // 1000, event_key(node, msec, event.event_id.serial, pid))
        values = {
            "RuleName": "-",
            "UtcTime": format_utc_time(msec),
            "ProcessGuid": guid,
            "ProcessId": str(pid),
            "Image": image or "-",
            "CommandLine": command_line,
            "CurrentDirectory": (cwd_rec.text("cwd") if cwd_rec is not None else None) or "-",
            "User": self._user_name(rec, uid),
            "LogonGuid": logon_guid(
                machine,
                self._logins.get((node, ses), 0) if ses is not None else 0,
                uid if uid is not None else 0,
                _tty_index(rec.text("tty")),
            ),
            "LogonId": str(uid & 0xFFFF) if uid is not None else "-",
            "TerminalSessionId": str(ses if ses is not None else UNSET_ID),
            "IntegrityLevel": "no level",
            "Hashes": "-",
            "ParentProcessId": str(ppid) if ppid is not None else "-",
        }
        self.stats.process_create += 1
        pending = _Pending(values, node, computer, msec, ppid if ppid is not None else -1, False, self._seq)
        parent = self.table.get(node, ppid) if ppid is not None else None
        if parent is not None or ppid is None or not self.options.hold_for_parent:
            self._set_parent(pending, parent)
        else:
            pending.waiting = True
            self.stats.held += 1
            self._waiting.setdefault((node, ppid), []).append(pending)
        self._outbox.append(pending)
        self.table.put(node, Process(pid, guid, image, command_line, uid, msec, "exec"))

    def _set_parent(self, pending: _Pending, parent: Process | None) -> None:
        values = pending.values
        if parent is None:
            self.stats.parents_unknown += 1
            values.update(
                ParentProcessGuid=ZERO_GUID, ParentImage="-", ParentCommandLine="-", ParentUser="-"
            )
        else:
            values.update(
                ParentProcessGuid=parent.guid,
                ParentImage=parent.image or "-",
                ParentCommandLine=parent.command_line or "-",
                ParentUser=self.users.name(parent.uid) if parent.uid is not None else "-",
            )
        pending.waiting = False

    def _resolve_waiting(self, node: str | None, pid: int, parent: Process | None) -> None:
        waiting = self._waiting.pop((node, pid), None)
        for pending in waiting or ():
            if pending.waiting:
                self._set_parent(pending, parent)

    # -- output --------------------------------------------------------------------------

    def _release(self, now_msec: int, *, force: bool) -> list[SysmonEvent]:
        """Emit, in order, every outbox entry that is final or whose wait has expired."""
        out: list[SysmonEvent] = []
        outbox = self._outbox
        window = self.options.max_open_events
        age = self.options.max_event_age_ms
        while outbox:
            head = outbox[0]
            if head.waiting:
                expired = force or self._seq - head.seq > window or now_msec - head.msec > age
                if not expired:
                    break
                self._set_parent(head, None)
                siblings = self._waiting.get((head.node, head.ppid), [])
                if not any(p.waiting for p in siblings):
                    self._waiting.pop((head.node, head.ppid), None)
            outbox.popleft()
            out.append(self._emit(1, head.values, head.computer, head.msec))
        return out

    def _emit(self, event_id: int, values: dict[str, str], computer: str, msec: int) -> SysmonEvent:
        record_id = self._record_id
        self._record_id += 1
        return make_event(
            event_id,
            values,
            computer=computer,
            record_id=record_id,
            time_created=self.options.time_created_for(msec),
            execution_pid=self.options.execution_pid,
        )

    # -- field helpers -------------------------------------------------------------------

    def _guid(self, node: str | None, event: AuditEvent, pid: int) -> str:
        computer = node or self._hostname
        msec = event.event_id.msec
        return sysmon_guid(
            self._machine_id(computer), msec // 1000, event_key(node, msec, event.event_id.serial, pid)
        )

    def _machine_id(self, computer: str) -> int:
        if self.options.machine_id is not None:
            return self.options.machine_id
        mid = self._machine_ids.get(computer)
        if mid is None:
            mid = self._machine_ids[computer] = machine_id_from_node(computer)
        return mid

    def _number(self, rec: Record, key: str) -> int | None:
        """A numeric field, also from `ausearch -i` names (`ses=unset`, `uid=root`)."""
        text = rec.text(key)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            return self.users.uid(text) if rec.interpreted else None

    def _user_name(self, rec: Record, uid: int | None) -> str:
        """Name of the real uid: the record's own name first, then the user database."""
        own = rec.enrichment("UID")
        if own is None and rec.interpreted:
            own = rec.text("uid")
        if own and not own.startswith("unknown(") and not own.isdecimal():
            return own
        return self.users.name(uid) if uid is not None else "-"


def _syscall_name(rec: Record) -> str | None:
    """The syscall's name: `ausearch -i` already wrote it; raw logs need arch + number."""
    arch, number = rec.text("arch"), rec.text("syscall")
    if arch is None or number is None:
        return None
    if not number.isdecimal():
        return number
    arch_num = _tables.ARCH_NUMBERS.get(arch)
    if arch_num is None:
        try:
            arch_num = int(arch, 16)
        except ValueError:
            return None
    return _tables.syscall_name(arch_num, int(number))


def _success(rec: Record) -> bool:
    return rec.text("success") == "yes"


def _proctitle(event: AuditEvent) -> str | None:
    """PROCTITLE as a command line: NUL-separated argv, joined by spaces (maybe truncated)."""
    rec = event.first(PROCTITLE)
    if rec is None:
        return None
    f = rec.get("proctitle")
    if f is None or f.kind is ValueKind.NULL:
        return None
    return f.value.replace(b"\x00", b" ").decode("utf-8", "surrogateescape")


def _command_line(event: AuditEvent, syscall: Record) -> str:
    """argv joined by single spaces: EXECVE records, else PROCTITLE, else comm."""
    argv = execve_argv(event.all(EXECVE))
    if argv is not None:
        return b" ".join(argv).decode("utf-8", "surrogateescape")
    return _proctitle(event) or syscall.text("comm") or "-"


def _tty_index(tty: str | None) -> int:
    """The controlling tty's index as Sysmon reads it: `pts3` → 3, `tty1` → 1, `(none)` → 0."""
    match = _TTY_INDEX.search(tty or "")
    return int(match.group(1)) if match else 0


_TTY_INDEX = re.compile(r"^(?:pts|tty)(\d+)$")
