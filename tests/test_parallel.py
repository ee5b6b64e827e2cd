"""`--jobs N`: worker processes read, and the output is byte for byte one process's.

Every comparison converts the same input twice, once in one process and once with worker
processes and small chunks (so a fixture log has many seams), and compares the rendered
lines, the statistics, the rejected lines and the damage warnings. Hypothesis builds logs
from the real events of a live capture, with the disorder real logs show (interleaved
events, records far from their event, duplicated events, lost PROCTITLEs, garbage lines)
and small correlation windows, so that seams fall where a fresh reader would go wrong and
the fallback to reading in this process is what keeps the output right.
"""

from __future__ import annotations

import gzip
import io
import marshal
import multiprocessing
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dateutil import tz
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import raw_lines

from audit2sysmon import convert
from audit2sysmon._pipeline.parallel import ParallelReader, stream_chunks
from audit2sysmon._pipeline.reader import FactReader
from audit2sysmon.convert import Converter
from audit2sysmon.mapping.plain import from_plain, to_plain
from audit2sysmon.mapping.users import UserDb
from audit2sysmon.options import Options
from audit2sysmon.sysmon.render.xml import event_xml

FIXTURES = Path(__file__).parent / "fixtures"
LOGS = sorted(FIXTURES.glob("public/*.log")) + sorted(FIXTURES.glob("live/*/audit.log")) + sorted(
    FIXTURES.glob("live/*/interpreted-*.txt")
)
OPTIONS = {"machine_id": "2424faa4", "hostname": "host", "passwd": FIXTURES / "live/passwd", "local_users": False}
DEV_LOG = FIXTURES / "live/dev-raw/audit.log"


def _zone(path: Path):
    match = re.match(r"interpreted-[^-]+-(.+)\.txt\Z", path.name)
    return tz.gettz(match.group(1).replace("_", "/", 1)) if match else tz.UTC


def run(inputs, jobs: int, chunk_size: int | None = None, **options):
    """Convert `inputs` [(name, bytes)] as one conversion; everything a caller can observe."""
    errors, warnings = [], []
    conv = Converter(on_error=errors.append, on_warning=warnings.append, jobs=jobs, **{**OPTIONS, **options})
    with conv:
        lines = []
        for name, data in inputs:
            for events in conv.feed_input(io.BytesIO(data), name, chunk_size=chunk_size):
                lines.extend(event_xml(e) for e in events)
        lines.extend(event_xml(e) for e in conv.flush())
        workers = conv._reader
    seen = {
        "lines": lines,
        "stats": conv.stats,
        "errors": [(str(e), e.source_line) for e in errors],
        "warnings": [str(w) for w in warnings],
    }
    return seen, workers


