"""Parse stage: one text line in, one typed `Record` out (or a skip, or a `ParseError`).

The Lark grammar `grammars/audit.lark` is the single definition of what a record line is, in
every text form (raw audit.log, ENRICHED, `ausearch -i`, printk/journald, syslog transports);
`grammar.py` walks its parse tree. This module decodes values (the kernel's hex rule,
`ausearch -i` octal escapes) for both, and reads the common lines itself.

Speed: most lines of a real log are plain raw records (`[node=N ]type=T msg=audit(S.M:N): k=v …`).
`_fast_parse` reads exactly that subset with two regexes and `str.split` and gives up (returns
None) on anything else, so the grammar decides every line it is not sure of. Both paths share
the value decoding below; tests/test_parse.py proves with hypothesis that they build equal
records for generated lines. The grammar module (and Lark, a fifth of the start-up) is
imported only when a line needs it: most raw logs never do.

Robustness: a line is never trusted. Everything that goes wrong becomes a `ParseError` naming
path, line, column and reason, so a converter can count it and go on.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from ..errors import ParseError
from .records import Field, Record, SourceLocation, Stamp, ValueKind
from .types import record_name, record_number

__all__ = ["MAX_LINE", "Parser", "parse_line", "record_head"]

# auditd never writes more than MAX_AUDIT_MESSAGE_LENGTH (8970) bytes per record; with a node name,
# a syslog header or ausearch's decoding a line stays far below this. Longer lines are refused
# up front so hostile input cannot make the lexer work quadratically.
MAX_LINE = 65536

# 2106-02-07T06:28:15.999Z: Sysmon's GUIDs hold the event's seconds in 32 bits, so a later stamp,
# or one before 1970 (a local date with a three-digit year), could not be converted. Both come
# from corrupted digits (found by fuzzing) and are refused here, with their line,
# instead of failing later in the map stage.
_MAX_MSEC = 0xFFFFFFFF * 1000 + 999
_MAX_SERIAL = 0xFFFFFFFF
_NULLS = frozenset(("(null)", "(none)", "?"))
_SKIP_PREFIXES = ("#", "----", "time->")
_INTERNAL = "internal parser error (bug)"

# Fields whose value the kernel or libaudit may hex-encode (the audit field dictionary).
# Others (pid, a0 of SYSCALL, fp, …) are numbers or trusted tokens that merely look like hex.
_ENCODABLE = frozenset(
    (
        "acct", "addr", "apparmor", "cgroup", "cmd", "comm", "cwd", "data", "device", "dir", "exe",
        "file", "grp", "invalid_context", "key", "name", "ocomm", "path", "proctitle", "saddr", "vm",
        "watch", "new-disk", "old-disk", "new-chardev", "old-chardev", "new-fs", "old-fs", "new-net",
        "old-net", "new-rng", "old-rng",
    )
)
_EXECVE_ARG = re.compile(r"a\d+(?:\[\d+\])?\Z")
# Records only the kernel writes, whose string values are always quoted, even-length hex or a
# null marker. There, an unterminated quote or an odd number of hex digits can only be damage
# (a line cut by rotation or a full disk, a corrupted byte), which is reported rather than
# passed on as a plausible but wrong argument or path. SYSCALL is not among them: a
# damaged `exe=` must not cost the exec its ProcessCreate; its text is kept as written.
# Also damage: a control byte or a byte that is not UTF-8 in such a bare value.
# (ausearch-style text with raw stamps writes bare values such as `a0=top`: not hex, still read.)
_KERNEL_ONLY = frozenset(("EXECVE", "PROCTITLE", "CWD", "PATH"))
_ODD_HEX = re.compile(r"[0-9A-Fa-f](?:[0-9A-Fa-f]{2})*\Z")
# Control bytes, or bytes that are not UTF-8 (surrogate escapes U+DC80-U+DCFF): the kernel
# hex-encodes them. Written with chr(): mypyc cannot compile surrogates in string literals.
_RAW_BYTES = re.compile(f"[\x00-\x1f\x7f{chr(0xDC80)}-{chr(0xDCFF)}]")
_OCTAL = re.compile(r"\\(0[0-3][0-7])")  # ausearch -i writes bytes below 0x20 as \ooo


# --------------------------------------------------------------------------- value decoding


def _hexable(key: str, type_name: str, enriched: bool) -> bool:
    """May this field hold the kernel's hex encoding? Decided by name, never by the value's look."""
    if enriched:
        return key.endswith(("UID", "GID"))
    return key in _ENCODABLE or (type_name == "EXECVE" and _EXECVE_ARG.match(key) is not None)


def _raw_field(key: str, raw: str, type_name: str, enriched: bool = False) -> Field:
    """Decode one raw `key=raw` value by the kernel's rules (hex for untrusted strings)."""
    if not raw:
        return Field(key, raw, b"", ValueKind.EMPTY)
    if raw[0] == '"' and raw[-1] == '"' and len(raw) >= 2:
        return Field(key, raw, raw[1:-1].encode("utf-8", "surrogateescape"), ValueKind.QUOTED)
    if raw in _NULLS:
        return Field(key, raw, raw.encode(), ValueKind.NULL)
    if _hexable(key, type_name, enriched):
        digits = raw[:-1] if raw[-1] == '"' else raw  # go-libaudit testdata: stray quote after hex
        decoded = _hex_bytes(digits)
        if decoded is not None:
            return Field(key, raw, decoded, ValueKind.HEX)
        if type_name in _KERNEL_ONLY and (raw[0] == '"' or _ODD_HEX.match(raw) or _RAW_BYTES.search(raw)):
            raise ParseError(f"{key}: damaged value {raw[:40]!r} (cut or corrupted record): the kernel writes "
                             "these values quoted or as an even number of hex digits")
    return Field(key, raw, raw.encode("utf-8", "surrogateescape"), ValueKind.BARE)


