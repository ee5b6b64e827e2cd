"""Hostile and damaged input: never crash, never lose an exec, always say where.

Every case feeds a log with damage around intact exec events and checks three things: the
damage is reported with file and line (`on_error` for a rejected line, `on_warning` for an
event converted despite damage), the conversion goes on, and every successful exec that is
present becomes exactly one ProcessCreate. Then: no quadratic time on pathological lines, a
bounded window under a flood of events that never close, and the "no event lost" identity
of `--stats` on every fixture log, against an independent count of exec SYSCALL records.
"""

from __future__ import annotations

import gc
import io
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dateutil import tz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from test_pipeline_properties import OPTIONS, KernelExec

from audit2sysmon.audit.parse import MAX_LINE, Parser
from audit2sysmon.convert import Converter
from audit2sysmon.errors import ParseError

FIXTURES = Path(__file__).parent / "fixtures"
PATH = "hostile.log"


@dataclass
class Run:
    """What one conversion wrote and reported."""

    events: list = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    warnings: list[ParseError] = field(default_factory=list)
    stats: object = None

    @property
    def created(self) -> list:
        return [e for e in self.events if e.event_id == 1]

    def pids(self) -> list[str]:
        return [e.get("ProcessId") for e in self.created]

    def command_lines(self) -> dict[str, str]:
        return {e.get("ProcessId"): e.get("CommandLine") for e in self.created}

    def reported_lines(self) -> set[int]:
        return {e.line for e in self.errors + self.warnings}


def run(lines, setup=None, **options) -> Run:
    """Convert `lines`; `setup(converter)` may change the converter before it reads."""
    result = Run()
    conv = Converter(on_error=result.errors.append, on_warning=result.warnings.append, path=PATH,
                     **{**OPTIONS, **options})
    if setup is not None:
        setup(conv)
    for line in lines:
        result.events += conv.feed(line)
    result.events += conv.flush()
    result.stats = stats = conv.stats
    for report in result.errors + result.warnings:
        assert (report.path, type(report.line)) == (PATH, int), report
    # The identity holds on any input, damaged or not.
    assert stats.exec_syscalls == stats.process_create + sum(stats.exec_rejected.values())
    assert stats.process_create == len(result.created)
    for event in result.created:
        xml = event.to_syslog()
        assert xml.splitlines() == [xml]
        etree.fromstring(event.to_xml().encode())
        json.loads(event.to_json())
    return result


def ex(serial: int, pid: int | None = None, **values) -> KernelExec:
    """A plain exec event: `prog -x <serial>` in /tmp/<serial>."""
    defaults = {
        "serial": serial, "pid": pid or 3000 + serial, "args": (b"prog", b"-x", str(serial).encode()),
        "cwd": f"/tmp/{serial}".encode(), "exe": b"/usr/bin/prog", "comm": b"prog", "key": b"exec", "user": None,
        "node": b"vm",
    }
    return KernelExec(**{**defaults, **values})


def numbered(lines: list[bytes]) -> dict[int, bytes]:
    return dict(enumerate(lines, 1))


# --------------------------------------------------------------------------- garbage lines


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=200).filter(lambda b: b"\n" not in b), min_size=1, max_size=8), st.randoms())
def test_random_byte_lines_are_reported_and_every_exec_still_converted(garbage, rnd):
    good = [ex(i) for i in range(1, 4)]
    lines = [line for e in good for line in e.lines()]
    spots = []
    for junk in garbage:
        at = rnd.randrange(len(lines) + 1)
        lines.insert(at, junk)
        spots = [s + (s >= at) for s in spots] + [at]
    result = run(lines)
    assert sorted(result.pids()) == [str(e.pid) for e in good]
    assert {e.line for e in result.errors} <= {s + 1 for s in spots}


