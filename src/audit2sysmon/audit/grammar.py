"""The grammar path of the parse stage: Lark's reading of any record line, walked into a `Record`.

`grammars/audit.lark` is the single definition of what a record line is, in every text form
(raw audit.log, ENRICHED, `ausearch -i`, printk/journald, syslog transports). `parse.Parser`
hands a line here when its fast path declines it; the values are decoded by the rules
`parse.py` holds for both paths (tests/test_parse.py proves the two paths build equal records).
Imported only then: Lark costs a fifth of the start-up, and most raw logs never need it.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import ParseError
from .parse import (
    _Caches,
    _checked_id,
    _fast_body,
    _interpreted_field,
    _raw_field,
    _stamp_of,
    _text_field,
)
from .records import Field, Record, SourceLocation, Stamp, ValueKind

__all__ = ["grammar_parse"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


# --------------------------------------------------------------------------- grammar loading


def _grammar_text() -> str:
    """The grammar from the installed wheel, else from the source checkout (editable install)."""
    try:
        return resources.files("audit2sysmon.audit").joinpath("audit.lark").read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError):
        return (Path(__file__).resolve().parents[3] / "grammars" / "audit.lark").read_text("utf-8")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The compiled LALR parser; built once per process (a Lark instance is immutable)."""
    return Lark(_grammar_text(), parser="lalr", lexer="contextual", start=["start", "msg_body", "imsg_body"])


_LOCAL_STAMP = re.compile(
    r"(?P<date>\S+) (?P<h>\d{1,2}):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<ms>\d{1,6}))?(?::(?P<serial>\d+))?\Z", re.ASCII
)
_NUMERIC_DATE = re.compile(r"(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})\Z", re.ASCII)


def _local_date(text: str) -> _dt.date:
    """A `%x` date of some locale. '.' means day first (de_DE `26.10.2021`), '/' month first
    (C `10/26/21`, en_US `10/26/2021`), '-' year first (ISO); other forms go to dateutil."""
    m = _NUMERIC_DATE.match(text)
    if m is None:
        # Imported here: few logs need it, and importing it cost every run 8 ms.
        from dateutil import parser as dateparser

        parsed: _dt.datetime = dateparser.parse(text, dayfirst=False)
        return parsed.date()
    a, sep, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    if sep == "-" or len(m.group(1)) == 4:
        year, month, day = a, b, c
    elif sep == ".":
        day, month, year = a, b, c
    else:
        month, day, year = a, b, c
    if year < 100:  # POSIX %y: 69-99 -> 19xx, 00-68 -> 20xx
        year += 1900 if year >= 69 else 2000
    return _dt.date(year, month, day)


def _local_stamp(stamp: str, zone: _dt.tzinfo) -> Stamp:
    """`audit(26.10.2021 12:51:14.046:1385)` in `zone` -> UTC milliseconds and serial."""
    m = _LOCAL_STAMP.match(stamp[6:-1])
    if m is None:
        raise ParseError(f"unreadable local time stamp {stamp!r}")
    if m.group("serial") is None:
        raise ParseError("time stamp has no serial (audisp-syslog 'interpret' form): no event id")
    try:
        day = _local_date(m.group("date"))
        local = _dt.datetime(
            day.year, day.month, day.day, int(m.group("h")), int(m.group("mi")), int(m.group("s")), tzinfo=zone
        )
        seconds = (local - _EPOCH) // _dt.timedelta(seconds=1)
    except (ValueError, OverflowError, TypeError) as exc:
        raise ParseError(f"unreadable local date in {stamp!r}: {exc}") from None
    return _checked_id(seconds * 1000 + int((m.group("ms") or "0")[:3].ljust(3, "0")), int(m.group("serial")))


# --------------------------------------------------------------------------- raw bodies


def _pair(tok: Token) -> tuple[str, str, int]:
    """Split a PAIR token into key, raw value and the value's offset in the line."""
    key, _, raw = tok.value.partition("=")
    return key, raw, _start(tok) + len(key) + 1


