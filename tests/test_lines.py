"""Reading Sysmon lines back (`sysmon.lines.read_line`): our own output in every format, real
Sysmon for Linux lines as syslog daemons wrote them, and refusals that say why.

Round trips compare with the event that was rendered; real lines are compared with what an
independent regular-expression reader finds in them, so neither side is the code under test.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cli_setup import API, LIVE
from hypothesis import given
from strategies import SYSMON_TEXT, expected_value

from audit2sysmon import Converter, convert
from audit2sysmon.errors import ParseError
from audit2sysmon.sysmon import SCHEMAS, SysmonEvent, SysmonLine, make_event, read_line
from audit2sysmon.sysmon.render.syslog import header_host

FIXTURES = Path(__file__).parent / "fixtures"
REAL = [FIXTURES / "reference" / "sysmon-linux-samples.log", *sorted(LIVE.glob("pair-*/sysmon.log"))]
UTC = timezone.utc
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _fixture_events() -> list[SysmonEvent]:
    """Sysmon's own events and every kind the converter writes, from real captures (of the
    busy capture only its few NetworkConnects, which the small ones lack)."""
    conv = Converter(**API, execution_pid=4242)
    events = conv.started()
    for name in ("pair-events-dev", "dev-raw"):
        for batch in conv.feed_input((LIVE / name / "audit.log").read_bytes().splitlines(), name):
            events += batch
    busy = convert((LIVE / "busy-raw" / "audit.log").read_bytes().splitlines(), **API)
    return events + conv.flush() + conv.stopped() + [event for event in busy if event.event_id == 3]


FIXTURE_EVENTS = _fixture_events()


def assert_read_back(line: SysmonLine, event: SysmonEvent) -> None:
    """Every value of `event` as written: EventData as text_value gives it in every format."""
    schema = event.schema
    assert (line.event_id, line.record_id, line.process_id, line.thread_id) == (
        event.event_id, event.record_id, event.execution_pid, event.execution_pid)
    assert line.data == tuple((name, expected_value(value)) for name, value in event.fields)
    assert line.computer == expected_value(event.computer)
    assert line.time_created == event.time_created
    assert (line.version, line.level, line.task, line.opcode, line.keywords) == (
        schema.version, schema.level, schema.task, schema.opcode, schema.keywords)
    assert (line.provider, line.provider_guid, line.channel, line.user_id) == (
        "Linux-Sysmon", "{ff032593-a8d3-4f13-b0d6-01fc615a0f97}", "Linux-Sysmon/Operational", "0")


def traditional_stamp(moment: datetime) -> str:
    t = moment.astimezone(UTC)
    return f"{MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def test_the_fixture_conversion_holds_every_kind_of_event():
    assert {1, 3, 4, 5, 10, 11, 16, 23} <= {event.event_id for event in FIXTURE_EVENTS}


@pytest.mark.parametrize("event", FIXTURE_EVENTS, ids=lambda e: f"{e.event_id}-{e.record_id}")
def test_every_format_reads_back_to_the_event(event):
    syslog = read_line(event.to_syslog(UTC))
    assert_read_back(syslog, event)
    assert (syslog.stamp, syslog.host, syslog.tag, syslog.priority) == (
        traditional_stamp(event.time_created), event.computer, "sysmon", None)
    for text in (event.to_xml(), event.to_json(), event.to_xml() + "\n", event.to_json() + "\r\n"):
        bare = read_line(text)
        assert_read_back(bare, event)
        assert (bare.stamp, bare.host, bare.tag, bare.priority) == (None, None, None, None)


def _event(value: str, computer: str) -> SysmonEvent:
    return make_event(1, {"CommandLine": value, "Image": value, "User": value}, computer=computer, record_id=7,
                      time_created=datetime(2026, 12, 2, 8, 4, 35, 204290, tzinfo=UTC), execution_pid=1)


@given(SYSMON_TEXT, SYSMON_TEXT)
def test_any_value_reads_back_as_every_format_carries_it(value, computer):
    """Control characters, undecodable bytes (surrogate escapes), XML metacharacters: each
    comes back as `\\xNN` or itself, as all our formats carry it. rsyslog's escapes are read
    only when asked for, since a value may hold a literal `#011`."""
    event = _event(value, computer)
    syslog = read_line(event.to_syslog(UTC), rsyslog_escapes=False)
    assert_read_back(syslog, event)
    assert syslog.host == header_host(computer)
    assert_read_back(read_line(event.to_xml(), rsyslog_escapes=False), event)
    assert_read_back(read_line(event.to_json()), event)
    if not re.search("#0[0-3][0-7]", value + computer):
        assert_read_back(read_line(event.to_syslog(UTC)), event)


def test_a_value_read_from_a_file_with_undecodable_bytes(tmp_path):
    path = tmp_path / "sysmon.log"
    event = _event("caf\udce9 \udcff", "vm")
    path.write_bytes(event.to_syslog(UTC).encode("utf-8") + b"\n")
    [text] = path.read_text("utf-8", "surrogateescape").splitlines()
    assert read_line(text).get("CommandLine") == "caf\\xe9 \\xff"
    # A line as Sysmon before 1.5.2 writes such bytes: raw, not escaped.
    raw = event.to_xml().replace("caf\\xe9 \\xff", "caf\udce9 \udcff")
    assert read_line(raw).get("CommandLine") == "caf\\xe9 \\xff"


# -- real Sysmon for Linux lines ----------------------------------------------------------------

REAL_HEADER = re.compile(r"(?P<stamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d) "
                         r"(?P<host>\S+) (?P<tag>sysmon): <Event>")


def rsyslog_unescaped(text: str) -> str:
    """What rsyslog received: it writes a control character as `#` and 3 octal digits."""
    return re.sub("#([0-3][0-7][0-7])", lambda m: chr(int(m.group(1), 8)) if int(m.group(1), 8) < 32 else m.group(), text)


def _real_lines():
    for path in REAL:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            yield pytest.param(line, id=f"{path.parent.name}:{number}")


@pytest.mark.parametrize("text", list(_real_lines()))
def test_real_sysmon_lines_read_as_a_regular_expression_reads_them(text):
    line = read_line(text)
    header = REAL_HEADER.match(text)
    assert (line.stamp, line.host, line.tag) == (header["stamp"], header["host"], header["tag"])

    def element(name: str) -> str:
        return re.search(f"<{name}>([^<]*)</{name}>", text).group(1)

    assert line.event_id == int(element("EventID")) and line.record_id == int(element("EventRecordID"))
    assert line.computer == element("Computer") and line.keywords == element("Keywords")
    assert line.system_time == re.search(r'SystemTime="([^"]+)"', text).group(1)
    assert line.process_id == int(re.search(r'ProcessID="(\d+)"', text).group(1))
    assert line.data == tuple((name, expected_value(html.unescape(rsyslog_unescaped(value))))
                              for name, value in re.findall(r'<Data Name="(\w+)">([^<]*)</Data>', text))
    assert [name for name, _ in line.data] == list(SCHEMAS[line.event_id].fields)


def test_a_real_line_s_values():
    first = read_line((FIXTURES / "reference" / "sysmon-linux-samples.log").read_text("utf-8").splitlines()[0])
    assert (first.stamp, first.host, first.event_id, first.record_id, first.process_id) == (
        "Nov 18 14:33:22", "hellosplunk-VirtualBox", 1, 421210, 21004)
    assert first.time_created == datetime(2022, 11, 18, 14, 33, 22, 281954, tzinfo=UTC)
    assert first.get("CommandLine") == "useradd test-auditd-user" and first.get("Nope") is None
    # Sysmon 1.5.2 wrote a CR raw, and rsyslog escaped it.
    escaped = next(line for line in (LIVE / "pair-dev" / "sysmon.log").read_text("utf-8").splitlines()
                   if "cr#015here" in line)
    assert read_line(escaped).get("CommandLine") == "/usr/bin/printf %s cr\rhere del\x7fhere"


XML = _event("x", "vm").to_xml()


def _command_line(text: str) -> str:
    return XML.replace('<Data Name="CommandLine">x</Data>', f'<Data Name="CommandLine">{text}</Data>')


@pytest.mark.parametrize(
    ("prefix", "stamp", "host", "tag", "priority"),
    [
        ("Dec  2 08:04:35 vm sysmon: ", "Dec  2 08:04:35", "vm", "sysmon", None),  # rsyslog traditional
        ("Dec 02 08:04:35 vm sysmon: ", "Dec 02 08:04:35", "vm", "sysmon", None),  # journalctl -o short
        ("2026-12-02T08:04:35.204290+00:00 vm sysmon: ", "2026-12-02T08:04:35.204290+00:00", "vm", "sysmon", None),
        ("2026-12-02T08:04:35Z web01.example.org sysmon[812]: ", "2026-12-02T08:04:35Z", "web01.example.org",
         "sysmon[812]", None),
        ("<14>Dec  2 08:04:35 sysmon: ", "Dec  2 08:04:35", None, "sysmon", 14),  # the datagram to /dev/log
        ("Dec  2 08:04:35 sysmon: sysmon: ", "Dec  2 08:04:35", "sysmon:", "sysmon", None),  # odd host name
    ],
)
def test_syslog_headers(prefix, stamp, host, tag, priority):
    line = read_line(prefix + XML)
    assert (line.stamp, line.host, line.tag, line.priority) == (stamp, host, tag, priority)
    assert line.get("CommandLine") == "x"


@pytest.mark.parametrize(
    ("written", "value"),
    [
        # Sysmon < 1.5.2 writes TAB and LF raw; rsyslog escapes them (and every control character).
        ("a#011b#012c", "a\tb\nc"),
        ("esc#033[0m del\x7f", "esc\\x1b[0m del\x7f"),  # DEL is not escaped by rsyslog
        ("cr#015", "cr\r"),  # a CR survives as a CR (a raw one would become LF in XML)
        ("#0 #038 #040 ##011", "#0 #038 #040 #\t"),  # not an escape: 0o38 and 0o40 are no control characters
        # Sysmon 1.5.2 (pugixml): two-digit references, illegal in XML 1.0.
        ("a&#01;b&#27;c&#x1F;d&#9;e&#65;", "a\\x01b\\x1bc\\x1fd\te" + "A"),
        ("raw\x01ctl", "raw\\x01ctl"),  # a daemon that does not escape
    ],
)
def test_control_characters_as_daemons_and_sysmon_versions_write_them(written, value):
    assert read_line("Dec  2 08:04:35 vm sysmon: " + _command_line(written)).get("CommandLine") == value


def test_rsyslog_escapes_may_be_left_as_they_are():
    text = "Dec  2 08:04:35 vm sysmon: " + _command_line("printf #011")
    assert read_line(text, rsyslog_escapes=False).get("CommandLine") == "printf #011"
    assert read_line(text).get("CommandLine") == "printf \t"


# -- what is not a Sysmon line ---------------------------------------------------------------------


def _replace(old: str, new: str) -> str:
    assert old in XML
    return XML.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a Sysmon line: expected <Event> or a JSON object, found nothing"),
        ("Dec  2 08:04:35 vm kernel: audit: type=1300", "after the syslog header expected <Event>, found 'audit: type=1300'"),
        ("Dec  2 08:04:35 vm sysmon: Running...", "after the syslog header expected <Event>"),
        ("<?xml version='1.0'?>" + XML, "expected <Event>"),
        ('<!DOCTYPE Event [<!ENTITY a "b">]>' + XML, "expected <Event>"),  # no prolog, no DTD
        ("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>", "expected <Event>"),
        (XML[: len(XML) // 2], "not well-formed XML"),  # cut, as by a syslog daemon's message size limit
        (_replace("<Data Name=\"Image\">x", "<Data Name=\"Image\">&xxe;"), "not well-formed XML: Entity 'xxe' not defined"),
        (XML + "</Event>", "not well-formed XML: Extra content"),
        (_replace("<EventData>", "<EventData><!-- c -->"), "EventData holds a comment"),
        (_replace("<Data Name=\"Image\">x</Data>", "<Data Name=\"Image\">x<b/></Data>"), "EventData holds <Data>"),
        (_replace("<Data Name=\"Image\">", "<Data>"), "EventData holds <Data>"),
        (_replace("<Data Name=\"Image\">", "<Data Name=\"Image\" Type=\"x\">"), "EventData holds <Data>"),
        (_replace("<Data Name=\"Image\">x</Data>", "<Image>x</Image>"), "EventData holds <Image>"),
        (_replace("<Correlation/>", ""), "<System> holds Provider, EventID"),
        (re.sub("<EventData>.*</EventData>", "", XML), "<Event> holds System, not Sysmon's System, EventData"),
        (_replace("<EventID>1</EventID>", "<EventID>one</EventID>"), "<EventID> is 'one', not a decimal number"),
        (_replace("<EventID>1</EventID>", "<EventID>١</EventID>"), "not a decimal number"),  # Arabic-Indic one
        (_replace('ProcessID="1"', 'ProcessID="-1"'), "<Execution ProcessID> is '-1'"),
        (_replace('ThreadID="1"', ""), "<Execution> has no ThreadID attribute"),
        (_replace('SystemTime="2026-12-02T08:04:35.204290000Z"', 'SystemTime="yesterday"'), "SystemTime 'yesterday'"),
        ("{", "not valid JSON"),
        ("{}", "the JSON object has no 'Event'"),
        ('{"Event": []}', "'Event' is list, not an object"),
    ],
)
def test_what_is_refused_and_why(text, reason):
    with pytest.raises(ParseError) as refused:
        read_line(text)
    assert reason in refused.value.reason
    assert str(refused.value.located("sysmon.log", 3)).startswith("sysmon.log:3: ")


JSON = _event("x", "vm").to_json()


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('"EventID":1,', '"EventID":true,', "'EventID' is True, not a number >= 0"),
        ('"EventRecordID":7,', '"EventRecordID":"7",', "'EventRecordID' is '7'"),
        ('"Computer":"vm",', '"Computer":null,', "'Computer' is NoneType, not a string"),
        ('"CommandLine":"x"', '"CommandLine":1', "EventData value 'CommandLine' is int"),
        ('"Execution":{"#attributes":{"ProcessID":1,"ThreadID":1}}', '"Execution":{}', "no '#attributes'"),
    ],
)
def test_json_lines_that_are_not_our_layout(old, new, reason):
    assert old in JSON
    with pytest.raises(ParseError, match=re.escape(reason)):
        read_line(JSON.replace(old, new, 1))


def test_a_conversion_s_output_reads_back_line_by_line(tmp_path):
    """What a user does with the output file: every line read back, in order."""
    lines = (LIVE / "busy-raw" / "audit.log").read_bytes().splitlines()
    events = list(convert(lines, **API))
    path = tmp_path / "out.log"
    path.write_text("".join(e.to_syslog(UTC) + "\n" for e in events), "utf-8")
    read = [read_line(text) for text in path.read_text("utf-8").splitlines(keepends=True)]
    assert [(r.event_id, r.record_id, r.data) for r in read] == [
        (e.event_id, e.record_id, tuple((n, expected_value(v)) for n, v in e.fields)) for e in events]