DAMAGE = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\x1d", b"\xc2\x85", b"\xe2\x80\xa8", b"\x0b", b'"']


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 400), st.sampled_from(DAMAGE)), min_size=1, max_size=6))
def test_nul_invalid_utf8_and_control_bytes_inside_records(damage):
    """Bytes inserted anywhere in the records of one event: the other events convert intact,
    the damaged one converts at most once, each rejected line is named."""
    before, victim, after = ex(1), ex(2), ex(3)
    hurt = victim.lines()
    for index, pos, junk in damage:
        line = hurt[index % len(hurt)]
        hurt[index % len(hurt)] = line[:pos] + junk + line[pos:]
    result = run(before.lines() + hurt + after.lines())
    pids = result.pids()
    assert pids.count("3001") == pids.count("3003") == 1 and pids.count("3002") <= 1
    assert result.command_lines()["3001"] == "prog -x 1" and result.command_lines()["3003"] == "prog -x 3"


def test_a_nul_byte_line_and_a_lone_surrogate_are_rejected_with_their_line():
    lines = ex(1).lines() + [b"\x00" * 50, "type=SYSCALL \ud800 msg", b"\xff\xfe\xfd"] + ex(2).lines()
    result = run(lines)
    assert result.pids() == ["3001", "3002"]
    assert [e.line for e in result.errors] == [5, 6, 7]
    assert "surrogate" in result.errors[1].reason


def test_crlf_line_ends_and_a_missing_last_newline_change_nothing():
    data = (FIXTURES / "live/dev-raw/audit.log").read_bytes()
    variants = [data, data.replace(b"\n", b"\r\n"), data.rstrip(b"\n"), data.replace(b"\n", b"\r\n").rstrip(b"\r\n")]
    outputs = [[e.to_xml() for e in run(io.BytesIO(v)).events] for v in variants]
    assert outputs[0] and all(out == outputs[0] for out in outputs)


def test_a_stamp_after_2106_is_rejected_not_a_crash():
    """Found by the fuzzer: one digit more in the seconds gave a stamp Sysmon's 32-bit GUID
    seconds cannot hold, and the map stage raised out of the conversion."""
    late = [line.replace(b"audit(1700000000.", b"audit(17000000000.") for line in ex(1).lines()]
    result = run(late + ex(2).lines())
    assert result.pids() == ["3002"]
    assert [(e.line, "2106" in e.reason) for e in result.errors] == [(n, True) for n in range(1, 5)]
    # The same from an `ausearch -i` date with a three-digit year (before 1970).
    year_260 = "type=SYSCALL msg=audit(11/28/260 07:56:15.601:2330) : arch=x86_64 syscall=execve success=yes pid=5 key=(null)"
    result = run([year_260] + ex(2).lines(), tz=tz.UTC)
    assert result.pids() == ["3002"] and [e.line for e in result.errors] == [1]


@pytest.mark.parametrize(
    "edit",
    [
        lambda l: l.replace(b"argc=3", b"argc=" + b"9" * 5000),
        lambda l: l.replace(b"argc=3", b"argc=3 a1_len=" + b"9" * 5000),
        lambda l: l + b" a" + b"1" * 5000 + b"=41",
        lambda l: l + b" a1[" + b"1" * 5000 + b"]=41",
    ],
)
def test_runs_of_thousands_of_digits_are_data_not_a_crash(edit):
    """Found by the fuzzer: int() refuses more than 4,300 digits (and is quadratic below)."""
    lines = _with_execve(ex(1), edit) + ex(2).lines()
    result = run(lines)
    assert result.pids() == ["3001", "3002"] and result.errors == []
    digits = b"type=SYSCALL msg=audit(" + b"1" * 5000 + b".000:1): arch=c000003e syscall=59 success=yes pid=1 key=(null)"
    assert [e.line for e in run([digits]).errors] == [1]


class _FlakyMapStage:
    """The converter's real map stage, except that it fails on the audit event with serial 2
    (a stand-in for a bug: a wrapper rather than a patch, which works on compiled builds too)."""

    def __init__(self, real):
        self.real, self.stats = real, real.stats

    def apply(self, event):
        if event.serial == 2:
            raise KeyError("simulated bug")
        return self.real.apply(event)

    def flush(self):
        return self.real.flush()