def _raw_fields(
    tokens: list[Token], line: str, type_name: str, caches: _Caches, nested: bool = False
) -> list[Field]:
    """Fields of a raw body in order. Runs of free-text words become one `_text` field; an
    AppArmor `(enforce)` word right after a bare value belongs to it (`subj=name (enforce)`).
    `nested`: this is the inside of a msg='…', whose own msg='…' is not opened again."""
    fields: list[Field] = []
    words: list[Token] = []
    last: tuple[str, int, str] | None = None  # key, value offset, token type of the previous pair
    for tok in tokens:
        if tok.type == "WORD":
            value = tok.value
            if not words and last is not None and last[2] == "PAIR_BARE" and value[0] == "(" and value[-1] == ")":
                key, start, _ = last
                fields[-1] = _raw_field(key, line[start : tok.end_pos], type_name)
            else:
                words.append(tok)
            continue
        if words:
            fields.append(_text_field(line[words[0].start_pos : words[-1].end_pos]))
            words = []
        key, raw, start = _pair(tok)
        last = (key, start, tok.type)
        if tok.type == "PAIR_MSG" and not nested:
            fields.extend(_msg_fields(key, raw, type_name, caches))
        else:
            fields.append(_raw_field(key, raw, type_name))
    if words:
        fields.append(_text_field(line[words[0].start_pos : words[-1].end_pos]))
    return fields


def _msg_fields(key: str, raw: str, type_name: str, caches: _Caches) -> list[Field]:
    """`msg='…'` of a user-space record: the whole text, then its inner key=value pairs (free
    words inside, such as `PAM: setcred` or an AVC text, stay only in the `msg` field)."""
    inner = raw[1:-1] if len(raw) >= 2 and raw[-1] == "'" else raw[1:]  # unclosed: truncated line
    fields = [Field(key, raw, inner.encode("utf-8", "surrogateescape"), ValueKind.QUOTED)]
    body = _fast_body(inner, type_name, caches.rules_for(type_name))
    if body is not None:
        fields.extend(body)
        return fields
    try:
        tree = _lark().parse(inner, start="msg_body")
    except LarkError:
        return fields
    fields.extend(f for f in _raw_fields(_body_tokens(tree), inner, type_name, caches, nested=True) if f.key != "_text")
    return fields


def _enriched_fields(tokens: list[Token], line: str) -> list[Field]:
    """ENRICHED tail: pairs start fields; a word continues the previous value (`SADDR=unknown family`);
    words before the first pair are one `_text` field.

    Each value is decoded once, after its last word: re-decoding the growing value at every
    word made a hostile tail of many words quadratic.
    """
    fields: list[Field] = []
    span: list[int] | None = None  # value start and end of the last field, still growing

    def close() -> None:
        if span is not None:
            last = fields[-1]
            text = line[span[0] : span[1]]
            fields[-1] = _text_field(text) if last.key == "_text" else _raw_field(last.key, text, "", enriched=True)

    for tok in tokens:
        if tok.type == "ENRICH_SEP":
            continue
        if tok.type == "WORD":
            if span is None:
                fields.append(_text_field(tok.value))
                span = [_start(tok), _end(tok)]
            span[1] = _end(tok)
            continue
        close()
        key, raw, start = _pair(tok)
        fields.append(_raw_field(key, raw, "", enriched=True))
        span = [start, start + len(raw)]
    close()
    return fields


def _syslog_enrichment(tokens: list[Token]) -> tuple[list[Token], list[Token]]:
    """audisp-syslog replaced the 0x1D by a space: the UPPER-case pairs after the last pair with a
    lower-case key are the enrichment. Returns (body tokens, enrichment tokens)."""
    cut = len(tokens)
    for i in range(len(tokens) - 1, -1, -1):
        tok = tokens[i]
        if tok.type == "WORD":
            continue
        key = tok.value.partition("=")[0]
        if key.upper() != key or key.lower() == key:
            break
        cut = i
    return tokens[:cut], tokens[cut:]


# --------------------------------------------------------------------------- interpreted bodies

# Field order the kernel writes; in `ausearch -i` text a piece `k=v` after a field
# that may hold spaces starts a new field only if `k` is a later field of this order.
_ORDER = {
    "SYSCALL": "arch syscall per success exit a0 a1 a2 a3 items ppid pid auid uid gid euid suid fsuid egid "
    "sgid fsgid tty ses comm exe subj key",
    "PATH": "item name inode dev mode ouid ogid rdev obj nametype cap_fp cap_fi cap_fe cap_fver cap_frootid",
}
_ORDER_INDEX = {t: {k: i for i, k in enumerate(keys.split())} for t, keys in _ORDER.items()}
_SPACED = frozenset(("comm", "exe", "subj", "key", "name", "obj"))  # values that may contain spaces
_TO_EOL = {"PROCTITLE": "proctitle", "CWD": "cwd", "SOCKADDR": "saddr"}
_ARG_KEY = re.compile(r"a(\d{1,10})(?:(_len)|\[(\d{1,10})\])?\Z")  # bounded: no int() of hostile digit runs


