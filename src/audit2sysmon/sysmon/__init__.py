"""The Sysmon side: Sysmon for Linux's event model and its output formats. Nothing here knows
about audit records.

- `schema`: the manifest (EventIDs, field order, envelope constants).
- `event`: `SysmonEvent`, `make_event`, `format_utc_time`.
- `guid`: Sysmon's GUID layouts.
- `render`: the `<Event>` XML, syslog lines and JSON.
"""

from .event import SysmonEvent, format_utc_time, make_event
from .schema import SCHEMAS, EventSchema

__all__ = ["SCHEMAS", "EventSchema", "SysmonEvent", "format_utc_time", "make_event"]
