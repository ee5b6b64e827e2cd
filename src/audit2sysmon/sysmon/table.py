"""Sysmon events as typed table rows: one column per EventData field of every event type.

A detection table (Spark, Parquet, a SQL engine) wants columns, not XML: `ProcessId` as a
number to join on, `UtcTime` as a timestamp to range over, `Initiated` as a boolean. This
module is the one place that says which column each Sysmon field becomes and how its text
turns into a typed value, without depending on any engine: `audit2sysmon.spark` maps the
kinds to Spark types, and another engine could map them to its own.

The columns are the union of the EventData fields of `TABLE_EVENTS`, in the manifest's order
(sysmon.SCHEMAS), so a row of any of those events fits one schema; a field the event's type
does not have is None. Types follow Sysmon's manifest (`inType`):

* `win:UInt32` (ProcessId, ParentProcessId, TerminalSessionId, …) → `long` (a UInt32 does not
  fit a signed 32-bit integer: TerminalSessionId is often 4294967295);
* `win:UInt16` (SourcePort, DestinationPort) → `int`;
* `win:HexInt64` LogonId and `win:HexInt32` GrantedAccess → `long` (Sysmon for Linux writes
  LogonId in decimal, GrantedAccess as `0x…`; both are read);
* `win:Boolean` (Initiated, SourceIsIpv6, DestinationIsIpv6, IsExecutable) → `boolean`;
* UtcTime and CreationUtcTime (text in the manifest, `YYYY-MM-DD HH:MM:SS.mmm` UTC) →
  `timestamp`, an instant;
* `win:GUID` (ProcessGuid, LogonGuid, …) and every text field → `string`, exactly the text
  Sysmon writes (GUIDs as `{xxxxxxxx-…}` in lower case, `-` for an empty value).

A typed field written as `-` (Sysmon's "no value", e.g. FileDelete's IsExecutable) is None.
Text is the value every output format carries (`render.xml.text_value`: bytes that were not
UTF-8 as `\\xNN`), so a column never holds what the rendered line does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Literal

from .event import SysmonEvent
from .render.xml import text_value
from .schema import NO_VALUE, SCHEMAS

ColumnKind = Literal["string", "int", "long", "boolean", "timestamp", "date"]

TABLE_EVENTS = (1, 3, 4, 5, 9, 10, 11, 16, 23)
"""The EventIDs whose fields are columns: every event the converter writes (tests/test_table_hostset.py
checks that none is missing when the converter learns a new one)."""

_UINT32 = 0xFFFFFFFF
# Fields whose manifest type is a number: the largest value each holds (HexInt64 LogonId in a
# signed 64-bit column; Sysmon for Linux keeps only its low 16 bits anyway).
_INTEGERS: dict[str, int] = {
    **dict.fromkeys(
        ("ProcessId", "ParentProcessId", "TerminalSessionId", "SourceProcessId", "SourceThreadId",
         "TargetProcessId", "GrantedAccess"),
        _UINT32,
    ),
    "LogonId": 0x7FFFFFFFFFFFFFFF,
    **dict.fromkeys(("SourcePort", "DestinationPort"), 0xFFFF),
}  # fmt: skip
_BOOLEANS = frozenset(("Initiated", "SourceIsIpv6", "DestinationIsIpv6", "IsExecutable"))
_TIMES = frozenset(("UtcTime", "CreationUtcTime"))


def _kind(name: str) -> ColumnKind:
    """The column kind of EventData field `name` (module docstring: Sysmon's manifest types)."""
    largest = _INTEGERS.get(name)
    if largest is not None:
        return "int" if largest <= 0xFFFF else "long"
    if name in _BOOLEANS:
        return "boolean"
    return "timestamp" if name in _TIMES else "string"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the event table: its name, kind and what it holds."""

    name: str
    kind: ColumnKind
    doc: str


def _field_columns() -> tuple[Column, ...]:
    """The EventData fields of TABLE_EVENTS, each once, in order of first appearance."""
    seen: dict[str, Column] = {}
    for event_id in TABLE_EVENTS:
        schema = SCHEMAS[event_id]
        for name in schema.fields:
            if name not in seen:
                seen[name] = Column(name, _kind(name), f"EventData {name} (first in EventID {event_id}, {schema.name})")
    return tuple(seen.values())


HEAD = (
    Column("host", "string", "the host the log came from (its folder, or the lines table's host)"),
    Column("date", "date", "UTC date of TimeCreated: a partition column"),
    Column("EventID", "int", "Sysmon EventID"),
    Column("EventRecordID", "long", "per host, increasing in output order from Options.first_record_id"),
    Column("TimeCreated", "timestamp", "System TimeCreated (the event's time unless time_created is now)"),
    Column("Computer", "string", "System Computer: the record's node= name, else the host's hostname"),
)
FIELDS = _field_columns()
LINE = Column("line", "string", "the event as the command writes it in the chosen format, without line end")
COLUMNS: tuple[Column, ...] = (*HEAD, *FIELDS, LINE)
_POSITION = {column.name: index for index, column in enumerate(FIELDS, len(HEAD))}


def _check() -> None:
    """Fail at import on a typo in the tables above."""
    unknown = (_INTEGERS.keys() | _BOOLEANS | _TIMES) - {column.name for column in FIELDS}
    if unknown:
        raise AssertionError(f"typed fields {sorted(unknown)} are in no table schema")
    names = [column.name.lower() for column in COLUMNS]
    if len(set(names)) != len(names):  # SQL engines compare column names without case
        raise AssertionError("two table columns differ only in case")


_check()


def event_row(event: SysmonEvent, host: str, line: str) -> tuple[object, ...]:
    """The row of `event` in `COLUMNS` order; `line` is its rendered form."""
    moment = event.time_created
    row: list[object] = [None] * len(COLUMNS)
    row[0] = host
    row[1] = date(moment.year, moment.month, moment.day)  # time_created is UTC
    row[2] = event.event_id
    row[3] = event.record_id
    row[4] = moment
    row[5] = text_value(event.computer)
    position = _POSITION
    for name, value in event.fields:
        at = position.get(name)
        if at is not None:
            row[at] = typed(name, value)
    row[-1] = line
    return tuple(row)


def typed(name: str, text: str) -> object:
    """The value of field `name` written as `text`, in its column's kind (None for `-`).

    A value that does not read as its kind (the converter never writes one) is None too; the
    rendered line still holds it.
    """
    largest = _INTEGERS.get(name)
    if largest is not None:
        return None if text == NO_VALUE else _integer(text, largest)
    if name in _BOOLEANS:
        return True if text == "true" else False if text == "false" else None
    if name in _TIMES:
        return None if text == NO_VALUE else parse_utc_time(text)
    return text_value(text)


def _integer(text: str, largest: int) -> int | None:
    """A decimal (UInt) or `0x` hexadecimal (HexInt) number no larger than `largest`."""
    hexadecimal = text.startswith("0x")
    digits = text[2:] if hexadecimal else text
    if not digits.isascii() or not (digits.isalnum() if hexadecimal else digits.isdigit()):
        return None
    try:
        value = int(digits, 16 if hexadecimal else 10)
    except ValueError:
        return None
    return value if value <= largest else None


def parse_utc_time(text: str) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS.mmm` (sysmon.format_utc_time's text) as an aware UTC datetime."""
    if len(text) != 23 or text[4] != "-" or text[7] != "-" or text[10] != " " or text[19] != ".":
        return None
    parts = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19], text[20:23])
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    year, month, day, hour, minute, second, millis = map(int, parts)
    try:
        return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=timezone.utc)
    except ValueError:
        return None