# Fields are immutable and most short pairs of a log repeat (`arch=c000003e`, `uid=0`,
# `key="exec"`), so the fast path reuses them, looked up by the pair's text as written: one
# dict lookup per pair is far cheaper than splitting it and hashing a (key, raw, type, enriched)
# tuple for an lru_cache (profiled). Long pairs (argv, paths) are not kept one by
# one, but whole bodies are (`_fast_body`). Every table is bounded: a full one is emptied and
# refills with what the log repeats.
_SHORT = 48
_CACHED_PAIRS = 8192
_CACHED_BODIES = 2048
_LONG_BODY = 512
_CACHED_TYPES = 256
_CACHED_STAMPS = 1024


@dataclass(slots=True)
class _Decoded:
    """Pairs and whole bodies already decoded under one set of decoding rules.

    A body pair decodes alike in every record type that answers two questions alike: is it
    an EXECVE (whose `aN` arguments may be hex), is it a kernel-only record (whose damaged
    values are refused)? An ENRICHED tail decodes alike in every type: auditd writes it, not
    the kernel, and the grammar path reads it with no type either. So there are four sets
    of rules, each with its own bounded tables, however many record types a log makes up.
    """

    pairs: dict[str, Field]
    bodies: dict[str, tuple[Field, ...]]


_RULE_SETS = ((False, False), (False, True), (True, True))
# What the header before ` msg=audit(` says: node, record type name and number, and the rules
# its body decodes by.
_Head = tuple[str | None, str, int | None, _Decoded]


