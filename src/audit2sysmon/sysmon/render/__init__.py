"""Renderers: a SysmonEvent as one output line (syslog, XML or JSON).

Each format is one module; this package only maps the format names the CLI and the API
accept to a line function, so callers pick the format once instead of per event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING

from ...errors import ConfigError
from .jsonl import event_json
from .syslog import SyslogLines
from .xml import event_xml

if TYPE_CHECKING:
    from ..event import SysmonEvent

__all__ = ["FORMATS", "formatter"]

FORMATS = ("syslog", "xml", "json")


def formatter(name: str, *, tz: tzinfo | None = None) -> Callable[[SysmonEvent], str]:
    """The line function of format `name`; `tz` is the syslog header's zone (None: local)."""
    if name == "syslog":
        return SyslogLines(tz)
    if name == "xml":
        return event_xml
    if name == "json":
        return event_json
    raise ConfigError(f"unknown output format {name!r} (choose from {', '.join(FORMATS)})")
