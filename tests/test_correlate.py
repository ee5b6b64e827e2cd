"""Correlator: records -> events, on hand-built streams and on the real fixture logs."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit2sysmon.audit.correlate import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_OPEN, Correlator
from audit2sysmon.audit.parse import Parser
from audit2sysmon.audit.records import AuditEvent, Field, Record, Stamp, ValueKind
from audit2sysmon.audit.serials import SerialGaps
from audit2sysmon.audit.types import STANDS_ALONE
from audit2sysmon.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC = FIXTURES / "public"
LIVE = FIXTURES / "live"

SYSCALL, PATH, CWD, EXECVE, EOE, PROCTITLE = 1300, 1302, 1307, 1309, 1320, 1327
LOGIN, AVC, CONFIG_CHANGE = 1006, 1400, 1305


def rec(type_num: int, msec: int, serial: int, node: str | None = None, **fields: str) -> Record:
    """A record built by hand: header plus `key=value` fields (bare values)."""
    body = tuple(Field(k, v, v.encode(), ValueKind.BARE) for k, v in fields.items())
    return Record(f"T{type_num}", type_num, node, Stamp(msec, serial), body)


def run(records, **window) -> tuple[list[AuditEvent], Correlator]:
    """Feed every record, then flush; check the memory bound on the way."""
    correlator = Correlator(**window)
    limit = window.get("max_open", DEFAULT_MAX_OPEN)
    events: list[AuditEvent] = []
    for record in records:
        events.extend(correlator.feed(record))
        assert correlator.open_events <= limit
    events.extend(correlator.flush())
    return events, correlator


def key(event: AuditEvent) -> tuple:
    return (event.node, event.stamp.msec, event.stamp.serial)


def by_key(events: list[AuditEvent]) -> dict[tuple, list[tuple[Record, ...]]]:
    """Events per key (a list, because a late record makes a second event with the same key)."""
    grouped: dict[tuple, list[tuple[Record, ...]]] = defaultdict(list)
    for event in events:
        grouped[key(event)].append(event.records)
    return dict(grouped)


def assert_accounted(records: list[Record], events: list[AuditEvent], correlator: Correlator) -> None:
    """Every non-EOE record is in exactly one event, under its own key; counters add up."""
    stats = correlator.stats
    kept = [r for r in records if r.type_num != EOE]
    emitted = [r for event in events for r in event.records]
    assert Counter(map(id, emitted)) == Counter(map(id, kept))
    for event in events:
        assert event.records
        assert {(r.node, r.stamp) for r in event.records} == {(event.node, event.stamp)}
    assert stats.records == len(records)
    assert stats.eoe_records == len(records) - len(kept)
    assert stats.events == len(events) == (
        stats.closed_by_eoe
        + stats.closed_by_marker
        + stats.closed_by_window
        + stats.closed_by_size
        + stats.closed_at_end
    )


# --- real log files -----------------------------------------------------------------------

def read_records(path: Path, tz=None) -> list[Record]:
    """Records of a log through the real parser (raw, ENRICHED or `ausearch -i` text)."""
    parser = Parser(tz=tz, path=str(path))
    lines = path.read_bytes().split(b"\n")
    records = (parser.parse(line, n) for n, line in enumerate(lines, 1) if line.strip())
    return [r for r in records if r is not None]


def group_whole_file(records: list[Record]) -> dict[tuple, list[tuple[Record, ...]]]:
    """The ground truth for logs where no key repeats: all records of a key, in file order."""
    grouped: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        if r.type_num != EOE:
            grouped[(r.node, r.stamp.msec, r.stamp.serial)].append(r)
    return {k: [tuple(v)] for k, v in grouped.items()}


LIVE_LOGS = sorted(LIVE.glob("*/audit.log"))


def test_out_of_order_log_gives_the_events_of_normal_log():
    normal, _ = run(read_records(PUBLIC / "go-libaudit__testdata__normal.log"))
    shuffled_records = read_records(PUBLIC / "go-libaudit__testdata__out_of_order.log")
    shuffled, correlator = run(shuffled_records)
    assert_accounted(shuffled_records, shuffled, correlator)
    assert len(normal) == len(shuffled) == 5
    assert {k: Counter(v[0]) for k, v in by_key(shuffled).items()} == {
        k: Counter(v[0]) for k, v in by_key(normal).items()
    }
    # Event 60's PATH item=1 came after event 61's SYSCALL (7,845 ms later in log time).
    event60 = next(e for e in shuffled if e.stamp.serial == 60)
    assert [r.type_name for r in event60.records] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PATH"]
    assert event60.records[-1].text("item") == "1"
    assert correlator.stats.late_records == 0


def test_rollover_log_keeps_five_events_in_file_order():
    records = read_records(PUBLIC / "go-libaudit__testdata__rollover.log")
    events, correlator = run(records)
    assert_accounted(records, events, correlator)
    # 4294967295 and 0 share the same millisecond: arrival order, not serial order, decides.
    assert [e.stamp.serial for e in events] == [4294967294, 4294967295, 0, 1, 2]
    assert all(len(e.records) == 1 for e in events)


@pytest.mark.parametrize("path", LIVE_LOGS, ids=lambda p: p.parent.name)
def test_live_logs_group_exactly_by_key(path):
    records = read_records(path)
    events, correlator = run(records)
    assert_accounted(records, events, correlator)
    assert by_key(events) == group_whole_file(records)
    # On a real log nothing needs the window: every event ends with PROCTITLE or stands alone.
    assert correlator.stats.closed_by_window == correlator.stats.closed_at_end == 0
    assert correlator.stats.late_records == correlator.stats.spurious_eoe == 0


def is_exec(record: Record | None) -> bool:
    return record is not None and record.type_num == SYSCALL and record.text("syscall") in ("59", "322")


def test_dev_raw_exec_events_are_complete():
    records = read_records(LIVE / "dev-raw" / "audit.log")
    events, _ = run(records)
    execs = [e for e in events if is_exec(e.first(SYSCALL))]
    assert len(execs) == sum(1 for r in records if is_exec(r)) > 50
    for event in execs:
        types = [r.type_num for r in event.records]
        assert types[0] == SYSCALL and types[-1] == PROCTITLE
        assert CWD in types and PATH in types
        if event.first(SYSCALL).text("success") == "yes":
            assert EXECVE in types
            # argc spread over EXECVE records arrives whole, in order.
            assert event.all(EXECVE) == tuple(r for r in event.records if r.type_num == EXECVE)


def bounded_shuffle(records: list[Record], distance: int, rng: random.Random) -> list[Record]:
    """Move records across events by at most `distance` places, keeping each event's order.

    This is the disorder seen in out_of_order.log: interleaving between events, not within one.
    """
    slots = sorted(range(len(records)), key=lambda i: i + rng.uniform(0, distance))
    per_key: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        per_key[(r.node, r.stamp.msec, r.stamp.serial)].append(r)
    cursors = {k: iter(v) for k, v in per_key.items()}
    shuffled = []
    for i in slots:
        r = records[i]
        shuffled.append(next(cursors[(r.node, r.stamp.msec, r.stamp.serial)]))
    return shuffled


DEV_RAW = read_records(LIVE / "dev-raw" / "audit.log")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), distance=st.integers(1, 64))
def test_bounded_disorder_gives_the_same_events(seed, distance):
    shuffled = bounded_shuffle(DEV_RAW, distance, random.Random(seed))
    events, correlator = run(shuffled)
    assert_accounted(shuffled, events, correlator)
    assert by_key(events) == group_whole_file(DEV_RAW)


def event_shapes(events: list[AuditEvent]) -> dict[tuple, list[list[int]]]:
    """Per key, the sorted record types of each event: comparable across text forms."""
    return {k: [sorted(r.type_num or 0 for r in recs) for recs in v] for k, v in by_key(events).items()}


INTERPRETED = sorted(LIVE.glob("dev-*/interpreted-*.txt"))


@pytest.mark.parametrize("path", INTERPRETED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ausearch_interpreted_text_gives_the_events_of_the_raw_log(path):
    from zoneinfo import ZoneInfo

    zone = path.stem.split("-", 2)[2].replace("_", "/", 1)
    records = read_records(path, ZoneInfo(zone))
    events, correlator = run(records)
    assert_accounted(records, events, correlator)
    # Reverse order (PROCTITLE first) and LOGIN printed as its own group still make one event.
    assert event_shapes(events) == event_shapes(run(read_records(path.parent / "audit.log"))[0])
    assert correlator.stats.late_records == 0


# --- completion rules ---------------------------------------------------------------------


def exec_event(msec: int, serial: int, node: str | None = None) -> list[Record]:
    return [
        rec(SYSCALL, msec, serial, node, syscall="59"),
        rec(EXECVE, msec, serial, node, argc="1", a0="ls"),
        rec(CWD, msec, serial, node, cwd="/"),
        rec(PATH, msec, serial, node, item="0"),
        rec(PROCTITLE, msec, serial, node, proctitle="6C73"),
    ]


def test_proctitle_after_syscall_closes_the_event():
    records = exec_event(1000, 7)
    correlator = Correlator()
    outputs = [correlator.feed(r) for r in records]
    assert outputs[:-1] == [[], [], [], []]
    [event] = outputs[-1]
    assert event.records == tuple(records)
    assert event.first(EXECVE) is records[1]
    assert event.all(PATH) == (records[3],)
    assert event.first(LOGIN) is None and event.all(LOGIN) == ()
    assert correlator.stats.closed_by_marker == 1 and correlator.open_events == 0


def test_proctitle_before_syscall_waits_for_the_window():
    # `ausearch -i` prints an event's records in reverse: PROCTITLE first, SYSCALL last.
    records = exec_event(1000, 7)[::-1]
    correlator = Correlator()
    assert all(correlator.feed(r) == [] for r in records)
    [event] = correlator.flush()
    assert event.records == tuple(records)
    assert correlator.stats.closed_at_end == 1


@pytest.mark.parametrize("first_type", [LOGIN, AVC, CONFIG_CHANGE, 1325])
def test_records_written_before_syscall_join_it(first_type):
    records = [rec(first_type, 5, 9)] + exec_event(5, 9)
    events, correlator = run(records)
    [event] = events
    assert event.records == tuple(records)
    assert correlator.stats.closed_by_marker == 1


@pytest.mark.parametrize(
    "type_num, alone",
    [(1005, True), (1006, False), (1099, False), (1100, True), (1112, True), (1199, True),
     (1200, True), (1299, True), (1300, False), (1400, False), (1999, False), (2000, True),
     (2001, False), (2100, True), (2999, True), (3000, False), (None, False)],
)
def test_which_types_stand_alone(type_num, alone):
    assert (type_num in STANDS_ALONE) is alone


def test_user_record_is_its_own_event_even_inside_an_open_event():
    syscall = rec(SYSCALL, 10, 1)
    user = rec(1112, 10, 1, op="login")
    correlator = Correlator()
    assert correlator.feed(syscall) == []
    # Closed at once, but released in log order: after the open event that came first.
    assert correlator.feed(user) == []
    assert [(syscall,), (user,)] == [e.records for e in correlator.flush()]


def test_eoe_closes_and_is_not_kept():
    syscall, cwd = rec(SYSCALL, 10, 1), rec(CWD, 10, 1)
    correlator = Correlator()
    correlator.feed(syscall)
    correlator.feed(cwd)
    [event] = correlator.feed(rec(EOE, 10, 1))
    assert event.records == (syscall, cwd)
    assert correlator.stats.closed_by_eoe == 1


def test_eoe_after_proctitle_is_expected_and_unknown_eoe_is_spurious():
    records = exec_event(10, 1) + [rec(EOE, 10, 1), rec(EOE, 11, 2)]
    events, correlator = run(records)
    assert len(events) == 1
    assert correlator.stats.spurious_eoe == 1
    assert correlator.stats.eoe_records == 2
    assert_accounted(records, events, correlator)


def test_late_record_joins_its_event_while_open():
    a, b = exec_event(100, 1), exec_event(101, 2)
    # a's PATH arrives after all of b (as in out_of_order.log); a has no PROCTITLE yet.
    records = a[:3] + b + [a[3], a[4]]
    events, correlator = run(records)
    # b completed first, but a is older: output is in log order.
    assert [e.records for e in events] == [tuple(a), tuple(b)]
    assert correlator.stats.late_records == 0


def test_record_after_its_event_closed_makes_a_second_event():
    a = exec_event(100, 1)
    extra = rec(PATH, 100, 1, item="9")
    records = a + [extra]
    events, correlator = run(records)
    assert [e.records for e in events] == [tuple(a), (extra,)]
    assert correlator.stats.late_records == 1
    assert_accounted(records, events, correlator)


# --- the window ---------------------------------------------------------------------------


def test_size_window_evicts_the_oldest_arrival():
    correlator = Correlator(max_open=2)
    first, second, third = rec(SYSCALL, 300, 1), rec(SYSCALL, 100, 2), rec(SYSCALL, 200, 3)
    assert correlator.feed(first) == correlator.feed(second) == []
    # first is closed (evicted) but waits for the older open `second`: output is in log order.
    assert correlator.feed(third) == []
    assert correlator.stats.closed_by_window == 1
    assert correlator.open_events == 2
    assert [e.records for e in correlator.flush()] == [(second,), (third,), (first,)]


def test_age_window_uses_log_time_of_the_same_node():
    correlator = Correlator(max_age_ms=1000)
    old = rec(SYSCALL, 0, 1)
    correlator.feed(old)
    assert correlator.feed(rec(SYSCALL, 1000, 2)) == []
    assert correlator.feed(rec(SYSCALL, 50_000, 3, node="other")) == []
    [evicted] = correlator.feed(rec(SYSCALL, 1001, 4))
    assert evicted.records == (old,)
    assert correlator.stats.closed_by_window == 1


def test_nodes_with_skewed_clocks_do_not_evict_each_other():
    records = []
    for i in range(20):
        records += [rec(SYSCALL, 1000 * i, i, "a"), rec(SYSCALL, 10**9 + 1000 * i, i, "b")]
        records += [rec(PATH, 1000 * i, i, "a"), rec(PATH, 10**9 + 1000 * i, i, "b")]
    events, correlator = run(records, max_age_ms=5000)
    assert_accounted(records, events, correlator)
    assert by_key(events) == group_whole_file(records)


def test_same_serial_and_time_on_two_nodes_are_two_events():
    records = exec_event(10, 5, "a") + exec_event(10, 5, "b") + exec_event(10, 5, None)
    events, _ = run(records)
    assert sorted(e.node or "" for e in events) == ["", "a", "b"]


def test_clock_jumping_back_closes_the_old_events_and_groups_the_new_ones():
    before = rec(SYSCALL, 10**7, 1)
    after = [rec(SYSCALL, 0, 2), rec(CWD, 0, 2), rec(PATH, 0, 2)]
    correlator = Correlator(max_age_ms=1000)
    correlator.feed(before)
    # `before` is closed by the jump; it is released after the (earlier-stamped) new event.
    assert correlator.feed(after[0]) == []
    assert correlator.stats.closed_by_window == 1
    assert correlator.feed(after[1]) == correlator.feed(after[2]) == []
    assert [tuple(after), (before,)] == [e.records for e in correlator.flush()]


def test_small_backward_steps_do_not_evict():
    # dev-raw: DAEMON_START stamped .094 is written before a SYSCALL stamped .093.
    records = [rec(SYSCALL, 1000, 1), rec(CWD, 1000, 1), rec(SYSCALL, 996, 2), rec(CWD, 1000, 1)]
    events, correlator = run(records, max_age_ms=10)
    assert correlator.stats.closed_by_window == 0
    assert [len(e.records) for e in events] == [1, 3]


def test_event_reaching_max_records_is_closed():
    records = [rec(SYSCALL, 1, 1)] + [rec(EXECVE, 1, 1, a0=str(i)) for i in range(7)]
    events, correlator = run(records, max_records=3)
    assert [len(e.records) for e in events] == [3, 3, 2]
    assert correlator.stats.closed_by_size == 2
    assert_accounted(records, events, correlator)


def test_events_emitted_together_come_oldest_first():
    correlator = Correlator(max_age_ms=1000)
    correlator.feed(rec(SYSCALL, 10_000, 1))
    # The clock jumps back: the user record evicts event 1 and is itself complete at once.
    batch = correlator.feed(rec(1112, 0, 2))
    assert [e.stamp.serial for e in batch] == [2, 1]


def test_flush_orders_by_time_then_arrival_not_by_serial():
    correlator = Correlator()
    for msec, serial in ((200, 4), (100, 2**32 - 1), (100, 0), (50, 9)):
        correlator.feed(rec(SYSCALL, msec, serial))
    assert [e.stamp.serial for e in correlator.flush()] == [9, 2**32 - 1, 0, 4]


@pytest.mark.parametrize("window", [{"max_open": 0}, {"max_age_ms": -1}, {"max_records": 0}])
def test_unusable_window_is_rejected(window):
    with pytest.raises(ConfigError):
        Correlator(**window)


def test_defaults_cover_the_observed_disorder_with_margin():
    # Measured in the fixtures (docs/correlation.md): 2 events between records of one event,
    # 7,845 ms of log time for the late PATH of out_of_order.log.
    assert DEFAULT_MAX_OPEN >= 100 * 2
    assert DEFAULT_MAX_AGE_MS >= 3 * 7845


# --- any stream whatever ------------------------------------------------------------------

TYPES = [SYSCALL, PATH, CWD, EXECVE, PROCTITLE, EOE, LOGIN, AVC, 1112, 1200, 2000, 2100, None]


@st.composite
def streams(draw):
    n = draw(st.integers(0, 120))
    out = []
    for _ in range(n):
        type_num = draw(st.sampled_from(TYPES))
        node = draw(st.sampled_from([None, "a", "b"]))
        msec = draw(st.integers(0, 5000))
        serial = draw(st.sampled_from([0, 1, 2, 3, 2**32 - 1]))
        record = Record("X", type_num, node, Stamp(msec, serial), ())
        out.append(record)
    return out


@settings(max_examples=300, deadline=None)
@given(
    records=streams(),
    max_open=st.integers(1, 8),
    max_age_ms=st.integers(0, 3000),
    max_records=st.integers(1, 6),
)
def test_any_stream_is_accounted_for_and_bounded(records, max_open, max_age_ms, max_records):
    events, correlator = run(
        records, max_open=max_open, max_age_ms=max_age_ms, max_records=max_records
    )
    assert_accounted(records, events, correlator)
    assert correlator.stats.peak_open <= max_open
    assert all(len(e.records) <= max_records for e in events)
    assert correlator.open_events == 0


def test_maps_of_nodes_stay_bounded_however_many_nodes_a_log_names():
    """A node's map of open events outlives its last open event (for the node's next one),
    but no more than `max_open` of them are kept: a log naming a new node on every line
    does not grow the correlator."""
    correlator = Correlator(max_open=4)
    for n in range(1000):
        correlator.feed(rec(SYSCALL, 1000 + n, n, node=f"host{n}"))
        assert len(correlator.feed(rec(PROCTITLE, 1000 + n, n, node=f"host{n}"))) == 1
    assert correlator.open_events == 0 and len(correlator._by_node) <= 4 + 1


@st.composite
def runs_of_records(draw):
    """Streams where most records continue the event of the record before, as in real logs."""
    out = []
    for _ in range(draw(st.integers(0, 120))):
        if out and draw(st.integers(0, 9)) < 6:
            node, stamp = out[-1].node, out[-1].stamp
        else:
            node = draw(st.sampled_from([None, "a", "b"]))
            stamp = Stamp(draw(st.integers(0, 3000)), draw(st.sampled_from([0, 1, 2, 3])))
        out.append(Record("X", draw(st.sampled_from(TYPES)), node, stamp, ()))
    return out


@settings(max_examples=300, deadline=None)
@given(records=runs_of_records(), max_open=st.integers(1, 6), max_age_ms=st.integers(0, 2000),
       max_records=st.integers(1, 6))
def test_a_shared_stamp_changes_nothing(records, max_open, max_age_ms, max_records):
    """The parser gives the records of one stamp one `Stamp` object, and the correlator takes
    that as the sign of a record continuing the event before it; the same records with a
    `Stamp` of their own each (the general path) must give the same events and counts."""
    interned = {}
    shared = [replace(r, stamp=interned.setdefault((r.stamp.msec, r.stamp.serial), r.stamp)) for r in records]
    apart = [replace(r, stamp=Stamp(r.stamp.msec, r.stamp.serial)) for r in records]
    window = {"max_open": max_open, "max_age_ms": max_age_ms, "max_records": max_records}
    (events, correlator), (expected, reference) = run(shared, **window), run(apart, **window)
    assert events == expected
    assert correlator.stats == reference.stats


@st.composite
def same_time_records(draw):
    """Streams whose events share a few log times, out of order, on two nodes: the window
    check that `feed` skips for a record with the time of the one before is skipped often."""
    out = []
    times = draw(st.lists(st.integers(0, 3000), min_size=1, max_size=4))
    for _ in range(draw(st.integers(0, 120))):
        if out and draw(st.integers(0, 9)) < 5:
            node, stamp = out[-1].node, out[-1].stamp
        else:
            node = draw(st.sampled_from([None, "a"]))
            stamp = Stamp(draw(st.sampled_from(times)), draw(st.integers(0, 6)))
        out.append(Record("X", draw(st.sampled_from(TYPES)), node, stamp, ()))
    return out


@settings(max_examples=300, deadline=None)
@given(records=st.one_of(same_time_records(), runs_of_records()), max_open=st.integers(1, 6),
       max_age_ms=st.integers(0, 2000), max_records=st.integers(1, 6))
def test_skipping_the_window_check_changes_nothing(records, max_open, max_age_ms, max_records):
    """`feed` checks the window only when the node or log time changed, or an event finished,
    since the last check; a correlator made to check at every record gives the same events
    and counts."""
    window = {"max_open": max_open, "max_age_ms": max_age_ms, "max_records": max_records}
    events, correlator = run(records, **window)
    checking = Correlator(**window)
    expected = []
    for record in records:
        checking._checked_events = -1  # no event count matches: the window is checked
        expected.extend(checking.feed(record))
    expected.extend(checking.flush())
    assert events == expected
    assert correlator.stats == checking.stats


def test_an_event_that_finished_since_the_check_makes_the_next_record_check_again():
    """The oldest open event passed the last check; when it is closed (here pushed out by a
    newer one), the next oldest may be too old for a record of the same time, and is closed
    by the window there, so a late record of it starts a late event."""
    window = {"max_open": 2, "max_age_ms": 500}
    records = [
        rec(SYSCALL, 1000, 1),  # X
        rec(SYSCALL, 1400, 2),  # Z: 400 ms after X, within the window
        rec(SYSCALL, 600, 3),  # W: X is 400 ms away, fine; a third open event pushes X out
        rec(CWD, 600, 3),  # W again: Z is now the oldest, 800 ms away: closed by the window
        rec(CWD, 1400, 2),  # Z's record after Z closed: a late event
    ]
    events, correlator = run(records, **window)
    # X pushed out, Z too old for W's second record, W too old for Z's late one; in log order.
    assert correlator.stats.closed_by_window == 3
    assert [(e.stamp.serial, len(e.records), e.late) for e in events] == [
        (3, 2, False), (1, 1, False), (2, 1, False), (2, 1, True)
    ]  # fmt: skip


def test_events_one_after_the_other_leave_nothing_in_the_order_heap():
    """The common log: each event closes before the next opens. Each is released at once,
    in order, and the heap that orders open events does not keep the closed ones."""
    correlator = Correlator()
    out: list[AuditEvent] = []
    for serial in range(1, 3001):
        for record in exec_event(serial, serial):
            out += correlator.feed(record)
        assert len(correlator._open_order) == 0 and not correlator._ready
    assert [e.stamp.serial for e in out] == list(range(1, 3001))
    assert all(len(e.records) == 5 for e in out)


def test_waiting_closed_events_are_bounded_by_the_window():
    """An old event that never closes cannot make newer closed events pile up forever."""
    correlator = Correlator(max_open=4, max_age_ms=10**9)
    stuck = rec(SYSCALL, 1, 1)
    correlator.feed(stuck)
    out = []
    for serial in range(2, 40):
        out += correlator.feed(rec(SYSCALL, 2, serial))
        out += correlator.feed(rec(PROCTITLE, 2, serial))
    assert out and out[0].records == (stuck,)
    assert len(correlator._ready) <= 4
    assert [e.stamp.serial for e in out] == sorted(e.stamp.serial for e in out)


# -- serial gaps: events that never reached the log ---------------------------------------------


def gaps_of(records, window: int = 64) -> tuple[set[int], list]:
    """(every serial reported missing, the gaps) of a stream, the rest reported at the end."""
    finder = SerialGaps(window=window)
    gaps = [gap for record in records for gap in finder.feed(record)] + finder.flush()
    missing = set()
    for gap in gaps:
        missing |= set(range(gap.first, gap.last + 1)) - gap.seen
    return missing, gaps


@given(st.data())
def test_serial_gaps_are_exactly_the_events_that_never_came(data):
    """Records out of order by less than the window are late, not lost; whatever never
    comes is reported, once, whatever the order."""
    count = data.draw(st.integers(3, 300))
    first = data.draw(st.integers(0, 2**32 - 1))  # the count may wrap past 2^32
    # The first serial is where the node starts; what is lost after the last one is not seen.
    lost = data.draw(st.sets(st.integers(1, count - 2)))
    kept = [n for n in range(count) if n not in lost]
    # Displace records by at most 16 places, as events of other CPUs are written late.
    keys = [i + data.draw(st.integers(0, 16)) for i in range(len(kept))]
    order = [n for _, n in sorted(zip(keys, kept))]
    order.remove(0)
    order.insert(0, 0)
    records = [rec(SYSCALL, 1000 + n, (first + n) % 2**32, "vm") for n in order]
    missing, _ = gaps_of(records)
    assert {(first + n) for n in lost} == missing


def test_serial_gaps_ignore_auditd_s_own_numbers_and_start_anew_after_a_reboot():
    records = [rec(SYSCALL, 1000, 7000, "vm"), rec(SYSCALL, 1001, 7001, "vm"),
               rec(1203, 1002, 42, "vm"),  # DAEMON_ROTATE: auditd's own serial
               rec(SYSCALL, 1003, 7002, "vm"),
               rec(SYSCALL, 5000, 3, "vm"),  # a new boot counts from the start
               rec(SYSCALL, 5001, 4, "vm"), rec(SYSCALL, 5002, 6, "vm"),
               rec(SYSCALL, 1004, 7003, "other")]  # other nodes count apart
    missing, gaps = gaps_of(records)
    assert ({5}, [6]) == (missing, [gap.where.stamp.serial for gap in gaps])


def test_a_record_far_behind_with_an_earlier_time_is_late_not_a_reboot():
    """auditd 3.0.9's dispatcher, when its queue to the plugins overflowed, sent the CWD,
    PATH, PROCTITLE and EOE of one exec 4,391 events after its SYSCALL (seen in a live run).
    That is a record far below the newest serial, as after a reboot, but of an earlier time:
    it must not start the count anew (the next record would then "skip" the 4,391 events in
    between, all of which came). An event really lost after it is still found."""
    window = 64
    late = 10
    records = [rec(SYSCALL, 1000 + n, n, "vm") for n in range(1, late + 2 * window)]
    records.append(rec(PROCTITLE, 1000 + late, late, "vm"))  # the rest of event 10, far behind
    records += [rec(SYSCALL, 1000 + n, n, "vm") for n in range(late + 2 * window + 1, late + 3 * window)]
    missing, gaps = gaps_of(records, window)
    assert ({late + 2 * window}, 1) == (missing, len(gaps))


def test_serial_gaps_close_once_the_window_has_passed():
    finder = SerialGaps(window=4)
    found = [finder.feed(rec(SYSCALL, 1000 + n, n, "vm")) for n in (1, 2, 4, 5, 6, 7, 8, 9)]
    # 3 could still come while the newest serial is at most 4 past it: 7 is, 8 is not.
    assert [[], [], [], [], [], [], [3], []] == [[g.first for g in gaps] for gaps in found]
    assert [] == finder.flush()
