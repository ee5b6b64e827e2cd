"""Reading Sysmon for Linux lines back: one line (syslog, bare `<Event>` XML or our JSON) → its
values.

What collectors and tests hold are lines as a syslog daemon or we wrote them:

* `Mmm dd HH:MM:SS host sysmon: <Event>…` (rsyslog's traditional file format; journalctl's
  short form pads the day with a zero), `2025-12-10T22:27:58.152234+09:00 host sysmon: <Event>…`
  (rsyslog's RFC 3339 default since Ubuntu 24.04), the message a program sends to the syslog
  socket (`<14>Mmm dd HH:MM:SS sysmon: <Event>…`: a priority, no host), or the bare `<Event>`;
* one JSON object per line in the evtx_dump layout (`-f json`).

The XML is parsed with lxml, hardened: no DTD is loaded, no entity resolved, no network used,
no huge trees; and the line must be the `<Event>` element alone (no prolog, so no DOCTYPE can
declare anything), with exactly the elements Sysmon writes, in its order.

Values come back as every output format of ours carries them (`render.xml.text_value`):
characters XML 1.0 cannot hold are `\\xNN` of their bytes. Real Sysmon lines get the same
treatment, so all of them can be read: Sysmon before 1.5.2 (libxml2) writes control characters
and undecodable bytes raw, and rsyslog then writes a control character as `#` and three octal
digits (`#011` for a TAB, its default `$EscapeControlCharactersOnReceive`); Sysmon 1.5.2
(pugixml) writes character references such as `&#01;` that XML 1.0 refuses. An rsyslog escape
is read back as the character it stands for; a literal `#011` written by a program that never
went through rsyslog is indistinguishable from one, so `rsyslog_escapes=False` reads such text as
it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a line is read: lxml is a tenth of the start-up
    from lxml import etree

from ..errors import ParseError
from .render.xml import VALUE_TABLE, text_value

__all__ = ["SysmonLine", "read_line"]


@dataclass(frozen=True, slots=True)
class SysmonLine:
    """One Sysmon event as a line holds it: the syslog header (None where the line has none),
    the System values and the EventData (name, value) pairs in the line's order.

    Numbers are ints; everything else is the text as written, so a value never changes on
    its way through (`time_created` gives TimeCreated as a datetime).
    """

    event_id: int
    data: tuple[tuple[str, str], ...]
    record_id: int
    system_time: str
    computer: str
    process_id: int
    thread_id: int
    version: int
    level: int
    task: int
    opcode: int
    keywords: str
    channel: str
    provider: str
    provider_guid: str
    user_id: str
    stamp: str | None = None
    host: str | None = None
    tag: str | None = None
    priority: int | None = None

    def get(self, name: str) -> str | None:
        """The value of EventData field `name`, None when the line has no such field."""
        for field, value in self.data:
            if field == name:
                return value
        return None

    @property
    def time_created(self) -> datetime:
        """TimeCreated (aware, UTC, to the microsecond: Sysmon's last three digits are 0)."""
        match = _SYSTEM_TIME.fullmatch(self.system_time)
        if match is None:  # read_line checked it
            raise ValueError(f"not a SystemTime: {self.system_time!r}")
        return datetime.strptime(match["seconds"], "%Y-%m-%dT%H:%M:%S").replace(
            microsecond=int(match["fraction"][:6].ljust(6, "0")), tzinfo=timezone.utc
        )


_MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_HEADER_TEXT = (
    r"(?:<(?P<priority>\d{1,3})>)?"
    rf"(?P<stamp>{_MONTH} [ 0-3]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) "
    r"(?:(?P<host>\S+) )??"
    r"(?P<tag>[^\s:\[\]<]+(?:\[\d+\])?): "
)
# The host is optional (a message sent to the socket has none): the event after the tag tells
# a host that looks like a tag (`sysmon:`) from the tag. Without an event, any header will do
# to say what came instead.
_HEADER = re.compile(_HEADER_TEXT + "(?=<)")
_ANY_HEADER = re.compile(_HEADER_TEXT)
_SYSTEM_TIME = re.compile(r"(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d{1,9}))?Z")
_FRACTION_DEFAULT = "0"
# rsyslog's escape of a control character: `#` and its three octal digits (000-037).
_RSYSLOG_ESCAPE = re.compile("#0([0-3][0-7])")
# TAB, LF and CR are legal in XML text but would not survive as raw characters (a raw CR
# becomes LF when parsed): they go back as character references, as our renderer writes them.
_KEPT = {0x09: "&#9;", 0x0A: "&#10;", 0x0D: "&#13;"}
_REFERENCE = re.compile("&#(?:([0-9]+)|x([0-9a-fA-F]+));")
_SYSTEM = (
    "Provider", "EventID", "Version", "Level", "Task", "Opcode", "Keywords", "TimeCreated",
    "EventRecordID", "Correlation", "Execution", "Channel", "Computer", "Security",
)  # fmt: skip


def read_line(text: str, *, rsyslog_escapes: bool = True) -> SysmonLine:
    """The event one Sysmon line holds; `ParseError` saying why for anything else.

    `text` is one line (a final line end is ignored). Lines read from a file with
    `errors="surrogateescape"` keep undecodable bytes, which come back as `\\xNN`.
    `rsyslog_escapes`: read `#000`-`#037` as the control character rsyslog escaped. The error
    knows no file or line; `ParseError.located(path, line)` adds them.
    """
    line = text[:-1] if text.endswith("\n") else text
    line = line[:-1] if line.endswith("\r") else line
    if line.startswith("{"):
        return _from_json(line)
    header = _HEADER.match(line)
    body = line[header.end() :] if header is not None else line
    if not body.startswith("<Event>"):
        header = header or _ANY_HEADER.match(line)
        if header is not None:
            raise ParseError(f"not a Sysmon line: after the syslog header expected <Event>, found "
                             f"{_start(line[header.end() :])}")
        raise ParseError(f"not a Sysmon line: expected <Event> or a JSON object, found {_start(body)}")
    event = _parse_xml(_xml_safe(body, rsyslog_escapes))
    if header is None:
        return event
    priority = header["priority"]
    return _with_header(event, header["stamp"], header["host"], header["tag"],
                        int(priority) if priority is not None else None)  # fmt: skip


def _with_header(event: SysmonLine, stamp: str, host: str | None, tag: str, priority: int | None) -> SysmonLine:
    return SysmonLine(
        event.event_id, event.data, event.record_id, event.system_time, event.computer, event.process_id,
        event.thread_id, event.version, event.level, event.task, event.opcode, event.keywords, event.channel,
        event.provider, event.provider_guid, event.user_id, stamp, host, tag, priority,
    )  # fmt: skip


def _start(text: str) -> str:
    return repr(text[:20]) if text else "nothing"


def _xml_safe(body: str, rsyslog_escapes: bool) -> str:
    """`body` with what XML 1.0 cannot hold (raw or as a reference) as `\\xNN`, and rsyslog's
    escapes back as the characters they stand for."""
    if rsyslog_escapes and "#0" in body:
        body = _RSYSLOG_ESCAPE.sub(_unescape, body)
    body = text_value(body)  # raw controls and undecodable bytes: \xNN, as in a value
    if "&#" in body:
        body = _REFERENCE.sub(_reference, body)
    return body


def _unescape(match: re.Match[str]) -> str:
    code = int(match.group(1), 8)
    return _KEPT.get(code) or VALUE_TABLE[code]


def _reference(match: re.Match[str]) -> str:
    decimal, hexadecimal = match.groups()
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    replacement = VALUE_TABLE.get(code)
    return replacement if replacement is not None else match.group()


def _parse_xml(body: str) -> SysmonLine:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(body.encode("utf-8"), parser)
    except etree.XMLSyntaxError as error:
        raise ParseError(f"not well-formed XML: {error.msg}") from None
    system, data = _children(root, ("System", "EventData"), "Event")
    parts = dict(zip(_SYSTEM, _children(system, _SYSTEM, "System")))
    execution, provider = parts["Execution"], parts["Provider"]
    pairs: list[tuple[str, str]] = []
    for item in data:
        name = item.get("Name") if item.tag == "Data" else None
        if not isinstance(name, str) or len(item) or set(item.keys()) != {"Name"}:
            raise ParseError(f"EventData holds {_describe(item)}, not only <Data Name=\"…\">text</Data>")
        pairs.append((name, item.text or ""))
    system_time = _attribute(parts["TimeCreated"], "SystemTime")
    if _SYSTEM_TIME.fullmatch(system_time) is None:
        raise ParseError(f"TimeCreated SystemTime {system_time!r} is not YYYY-MM-DDTHH:MM:SS.fffffffffZ")
    return SysmonLine(
        event_id=_number(parts["EventID"]),
        data=tuple(pairs),
        record_id=_number(parts["EventRecordID"]),
        system_time=system_time,
        computer=_text(parts["Computer"]),
        process_id=_number(execution, "ProcessID"),
        thread_id=_number(execution, "ThreadID"),
        version=_number(parts["Version"]),
        level=_number(parts["Level"]),
        task=_number(parts["Task"]),
        opcode=_number(parts["Opcode"]),
        keywords=_text(parts["Keywords"]),
        channel=_text(parts["Channel"]),
        provider=_attribute(provider, "Name"),
        provider_guid=_attribute(provider, "Guid"),
        user_id=_attribute(parts["Security"], "UserId"),
    )


def _children(node: etree._Element, names: tuple[str, ...], where: str) -> list[etree._Element]:
    """The child elements of `node`, which must be exactly `names` in that order (Sysmon's)."""
    children = list(node)
    found = tuple(child.tag if isinstance(child.tag, str) else "a comment or processing instruction"
                  for child in children)  # fmt: skip
    if found != names:
        raise ParseError(f"<{where}> holds {', '.join(found) or 'nothing'}, not Sysmon's {', '.join(names)}")
    return children


def _describe(node: etree._Element) -> str:
    if not isinstance(node.tag, str):
        return "a comment or processing instruction"
    return f"<{node.tag}> with {len(node)} child element(s) and attribute(s) {sorted(node.keys())}"


def _text(node: etree._Element) -> str:
    if len(node):
        raise ParseError(f"<{node.tag}> holds elements, not text")
    return node.text or ""


def _attribute(node: etree._Element, name: str) -> str:
    value = node.get(name)
    if not isinstance(value, str):
        raise ParseError(f"<{node.tag}> has no {name} attribute")
    return value


def _number(node: etree._Element, attribute: str | None = None) -> int:
    text = _text(node) if attribute is None else _attribute(node, attribute)
    if not text.isascii() or not text.isdecimal():
        what = f"<{node.tag}>" if attribute is None else f"<{node.tag} {attribute}>"
        raise ParseError(f"{what} is {text!r}, not a decimal number")
    return int(text)


# -- JSON lines (`-f json`): the evtx_dump layout ----------------------------------------------


def _from_json(line: str) -> SysmonLine:
    try:
        document = json.loads(line)
    except ValueError as error:
        raise ParseError(f"not valid JSON: {error}") from None
    event = _object(document, "Event")
    system, data = _object(event, "System"), _object(event, "EventData")
    pairs = []
    for name, value in data.items():
        if not isinstance(value, str):
            raise ParseError(f"EventData value {name!r} is {type(value).__name__}, not a string")
        pairs.append((name, value))
    execution, provider = _attributes(system, "Execution"), _attributes(system, "Provider")
    system_time = _string(_attributes(system, "TimeCreated"), "SystemTime")
    if _SYSTEM_TIME.fullmatch(system_time) is None:
        raise ParseError(f"TimeCreated SystemTime {system_time!r} is not YYYY-MM-DDTHH:MM:SS.fffffffffZ")
    return SysmonLine(
        event_id=_integer(system, "EventID"),
        data=tuple(pairs),
        record_id=_integer(system, "EventRecordID"),
        system_time=system_time,
        computer=_string(system, "Computer"),
        process_id=_integer(execution, "ProcessID"),
        thread_id=_integer(execution, "ThreadID"),
        version=_integer(system, "Version"),
        level=_integer(system, "Level"),
        task=_integer(system, "Task"),
        opcode=_integer(system, "Opcode"),
        keywords=_string(system, "Keywords"),
        channel=_string(system, "Channel"),
        provider=_string(provider, "Name"),
        provider_guid=_string(provider, "Guid"),
        user_id=_string(_attributes(system, "Security"), "UserId"),
    )


def _value(document: object, name: str) -> object:
    if not isinstance(document, dict) or name not in document:
        raise ParseError(f"the JSON object has no {name!r}")
    value: object = document[name]
    return value


def _object(document: object, name: str) -> dict[str, object]:
    value = _value(document, name)
    if not isinstance(value, dict):
        raise ParseError(f"{name!r} is {type(value).__name__}, not an object")
    return value


def _string(document: object, name: str) -> str:
    value = _value(document, name)
    if not isinstance(value, str):
        raise ParseError(f"{name!r} is {type(value).__name__}, not a string")
    return value


def _integer(document: object, name: str) -> int:
    value = _value(document, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ParseError(f"{name!r} is {value!r}, not a number >= 0")
    return value


def _attributes(system: dict[str, object], name: str) -> dict[str, object]:
    """`{"Name": {"#attributes": {…}}}`: how evtx_dump's layout holds an element's attributes."""
    return _object(_object(system, name), "#attributes")
