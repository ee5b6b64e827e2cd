"""The event model and its renderers, checked against real Sysmon for Linux lines.

The schema and the envelope are compared with every line of two real logs (published samples
of Sysmon 1.0-1.3 and our own capture of Sysmon 1.5.2), so a typo in the schema table cannot
be "confirmed" by a test that reads the same table. The escaping rule is checked with an
independent reference implementation over arbitrary text, control characters and bytes that
are not UTF-8.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from strategies import SYSMON_TEXT as TEXT
from strategies import expected_value, original_bytes

from audit2sysmon.errors import ConfigError
from audit2sysmon.sysmon import SCHEMAS, SysmonEvent, format_utc_time, make_event
from audit2sysmon.sysmon.render import FORMATS, formatter
from audit2sysmon.sysmon.render.syslog import SyslogLines, header_host, syslog_header, syslog_line
from audit2sysmon.sysmon.render.xml import byte_escape, escape_text, plain_text, text_value

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "reference" / "sysmon-linux-samples.log"
PAIR_DEV = FIXTURES / "live" / "pair-dev" / "sysmon.log"  # Sysmon 1.5.2 (pugixml writer)
UTC = timezone.utc
TRADITIONAL = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+) sysmon: \Z")
# Zone of the machine that wrote each traditional-format sample (header vs TimeCreated).
SAMPLE_ZONES = {"lsys": timezone(timedelta(hours=-5))}


def _real_lines():
    for path in (SAMPLES, PAIR_DEV):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            header, tag, rest = line.partition("<Event>")
            yield pytest.param(path, line, header, tag + rest, id=f"{path.parent.name}:{number}")


REAL_LINES = list(_real_lines())


def _rebuild(root: etree._Element) -> SysmonEvent:
    """Our event built from the values a real line carries (what a converter would know)."""
    system, event_data = root
    stamp = system.find("TimeCreated").get("SystemTime")
    assert stamp.endswith("000Z")  # Sysmon's 9 digits come from microseconds
    return make_event(
        int(system.findtext("EventID")),
        {d.get("Name"): d.text for d in event_data},
        computer=system.findtext("Computer"),
        record_id=int(system.findtext("EventRecordID")),
        time_created=datetime.strptime(stamp[:-4], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC),
        execution_pid=int(system.find("Execution").get("ProcessID")),
    )


@pytest.mark.parametrize(("path", "line", "header", "xml"), REAL_LINES)
def test_schema_and_envelope_match_real_sysmon(path, line, header, xml):
    real = etree.fromstring(xml.encode("utf-8"))
    ours = etree.fromstring(_rebuild(real).to_xml().encode("utf-8"))
    assert [e.tag for e in ours.iter()] == [e.tag for e in real.iter()]
    system = real[0]
    schema = SCHEMAS[int(system.findtext("EventID"))]
    assert dict(system.find("Provider").attrib) == {
        "Name": "Linux-Sysmon",
        "Guid": "{ff032593-a8d3-4f13-b0d6-01fc615a0f97}",
    }
    constants = [system.findtext(tag) for tag in ("Version", "Level", "Task", "Opcode", "Keywords")]
    assert constants == [str(schema.version), str(schema.level), str(schema.task),
                         str(schema.opcode), schema.keywords]
    assert [d.get("Name") for d in real[1]] == list(schema.fields)
    assert system.findtext("Channel") == "Linux-Sysmon/Operational"
    assert dict(system.find("Security").attrib) == {"UserId": "0"}
    assert len(system.find("Correlation")) == 0 and not system.find("Correlation").attrib


@pytest.mark.parametrize(("path", "line", "header", "xml"), REAL_LINES)
def test_xml_reproduces_real_lines_byte_for_byte(path, line, header, xml):
    ours = _rebuild(etree.fromstring(xml.encode("utf-8"))).to_xml()
    if path == PAIR_DEV:
        # Sysmon 1.5.2's pugixml writes '"' raw; we keep the libxml2-era &quot; (documented).
        ours = ours.replace("&quot;", '"')
    assert ours == xml


# Only lines in rsyslog's traditional format: the RFC 3339 stamps are another writer's header.
TRADITIONAL_LINES = [p for p in REAL_LINES if TRADITIONAL.match(p.values[2]) is not None]


@pytest.mark.parametrize(("path", "line", "header", "xml"), TRADITIONAL_LINES)
def test_syslog_reproduces_real_traditional_lines(path, line, header, xml):
    match = TRADITIONAL.match(header)
    event = _rebuild(etree.fromstring(xml.encode("utf-8")))
    assert event.to_syslog(SAMPLE_ZONES.get(match.group(1), UTC)) == line


def test_the_real_samples_hold_traditional_lines():
    """Guard for the test above: it must have real lines to compare with."""
    assert 9 == len(TRADITIONAL_LINES)


# --- escaping -------------------------------------------------------------------------------

WHEN = datetime(2026, 11, 28, 8, 13, 8, 690469, tzinfo=UTC)


def _event(value: str, computer: str = "vm") -> SysmonEvent:
    return make_event(
        1,
        {"CommandLine": value, "Image": value},
        computer=computer,
        record_id=63,
        time_created=WHEN,
    )


@given(TEXT, TEXT)
def test_every_value_gives_one_well_formed_line_in_every_format(value, computer):
    event = _event(value, computer)
    xml, line, js = event.to_xml(), event.to_syslog(UTC), event.to_json()
    for text in (xml, line, js):
        assert len(text.splitlines()) == 1 and "\n" not in text and "\r" not in text
        text.encode("utf-8")  # strict: no lone surrogate reaches the output
    root = etree.fromstring(xml.encode("utf-8"))
    from_syslog = etree.fromstring(line.partition(" sysmon: ")[2].encode("utf-8"))
    assert from_syslog.findtext(".//Computer") == root.findtext(".//Computer")
    parsed = {d.get("Name"): d.text for d in root[1]}
    assert parsed["CommandLine"] == parsed["Image"] == (expected_value(value) or "-")
    assert (root.findtext(".//Computer") or "") == expected_value(computer)
    loaded = json.loads(js)["Event"]
    assert loaded["EventData"] == parsed
    assert loaded["System"]["Computer"] == expected_value(computer)
    host = TRADITIONAL.match(line[: line.index("<Event>")])
    assert host is not None and host.group(1) == header_host(computer)


@given(st.one_of(TEXT, st.text()))
def test_plain_text_needs_no_escaping(value):
    """The renderers skip escaping an event whose values pass `plain_text` all at once."""
    if plain_text(value):
        assert escape_text(value) == text_value(value) == value
    if value.isascii() and value.isprintable():
        assert plain_text(value) == (escape_text(value) == value)


@given(st.characters(codec=None) | st.integers(0xD800, 0xDFFF).map(chr))
def test_byte_escape_writes_each_byte_the_character_stands_for(char):
    """Every code point, surrogates too: a surrogate escape stands for its original byte, any
    other character for the bytes of its UTF-8 (surrogates encoded as they are)."""
    code = ord(char)
    data = bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else char.encode("utf-8", "surrogatepass")
    assert byte_escape(char) == "".join(f"\\x{b:02x}" for b in data)


@given(TEXT.filter(lambda t: t and "\\" not in t))
def test_escaped_values_give_back_the_original_bytes(value):
    root = etree.fromstring(_event(value).to_xml().encode("utf-8"))
    parsed = root.findtext(".//Data[@Name='Image']")
    pieces = re.split(r"\\x([0-9a-f]{2})", parsed)
    decoded = b"".join(
        bytes([int(p, 16)]) if i % 2 else p.encode("utf-8") for i, p in enumerate(pieces)
    )
    assert decoded == original_bytes(value)


@pytest.mark.parametrize(
    ("value", "xml_text"),
    [
        ("<unknown process>", "&lt;unknown process&gt;"),  # as in the real samples
        ('a -F a2&0100 say "hi"', "a -F a2&amp;0100 say &quot;hi&quot;"),
        ("tab\there\nnl\rcr", "tab&#9;here&#10;nl&#13;cr"),
        ("esc\x1b[0m nul\x00", "esc\\x1b[0m nul\\x00"),
        ("latin1 caf\udce9", "latin1 caf\\xe9"),
        ("del\x7f c1\x80 it's", "del\x7f c1\x80 it's"),  # legal XML: raw, as Sysmon
        ("ls\u2028ps\u2029nel\x85", "ls&#8232;ps&#8233;nel&#133;"),
        ("nonchar\ufffe lone\ud800", "nonchar\\xef\\xbf\\xbe lone\\xed\\xa0\\x80"),
    ],
)
def test_escaping_examples(value, xml_text):
    assert f'<Data Name="CommandLine">{xml_text}</Data>' in _event(value).to_xml()


def test_json_shape_is_evtx_dump_layout():
    event = _event("x")
    loaded = json.loads(event.to_json())
    system = loaded["Event"]["System"]
    assert list(system) == [
        "Provider", "EventID", "Version", "Level", "Task", "Opcode", "Keywords", "TimeCreated",
        "EventRecordID", "Correlation", "Execution", "Channel", "Computer", "Security",
    ]
    assert system["EventID"] == 1 and system["Version"] == 5 and system["EventRecordID"] == 63
    assert system["Keywords"] == "0x8000000000000000" and system["Correlation"] is None
    stamp = "2026-11-28T08:13:08.690469000Z"
    assert system["TimeCreated"] == {"#attributes": {"SystemTime": stamp}}
    assert system["Execution"] == {"#attributes": {"ProcessID": 0, "ThreadID": 0}}
    assert list(loaded["Event"]["EventData"]) == list(SCHEMAS[1].fields)


def test_json_escapes_line_separators():
    text = _event("a\u2028b\x85").to_json()
    assert "\u2028" not in text and "\\u2028" in text and "\\u0085" in text
    assert json.loads(text)["Event"]["EventData"]["Image"] == "a\u2028b\x85"


# --- syslog header --------------------------------------------------------------------------

@pytest.fixture
def chicago_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_syslog_header_uses_the_machine_zone_by_default(chicago_local_zone):
    # Sample 2: TimeCreated 2021-10-16T00:41:20Z was stamped `Oct 15 19:41:20` by rsyslog.
    moment = datetime(2021, 10, 16, 0, 41, 20, 13924, tzinfo=UTC)
    assert syslog_header(moment, "lsys") == "Oct 15 19:41:20 lsys sysmon: "


@pytest.mark.parametrize(
    ("moment", "tz", "header"),
    [
        (datetime(2021, 3, 5, 23, 59, 59, 999999, tzinfo=UTC), ZoneInfo("Europe/Berlin"),
         "Mar  6 00:59:59 h sysmon: "),
        (datetime(2021, 7, 5, 23, 0, tzinfo=UTC), ZoneInfo("Europe/Berlin"),
         "Jul  6 01:00:00 h sysmon: "),  # summer time
        (datetime(2022, 1, 1, 3, 4, 5, tzinfo=UTC), ZoneInfo("America/Chicago"),
         "Dec 31 21:04:05 h sysmon: "),
        (datetime(2022, 12, 24, 3, 4, 5, tzinfo=UTC), UTC, "Dec 24 03:04:05 h sysmon: "),
    ],
)
def test_syslog_header_day_padding_and_zones(moment, tz, header):
    assert syslog_header(moment, "h", tz) == header


@given(st.lists(st.tuples(st.integers(0, 2500), st.sampled_from(["vm", "web01", "a b"])), max_size=30))
def test_syslog_lines_remember_headers_without_changing_them(steps):
    """A stream's formatter gives each event the line `syslog_line` gives it alone."""
    lines, moment = SyslogLines(ZoneInfo("Europe/Berlin")), WHEN
    for step, host in steps:
        moment += timedelta(milliseconds=step)
        event = make_event(5, {"ProcessId": 1}, computer=host, record_id=1, time_created=moment)
        assert lines(event) == syslog_line(event, ZoneInfo("Europe/Berlin"))


