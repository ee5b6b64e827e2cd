"""One Sysmon for Linux event as a value: its EventID, its EventData fields in manifest order
(schema.py) and its envelope values, ready to render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from .render import jsonl as _jsonl
from .render import syslog as _syslog
from .render import xml as _xml
from .schema import NO_VALUE, POSITIONS, SCHEMAS, EventSchema

__all__ = ["SysmonEvent", "format_utc_time", "make_event", "written_values"]

_NO_OFFSET = timedelta(0)
_MISSING = object()  # a name the values do not hold (None is a value: missing, written `-`)


@dataclass(frozen=True, slots=True)
class SysmonEvent:
    """One Sysmon for Linux event, ready to render; immutable and complete.

    `fields` holds every EventData (name, value) pair of the schema, in manifest order, as
    text; bytes that were not UTF-8 arrive as surrogate escapes and the renderers write them
    as `\\xNN`. `time_created` is TimeCreated (aware, UTC). `execution_pid` is written as both
    Execution ProcessID and ThreadID; real Sysmon puts its daemon's pid there, we write 0
    unless the caller chooses otherwise, so output stays deterministic.
    """

    event_id: int
    fields: tuple[tuple[str, str], ...]
    computer: str
    record_id: int
    time_created: datetime
    execution_pid: int = 0

    def __post_init__(self) -> None:
        schema = SCHEMAS.get(self.event_id)
        if schema is None:
            raise ValueError(f"no Sysmon schema for EventID {self.event_id}")
        if not _in_schema_order(self.fields, schema.fields):
            raise ValueError(f"EventID {self.event_id} fields are not {schema.fields}")
        if self.time_created.utcoffset() != _NO_OFFSET:
            raise ValueError(f"time_created must be aware UTC, got {self.time_created!r}")

    @property
    def schema(self) -> EventSchema:
        return SCHEMAS[self.event_id]

    def get(self, name: str) -> str | None:
        """The value of EventData field `name`, or None when this event has no such field."""
        position = POSITIONS[self.event_id].get(name)
        return None if position is None else self.fields[position][1]

    def to_xml(self) -> str:
        """The `<Event>…</Event>` line as Sysmon writes it (see docs/output-format.md)."""
        return _xml.event_xml(self)

    def to_syslog(self, tz: tzinfo | None = None) -> str:
        """`Mmm dd HH:MM:SS host sysmon: <Event>…` stamped in `tz` (None: local zone)."""
        return _syslog.syslog_line(self, tz)

    def to_json(self) -> str:
        """One JSON object (evtx_dump layout: `{"Event":{"System":…,"EventData":…}}`)."""
        return _jsonl.event_json(self)


def _in_schema_order(fields: tuple[tuple[str, str], ...], names: tuple[str, ...]) -> bool:
    """Whether `fields` name exactly `names`, in order. Every event is checked: compared name
    by name in a loop (a tuple of the names cost a third of the check, a generator a frame
    switch per field when interpreted)."""
    if len(fields) != len(names):
        return False
    for pair, name in zip(fields, names):  # noqa: SIM110 (not all(generator): see above)
        if pair[0] != name:
            return False
    return True


def make_event(
    event_id: int,
    values: Mapping[str, str | int],
    *,
    computer: str,
    record_id: int,
    time_created: datetime,
    execution_pid: int = 0,
) -> SysmonEvent:
    """Build an event from a name → value mapping, in schema order, with Sysmon's `-` rule.

    Missing and empty values become `-` (Sysmon's EventSetFieldS). Integers are written in
    decimal (Sysmon's `%u`); a name the schema does not have is a bug in the caller and
    raises at once instead of silently dropping data.
    """
    schema = SCHEMAS.get(event_id)
    if schema is None:
        raise ValueError(f"no Sysmon schema for EventID {event_id}")
    # A plain dict (what every caller here passes) is read through dict's own methods, once
    # per schema name; a name the schema lacks shows as fewer names found than the mapping
    # holds, so the check costs no lookups of its own.
    given: dict[str, object] = values if type(values) is dict else dict(values)
    pairs: list[tuple[str, str]] = []
    found = 0
    missing = _MISSING  # a local: a compiled module reads its globals from a dict
    for name in schema.fields:
        value = given.get(name, missing)
        if value is missing:
            value = None
        else:
            found += 1
        # Most values are already their text: written as they are, without `_text`'s call.
        pairs.append((name, value if type(value) is str and value else _text(name, value)))
    if found != len(given):
        known = POSITIONS[event_id].keys()
        raise ValueError(f"EventID {event_id} has no field(s) {sorted(given.keys() - known)}")
    fields = tuple(pairs)
    if time_created.tzinfo is None:
        raise ValueError("time_created must be timezone-aware")
    return SysmonEvent(
        event_id,
        fields,
        computer,
        record_id,
        time_created.astimezone(timezone.utc),
        execution_pid,
    )


def written_values(event_id: int, values: Mapping[str, str | int]) -> dict[str, str]:
    """Every EventData field of `event_id` as it will be written: `make_event`'s rules (`-` for
    missing and empty values), in schema order. What a Sysmon configuration's filters see."""
    given: Mapping[str, object] = values
    return {name: _text(name, given.get(name)) for name in SCHEMAS[event_id].fields}


def _text(name: str, value: object) -> str:
    """A value as written. Typed `object`: a caller's dict is not checked by its type hints, and
    a wrong value must be refused here, naming its field (a compiled build would otherwise
    refuse it earlier, with a message that names no field)."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"field {name}: value must be str or int, got {type(value).__name__}")


_EPOCH_DAY = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)
_MILLIS = tuple(".%03d" % n for n in range(1000))  # noqa: UP031 - the text after the second


def format_utc_time(moment: datetime | int) -> str:
    """Sysmon's UtcTime text `YYYY-MM-DD HH:MM:SS.mmm` (UTC, milliseconds truncated).

    Accepts an aware datetime or integer milliseconds since the epoch (the audit stamp's
    unit, which keeps the conversion exact). Milliseconds are split by integer arithmetic
    rather than through datetime and timedelta objects; the text up to the second is
    remembered (`_utc_second`), since the events of one second are many, and the
    milliseconds come from a table: formatting the whole text anew was a tenth of applying
    an event's facts.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("UtcTime needs a timezone-aware datetime")
        moment = (moment - _EPOCH) // _MILLISECOND  # floor: milliseconds truncated
    seconds, millis = divmod(moment, 1000)
    return _utc_second(seconds) + _MILLIS[millis]


@lru_cache(maxsize=64)
def _utc_second(seconds: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` of whole seconds since the epoch: a pure function, remembered.

    Formatted with `%`, whose specs are not parsed again at every call as an f-string's are.
    """
    days, in_day = divmod(seconds, 86400)
    day = date.fromordinal(_EPOCH_DAY + days)
    hour, in_hour = divmod(in_day, 3600)
    minute, second = divmod(in_hour, 60)
    return "%04d-%02d-%02d %02d:%02d:%02d" % (day.year, day.month, day.day, hour, minute, second)  # noqa: UP031