def test_a_bug_in_the_map_stage_skips_one_event_not_the_conversion():
    def flaky(conv):
        conv._mapper = _FlakyMapStage(conv._mapper)

    result = run([line for i in (1, 2, 3) for line in ex(i).lines()], setup=flaky)
    assert result.pids() == ["3001", "3003"]
    assert [(w.line, "simulated bug" in w.reason) for w in result.warnings] == [(5, True)]
    assert result.stats.exec_rejected == {"internal error (bug) in the map stage": 1}


def test_enriched_free_words_before_the_first_pair_stay_one_text_field():
    record = Parser(path=PATH).parse('type=SYSCALL msg=audit(1.000:1): a=b\x1dfoo bar UID="x" SADDR=unknown family')
    assert [(f.key, f.text) for f in record.enriched] == [("_text", "foo bar"), ("UID", "x"), ("SADDR", "unknown family")]


# --------------------------------------------------------------------------- huge lines


def test_a_10_mb_line_is_rejected_and_the_events_around_it_convert():
    huge = b"node=vm type=EXECVE msg=audit(1700000000.000:1): argc=1 a0=" + b"41" * 5_000_000
    result = run(ex(1).lines() + [huge, b"x" * 10_000_000] + ex(2).lines())
    assert result.pids() == ["3001", "3002"]
    assert [(e.line, "characters long" in e.reason) for e in result.errors] == [(5, True), (6, True)]


def _fastest(parse, line, repeat: int = 5) -> float:
    """Best of `repeat` runs with the garbage collector off (as timeit does): a collection of
    the whole test session's heap would otherwise land in one run at random."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            try:
                parse(line)
            except ParseError:
                pass
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return best


HEAD = "node=vm type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e"
PATHOLOGICAL = {
    "enrichment of many words": lambda n: HEAD + "\x1dUID=a" + " x" * n,
    "many free words": lambda n: HEAD + " w" * n,
    "unclosed msg quotes": lambda n: HEAD + " msg='" + "a' " * n,
    "unclosed value quotes": lambda n: HEAD + ' a="b' * n,
    "unclosed braces": lambda n: HEAD + " a={" * n,
    "many pairs": lambda n: HEAD + "".join(f" k{i % 500}=v{i}" for i in range(n)),
    "syslog enrichment": lambda n: "Oct  5 12:00:00 host audit: type=SYSCALL msg=audit(1.000:1): " + "A=b " * n,
    "interpreted spaced value": lambda n: "type=SYSCALL msg=audit(10/26/21 12:51:14.046:1) : comm=" + "x key=" * n,
    "interpreted execve": lambda n: "type=EXECVE msg=audit(10/26/21 12:51:14.046:1) : argc=3 " + "a0=x " * n,
    "odd hex digits": lambda n: "type=EXECVE msg=audit(1.000:1): argc=1 a0=" + "A" * (4 * n + 1),
}


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_pathological_lines_parse_in_linear_time(name):
    """4 times the input may cost about 4 times the time, never 16 (a generous factor 10:
    relative time of the same process, not an absolute limit)."""
    make = PATHOLOGICAL[name]
    parser = Parser(path=PATH, tz=tz.UTC)
    small, large = make(1500), make(6000)
    assert len(large) <= MAX_LINE
    assert _fastest(parser.parse, large) < 10 * _fastest(parser.parse, small) + 0.005


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_value_decoding_work_is_linear(name, monkeypatch):
    """The same lines, measured by operation count instead of time: the characters handed to
    value decoding grow 4 times with 4 times the input (re-decoding a growing value at every
    word, as the ENRICHED tail once did, grows 16 times)."""
    from audit2sysmon.audit import parse

    work = [0]

    def counting(function):
        def wrapper(*args, **kwargs):
            work[0] += sum(len(a) for a in args if isinstance(a, str))
            return function(*args, **kwargs)

        return wrapper

    if not parse.__file__.endswith(".py"):
        pytest.skip("a compiled parse module calls its functions directly, so they cannot be "
                    "counted; the timing test above checks the same lines there (and the "
                    "pure-Python leg of .ci/run counts them)")
    from audit2sysmon.audit import grammar

    for function in ("_raw_field", "_interpreted_field", "_text_field"):
        counted = counting(getattr(parse, function))
        for module in (parse, grammar):  # the grammar path calls the decoders by its own names
            if hasattr(module, function):
                monkeypatch.setattr(module, function, counted)
    parser = Parser(path=PATH, tz=tz.UTC)
    counts = []
    for n in (1500, 6000):
        work[0] = 0
        caches = parser._caches
        for decoded in [*caches.rules.values(), caches.enriched]:  # earlier parses' work would not count
            decoded.pairs.clear()
            decoded.bodies.clear()
        try:
            parser.parse(PATHOLOGICAL[name](n))
        except ParseError:
            pass
        counts.append(work[0])
    assert counts[0] > 0  # the counting reached the decoders
    assert counts[1] <= 4.5 * counts[0] + 200


def test_what_the_parser_remembers_stays_bounded_whatever_the_input():
    """Made-up record types, and pairs, bodies and SYSCALL tails that never repeat, fill the
    parser's caches only up to their bounds: memory cannot grow with such a log."""
    from audit2sysmon.audit import parse

    parser = Parser(path=PATH)
    for n in range(30_000):
        kind = f"MADE_UP_{n % 3000}" if n % 2 else ("SYSCALL", "PATH", "EXECVE", "CWD")[n % 4]
        parser.parse(f'type={kind} msg=audit(1.000:{n}): a{n % 7}={n:08x} pid={n} auid={n} comm="c{n}"\x1dUID="u{n}"')
    caches = parser._caches
    rules = [*caches.rules.values(), caches.enriched]
    assert len(rules) == 4 and len(caches.types) <= parse._CACHED_TYPES and len(caches.stamps) <= parse._CACHED_STAMPS
    for decoded in rules:
        assert len(decoded.pairs) <= parse._CACHED_PAIRS and len(decoded.bodies) <= parse._CACHED_BODIES
        assert all(len(body) <= parse._LONG_BODY for body in decoded.bodies)
    assert max(len(d.pairs) for d in rules) > parse._CACHED_PAIRS // 2, "the log did fill the caches"


