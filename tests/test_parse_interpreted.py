"""`ausearch -i` text parses into the same records as the raw log it was printed from.

The interpreted files were written by ausearch 3.0.9 under three locales and zones
(tests/fixtures/README.md); the raw `audit.log` next to them is the ground truth.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from audit2sysmon.audit import syscalls
from audit2sysmon.audit.parse import Parser, parse_line
from audit2sysmon.audit.records import Record, ValueKind
from audit2sysmon.errors import ParseError

LIVE = Path(__file__).parent / "fixtures" / "live"
CASES = [
    (folder, locale, zone)
    for folder in ("dev-raw", "dev-enriched")
    for locale, zone in (("C", "UTC"), ("de_DE", "Europe/Berlin"), ("en_US", "America/Chicago"))
]
_ARG = re.compile(r"a(\d+)(?:\[(\d+)\])?\Z")


def _records(path: Path, zone: str) -> list[Record]:
    parser = Parser(tz=ZoneInfo(zone), path=str(path))
    out = []
    for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
        record = parser.parse(line, lineno)
        if record is not None:
            out.append(record)
    return out


def _by_event(records: list[Record]) -> dict[int, list[Record]]:
    events: dict[int, list[Record]] = collections.defaultdict(list)
    for r in records:
        events[r.stamp.serial].append(r)
    return events


def _argv(records: list[Record]) -> dict[int, bytes]:
    """argv of one event from its EXECVE records in any order: whole args and indexed chunks."""
    whole: dict[int, bytes] = {}
    chunks: dict[int, dict[int, bytes]] = collections.defaultdict(dict)
    for r in records:
        if r.type_name != "EXECVE":
            continue
        for f in r.fields:
            m = _ARG.match(f.key)
            if m and m.group(2) is None:
                whole[int(m.group(1))] = f.value
            elif m:
                chunks[int(m.group(1))][int(m.group(2))] = f.value
    for n, parts in chunks.items():
        whole[n] = b"".join(parts[i] for i in sorted(parts))
    return whole


def _one(records: list[Record], type_name: str, key: str) -> bytes | None:
    values = _all(records, type_name, key)
    return values[0] if values else None


def _all(records: list[Record], type_name: str, key: str) -> list[bytes | None]:
    """Values of `key` in all records of a type, sorted: ausearch prints records in reverse order."""
    return sorted((r.value(key) for r in records if r.type_name == type_name), key=lambda v: v or b"")


@pytest.mark.parametrize(("folder", "locale", "zone"), CASES)
def test_interpreted_text_matches_raw_log(folder: str, locale: str, zone: str) -> None:
    raw = _records(LIVE / folder / "audit.log", "UTC")
    text = _records(LIVE / folder / f"interpreted-{locale}-{zone.replace('/', '_')}.txt", zone)
    assert all(r.interpreted for r in text) and not any(r.interpreted for r in raw)

    def ids(records):
        return collections.Counter((r.node, r.type_num, r.stamp) for r in records)

    assert ids(text) == ids(raw)  # types, serials and UTC milliseconds, record for record
    raw_events, text_events = _by_event(raw), _by_event(text)
    checked = collections.Counter()
    for serial, raw_recs in raw_events.items():
        text_recs = text_events[serial]
        assert _argv(text_recs) == _argv(raw_recs), serial
        for type_name, key in (("CWD", "cwd"), ("SYSCALL", "exe"), ("SYSCALL", "comm"), ("PATH", "name")):
            assert _all(text_recs, type_name, key) == _all(raw_recs, type_name, key), (serial, key)
        proctitle = _one(raw_recs, "PROCTITLE", "proctitle")
        if proctitle is not None:  # ausearch shows the NUL between arguments as a space
            assert _one(text_recs, "PROCTITLE", "proctitle") == proctitle.replace(b"\0", b" ")
        syscall = next((r for r in raw_recs if r.type_name == "SYSCALL"), None)
        if syscall is not None:
            name = syscalls.syscall_name(syscall.text("arch"), syscall.text("syscall"))
            if name is not None:
                assert _one(text_recs, "SYSCALL", "syscall") == name.encode()
                checked["syscall"] += 1
        checked["argv"] += bool(_argv(raw_recs))
    assert checked["argv"] >= 20 and checked["syscall"] >= 20


def test_interpreted_values_with_spaces_escapes_and_chunks() -> None:
    text = _records(LIVE / "dev-raw" / "interpreted-C-UTC.txt", "UTC")
    execve = {r.stamp.serial: r for r in text if r.type_name == "EXECVE" and r.get("argc")}
    assert execve[2372].text("a2") == "a b c" and execve[2372].text("a3") == 'say "hi"'
    assert execve[2378].value("a2") == b"cr\rhere" and execve[2378].value("a3") == b"del\x7fhere"
    assert execve[2300].text("a8") == "exec" and execve[2309].text("a8") == "key=exit"
    syscall = next(r for r in text if r.type_name == "SYSCALL" and r.text("success") == "no")
    assert syscall.text("exit") == "ENOENT(No such file or directory)"
    assert syscall.get("tty").kind is ValueKind.NULL and syscall.get("uid").kind is ValueKind.INTERPRETED


def test_handmade_interpreted_forms() -> None:
    cwd = parse_line("node=n type=CWD msg=audit(10/26/21 12:51:14.046:7) : cwd=/srv/my dir  ", tz=dt.timezone.utc)
    assert cwd.text("cwd") == "/srv/my dir " and cwd.node == "n"
    sc = parse_line(
        "type=SYSCALL msg=audit(10/26/21 12:51:14.046:7) : arch=x86_64 syscall=execve comm=my prog "
        "exe=/usr/bin/my prog pid=3 key=exec key=64bit ",
        tz=dt.timezone.utc,
    )
    assert sc.text("comm") == "my prog" and sc.text("exe") == "/usr/bin/my prog pid=3"
    assert [f.text for f in sc.fields if f.key == "key"] == ["exec", "64bit"]
    ex = parse_line("type=EXECVE msg=audit(10/26/21 12:51:14.046:7) : argc=2 a0=x a2=y a1=a1=z ", tz=dt.timezone.utc)
    assert [(f.key, f.text) for f in ex.fields] == [("argc", "2"), ("a0", "x a2=y"), ("a1", "a1=z")]
    user = parse_line(
        "type=USER_ACCT msg=audit(10/26/21 12:51:14.046:8) : pid=1 uid=root msg='op=PAM:accounting "
        "acct=carlos exe=/usr/bin/sudo hostname=? res=success' ",
        tz=dt.timezone.utc,
    )
    assert user.text("acct") == "carlos" and user.text("exe") == "/usr/bin/sudo" and user.value("hostname") is None
    eoe = parse_line("type=EOE msg=audit(10/26/21 12:51:14.046:9) : ", tz=dt.timezone.utc)
    assert eoe.fields == () and eoe.type_num == 1320


def _utc_ms(*parts: int) -> int:
    return int(dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()) * 1000


@pytest.mark.parametrize(
    ("stamp", "zone", "utc"),
    [
        ("10/26/21 12:51:14.046", "UTC", (2021, 10, 26, 12, 51, 14)),
        ("10/26/2021 07:51:14.046", "America/Chicago", (2021, 10, 26, 12, 51, 14)),  # CDT, -5
        ("11/28/2021 06:51:14.046", "America/Chicago", (2021, 11, 28, 12, 51, 14)),  # CST, -6
        ("26.07.2021 12:51:14.046", "Europe/Berlin", (2021, 7, 26, 10, 51, 14)),  # CEST, +2
        ("26.01.2021 12:51:14.046", "Europe/Berlin", (2021, 1, 26, 11, 51, 14)),  # CET, +1
        ("31.10.2021 02:30:00.046", "Europe/Berlin", (2021, 10, 31, 0, 30, 0)),  # repeated hour: first
        ("2021-10-26 12:51:14.046", "UTC", (2021, 10, 26, 12, 51, 14)),
        ("26-Oct-2021 12:51:14.046", "UTC", (2021, 10, 26, 12, 51, 14)),  # dateutil fallback
    ],
)
def test_local_dates_and_daylight_saving(stamp: str, zone: str, utc: tuple[int, ...]) -> None:
    r = parse_line(f"type=CWD msg=audit({stamp}:5) : cwd=/", tz=ZoneInfo(zone))
    assert r.stamp.msec == _utc_ms(*utc) + 46 and r.stamp.serial == 5


def test_bad_local_date_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="local date"):
        parse_line("type=CWD msg=audit(13/45/21 12:51:14.046:5) : cwd=/", tz=dt.timezone.utc)