def _arg_key(key: str) -> tuple[int, str, int] | None:
    """EXECVE keys: `a3` -> (3, 'arg', 0), `a3_len` -> (3, 'len', 0), `a3[2]` -> (3, 'chunk', 2)."""
    m = _ARG_KEY.match(key)
    if m is None:
        return None
    if m.group(2):
        return int(m.group(1)), "len", 0
    if m.group(3) is not None:
        return int(m.group(1)), "chunk", int(m.group(3))
    return int(m.group(1)), "arg", 0


def _execve_next(cur: str, key: str, argc: int | None) -> bool:
    """EXECVE keys come in order: argc, a0, a1_len, a1[0], a1[1], a2 … (never past argc)."""
    new = _arg_key(key)
    if new is None or (argc is not None and new[0] >= argc):
        return False
    if cur == "argc":
        return new[0] == 0 and new[1] != "chunk"
    old = _arg_key(cur)
    if old is None:
        return True
    n, kind, idx = old
    if kind == "len":
        return new == (n, "chunk", 0)
    if kind == "chunk" and new == (n, "chunk", idx + 1):
        return True
    return new[0] == n + 1 and new[1] != "chunk"


def _starts_field(type_name: str, cur: str, key: str, argc: int | None) -> bool:
    """Does the piece `key=…` start a new field after field `cur` of an `ausearch -i` record?"""
    if type_name in _TO_EOL:
        return False
    if type_name == "EXECVE":
        return _execve_next(cur, key, argc)
    order = _ORDER_INDEX.get(type_name)
    if order is None or cur not in _SPACED:
        return True
    if key == cur == "key":  # several rule keys: `key=exec key=64bit`
        return True
    return order.get(key, -1) > order.get(cur, len(order))


def _interpreted_fields(tokens: list[Token], line: str, end: int, type_name: str, inner: bool) -> list[Field]:
    """Join the space-split pieces of an `ausearch -i` body back into fields. A value runs up to
    the single space before the next field's key (so inner spaces survive exactly)."""
    spans: list[tuple[str, int, int]] = []  # key, value start, piece start
    lead: tuple[int, int] | None = None  # free words before the first pair
    argc: int | None = None
    for tok in tokens:
        if tok.type == "IWORD" or (spans and not inner and not _starts_field(type_name, spans[-1][0], _key(tok), argc)):
            if not spans:
                lead = (lead[0] if lead else _start(tok), _end(tok))
            continue
        key, raw, start = _pair(tok)
        if key == "argc" and type_name == "EXECVE" and raw.isdecimal() and len(raw) <= 10:
            argc = int(raw)
        spans.append((key, start, _start(tok)))
    fields = [] if lead is None or inner else [_text_field(line[lead[0] : lead[1]])]
    for i, (key, start, _) in enumerate(spans):
        stop = spans[i + 1][2] - 1 if i + 1 < len(spans) else end
        raw = line[start:max(stop, start)]
        if raw.startswith("'") and raw.endswith("'") and key == "msg" and len(raw) >= 2:
            fields.append(Field(key, raw, raw[1:-1].encode("utf-8", "surrogateescape"), ValueKind.INTERPRETED))
            fields.extend(_interpreted_msg(raw[1:-1]))
        else:
            fields.append(_interpreted_field(key, raw))
    return fields


def _key(tok: Token) -> str:
    text: str = tok.value
    return text.partition("=")[0]


def _interpreted_msg(inner: str) -> list[Field]:
    """Inner pairs of an interpreted `msg='…'`; any `k=` piece starts a field there."""
    try:
        tree = _lark().parse(inner, start="imsg_body")
    except LarkError:
        return []
    return _interpreted_fields(_body_tokens(tree), inner, len(inner.rstrip(" ")), "", inner=True)


# --------------------------------------------------------------------------- tree walking


def _body_tokens(tree: Tree[Token] | None) -> list[Token]:
    """Tokens of a `body`/`ibody`/`enrichment` subtree (or of a `msg_body` wrapper)."""
    if tree is None:
        return []
    out: list[Token] = []
    for child in tree.children:
        if isinstance(child, Tree):
            out.extend(_body_tokens(child))
        else:
            out.append(child)
    return out


def _subtree(children: list[Tree[Token] | Token], name: str) -> Tree[Token] | None:
    for child in children:
        if isinstance(child, Tree) and child.data == name:
            return child
    return None


