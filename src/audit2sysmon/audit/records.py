"""The typed record model: what one audit record line means, whatever text form it came in.

A `Record` models one line such as::

    node=vm type=EXECVE msg=audit(1795852575.593:2293): argc=2 a0="ls" a1=2D6C61

It keeps, for every field, the text as written (`Field.raw`) *and* the decoded bytes
(`Field.value`), so later stages never re-parse and diagnostics can quote the source.
Values are bytes because the kernel logs untrusted strings (argv, paths) that need not be
UTF-8. The parse stage builds records and nothing changes them after (see `Record`).
The correlate stage groups them into `AuditEvent`s, the unit every later stage reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

__all__ = ["AuditEvent", "Field", "Record", "SourceLocation", "Stamp", "ValueKind"]


class ValueKind(enum.Enum):
    """How a value was written, because the same bytes mean different things per kind.

    `HEX` and `QUOTED` carry untrusted data (the kernel's hex rule), `BARE` is a trusted
    token or number, `NULL` is one of `(null)`, `(none)` or `?` (no value at all), and
    `INTERPRETED` is `ausearch -i` text whose quoting and encoding were removed.
    """

    QUOTED = "quoted"
    HEX = "hex"
    BARE = "bare"
    NULL = "null"
    EMPTY = "empty"
    INTERPRETED = "interpreted"


@dataclass(slots=True, unsafe_hash=True, init=False)
class Field:
    """One `key=value` of a record body, e.g. `a1=2D6C61` → key `a1`, value `b"-la"`.

    `Field`, `Stamp` and `SourceLocation` are read-only by contract and hashable, like
    `Record`, but not frozen: the parse stage builds one `SourceLocation` per line and a
    `Field` per pair it has not seen, and a frozen dataclass's `object.__setattr__` made
    each cost 2 to 3 times as much in the compiled build (0.5 µs per line). Their
    `__init__` is written out (`init=False`) for the same reason: the one `dataclass`
    generates is Python code even in the compiled build, where a written one is compiled
    (Record's alone took 9 % of a conversion). `dataclass` still makes eq, hash and repr.
    """

    key: str
    raw: str
    value: bytes
    kind: ValueKind

    def __init__(self, key: str, raw: str, value: bytes, kind: ValueKind) -> None:
        self.key = key
        self.raw = raw
        self.value = value
        self.kind = kind

    @property
    def text(self) -> str:
        """The decoded value as text; undecodable bytes survive as surrogate escapes."""
        return self.value.decode("utf-8", "surrogateescape")


_NULL = ValueKind.NULL
_BARE = ValueKind.BARE


@dataclass(slots=True, unsafe_hash=True, init=False)
class Stamp:
    """The `audit(SEC.MSEC:SERIAL)` stamp shared by every record of one event.

    `msec` is milliseconds since the Unix epoch (UTC), so the stamp round-trips exactly
    through its text form `SEC.MSEC:SERIAL` with no floating point.
    """

    msec: int
    serial: int

    def __init__(self, msec: int, serial: int) -> None:
        self.msec = msec
        self.serial = serial

    @property
    def time(self) -> datetime:
        """The stamp as an aware UTC datetime (millisecond precision)."""
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=self.msec)

    def __str__(self) -> str:
        return f"{self.msec // 1000}.{self.msec % 1000:03d}:{self.serial}"

    @classmethod
    def from_text(cls, text: str) -> Stamp:
        """Parse `1635278714.046:1385` (the inverse of `str()`)."""
        stamp, _, serial = text.partition(":")
        sec, _, ms = stamp.partition(".")
        return cls(int(sec) * 1000 + int(ms.ljust(3, "0")[:3]), int(serial))


@dataclass(slots=True, unsafe_hash=True, init=False)
class SourceLocation:
    """Where a line came from, for error messages: `path:line`."""

    path: str
    line: int

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(slots=True, unsafe_hash=True, init=False)  # hashable: records are read-only by contract
class Record:
    """One audit record: header (type, node, event id) plus ordered body and enrichment.

    `type_num` is the kernel's number (`SYSCALL` → 1300); `UNKNOWN[1334]` and `BPF` both
    give 1334 so the same record compares equal whichever auditd wrote it. It is None
    only for a name no table knows and no number was written for. `fields` keep the body
    in order (duplicates allowed, e.g. inner fields of `msg='…'` follow the `msg` field);
    `enriched` holds the fields after the 0x1D byte of an ENRICHED line.
    `interpreted` is True for `ausearch -i` text, where values such as `uid=root` are
    names rather than numbers.

    Read-only by contract, not frozen: nothing in the library changes a record after the
    parse stage built it. A frozen dataclass assigns its attributes through
    `object.__setattr__`, which cost 10 % of the whole conversion in the compiled build
    (one record per line). The small values it holds (`Stamp`, `Field`) are
    read-only by contract too. A key is found by a scan of the fields in order: a record
    holds a few dozen at most and is asked for a dozen keys at most, and a dict of them,
    built on the first lookup, cost three times the scans (profiled: a SYSCALL record's
    index alone was 5 % of a conversion).
    """

    type_name: str
    type_num: int | None
    node: str | None
    stamp: Stamp
    fields: tuple[Field, ...]
    enriched: tuple[Field, ...] = ()
    interpreted: bool = False
    source: SourceLocation | None = field(default=None, compare=False)

    def __init__(
        self,
        type_name: str,
        type_num: int | None,
        node: str | None,
        stamp: Stamp,
        fields: tuple[Field, ...],
        enriched: tuple[Field, ...] = (),
        interpreted: bool = False,
        source: SourceLocation | None = None,
    ) -> None:
        self.type_name = type_name
        self.type_num = type_num
        self.node = node
        self.stamp = stamp
        self.fields = fields
        self.enriched = enriched
        self.interpreted = interpreted
        self.source = source

    def get(self, key: str) -> Field | None:
        """The first body field called `key`, or None."""
        for f in self.fields:
            if f.key == key:
                return f
        return None

    def value(self, key: str) -> bytes | None:
        """Decoded bytes of the first body field `key`, or None when absent or NULL."""
        f = self.get(key)
        if f is None or f.kind is ValueKind.NULL:
            return None
        return f.value

    def text(self, key: str) -> str | None:
        """Decoded text of the first body field `key`, or None when absent or NULL."""
        for f in self.fields:  # `get`, written out: the map stage asks a dozen times per event
            if f.key == key:
                break
        else:
            return None
        kind = f.kind
        if kind is _BARE:  # a bare value's bytes are its text's: no decoding (most fields)
            return f.raw
        if kind is _NULL:
            return None
        # `f.text`, decoded here: the map stage asks a few times per record, and the
        # property call cost more than the decoding (profiled).
        return f.value.decode("utf-8", "surrogateescape")

    def enrichment(self, key: str) -> str | None:
        """Text of the ENRICHED field `key` (`UID` → `root`), or None."""
        for f in self.enriched:
            if f.key == key:
                return f.text
        return None


@dataclass(slots=True, unsafe_hash=True, init=False)
class AuditEvent:
    """The records of one audit event (same node and `audit(SEC.MSEC:SERIAL)` stamp), in the
    order they arrived.

    `late` is True when an event with this key had already been emitted: its records came
    after the window closed it (records spread far apart, or a duplicated event).
    Read-only by contract, with a written `__init__`, as `Record` (one per event).
    """

    node: str | None
    stamp: Stamp
    records: tuple[Record, ...]
    late: bool

    def __init__(self, node: str | None, stamp: Stamp, records: tuple[Record, ...], late: bool = False) -> None:
        self.node = node
        self.stamp = stamp
        self.records = records
        self.late = late

    def first(self, type_num: int) -> Record | None:
        """The first record of type `type_num` (e.g. the SYSCALL), or None."""
        for record in self.records:
            if record.type_num == type_num:
                return record
        return None

    def all(self, type_num: int) -> tuple[Record, ...]:
        """Every record of type `type_num` in arrival order (e.g. all EXECVE parts)."""
        # A list comprehension, not a generator: asked several times per event, and a
        # generator's frame cost more than the records it looks at (pure-Python build).
        return tuple([record for record in self.records if record.type_num == type_num])
