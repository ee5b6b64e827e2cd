"""The process table: who each pid is, so children can name their parent.

Sysmon keeps a cache of the processes it saw start; audit2sysmon rebuilds the same knowledge
from the log. Every record that names a pid teaches something: a successful exec gives a
full identity (ProcessCreate), any other SYSCALL gives image, uid and parent pid of a process
that may have started before the log did, PROCTITLE its command line, a fork/clone the
child's pid with its parent's image, and `exit_group` the end of the process so a reused pid
never inherits a dead process's identity.

Pids are per host, so the table is keyed by (node, pid). It is bounded: the least recently
used entries are dropped once `capacity` is reached, like Sysmon's own cache.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = ["Origin", "Process", "ProcessTable"]

Origin = Literal["exec", "observed", "fork", "host"]


@dataclass(slots=True, init=False)
class Process:
    """What is known of one program run by one pid (an identity, not a pid).

    `guid` is the Sysmon ProcessGuid of this identity; `origin` says how it was learned:
    `exec` (its ProcessCreate is in the log), `observed` (seen doing something else first),
    `fork` (a child that has not exec'd yet and still runs its parent's image) or `host`
    (read from the live host's /proc: a parent that started before auditing did).
    `argv0` is the first argument of its command line (Sysmon's ParentCommandLine holds only
    that). Read-only by contract (a changed identity is a new one: `dataclasses.replace`),
    with a written `__init__`: one per process seen, and the `dataclass` one is Python code
    even in the compiled build (audit/records.py says more).
    """

    pid: int
    guid: str
    image: str | None
    command_line: str | None
    argv0: str | None
    uid: int | None
    start_msec: int
    origin: Origin

    def __init__(
        self,
        pid: int,
        guid: str,
        image: str | None,
        command_line: str | None,
        argv0: str | None,
        uid: int | None,
        start_msec: int,
        origin: Origin,
    ) -> None:
        self.pid = pid
        self.guid = guid
        self.image = image
        self.command_line = command_line
        self.argv0 = argv0
        self.uid = uid
        self.start_msec = start_msec
        self.origin = origin


ProcessKey = tuple["str | None", int]


@dataclass(slots=True)
class ProcessTable:
    """(node, pid) → the latest known `Process`, least recently used first."""

    capacity: int = 32768
    _table: OrderedDict[ProcessKey, Process] = field(default_factory=OrderedDict, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._table)

    def get(self, node: str | None, pid: int) -> Process | None:
        """The live identity of `pid`, or None when unknown or known to have exited."""
        key = (node, pid)
        proc = self._table.get(key)
        if proc is not None:
            self._table.move_to_end(key)
        return proc

    def put(self, node: str | None, proc: Process) -> Process:
        """Record `proc` as the current identity of its pid (exec, observation or fork)."""
        key = (node, proc.pid)
        self._table[key] = proc
        self._table.move_to_end(key)
        if len(self._table) > self.capacity:
            self._table.popitem(last=False)
        return proc

    def exited(self, node: str | None, pid: int) -> Process | None:
        """Forget `pid`'s current process, which ended; returns the identity that ended.

        An ended identity is never needed again (a reused pid must start anew), so it is
        dropped at once: the table holds live processes only and stays small on long logs.
        """
        return self._table.pop((node, pid), None)

    def learn_command_line(self, node: str | None, pid: int, command_line: str, argv0: str | None) -> None:
        """Fill in a command line (from PROCTITLE) for an identity that was only observed."""
        proc = self._table.get((node, pid))
        if proc is not None and proc.origin != "exec" and not proc.command_line:
            self._table[(node, pid)] = replace(proc, command_line=command_line, argv0=argv0)
