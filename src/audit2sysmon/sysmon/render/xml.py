"""The `<Event>` line, byte for byte as Sysmon for Linux writes it, and our escaping rule.

Audit values are untrusted bytes (argv, paths), so every value goes through one mapping that
guarantees well-formed XML 1.0 on a single line whatever the input:

* value level (shared with JSON, so every format carries the same text): characters XML 1.0
  cannot hold at all -- C0 controls other than TAB/LF/CR, U+FFFE/U+FFFF, surrogates -- become
  `\\xNN` (lower-case hex) of their bytes. An undecodable input byte arrives as a surrogate
  escape (U+DC80-U+DCFF) and is written as that byte, any other surrogate as its 3 bytes.
* XML level: `&` `<` `>` `"` become entities (as libxml2-era Sysmon wrote them); TAB, LF, CR
  and the Unicode line breaks NEL, LS, PS become character references, so the parsed value
  keeps them but the line never breaks.

DEL and C1 controls other than NEL are legal XML and pass raw, as in Sysmon. The `\\xNN` form
is not reversible for text that already contains a literal `\\x41`; Sysmon values are read by
people and rules, not decoded, so we keep backslashes as they are (no `\\\\`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..schema import CHANNEL, PROVIDER_GUID, PROVIDER_NAME, SECURITY_USER_ID, EventSchema

if TYPE_CHECKING:
    from datetime import datetime

    from ..event import SysmonEvent

__all__ = ["byte_escape", "escape_text", "event_xml", "plain_text", "system_time", "text_value"]


def byte_escape(char: str) -> str:
    """`\\xNN` of each byte the character stands for (surrogate escapes: the original byte)."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    # hex(" ") then `\x` for each space: a fifth of a generator's cost, and the table of
    # surrogates below is built from it at every start.
    return "\\x" + char.encode("utf-8", "surrogatepass").hex(" ").replace(" ", "\\x")


_FORBIDDEN = [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)]
_FORBIDDEN += [*range(0xD800, 0xE000), 0xFFFE, 0xFFFF]
VALUE_TABLE: dict[int, str] = {c: byte_escape(chr(c)) for c in _FORBIDDEN}
# Surrogates (U+D800-U+DFFF) through chr(): mypyc cannot compile them in string literals.
_SURROGATES = f"{chr(0xD800)}-{chr(0xDFFF)}"
VALUE_SPECIAL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_SURROGATES}\ufffe\uffff]")

_XML_TABLE: dict[int, str] = {
    **VALUE_TABLE,
    **{ord(c): f"&#{ord(c)};" for c in "\t\n\r\x85\u2028\u2029"},
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
}
_XML_SPECIAL = re.compile(f"[\x00-\x1f&<>\"\x85\u2028\u2029{_SURROGATES}\ufffe\uffff]")


def text_value(text: str) -> str:
    """The value every format carries: XML-forbidden characters and bad bytes as `\\xNN`."""
    return text.translate(VALUE_TABLE) if VALUE_SPECIAL.search(text) else text


def escape_text(text: str) -> str:
    """`text` as XML character data on one line; parsing it gives back `text_value(text)`.

    The search is the hot path: almost every value needs no change and is returned as is.
    """
    return text.translate(_XML_TABLE) if _XML_SPECIAL.search(text) else text


def plain_text(text: str) -> bool:
    """Whether `text` is the same after `escape_text` and `text_value`, checked cheaply.

    Printable ASCII without `&<>"` needs no change in any format. One check over all of an
    event's values costs a third of one regex search per value; a text that fails
    it may still need no change, it only takes the per-value path.
    """
    return (
        text.isascii()
        and text.isprintable()
        and "&" not in text
        and "<" not in text
        and ">" not in text
        and '"' not in text
    )


def system_time(moment: datetime) -> str:
    """TimeCreated SystemTime: 9 fraction digits from microseconds, as Sysmon prints them.

    Formatted with `%`: an f-string parses its format specs again at every call (and
    `isoformat`, tried, costs more, for the zone it asks about).
    """
    t = moment
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06d000Z" % (  # noqa: UP031 - see the docstring
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond
    )  # fmt: skip


_PIECES: dict[int, tuple[str, ...]] = {}


def _pieces(schema: EventSchema) -> tuple[str, ...]:
    """The constant text of the line, split where its variable parts go (TimeCreated,
    EventRecordID, the Execution ids twice, Computer, then each EventData value): built once
    per EventID. Joining these with the values copies the constant text once, where filling
    a `%s` template scanned its thousand characters for specifiers at every event."""
    pieces = _PIECES.get(schema.event_id)
    if pieces is None:
        pieces = _PIECES[schema.event_id] = (
            f'<Event><System><Provider Name="{PROVIDER_NAME}" Guid="{PROVIDER_GUID}"/>'
            f"<EventID>{schema.event_id}</EventID><Version>{schema.version}</Version>"
            f"<Level>{schema.level}</Level><Task>{schema.task}</Task>"
            f"<Opcode>{schema.opcode}</Opcode><Keywords>{schema.keywords}</Keywords>"
            '<TimeCreated SystemTime="',
            '"/><EventRecordID>',
            '</EventRecordID><Correlation/><Execution ProcessID="',
            '" ThreadID="',
            f'"/><Channel>{CHANNEL}</Channel><Computer>',
            f'</Computer><Security UserId="{SECURITY_USER_ID}"/></System><EventData><Data Name="{schema.fields[0]}">',
            *[f'</Data><Data Name="{name}">' for name in schema.fields[1:]],
            "</Data></EventData></Event>",
        )
    return pieces


def event_xml(event: SysmonEvent) -> str:
    """The whole `<Event>…</Event>` on one line: no declaration, namespace or whitespace."""
    values = [value for _, value in event.fields]
    if not plain_text("".join(values)):
        values = [escape_text(value) for value in values]
    pid = str(event.execution_pid)
    parts = [system_time(event.time_created), str(event.record_id), pid, pid, escape_text(event.computer), *values]
    pieces = _pieces(event.schema)
    line = [pieces[0]]
    for piece, part in zip(pieces[1:], parts):
        line.append(part)
        line.append(piece)
    return "".join(line)