def test_over_long_lines_are_refused_in_linear_time():
    parser = Parser(path=PATH)
    small, large = b"type=EXECVE " + b"a" * 2_500_000, b"type=EXECVE " + b"a" * 10_000_000
    assert _fastest(parser.parse, large) < 10 * _fastest(parser.parse, small) + 0.005


# --------------------------------------------------------------------------- cut records


def _is_prefix(value: str, full: str) -> bool:
    return value == "-" or full.startswith(value)


@pytest.mark.parametrize("which", [0, 1, 2])  # SYSCALL, EXECVE, CWD
def test_a_record_cut_anywhere_is_reported_or_leaves_a_true_prefix(which):
    """A line cut at any byte: the exec converts at most once; when nothing is reported the
    command line and directory written are the true ones or a prefix of them, never a
    damaged value passed off as real."""
    event = ex(7, args=(b"prog", b"--opt=a b", b"last arg"), cwd=b"/srv/some dir")
    lines = event.lines()
    full = lines[which]
    for cut in range(len(full)):
        hurt = [*lines[:which], full[:cut], *lines[which + 1 :]]
        result = run(ex(1).lines() + hurt + ex(2).lines())
        assert result.pids().count("3001") == result.pids().count("3002") == 1
        mine = [e for e in result.created if e.get("ProcessId") == "3007"]
        assert len(mine) <= 1
        reported = (len(ex(1).lines()) + which + 1) in result.reported_lines()
        if which != 0:
            assert len(mine) == 1  # the SYSCALL is intact: the exec is there
        if mine and not reported:
            assert _is_prefix(mine[0].get("CommandLine"), "prog --opt=a b last arg"), cut
            assert _is_prefix(mine[0].get("CurrentDirectory"), "/srv/some dir"), cut
        if which == 0 and not mine:
            assert reported or cut < len(b"node=vm type=SYSCALL msg=audit(")  # a cut header is rejected too


# --------------------------------------------------------------------------- order and repetition


