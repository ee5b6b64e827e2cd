"""The Sysmon side: Sysmon for Linux's event model and its output formats. Nothing here knows
about audit records.

- `schema`: the manifest (EventIDs, field order, envelope constants).
- `event`: `SysmonEvent`, `make_event`, `format_utc_time`.
- `guid`: Sysmon's GUID layouts.
- `render`: the `<Event>` XML, syslog lines and JSON.
- `lines`: `read_line`, a Sysmon line (ours, or real Sysmon's through a syslog daemon) back to
  its values (`SysmonLine`).
"""

from .event import SysmonEvent, format_utc_time, make_event
from .lines import SysmonLine, read_line
from .schema import SCHEMAS, EventSchema

__all__ = ["SCHEMAS", "EventSchema", "SysmonEvent", "SysmonLine", "format_utc_time", "make_event", "read_line"]
