"""Sysmon's lines as rsyslog's traditional file format writes them to /var/log/syslog.

Sysmon calls `openlog("sysmon", LOG_NOWAIT, LOG_USER)` without LOG_PID, so the tag is a bare
`sysmon:`; rsyslog prefixes `Mmm dd HH:MM:SS host` in local time with the day padded by a
space (`Oct  5`). Month names are English whatever the locale, as in rsyslog.
"""

from __future__ import annotations

import time
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from .xml import byte_escape, event_xml, text_value

if TYPE_CHECKING:
    from ..event import SysmonEvent

__all__ = ["TAG", "SyslogLines", "header_host", "syslog_header", "syslog_line"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TAG = "sysmon:"


def syslog_header(moment: datetime, host: str, tz: tzinfo | None = None) -> str:
    """`Mmm dd HH:MM:SS host sysmon: ` for an aware `moment` shown in `tz` (None: local zone)."""
    t = moment.astimezone(tz)
    return (
        f"{_MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d} "
        f"{header_host(host)} {TAG} "
    )


def header_host(computer: str) -> str:
    """The host word of the header: one token, so `\\xNN` for whitespace, `-` when empty.

    Real host names never need this; a hostname option or a hostile `node=` must still not
    shift the fields a syslog parser splits on spaces.
    """
    value = text_value(computer)
    if not value:
        return "-"
    if any(c.isspace() for c in value):
        value = "".join(byte_escape(c) if c.isspace() else c for c in value)
    return value


def syslog_line(event: SysmonEvent, tz: tzinfo | None = None) -> str:
    """The full line: header stamped with TimeCreated in `tz`, then the `<Event>` XML."""
    return syslog_header(event.time_created, event.computer, tz) + event_xml(event)


class SyslogLines:
    """`syslog_line` in one zone for a stream of events, remembering the last header.

    Consecutive events mostly share their second and host, and building a header (a zone
    conversion, formatting, the host check) cost a third of rendering a whole event.
    With the local zone (`tz` None), the zone's names are part of what is remembered, so
    a `time.tzset()` to another zone is noticed.
    """

    __slots__ = ("_header", "_key", "tz")

    def __init__(self, tz: tzinfo | None = None) -> None:
        self.tz = tz
        self._key: tuple[int, int, int, int, int, int, str, tuple[str, str] | None] | None = None
        self._header = ""

    def __call__(self, event: SysmonEvent) -> str:
        moment, host = event.time_created, event.computer
        # The second by its fields (TimeCreated is always UTC): reading six attributes costs a
        # fifth of `moment.replace(microsecond=0)`, which was a sixth of rendering an event.
        key = (
            moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
            host, time.tzname if self.tz is None else None,
        )  # fmt: skip
        if key != self._key:
            self._header = syslog_header(moment, host, self.tz)
            self._key = key
        return self._header + event_xml(event)