@pytest.mark.parametrize(
    ("between", "kind"),
    [(1500, "records came after their event was closed"), (3000, "EXECVE records without their SYSCALL record")],
)
def test_records_of_one_event_spread_far_apart(between, kind):
    """The SYSCALL, then thousands of other events, then the rest of its records: the exec is
    still converted (from the SYSCALL alone), both halves are reported (the second as late
    while the window remembers the event, else as EXECVE without SYSCALL), nothing else changes."""
    spread = ex(1, msec=1_700_000_000_000)
    head, tail = spread.lines()[:1], spread.lines()[1:]
    others = [ex(10 + i, msec=1_700_000_000_000 + i) for i in range(between)]
    result = run(head + [line for e in others for line in e.lines()] + tail)
    assert sorted(result.pids(), key=int) == [str(e.pid) for e in [spread, *others]]
    assert result.command_lines()["3001"] == "prog"  # comm: the EXECVE came too late
    assert dict(result.stats.damaged) == {"successful exec without EXECVE record": 1, kind: 1}
    assert result.reported_lines() == {1, len(head) + 4 * len(others) + 1}


def test_duplicated_records_convert_once_and_are_counted():
    events = [ex(i) for i in range(1, 6)]
    doubled = [line for e in events for line in e.lines() for _ in range(2)]
    result = run(doubled)
    assert result.pids() == [str(e.pid) for e in events]
    assert result.command_lines()["3002"] == "prog -x 2"  # duplicated EXECVE records: no doubled argv
    assert result.stats.exec_rejected["duplicate SYSCALL record in one audit event (converted once)"] == 5


def test_a_duplicated_event_is_converted_again_and_reported():
    events = [ex(i) for i in range(1, 4)]
    log = [line for e in events for line in e.lines()]
    result = run(log + log)
    assert result.pids() == [str(e.pid) for e in events] * 2
    assert len(result.warnings) == 3 and all("after the event was closed" in w.reason for w in result.warnings)


def test_timestamps_going_backwards_serial_wrap_and_interleaved_nodes():
    backwards = [ex(i, msec=1_700_000_000_000 - 3_600_000 * i) for i in range(1, 4)]
    wrap = [ex(s, pid=4000 + k, msec=1_800_000_000_000) for k, s in enumerate([4294967294, 4294967295, 0, 1])]
    a = [ex(i, node=b"hostA") for i in range(50, 53)]
    b = [ex(i, node=b"hostB", args=(b"other", str(i).encode())) for i in range(50, 53)]
    interleaved = [line for ea, eb in zip(a, b) for pair in zip(ea.lines(), eb.lines()) for line in pair]
    result = run([line for e in backwards + wrap for line in e.lines()] + interleaved)
    created = result.created
    assert sorted(result.pids()) == sorted(str(e.pid) for e in backwards + wrap + a + b)
    # Wrapped serials keep their order: 4294967294, 4294967295, 0, 1.
    assert [e.get("ProcessId") for e in created if e.get("ProcessId").startswith("400")] == ["4000", "4001", "4002", "4003"]
    by_node = {(e.computer, e.get("ProcessId")): e.get("CommandLine") for e in created}
    assert by_node[("hostA", "3050")] == "prog -x 50" and by_node[("hostB", "3050")] == "other 50"
    assert result.errors == [] and result.warnings == []


# --------------------------------------------------------------------------- inconsistent EXECVE


def _with_execve(event: KernelExec, edit) -> list[bytes]:
    lines = event.lines()
    return [edit(line) if b"type=EXECVE" in line else line for line in lines]