def test_syslog_lines_notice_a_new_local_zone(chicago_local_zone, monkeypatch):
    lines = SyslogLines()
    event = make_event(5, {}, computer="h", record_id=1, time_created=datetime(2022, 1, 1, 3, 4, 5, tzinfo=UTC))
    assert lines(event).startswith("Dec 31 21:04:05 h sysmon: ")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    assert lines(event).startswith("Jan  1 12:04:05 h sysmon: ")


def test_syslog_header_host_is_one_token():
    assert header_host("ip-172-31-60-25") == "ip-172-31-60-25"
    assert header_host("my host\tx") == "my\\x20host\\x09x"
    assert header_host("") == "-"


# --- model ----------------------------------------------------------------------------------

def test_make_event_orders_fields_and_fills_dashes():
    event = make_event(
        5,
        {"User": "root", "ProcessId": 3040, "Image": "", "UtcTime": "2021-10-24 17:05:38.423"},
        computer="vm", record_id=4, time_created=WHEN,
    )
    assert event.fields == (
        ("RuleName", "-"), ("UtcTime", "2021-10-24 17:05:38.423"), ("ProcessGuid", "-"),
        ("ProcessId", "3040"), ("Image", "-"), ("User", "root"),
    )
    assert event.get("User") == "root" and event.get("CommandLine") is None


