"""Event facts as nested plain tuples: what crosses a process boundary in `--jobs` runs.

`marshal` writes and reads tuples of str, int, bool, bytes and None at a ninth of the cost of
pickling NamedTuples (pickle takes each apart and rebuilds it through Python code: 1.0 µs per
line to dump and 0.5 to load the facts of the benchmark log, against 0.12 and 0.10 here).
So the facts are turned into plain tuples (`to_plain`), and back (`from_plain`), field by
field under their names: slicing and generic walks would build tuples in between, and a
field read by position is one a reader has to count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from ..audit.records import SourceLocation
from .facts import Abend, Actor, EventFacts, Exec, Files, Login, NewSocket, Opened, Ptrace, Signal, SocketUse, Syscall
from .paths import PathItem
from .sockaddr import SocketAddress
from .syscalls import CallKind, spec_of

__all__ = ["Plain", "from_plain", "to_plain"]

Plain = tuple[Any, ...]
_T = TypeVar("_T", bound=tuple[Any, ...])
# The class of a call's `detail` by its kind (exec only when it succeeded: syscalls.py).
_DETAILS: dict[CallKind, type[Any]] = {
    CallKind.EXEC: Exec,
    CallKind.SOCKET: NewSocket,
    CallKind.BIND: SocketUse,
    CallKind.CONNECT: SocketUse,
    CallKind.ACCEPT: SocketUse,
    CallKind.SEND: SocketUse,
    CallKind.RECEIVE: SocketUse,
    CallKind.OPEN: Opened,
    CallKind.PTRACE: Ptrace,
    CallKind.SIGNAL: Signal,
}


def to_plain(facts: EventFacts) -> Plain:
    """`facts` as nested plain tuples that `marshal` can write; `from_plain` is the inverse."""
    (node, msec, serial, where, late, title, title_argv0, extras, syscall, execs, cut, orphan,
     execve_damage, execve_where, has_execve, failure) = facts  # fmt: skip
    return (
        node, msec, serial, _place(where), late, title, title_argv0,
        tuple([(x.ses,) if isinstance(x, Login) else (tuple(x.actor),) for x in extras]) if extras else (),
        None if syscall is None else _plain_call(syscall),
        tuple([_place(x) for x in execs]) if execs else (),
        tuple([_place(x) for x in cut]) if cut else (),
        orphan, execve_damage, _place(execve_where), has_execve, failure,
    )  # fmt: skip


def from_plain(plain: Plain, lines_before: int = 0) -> EventFacts:
    """The `EventFacts` that `to_plain` made `plain` from, its records' line numbers moved on
    by `lines_before` (a `--jobs` worker numbers the lines of its chunk from 1)."""
    (node, msec, serial, where, late, title, title_argv0, extras, syscall, execs, cut, orphan,
     execve_damage, execve_where, has_execve, failure) = plain  # fmt: skip
    return _built(EventFacts, (
        node, msec, serial, _location(where, lines_before), late, title, title_argv0,
        tuple([_extra(x) for x in extras]) if extras else (),
        None if syscall is None else _call(syscall),
        tuple([_location(x, lines_before) for x in execs]) if execs else (),
        tuple([_location(x, lines_before) for x in cut]) if cut else (),
        orphan, execve_damage, _location(execve_where, lines_before), has_execve, failure,
    ))  # fmt: skip


def _extra(plain: Plain) -> Login | Abend:
    first = plain[0]
    return Abend(_built(Actor, first)) if isinstance(first, tuple) else Login(first)


def _plain_call(call: Syscall) -> Plain:
    actor, name, success, exit_code, detail, files = call
    plain_detail: Plain | None = None
    if isinstance(detail, SocketUse):
        fd, address = detail
        plain_detail = (fd, None if address is None else tuple(address))
    elif detail is not None:
        plain_detail = tuple(detail)
    plain_files: Plain | None = None
    if files is not None:
        items, cwd, learn_relative, resolve_relative = files
        plain_files = (tuple([tuple(item) for item in items]), cwd, learn_relative, resolve_relative)
    return (tuple(actor), name, success, exit_code, plain_detail, plain_files)


def _call(plain: Plain) -> Syscall:
    actor, name, success, exit_code, plain_detail, plain_files = plain
    detail: Any = None
    if plain_detail is not None:
        spec = spec_of(name)
        cls = _DETAILS[spec.kind] if spec is not None else None
        if cls is SocketUse:
            fd, address = plain_detail
            detail = SocketUse(fd, None if address is None else _built(SocketAddress, address))
        elif cls is not None:
            detail = _built(cls, plain_detail)
    files = None
    if plain_files is not None:
        items, cwd, learn_relative, resolve_relative = plain_files
        files = Files(tuple([_built(PathItem, item) for item in items]), cwd, learn_relative, resolve_relative)
    return _built(Syscall, (_built(Actor, actor), name, success, exit_code, detail, files))


def _place(where: SourceLocation | None) -> tuple[str, int] | None:
    return None if where is None else (where.path, where.line)


def _location(plain: tuple[str, int] | None, lines_before: int) -> SourceLocation | None:
    return None if plain is None else SourceLocation(plain[0], plain[1] + lines_before)


def _built(cls: type[_T], values: Iterable[Any]) -> _T:
    """A NamedTuple from its values in C (its `_make` and `__new__` run Python code)."""
    return tuple.__new__(cls, values)