@pytest.mark.parametrize(
    ("edit", "reason", "command_line"),
    [
        (lambda l: l.replace(b"argc=3", b"argc=5"), "2 argument(s) missing, first a3", "prog -x 9"),
        (lambda l: l.replace(b"argc=3", b"argc=2"), "argc=2 but argument a2 is present", "prog -x"),
        (lambda l: l.replace(b"argc=3", b"argc=99999999999999999999"), "is not a count", "prog -x 9"),
        (lambda l: l.replace(b"argc=3", b"argc=2147483647"), "2147483644 argument(s) missing", "prog -x 9"),
        (lambda l: l.replace(b"argc=3 ", b""), "without argc", "prog -x 9"),
        (lambda l: l.replace(b' a1="-x"', b""), "first a1", "prog 9"),
    ],
)
def test_execve_with_a_wrong_argc_is_converted_and_reported(edit, reason, command_line):
    event = ex(9)
    result = run(_with_execve(event, edit) + ex(10).lines())
    assert result.command_lines() == {"3009": command_line, "3010": "prog -x 10"}
    assert [(w.line, reason in w.reason) for w in result.warnings] == [(2, True)]


def test_execve_with_missing_chunks_is_converted_and_reported():
    long_arg = bytes(range(256)) * 40  # 10 KiB: hex chunks over several EXECVE records
    event = ex(5, args=(b"prog", long_arg, b"end"))
    lines = event.lines()
    execve = [i for i, line in enumerate(lines) if b"type=EXECVE" in line]
    assert len(execve) >= 3
    for lost in execve[1:]:
        result = run(lines[:lost] + lines[lost + 1 :])
        assert len(result.created) == 1
        assert [w.line for w in result.warnings] == [execve[0] + 1]
        assert re.search(r"chunk|missing", result.warnings[0].reason)


@pytest.mark.parametrize(
    ("record", "damaged"),
    [
        (1, lambda l: l[:-1]),  # the last argument's hex loses a digit
        (1, lambda l: l + b"0"),  # ... or gains one
        (2, lambda l: l + b"A"),  # CWD
        (3, lambda l: l + b"F"),  # PROCTITLE
    ],
)
def test_hex_with_an_odd_number_of_digits_is_reported_and_the_exec_converted(record, damaged):
    event = ex(9, args=(b"prog", b"two words", b"three words here"), cwd=b"/a dir")
    lines = event.lines()
    lines[record] = damaged(lines[record])
    result = run(lines)
    assert len(result.created) == 1
    assert [(e.line, "damaged value" in e.reason) for e in result.errors] == [(record + 1, True)]
    created = result.created[0]
    if record == 1:  # EXECVE rejected: the command line comes from PROCTITLE
        assert created.get("CommandLine") == "prog two words three words here"
    if record == 2:
        assert created.get("CurrentDirectory") == "-"


# --------------------------------------------------------------------------- no event lost


_EXEC_NUMBERS = {  # (arch as written, syscall number) of execve/execveat, from the kernel's tables
    "c000003e": {"59", "322"}, "x86_64": {"59", "322"},
    "40000003": {"11", "358"}, "i386": {"11", "358"},
    "c00000b7": {"221", "281"}, "aarch64": {"221", "281"},
}
_SYSCALL_LINE = re.compile(r"type=(?:SYSCALL|1300) ")
_FIELD = re.compile(r" (arch|syscall|success)=(\S+)")


def count_exec_syscalls(path: Path) -> int:
    """Successful execve/execveat SYSCALL records in a log, counted without audit2sysmon."""
    count = 0
    for line in path.read_text("utf-8", "replace").splitlines():
        if not _SYSCALL_LINE.search(line):
            continue
        fields = dict(_FIELD.findall(line))
        call = fields.get("syscall", "")
        if fields.get("success") == "yes" and (
            call in ("execve", "execveat") or call in _EXEC_NUMBERS.get(fields.get("arch", ""), ())
        ):
            count += 1
    return count


LOGS = sorted(FIXTURES.glob("public/*.log")) + sorted(FIXTURES.glob("live/*/audit.log")) + sorted(
    FIXTURES.glob("live/*/interpreted-*.txt")
)


def _zone(path: Path):
    """`interpreted-de_DE-Europe_Berlin.txt` was printed in Europe/Berlin; raw logs need none."""
    match = re.match(r"interpreted-[^-]+-(.+)\.txt\Z", path.name)
    return tz.gettz(match.group(1).replace("_", "/", 1)) if match else tz.UTC


