"""table.py (typed rows) and hostset.py (one host's inputs) on their own, without Spark."""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timezone

from cli_setup import API, DEV, PASSWD, UTC
from hypothesis import given
from hypothesis import strategies as st

from audit2sysmon import Options, convert
from audit2sysmon.hostset import REPORT_LIMIT, HostConversion
from audit2sysmon.inputs import is_audit_log, open_stream
from audit2sysmon.sysmon.render import formatter
from audit2sysmon.sysmon.table import COLUMNS, event_row, parse_utc_time, typed


def test_rows_of_real_events_hold_their_fields():
    """Every field of every event of a real capture lands in its column, typed by Sysmon's
    rules read independently here: numbers in decimal, `-` as null."""
    with open(DEV, "rb") as log:
        events = list(convert(log, **API))
    names = [column.name for column in COLUMNS]
    assert len({e.event_id for e in events}) >= 4
    for event in events:
        row = dict(zip(names, event_row(event, "h", "LINE"), strict=True))
        assert (row["host"], row["line"], row["EventID"], row["EventRecordID"]) == ("h", "LINE", event.event_id, event.record_id)
        assert row["TimeCreated"] == event.time_created and row["date"] == event.time_created.date()
        for name, text in event.fields:
            value = row[name]
            if name in ("ProcessId", "ParentProcessId", "TerminalSessionId", "LogonId", "SourcePort", "DestinationPort"):
                assert value == (None if text == "-" else int(text))
            elif name in ("Initiated", "SourceIsIpv6", "DestinationIsIpv6", "IsExecutable"):
                assert value == {"true": True, "false": False, "-": None}[text]
            elif name in ("UtcTime", "CreationUtcTime"):
                assert value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] == text and value.tzinfo is timezone.utc
            else:
                assert value == text
        absent = set(names) - {n for n, _ in event.fields} - {"host", "date", "EventID", "EventRecordID", "TimeCreated", "Computer", "line"}
        assert all(row[name] is None for name in absent)


def test_typed_values_out_of_kind_or_range_are_null():
    assert typed("ProcessId", "4294967295") == 4294967295
    assert typed("ProcessId", "4294967296") is None
    assert typed("SourcePort", "65536") is None
    assert typed("GrantedAccess", "0x1fffff") == 0x1FFFFF
    assert typed("GrantedAccess", "0x") is None
    assert typed("LogonId", "٣") is None  # a digit to str.isdigit, not to Sysmon
    assert typed("Initiated", "yes") is None
    assert typed("UtcTime", "2026-02-30 00:00:00.000") is None
    assert typed("Image", "/bin/\udcffx") == "/bin/\\xffx"  # a byte that was not UTF-8


@given(st.text())
def test_typed_never_raises(text):
    for name in ("ProcessId", "SourcePort", "LogonId", "GrantedAccess", "Initiated", "UtcTime", "Image"):
        typed(name, text)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_utc_time_text_round_trips(moment):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    assert parse_utc_time(text) == moment


def test_audit_log_names_are_the_commands():
    assert all(map(is_audit_log, ["audit.log", "x/audit.log.1", "s3a://b/h/audit.log.12.gz", "audit.log.3.xz"]))
    assert not any(map(is_audit_log, ["audit.log.bak", "x/notes.txt", "audit.log.gz", "xaudit.log"]))


def test_host_conversion_is_the_command_on_a_rotated_set():
    """A capture split in two files (the older gzip-compressed): the events of one conversion
    over the whole capture, with the command's message for a cut gzip file."""
    data = DEV.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 1
    older, newer = gzip.compress(data[:cut]), data[cut:]
    render = formatter("syslog", tz=UTC)
    expected = [render(e) for e in convert(data.splitlines(keepends=True), **API)]
    run = HostConversion("vm", Options.from_kwargs(**API))
    got = [render(e) for source in (open_stream(io.BytesIO(older), "a.1.gz"), open_stream(io.BytesIO(newer), "a")) for batch in run.read(source) for e in batch]
    got += [render(e) for e in run.finish()]
    assert got == expected
    assert (run.report.inputs_read, run.report.read_errors, run.report.error) == (2, [], None)

    damaged = HostConversion("vm", Options.from_kwargs(**API))
    batches = list(damaged.read(open_stream(io.BytesIO(older[: len(older) // 2] + b"garbage"), "a.1.gz")))
    assert sum(map(len, batches)) + len(damaged.finish()) > 0  # the lines before the damage
    assert damaged.report.inputs_read == 0
    (error,) = damaged.report.read_errors
    assert error.startswith("a.1.gz: read error after line ") and "end-of-stream marker" in error


def test_host_report_keeps_the_first_messages_and_refuses_bad_options(tmp_path):
    run = HostConversion("h", Options(local_users=False, passwd=PASSWD))
    lines = [b"garbage %d\n" % i for i in range(REPORT_LIMIT + 5)]
    assert [e for batch in run.read_lines(lines, "bad.log") for e in batch] == []
    assert run.report.stats.rejected == REPORT_LIMIT + 5
    assert len(run.report.rejects) == REPORT_LIMIT and run.report.rejects[0].startswith("bad.log:1:1: ")
    bad = tmp_path / "passwd"
    bad.write_text("not a passwd file\n")
    refused = HostConversion("h", Options(local_users=False, passwd=bad))
    assert refused.report.error == f"{bad}:1: not a passwd line (name:password:uid:…)"
    assert [e for batch in refused.read_lines([b"x\n"], "x") for e in batch] == refused.finish() == []


def test_every_event_the_converter_writes_has_table_columns():
    """A new EventID the map stage learns must get its column types before it is written."""
    from audit2sysmon.options import SUPPORTED_EVENTS
    from audit2sysmon.sysmon.table import TABLE_EVENTS

    assert set(SUPPORTED_EVENTS) | {4, 16} <= set(TABLE_EVENTS)