class _Caches:
    """What one parser remembers of the lines it read: decoded pairs and bodies per set of
    decoding rules, record types and stamps. Every table is bounded (emptied when full, then
    refilled by what the log repeats), and nothing in it changes what a line parses to: a
    fresh parser reads every line alike, only slower."""

    __slots__ = ("enriched", "heads", "rules", "stamps", "types")

    def __init__(self) -> None:
        self.rules = {rules: _Decoded({}, {}) for rules in _RULE_SETS}
        self.enriched = _Decoded({}, {})
        self.types: dict[str, tuple[str, int | None, _Decoded]] = {}
        self.heads: dict[str, _Head] = {}
        self.stamps: dict[str, Stamp] = {}

    def rules_for(self, type_name: str) -> _Decoded:
        """The tables of what the bodies of `type_name` records decode to."""
        return self.rules[(type_name == "EXECVE", type_name in _KERNEL_ONLY)]

    def type_of(self, written: str) -> tuple[str, int | None, _Decoded]:
        """(name, number, body rules) of a `type=` value: `1300` -> SYSCALL, `UNKNOWN[1334]` ->
        (BPF, 1334).

        Every line asks, with one of a few dozen values, so answers are kept (bounded: the
        value is input)."""
        known = self.types.get(written)
        if known is None:
            num = record_number(written)
            name = written if num is None else record_name(num)
            known = (name, num, self.rules_for(name))
            if len(self.types) >= _CACHED_TYPES:
                self.types.clear()
            self.types[written] = known
        return known

    def new_head(self, prefix: str) -> _Head | None:
        """The `_Head` of what a line holds before ` msg=audit(`, when it is not in `heads`:
        `type=T` or `node=N type=T`, neither holding a space or the ENRICHED separator (else
        None: the grammar decides that line). Kept, bounded as `types`."""
        node: str | None = None
        written = prefix[5:]
        if prefix.startswith("node="):
            node, _, rest = written.partition(" ")
            if "\x1d" in node or not rest.startswith("type="):
                return None
            written = rest[5:]
        elif not prefix.startswith("type="):
            return None
        if not written or " " in written or "\x1d" in written:
            return None
        head = (node, *self.type_of(written))
        if len(self.heads) >= _CACHED_TYPES:
            self.heads.clear()
        self.heads[prefix] = head
        return head

    def new_stamp(self, stamp: str) -> Stamp | None:
        """The `Stamp` of a stamp `_fast_head` found that is not in `stamps`, kept there; None
        when it is not `SEC.MSEC:SERIAL` (the grammar decides that line).

        The records of one event share their stamp and mostly follow each other, so answers
        are kept (bounded: emptied when full, refilled by what follows), and only a stamp
        not seen before is checked."""
        sec, dot, rest = stamp.partition(".")  # not `find`: see _fast_head
        msec, serial = rest[:3], rest[4:]
        if not (dot and rest[3:4] == ":" and stamp.isascii()
                and sec.isdigit() and msec.isdigit() and serial.isdigit()):  # SEC.MSEC:SERIAL, ASCII digits
            return None
        eid = _stamp_of(sec, msec, serial)
        if len(self.stamps) >= _CACHED_STAMPS:
            self.stamps.clear()
        self.stamps[stamp] = eid
        return eid


def _decode_pair(pair: str, decoded: _Decoded, type_name: str, enriched: bool) -> Field:
    """Decode one `key=raw` pair the cache does not hold, keeping it when it is short."""
    key, _, raw = pair.partition("=")
    field = _raw_field(key, raw, type_name, enriched)
    if len(pair) < _SHORT:
        table = decoded.pairs
        if len(table) >= _CACHED_PAIRS:
            table.clear()
        table[pair] = field
    return field


def _hex_bytes(digits: str) -> bytes | None:
    """The bytes of a run of hex digit pairs, or None when `digits` is not one.

    `bytes.fromhex` checks the digits in C at a fifth of a regex's cost (proctitle
    values are long); it also skips whitespace between pairs, which a hex value may not
    hold, hence the length check.
    """
    try:
        decoded = bytes.fromhex(digits)
    except ValueError:
        return None
    return decoded if decoded and 2 * len(decoded) == len(digits) else None


def _interpreted_field(key: str, raw: str) -> Field:
    """An `ausearch -i` value: never quoted; `\\ooo` escapes of control bytes decoded back."""
    if raw in _NULLS:
        return Field(key, raw, raw.encode(), ValueKind.NULL)
    text = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), raw) if "\\" in raw else raw
    return Field(key, raw, text.encode("utf-8", "surrogateescape"), ValueKind.INTERPRETED)


def _text_field(raw: str) -> Field:
    """Free text that is not key=value (`avc:  denied  { read } for`), kept under `_text`."""
    return Field("_text", raw, raw.encode("utf-8", "surrogateescape"), ValueKind.BARE)


# --------------------------------------------------------------------------- header decoding


def _stamp_of(sec: str, frac: str, serial: str) -> Stamp:
    if len(sec) > 12 or len(serial) > 12:  # never int() of a hostile run of digits (quadratic, capped)
        raise ParseError("time stamp or serial has too many digits: corrupted stamp?")
    # Both stamp forms have at least one digit before and after the dot, so the seconds
    # followed by three fraction digits are the milliseconds (one int() instead of two).
    return _checked_id(int(sec + frac[:3].ljust(3, "0")), int(serial))


def _checked_id(msec: int, serial: int) -> Stamp:
    if not 0 <= msec <= _MAX_MSEC:
        raise ParseError("timestamp is not between 1970 and 2106-02-07 (32-bit seconds): corrupted stamp?")
    if serial > _MAX_SERIAL:
        raise ParseError("serial is larger than 32 bits")
    return Stamp(msec, serial)


# --------------------------------------------------------------------------- fast path