@pytest.mark.parametrize("path", LOGS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_jobs_write_the_bytes_of_one_process_on_every_fixture_log(path):
    data = path.read_bytes()
    one, _ = run([(str(path), data)], jobs=1, tz=_zone(path))
    many, workers = run([(str(path), data)], jobs=2, chunk_size=max(200, len(data) // 10), tz=_zone(path))
    assert one["stats"].records > 0, "the fixture has records"
    assert many == one
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    assert workers.fresh_chunks + workers.local_chunks >= min(3, lines), "the log was cut into several chunks"


def test_raw_logs_are_read_by_the_workers_not_by_this_process():
    """The seams of a real capture are provable: the workers' reading is what gets used."""
    data = (FIXTURES / "live/busy-raw/audit.log").read_bytes()
    many, workers = run([("busy", data)], jobs=2, chunk_size=16384)
    assert many == run([("busy", data)], jobs=1)[0]
    assert workers.fresh_chunks > 100
    assert workers.local_chunks * 20 <= workers.fresh_chunks


def test_several_inputs_are_one_conversion_across_files():
    """Chunks never span files, but the correlation and the process table do."""
    lines = DEV_LOG.read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    parts = [(f"part{i}", b"".join(lines[i * third : (i + 1) * third if i < 2 else None])) for i in range(3)]
    assert run(parts, jobs=2, chunk_size=2048)[0] == run(parts, jobs=1)[0]


def test_a_duplicated_event_after_a_seam_is_read_here_and_stays_late():
    """A fresh reader cannot know that a key was seen before the seam: the check sends the
    chunk to this process, whose seeded reader marks the copy late like one process does."""
    events = _events(DEV_LOG.read_bytes())
    copy = events[5]
    data = b"".join(b"".join(e) for e in events[:400]) + b"".join(copy) + b"".join(b"".join(e) for e in events[400:])
    one, _ = run([("dup", data)], jobs=1)
    many, workers = run([("dup", data)], jobs=2, chunk_size=4096)
    assert many == one
    assert one["stats"].damaged, "the copy is reported as late"
    assert workers.local_chunks >= 1


def test_a_log_without_quiet_places_converts_in_this_process_and_the_same():
    """ausearch -i text puts PROCTITLE first, so no chunk ends quiet: nothing is gained,
    nothing is wrong."""
    path = FIXTURES / "live/dev-raw/interpreted-C-UTC.txt"
    data = path.read_bytes()
    many, workers = run([(str(path), data)], jobs=2, chunk_size=4096, tz=tz.UTC)
    assert many == run([(str(path), data)], jobs=1, tz=tz.UTC)[0]
    assert workers.local_chunks > workers.fresh_chunks


def _shape(value):
    """A value with the type of every tuple inside it: NamedTuples equal plain tuples, and
    the round trip must give the very classes back."""
    if isinstance(value, tuple):
        return (type(value).__name__, *(_shape(v) for v in value))
    return value


@pytest.mark.parametrize("path", LOGS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_facts_cross_the_process_boundary_unchanged(path):
    """to_plain → marshal → from_plain gives the facts back, class for class, on every event
    (marshal refuses anything but plain values, so this also proves the facts are plain)."""
    reader = FactReader(Options(tz=_zone(path), local_users=False), UserDb(local=False))
    facts = [f for line in path.read_bytes().splitlines() for f in reader.feed(line)] + reader.flush()
    assert facts, "the fixture has events"
    for one in facts:
        back = from_plain(marshal.loads(marshal.dumps(to_plain(one))))
        assert _shape(back) == _shape(one)


def test_abend_facts_cross_unchanged_too():
    """No fixture has an ANOM_ABEND record: the one kind of extra the loop above never sees."""
    line = 'type=ANOM_ABEND msg=audit(1.000:2): auid=1000 uid=1000 gid=1000 ses=3 pid=500 comm="x" exe="/usr/bin/tool" sig=11 res=1'
    reader = FactReader(Options(local_users=False), UserDb(local=False))
    (one,) = reader.feed(line) + reader.flush()
    assert type(one.extras[0]).__name__ == "Abend"
    assert _shape(from_plain(marshal.loads(marshal.dumps(to_plain(one))))) == _shape(one)


@pytest.mark.parametrize("path", [DEV_LOG, FIXTURES / "live/busy-raw/audit.log"], ids=lambda p: p.parent.name)
def test_workers_facts_name_their_lines_in_the_input(path):
    """A worker numbers its chunk's lines from 1; the facts this process applies name the
    line of the input each record came from, as one reader's do (every line, not only those
    a warning shows)."""
    options = Options(passwd=OPTIONS["passwd"], local_users=False)
    users = UserDb.from_options(options.passwd, options.local_users)
    one = FactReader(options, users)
    one.start_file("log")
    data = path.read_bytes()
    expected = [f for line in io.BytesIO(data) for f in one.feed(line)] + one.flush()
    workers = ParallelReader(options, users, 2, on_error=None)
    try:
        got = [f for facts in workers.read(stream_chunks(io.BytesIO(data), "log", 16384)) for f in facts]
        got += workers.finish()
    finally:
        workers.close()
    assert workers.fresh_chunks > 1
    assert [(f.where, f.execs, f.cut, f.execve_where) for f in got] == [
        (f.where, f.execs, f.cut, f.execve_where) for f in expected
    ]
    assert got == expected


@pytest.mark.parametrize("chunk_size", [None, 4096])
def test_lines_read_are_counted_as_one_process_counts_them(chunk_size):
    """`input_lines` (the N of "read error after line N") after each whole input, before and
    after the flush: the workers' count is one process's."""
    inputs = [DEV_LOG.read_bytes(), (FIXTURES / "live/busy-raw/audit.log").read_bytes()]
    seen = {}
    for jobs in (1, 2):
        counts = []
        with Converter(jobs=jobs, **OPTIONS) as conv:
            for number, data in enumerate(inputs):
                for _ in conv.feed_input(io.BytesIO(data), f"in{number}", chunk_size=chunk_size):
                    pass
                counts.append(conv.input_lines)
            conv.flush()
            counts.append(conv.input_lines)
        seen[jobs] = counts
    assert seen[2] == seen[1] == [data.count(b"\n") for data in inputs] + [inputs[-1].count(b"\n")]


def _events(data: bytes) -> list[list[bytes]]:
    """The raw log's lines grouped by event key, in order of first appearance."""
    groups: dict[bytes, list[bytes]] = {}
    for line in data.splitlines(keepends=True):
        key = re.search(rb"msg=audit\(([^)]*)\)", line)
        groups.setdefault(key.group(1) if key else line, []).append(line)
    return list(groups.values())


_REAL = _events(DEV_LOG.read_bytes())


@st.composite
def disordered_logs(draw) -> bytes:
    """Real events in their order, with the disorder of real logs drawn on top."""
    start = draw(st.integers(0, len(_REAL) - 60))
    events = [list(e) for e in _REAL[start : start + draw(st.integers(20, 60))]]
    lines: list[bytes] = []
    for records in events:
        if draw(st.integers(0, 9)) == 0 and records[-1].find(b"type=PROCTITLE") >= 0:
            records = records[:-1]  # a lost PROCTITLE: the event stays open until the window passes
        lines.extend(records)
    for _ in range(draw(st.integers(0, 6))):
        kind, at = draw(st.integers(0, 3)), draw(st.integers(0, len(lines)))
        if kind == 0:  # interleave: a line swaps place with its neighbour
            if 0 < at < len(lines):
                lines[at - 1], lines[at] = lines[at], lines[at - 1]
        elif kind == 1:  # a record far from its event (a late record)
            source = draw(st.integers(0, len(lines) - 1))
            lines.insert(at, lines.pop(source))
        elif kind == 2:  # a duplicated event
            lines[at:at] = draw(st.sampled_from(events))
        else:  # a line no audit form reads, or an irregular one the grammar must
            lines.insert(at, draw(raw_lines()).encode("utf-8", "surrogateescape") + b"\n")
    return b"".join(lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    data=disordered_logs(),
    chunk_size=st.integers(200, 3000),
    window=st.sampled_from([(2, 30_000), (4, 50), (1024, 30_000)]),
)
def test_jobs_write_the_bytes_of_one_process_on_disordered_logs(data, chunk_size, window):
    options = {"max_open_events": window[0], "max_event_age_ms": window[1]}
    many, workers = run([("log", data)], jobs=2, chunk_size=chunk_size, **options)
    assert many == run([("log", data)], jobs=1, **options)[0]
    event(f"chunks read by workers: {'some' if workers.fresh_chunks else 'none'}")
    event(f"chunks read here: {'some' if workers.local_chunks else 'none'}")


def test_a_killed_worker_costs_time_not_events():
    """A worker killed mid-conversion (the OOM killer, say) breaks the pool: its chunks are
    read in this process and a new pool takes over. The output does not change."""
    data = (FIXTURES / "live/busy-raw/audit.log").read_bytes()
    lines = []
    with Converter(jobs=2, **OPTIONS) as conv:
        for batch in conv.feed_input(io.BytesIO(data), "busy", chunk_size=16384):
            if not lines:
                os.kill(next(iter(conv._reader._pool._processes)), signal.SIGKILL)
            lines.extend(event_xml(e) for e in batch)
        lines.extend(event_xml(e) for e in conv.flush())
        workers = conv._reader
    assert lines == run([("busy", data)], jobs=1)[0]["lines"]
    assert workers.local_chunks > 0 and workers.fresh_chunks > workers.local_chunks


def test_convert_takes_jobs_and_leaves_no_worker_behind():
    lines = DEV_LOG.read_text().splitlines()
    one = [event_xml(e) for e in convert(lines, **OPTIONS)]
    many = [event_xml(e) for e in convert(lines, jobs=2, **OPTIONS)]
    assert many == one
    assert multiprocessing.active_children() == []


def test_lines_fed_one_at_a_time_between_whole_inputs_give_the_bytes_of_one_process():
    """A converter with workers reads lines fed one at a time in this process, after what it
    handed out before (the held last chunk of an input), and whole inputs with its workers
    again: one object, the same events as reading everything in one process."""
    data = (FIXTURES / "live/busy-raw/audit.log").read_bytes().splitlines(keepends=True)
    third = len(data) // 3
    parts = [b"".join(data[:third]), data[third : 2 * third], b"".join(data[2 * third :])]

    def converted(jobs: int) -> list[str]:
        lines = []
        with Converter(jobs=jobs, **OPTIONS) as conv:
            for events in conv.feed_input(io.BytesIO(parts[0]), "first", chunk_size=16384):
                lines += map(event_xml, events)
            conv.start_file("fed")
            for line in parts[1]:
                lines += map(event_xml, conv.feed(line))
            for events in conv.feed_input(io.BytesIO(parts[2]), "last", chunk_size=16384):
                lines += map(event_xml, events)
            lines += map(event_xml, conv.flush())
            if jobs > 1:
                assert conv._reader.fresh_chunks > 0, "the workers read the whole inputs"
        return lines

    assert converted(1) == converted(2)
    with pytest.raises(ValueError, match="jobs"):
        Converter(jobs=-1)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audit2sysmon", "--machine-id", "2424faa4", "--hostname", "host", *args],
        capture_output=True, cwd=cwd, check=False,
    )


def test_cli_jobs_write_the_same_output_rejects_and_stats(tmp_path):
    log = tmp_path / "audit.log"
    lines = DEV_LOG.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:300]) + b"garbage line\n" + b"".join(lines[300:]))
    results = []
    for jobs in ("1", "2"):
        rejects = tmp_path / f"rejects{jobs}"
        done = _cli("-j", jobs, "--stats", "--rejects", str(rejects), str(log), cwd=tmp_path)
        results.append((done.returncode, done.stdout, done.stderr, rejects.read_bytes()))
    assert results[0] == results[1]
    assert results[0][3] == b"garbage line\n"


def test_cli_refuses_jobs_with_follow_and_a_negative_count(tmp_path):
    for args in (["--follow", "-j", "2", "x.log"], ["-j", "-1", "x.log"]):
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and b"--jobs" in done.stderr


def test_cli_jobs_convert_everything_before_a_damaged_compressed_stream(tmp_path):
    """A read error ends the file as in one process: every chunk read before it is converted."""
    packed = gzip.compress(DEV_LOG.read_bytes())
    log = tmp_path / "audit.log.1.gz"
    log.write_bytes(packed[: len(packed) * 2 // 3])
    outputs, errors = [], []
    for jobs in ("1", "2"):
        done = _cli("-j", jobs, "--format", "xml", str(log), cwd=tmp_path)
        assert done.returncode == 1 and b"read error" in done.stderr
        outputs.append(done.stdout)
        errors.append(re.findall(rb"read error after line \d+", done.stderr))
    assert outputs[1] == outputs[0] and outputs[0].count(b"\n") > 10
    # The same count of whole lines before the error (the workers number their chunks from 1).
    assert errors[1] == errors[0] and len(errors[0]) == 1