def test_make_event_rejects_unknown_fields_ids_and_values():
    with pytest.raises(ValueError, match="CommandLine"):
        make_event(5, {"CommandLine": "x"}, computer="vm", record_id=0, time_created=WHEN)
    with pytest.raises(ValueError, match="EventID 2"):
        make_event(2, {}, computer="vm", record_id=0, time_created=WHEN)
    with pytest.raises(TypeError, match="ProcessId"):
        make_event(5, {"ProcessId": 1.5}, computer="vm", record_id=0, time_created=WHEN)
    with pytest.raises(ValueError, match="aware"):
        make_event(5, {}, computer="vm", record_id=0, time_created=datetime(2021, 1, 1))


def test_event_refuses_fields_out_of_schema_order():
    good = make_event(5, {}, computer="vm", record_id=0, time_created=WHEN)
    with pytest.raises(ValueError, match="fields"):
        SysmonEvent(5, tuple(reversed(good.fields)), "vm", 0, WHEN)
    with pytest.raises(ValueError, match="fields"):  # in order, but one short
        SysmonEvent(5, good.fields[:-1], "vm", 0, WHEN)
    with pytest.raises(ValueError, match="UTC"):
        SysmonEvent(5, good.fields, "vm", 0, WHEN.astimezone(ZoneInfo("Europe/Berlin")))