# The fast path's header as a pattern, over bytes for `record_head`. `_fast_head` reads the
# same with two `partition`s and two table lookups, at half a match's cost in either build (the
# header is on every line); tests/test_parse.py proves the two equal.
_FAST_HEAD_BYTES = re.compile(rb"(?:node=([^ \x1d]*) )?type=([^ \x1d]+) msg=audit\(([0-9]+\.[0-9]{3}:[0-9]+)\):")


def record_head(line: bytes) -> tuple[bytes, bytes] | None:
    """(type as written, node + ` ` + stamp) of a common raw record line, else None.

    For looking at many lines without parsing them (where `--jobs` may cut a log): the fast
    path's header, which tests/test_parse.py proves equal to the grammar's reading.
    """
    match = _FAST_HEAD_BYTES.match(line)
    return (match[2], (match[1] or b"") + b" " + match[3]) if match is not None else None


_MSG = " msg=audit("


def _fast_head(line: str, caches: _Caches) -> tuple[_Head | None, Stamp | None, str]:
    """(head, stamp, body) of a line that starts `[node=N ]type=T msg=audit(STAMP):`, the body
    being the rest of the line.

    Head or stamp is None where the line has no such header. What comes before ` msg=audit(`
    is the same on every line of one node and record type, so it is looked up whole; neither
    the node nor the type holds a space, so the first ` msg=audit(` is the one after them.
    The stamp then runs to the first `):` (a stamp holds no parenthesis). Cut with
    `partition`, whose one argument costs no argument parsing (`find` parses a tuple of
    arguments on every call, as much work as the search itself here).
    """
    prefix, msg, rest = line.partition(_MSG)
    if not msg:
        return None, None, ""
    head = caches.heads.get(prefix)
    if head is None:
        head = caches.new_head(prefix)
        if head is None:
            return None, None, ""
    stamp, closed, body = rest.partition("):")
    if not closed:
        return head, None, ""
    eid = caches.stamps.get(stamp)
    if eid is None:
        eid = caches.new_stamp(stamp)
    return head, eid, body


# One `key=value` pair of a fast-path body: a bare value, or a quoted one without spaces or
# quotes inside; neither holds a control byte or whitespace (the kernel hex-encodes those),
# so the grammar decides any line where such a byte appears.
_FAST_PAIR = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:\[\d+\])?=(?:\"[^\"\x00-\x20\x7f]*\"|[^\x00-\x20\x7f\"'{}]*)\Z")


# An ENRICHED tail that is one braced value, as auditd writes a SOCKADDR's
# (`SADDR={ saddr_fam=inet laddr=10.0.0.1 lport=443 }`): the grammar's PAIR_BRACE, without
# control bytes; the value is the braces and all they hold, as the grammar reads it.
_FAST_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)=(\{[^{}\x00-\x1f\x7f]*\})\Z")


def _fast_body(body: str, type_name: str, decoded: _Decoded, enriched: bool = False) -> tuple[Field, ...] | None:
    """Fields of a body made only of space-separated ` key=value` pairs with simple values, else None.

    Whole bodies repeat (the same CWD, the PATH items of the same binary, the PROCTITLE of
    a command run again) and are looked up whole. A SYSCALL body never repeats (pid,
    arguments, exit code), but its part from ` auid=` on repeats for every call of the same
    process: that part is looked up whole and the pairs before it one by one. Decoding a
    pair never depends on the pairs around it, so a body cut before a space decodes to the
    fields of its two parts, one after the other (tests/test_parse.py checks the fast path
    against the grammar).
    """
    before, auid, after = body.partition(" auid=")  # one search, no argument parsing (see _fast_head)
    if before and auid:
        head = _fast_pairs(before, type_name, decoded, enriched)
        rest = _fast_body(auid + after, type_name, decoded, enriched)
        return None if head is None or rest is None else head + rest
    bodies = decoded.bodies
    fields = bodies.get(body)
    if fields is None:
        fields = _fast_pairs(body, type_name, decoded, enriched)
        if fields is not None and len(body) <= _LONG_BODY:
            if len(bodies) >= _CACHED_BODIES:
                bodies.clear()
            bodies[body] = fields
    return fields