@pytest.mark.parametrize("path", LOGS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_no_exec_is_lost_on_any_fixture(path):
    """`--stats` identity: exec SYSCALL records read = ProcessCreate written + rejected with a reason."""
    conv = Converter(tz=_zone(path), path=str(path), **OPTIONS)
    with path.open("rb") as log:
        written = [e for line in log for e in conv.feed(line)] + conv.flush()
    stats = conv.stats
    assert stats.exec_syscalls == count_exec_syscalls(path)
    assert stats.exec_syscalls == stats.process_create + sum(stats.exec_rejected.values())
    assert stats.process_create == sum(1 for e in written if e.event_id == 1)


def test_the_identity_counts_what_the_map_stage_did_not_convert():
    no_pid = [line.replace(b" pid=3001 ", b" ") for line in ex(1).lines()]
    result = run(no_pid + ex(2).lines())
    assert result.pids() == ["3002"]
    assert (result.stats.exec_syscalls, dict(result.stats.exec_rejected)) == (2, {"SYSCALL record without a usable pid": 1})
    only_files = run(ex(3).lines(), events=frozenset({11}))
    assert only_files.stats.exec_rejected == {"ProcessCreate (EventID 1) is not among the selected events": 1}


# --------------------------------------------------------------------------- flood


FLOOD = r"""
import sys
from audit2sysmon.convert import Converter

def held(conv):
    # Records held anywhere between the parser and the output: open and waiting events of the
    # correlator, its order heap, and the map stage's outbox and parent waits.
    co, ma = conv._reader.correlator, conv._mapper
    return (sum(len(p.records) for p in co._open.values()) + len(co._ready) + len(co._open_order)
            + len(ma._outbox) + sum(len(w) for w in ma._waiting.values()))

def flood(n, close):
    conv = Converter(hostname="h", machine_id=1, passwd=None, local_users=False)
    peak = written = 0
    for i in range(n):
        stamp = f"audit({1700000000 + i // 1000}.{i % 1000:03d}:{i + 1})"
        exe = i % 1000 == 0  # one exec in a thousand, child of the process seen just before
        call = "59" if exe else "0"
        conv.feed(f"type=SYSCALL msg={stamp}: arch=c000003e syscall={call} success=yes exit=0 "
                  f"ppid={1000 + (i - 1) % 30000} pid={1000 + i % 30000} comm=\"sh\" exe=\"/bin/sh\" key=(null)")
        if close:
            conv.feed(f"type=PROCTITLE msg={stamp}: proctitle=\"sh\"")
        if i % 997 == 0:
            peak = max(peak, held(conv))
    conv.flush()
    return peak, conv.stats.exec_syscalls, conv.stats.process_create

n = int(sys.argv[1])
print(*flood(n, False), *flood(n // 20, True), *flood(n // 20, False))
"""


@pytest.fixture(scope="module", autouse=True)
def flood_result():
    """A 1,000,000-event flood in a subprocess, started with the module's first test so that it
    runs beside the others (about 30 s of one core)."""
    proc = subprocess.Popen([sys.executable, "-c", FLOOD, "1000000"], stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()


def test_a_million_events_that_never_close_stay_in_the_window(flood_result):
    out, _ = flood_result.communicate(timeout=300)
    peak, execs, created, normal_peak, _, _, small_peak, _, _ = map(int, out.split())
    assert execs == created == 1000  # every exec in the flood converted
    # Events without PROCTITLE are held until the window (1,024 events) passes them: the held
    # records stay within a constant bound, the same for 1,000,000 as for 50,000 events ...
    assert peak == small_peak and peak <= 3 * 1024
    # ... and that bound is the window's, which a normal log of closing events stays below.
    assert normal_peak <= peak


def test_children_of_an_unknown_parent_are_not_kept_forever():
    """10,000 execs whose parent (pid 1) never shows up: each waits for its parent at most for
    the window, so what the map stage holds must not grow with the number of children."""
    conv = Converter(**OPTIONS)
    for i in range(10_000):
        for line in ex(i, pid=10_000 + i).lines():
            conv.feed(line)
    waiting = sum(len(w) for w in conv._mapper._waiting.values())
    assert waiting <= 2 * conv.options.max_open_events
