"""The benchmark log generator: repeated captures must stay distinct and correlate as the original.

A benchmark on a log whose copies collide (same serial and time) or whose pids no longer link
parent to child would measure a different workload than a real host produces, so these tests
check the generated log through the library itself.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from audit2sysmon import convert
from audit2sysmon.audit.parse import Parser

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_log", ROOT / "benchmarks" / "build_log.py")
assert _spec is not None and _spec.loader is not None
build_log = importlib.util.module_from_spec(_spec)
sys.modules["build_log"] = build_log
_spec.loader.exec_module(build_log)

BUSY = ROOT / "tests/fixtures/live/busy-raw/audit.log"
DEV = ROOT / "tests/fixtures/live/dev-raw/audit.log"


@pytest.fixture(scope="module")
def templates():
    return [build_log.load_template(p) for p in build_log.SOURCES]


@pytest.fixture(scope="module")
def two_rounds(templates):
    """Both captures twice: four blocks, every template shifted once."""
    count = 2 * sum(len(t.lines) for t in templates)
    return [text for text, _ in build_log.generate(templates, count)]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()


def test_first_block_is_the_capture_unchanged(templates, two_rounds):
    original = _lines(BUSY)
    assert [line.rstrip("\n") for line in two_rounds[: len(original)]] == original


def test_exact_line_count_and_deterministic(templates):
    a = list(build_log.generate(templates, 20_001))
    b = list(build_log.generate(templates, 20_001))
    assert len(a) == 20_001
    assert a == b


def test_events_of_different_blocks_never_share_a_key(two_rounds):
    parser = Parser()
    busy, dev = len(_lines(BUSY)), len(_lines(DEV))
    bounds = [0, busy, busy + dev, 2 * busy + dev, 2 * (busy + dev)]
    keys_per_block = []
    for lo, hi in itertools.pairwise(bounds):
        records = [parser.parse(line) for line in two_rounds[lo:hi]]
        keys_per_block.append({(r.node, r.stamp.msec, r.stamp.serial) for r in records})
    for i, keys in enumerate(keys_per_block):
        for other in keys_per_block[i + 1 :]:
            assert not keys & other


def test_shift_keeps_the_grouping_and_the_pid_links(two_rounds):
    """Block 3 (busy again) is block 1 with one offset for time, serial and pid each."""
    parser = Parser()
    busy, dev = len(_lines(BUSY)), len(_lines(DEV))
    first = [parser.parse(line) for line in two_rounds[:busy]]
    again = [parser.parse(line) for line in two_rounds[busy + dev : 2 * busy + dev]]
    d_ms = {b.stamp.msec - a.stamp.msec for a, b in zip(first, again)}
    d_serial = {b.stamp.serial - a.stamp.serial for a, b in zip(first, again)}
    d_pid = {
        int(b.text(k)) - int(a.text(k))
        for a, b in zip(first, again)
        for k in ("pid", "ppid")
        if a.text(k) is not None
    }
    assert len(d_ms) == len(d_serial) == len(d_pid) == 1
    assert d_ms.pop() > 0 and d_serial.pop() > 0 and d_pid.pop() > 0
    # Everything but the stamp and the pids is the original text.
    strip = re.compile(r"msg=audit\([^)]*\)|\b(?:pid|ppid)=\d+")
    assert [strip.sub("", line) for line in two_rounds[busy + dev : 2 * busy + dev]] == [
        strip.sub("", line + "\n") for line in _lines(BUSY)
    ]


def test_each_copy_converts_like_the_original(templates, two_rounds):
    """Twice both captures give twice the events of each kind, and the count the generator claims."""
    once = Counter(e.event_id for e in convert(_lines(BUSY) + _lines(DEV), hostname="vm", passwd=None))
    twice = Counter(e.event_id for e in convert(two_rounds, hostname="vm", passwd=None))
    assert twice == Counter({k: 2 * v for k, v in once.items()})
    claimed = sum(is_exec for _, is_exec in build_log.generate(templates, len(two_rounds)))
    assert twice[1] == claimed


def test_pids_wrap_below_pid_max(monkeypatch, templates):
    """Long logs reuse pids as a real kernel does, instead of writing impossible ones."""
    monkeypatch.setattr(build_log, "PID_MAX", templates[0].max_pid + 2000)
    pids = [
        int(m.group(1))
        for text, _ in build_log.generate(templates, 6 * len(templates[0].lines))
        for m in re.finditer(r" p?pid=(\d+)", text)
    ]
    assert max(pids) < build_log.PID_MAX
    assert min(pids) == build_log.FIRST_PID  # wrapped: the block restarted at the bottom