def _token(children: list[Tree[Token] | Token], name: str) -> Token | None:
    for child in children:
        if isinstance(child, Token) and child.type == name:
            return child
    return None


def _required(children: list[Tree[Token] | Token], name: str) -> Token:
    """A token the grammar guarantees in this tree (so its absence is a bug, not bad input)."""
    tok = _token(children, name)
    if tok is None:
        raise AssertionError(f"grammar tree without {name}")
    return tok


def _start(tok: Token) -> int:
    """Token positions are always set by lark's lexer; only its type hints say Optional."""
    assert tok.start_pos is not None
    return tok.start_pos


def _end(tok: Token) -> int:
    assert tok.end_pos is not None
    return tok.end_pos


@dataclass(slots=True)
class _Ctx:
    """What one parse call knows besides the line: zone of local stamps and where the line is."""

    zone: _dt.tzinfo
    source: SourceLocation
    caches: _Caches


def _child_tree(node: Tree[Token] | Token) -> Tree[Token]:
    """A child the grammar makes a subtree (so a token there is a bug, not bad input)."""
    if not isinstance(node, Tree):
        raise AssertionError(f"grammar tree with a token where a subtree belongs: {node!r}")
    return node


def _from_tree(tree: Tree[Token], line: str, ctx: _Ctx) -> Record:
    parts = _child_tree(tree.children[0]).children  # `line`
    syslog = _subtree(parts, "syslog")
    host = _required(syslog.children, "HOST").value if syslog is not None else None
    if _subtree(parts, "journal_short") is not None:
        raise ParseError("journald short form (TYPE body) carries no audit(…) stamp: no event id")
    record = _subtree(parts, "record")
    assert record is not None  # the grammar has no third form
    node_tok = _token(record.children, "NODE")
    node = node_tok.value[5:] if node_tok is not None else host
    type_name, type_num, _ = ctx.caches.type_of(_required(record.children, "TYPE").value[5:])
    header = _child_tree(record.children[-1])
    if header.data == "no_event_id":
        raise ParseError("record has no audit(…) stamp (`msg=?`): no event id")
    if header.data == "interpreted_header":
        eid = _local_stamp(_required(header.children, "LOCAL_STAMP").value, ctx.zone)
        end = len(line) - 1 if line.endswith(" ") else len(line)
        tokens = _body_tokens(_subtree(header.children, "ibody"))
        fields = _interpreted_fields(tokens, line, end, type_name, inner=False)
        return Record(type_name, type_num, node, eid, tuple(fields), (), True, ctx.source)
    stamp = _required(header.children, "RAW_STAMP").value
    sec, _, rest = stamp[6:-1].partition(".")
    frac, _, serial = rest.partition(":")
    eid = _stamp_of(sec, frac, serial)
    tokens = _body_tokens(_subtree(header.children, "body"))
    tail = _body_tokens(_subtree(header.children, "enrichment"))
    if syslog is not None and not tail:
        tokens, tail = _syslog_enrichment(tokens)
    fields = _raw_fields(tokens, line, type_name, ctx.caches)
    return Record(type_name, type_num, node, eid, tuple(fields), tuple(_enriched_fields(tail, line)), False, ctx.source)


def _describe(exc: UnexpectedInput, line: str) -> str:
    if isinstance(exc, UnexpectedEOF):
        return "line ends too early (truncated record?)"
    if isinstance(exc, UnexpectedCharacters) and exc.pos_in_stream is not None:
        return f"unexpected character {line[exc.pos_in_stream]!r}"
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return "line ends too early (truncated record?)"
        expected = ", ".join(sorted(exc.expected)[:6])
        return f"unexpected {exc.token.value[:40]!r}; expected {expected}"
    return "not an audit record"


def grammar_parse(text: str, zone: _dt.tzinfo, source: SourceLocation, caches: _Caches) -> Record:
    """The record the grammar reads from `text` (one line, line end already removed); `zone`
    is that of `ausearch -i` local stamps."""
    return _grammar_parse(text, _Ctx(zone, source, caches))


def _grammar_parse(text: str, ctx: _Ctx) -> Record:
    """`grammar_parse` with its context."""
    try:
        tree = _lark().parse(text, start="start")
    except UnexpectedInput as exc:
        raise ParseError(_describe(exc, text), column=exc.column, text=text[:200]) from None
    return _from_tree(tree, text, ctx)