def test_make_event_stores_time_created_in_utc():
    berlin = datetime(2021, 10, 24, 19, 5, 38, 412320, tzinfo=ZoneInfo("Europe/Berlin"))
    event = make_event(16, {}, computer="vm", record_id=0, time_created=berlin)
    assert '<TimeCreated SystemTime="2021-10-24T17:05:38.412320000Z"/>' in event.to_xml()


def test_format_utc_time():
    # The worked example of Sysmon's GUID layout: secs 1635279071 is UtcTime 2021-10-26 20:11:11.159.
    assert format_utc_time(1635279071159) == "2021-10-26 20:11:11.159"
    # Sample 1's UtcTime; milliseconds are truncated, never rounded.
    assert format_utc_time(datetime(2022, 11, 13, 19, 44, 6, 867999, tzinfo=UTC)) == \
        "2022-11-13 19:44:06.867"
    plus_one = timezone(timedelta(hours=1))
    assert format_utc_time(datetime(2022, 11, 13, 20, 44, 6, 5000, tzinfo=plus_one)) == \
        "2022-11-13 19:44:06.005"
    with pytest.raises(ValueError):
        format_utc_time(datetime(2022, 11, 13))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MOMENTS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999))


@given(_MOMENTS)
def test_utc_time_and_system_time_agree_with_strftime(moment: datetime) -> None:
    """The remembered seconds, the milliseconds table and `isoformat`'s slice write what
    `strftime` writes, from milliseconds and from datetimes, over years 1 to 9999."""
    aware = moment.replace(tzinfo=UTC)
    msec = (aware - _EPOCH) // timedelta(milliseconds=1)
    # (%Y is not zero-padded below the year 1000 on every libc: the year apart.)
    expected = f"{aware.year:04d}-{aware:%m-%d %H:%M:%S}.{aware.microsecond // 1000:03d}"
    assert format_utc_time(msec) == format_utc_time(aware) == expected
    event = make_event(5, {}, computer="vm", record_id=0, time_created=aware)
    system = f"{aware.year:04d}-{aware:%m-%dT%H:%M:%S}.{aware.microsecond:06d}000Z"
    assert f'<TimeCreated SystemTime="{system}"/>' in event.to_xml()
    assert json.loads(event.to_json())["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"] == system


@given(st.integers(0, 0xFFFFFFFF * 1000 + 999))
def test_utc_time_of_milliseconds_is_that_of_the_moment(msec):
    """Every stamp the parser accepts (32-bit seconds) gives the text of its datetime."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=msec)
    assert format_utc_time(msec) == format_utc_time(moment) == moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{msec % 1000:03d}"


def test_formatter_names():
    event = _event("x")
    assert FORMATS == ("syslog", "xml", "json")
    assert formatter("xml")(event) == event.to_xml()
    assert formatter("json")(event) == event.to_json()
    assert formatter("syslog", tz=UTC)(event) == event.to_syslog(UTC)
    with pytest.raises(ConfigError, match="csv"):
        formatter("csv")