def _fast_pairs(body: str, type_name: str, decoded: _Decoded, enriched: bool) -> tuple[Field, ...] | None:
    """`_fast_body` pair by pair.

    A pair found in the cache passed `_FAST_PAIR` when it was first seen, so only new pairs
    meet the regex (one regex over every whole body cost more than the rest of this function).
    """
    table = decoded.pairs
    fields: list[Field] = []
    for pair in body.split(" "):
        if not pair:  # a run of spaces, or a leading or trailing one
            continue
        found = table.get(pair)
        if found is None:
            if _FAST_PAIR.match(pair) is None:
                return None
            found = _decode_pair(pair, decoded, type_name, enriched)
        fields.append(found)
    return tuple(fields)


def _fast_parse(line: str, source: SourceLocation, caches: _Caches) -> Record | None:
    """The common raw line, or None when the grammar has to decide."""
    head, eid, rest = _fast_head(line, caches)
    if head is None or eid is None:
        return None
    body, sep, tail = rest.partition("\x1d")
    if body and body[0] != " ":
        return None
    node, type_name, type_num, rules = head
    fields = _fast_body(body, type_name, rules)
    if fields is None:
        return None
    enriched: tuple[Field, ...] = ()
    if sep:
        if "\x1d" in tail or tail[:1] == " ":
            return None
        got = _fast_body(tail, "", caches.enriched, enriched=True)  # no type, as _enriched_fields
        if got is None:
            braced = _FAST_BRACED.match(tail)
            if braced is None:
                return None
            got = (_raw_field(braced[1], braced[2], "", enriched=True),)
        enriched = got
    return Record(type_name, type_num, node, eid, fields, enriched, False, source)


# --------------------------------------------------------------------------- public API


class Parser:
    """Reads audit record lines of any supported text form into `Record`s.

    `tz` is the zone of local times written by `ausearch -i` (None: this machine's zone, read
    when the first line in need of it comes).
    `path` names the input in error messages; set it when the input changes. A parser keeps
    bounded caches of what it decoded (most of a log's pairs and bodies repeat), which make it
    faster and never change what a line parses to: each line is read on its own.
    """

    __slots__ = ("_caches", "_zone", "path")

    def __init__(self, *, tz: _dt.tzinfo | None = None, path: str = "<input>") -> None:
        self._zone = tz
        self.path = path
        self._caches = _Caches()

    def parse(self, line: str | bytes, lineno: int = 0) -> Record | None:
        """The record of one line; None for blank lines, `#` comments and ausearch `----`
        separators (and its `time->` lines); `ParseError` for everything else it cannot read."""
        try:
            text = _as_text(line)
            source = SourceLocation(self.path, lineno)
            if len(text) <= MAX_LINE:  # the common line first; it is never one of the skipped ones
                record = _fast_parse(text, source, self._caches)
                if record is not None:
                    return record
            stripped = text.strip()
            if not stripped or stripped.startswith(_SKIP_PREFIXES):
                return None
            if len(text) > MAX_LINE:
                raise ParseError(f"line is {len(text)} characters long; audit records are at most {MAX_LINE}")
            from . import grammar  # on the first line the fast path declines (see above)

            zone = self._zone
            if zone is None:  # here too: dateutil is a seventh of the start-up, and few logs need it
                from dateutil import tz as _dateutil_tz

                zone = self._zone = _dateutil_tz.tzlocal()
            return grammar.grammar_parse(text, zone, source, self._caches)
        except ParseError as exc:
            exc.located(self.path, lineno)
            raise
        except Exception as exc:
            raise ParseError(f"{_INTERNAL}: {exc!r}", path=self.path, line=lineno) from exc


def _as_text(line: str | bytes) -> str:
    """Bytes -> str losslessly (invalid UTF-8 kept as surrogate escapes); strip the line end."""
    if type(line) is bytes:  # the common case first: what a file opened in binary mode gives
        text = line.decode("utf-8", "surrogateescape")
    elif isinstance(line, (bytes, bytearray, memoryview)):
        text = bytes(line).decode("utf-8", "surrogateescape")
    elif isinstance(line, str):
        text = line
        try:
            text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ParseError("line contains a lone surrogate that is not an escaped byte") from None
    else:
        raise ParseError(f"expected str or bytes, got {type(line).__name__}")
    # Indexing, not `endswith`, which parses a tuple of arguments on every call (every line).
    if text and text[-1] == "\n":
        text = text[:-1]
    if text and text[-1] == "\r":
        text = text[:-1]
    return text


def parse_line(line: str | bytes, *, tz: _dt.tzinfo | None = None) -> Record | None:
    """Parse one line with a throw-away `Parser` (convenience for tests and the REPL)."""
    return Parser(tz=tz).parse(line)
