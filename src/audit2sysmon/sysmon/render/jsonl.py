"""One JSON object per event, in the layout of evtx_dump (omerbenamram/evtx) JSON lines.

That layout is what the JSON-consuming Sysmon tools already read -- Zircolite's field
mappings (`Event.EventData.Image` → `Image`, `Event.System.EventID` → `EventID`), Chainsaw,
Hayabusa -- so Sigma rules work unchanged. System values keep the XML's types (numbers as
numbers, `Keywords` a string, attributes under `#attributes`, `Correlation` null); EventData
values are strings, exactly the text an XML parser reads from our `<Event>` line (the same
`\\xNN` rule for bytes that are not UTF-8), so every output format carries identical values.
The module is called jsonl so that it does not shadow the standard library's json.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..schema import CHANNEL, PROVIDER_GUID, PROVIDER_NAME, SECURITY_USER_ID
from .xml import system_time, text_value

if TYPE_CHECKING:
    from ..event import SysmonEvent

__all__ = ["event_dict", "event_json"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# Legal in JSON and UTF-8, but line breaks to Python's splitlines and to old JavaScript.
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def event_dict(event: SysmonEvent) -> dict[str, object]:
    """The event as nested dicts (what `to_json` encodes), for callers that post-process."""
    schema = event.schema
    pid = event.execution_pid
    system = {
        "Provider": {"#attributes": {"Name": PROVIDER_NAME, "Guid": PROVIDER_GUID}},
        "EventID": event.event_id,
        "Version": schema.version,
        "Level": schema.level,
        "Task": schema.task,
        "Opcode": schema.opcode,
        "Keywords": schema.keywords,
        "TimeCreated": {"#attributes": {"SystemTime": system_time(event.time_created)}},
        "EventRecordID": event.record_id,
        "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": pid, "ThreadID": pid}},
        "Channel": CHANNEL,
        "Computer": text_value(event.computer),
        "Security": {"#attributes": {"UserId": SECURITY_USER_ID}},
    }
    data = {name: text_value(value) for name, value in event.fields}
    return {"Event": {"System": system, "EventData": data}}


def event_json(event: SysmonEvent) -> str:
    """One line of valid UTF-8 JSON; line-break characters are written as `\\uXXXX`."""
    text = _ENCODER.encode(event_dict(event))
    if _LINE_BREAKS.search(text):
        text = _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text
