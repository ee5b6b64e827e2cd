"""The unique-bodies benchmark log: nothing repeats, yet it converts like the capture it rewrites.

A worst case for the parser's caches is only worth measuring if it is still a log of real
events: the same record layout, the same Sysmon events, parents that still link to children.
These tests check that through the library itself (parser, correlator, converter), not
through the generator's own reading of its output, and that the caches really miss on it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from audit2sysmon import convert
from audit2sysmon.audit import Correlator, Parser

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests/fixtures/live/diverse-excerpt/audit.log"
# The record types whose bodies identify a process, a file or a command (SYSCALL: from auid=).
IDENTIFYING = ("SYSCALL", "EXECVE", "PATH", "CWD", "PROCTITLE")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build_log = _load("build_log")
unique_log = _load("unique_log")


@pytest.fixture(scope="module")
def source() -> list[str]:
    return unique_log.read_source(SOURCE)


def _generate(source: list[str], copies: int, scope: str = "event", seed: int = 1) -> tuple[list[str], int]:
    pairs = list(unique_log.UniqueLog(source, seed, scope).lines(copies * len(source)))
    return [text for text, _ in pairs], sum(is_exec for _, is_exec in pairs)


def _events(lines: list[str]) -> Counter[int]:
    return Counter(e.event_id for e in convert(lines, hostname="vm", passwd=None))


def _bodies(lines: list[str]):
    """(record type, body as (key, raw) pairs, the event's executable) of every identifying
    record, read by the library's parser and correlator."""
    parser, correlator = Parser(), Correlator()
    events = []
    for line in lines:
        record = parser.parse(line)
        if record is not None:
            events.extend(correlator.feed(record))
    events.extend(correlator.flush())
    for event in events:
        syscall = next((r for r in event.records if r.type_name == "SYSCALL"), None)
        owner = syscall.text("exe") if syscall is not None else None
        for rec in event.records:
            if rec.type_name not in IDENTIFYING:
                continue
            pairs = tuple((f.key, f.raw) for f in rec.fields)
            if rec.type_name == "SYSCALL":
                pairs = pairs[[k for k, _ in pairs].index("auid") :]  # what the parser looks up whole
            yield rec.type_name, pairs, owner


@pytest.mark.parametrize("scope", unique_log.SCOPES)
def test_converts_to_the_same_sysmon_events_as_its_source(source, scope):
    """Twice the rewritten capture gives twice its ProcessCreate, Terminate, File and Network events."""
    once = _events(source)
    lines, execs = _generate(source, 2, scope)
    twice = _events(lines)
    assert twice == Counter({k: 2 * v for k, v in once.items()})
    assert twice[1] == execs  # one ProcessCreate per successful exec, as the generator counts them
    assert set(once) >= {1, 3, 5, 11, 23}  # the excerpt exercises every kind


def test_no_identifying_body_repeats(source):
    """Scope `event`: no SYSCALL tail, EXECVE, PATH, CWD or PROCTITLE body occurs twice in two copies."""
    seen = Counter((kind, pairs) for kind, pairs, _ in _bodies(_generate(source, 2)[0]))
    repeated = {key: n for key, n in seen.items() if n > 1}
    assert not repeated
    # while the capture itself repeats most of them
    original = Counter((kind, pairs) for kind, pairs, _ in _bodies(source))
    assert sum(n - 1 for n in original.values()) > len(source) // 4


def test_image_scope_repeats_only_within_one_process_image(source):
    """Scope `image`: a body may recur only in events of one process image. Each image has an
    executable name of its own (salted), shared by the children it forks until they exec."""
    owners = defaultdict(set)
    for kind, pairs, owner in _bodies(_generate(source, 2, "image")[0]):
        owners[(kind, pairs)].add(owner)
    shared = {key: who for key, who in owners.items() if len(who) > 1}
    assert not shared
    assert any(len(who) == 1 for who in owners.values())


def test_pids_never_repeat_between_copies_and_links_hold(source):
    parser = Parser()
    lines, _ = _generate(source, 2)
    half = len(source)

    def pids(part: list[str]) -> set[str]:
        out: set[str] = set()
        for line in part:
            rec = parser.parse(line)
            out.update(v for v in (rec.text("pid"), rec.text("ppid")) if v is not None)
        return out

    first, second = pids(lines[:half]), pids(lines[half:])
    assert not first & second
    assert len(first) == len(second) == len(pids(source))  # a pid maps to one new pid per copy


def test_layout_and_encoding_of_every_line_are_kept(source):
    """Each rewritten line has the source line's type, keys and kinds of value (quoted, hex, …)."""
    parser = Parser()
    lines, _ = _generate(source, 1)
    for old, new in zip(source, lines):
        a, b = parser.parse(old), parser.parse(new)
        assert (a.type_name, [(f.key, f.kind) for f in a.fields], a.enriched) == (
            b.type_name, [(f.key, f.kind) for f in b.fields], b.enriched
        )


def test_deterministic_per_seed(source):
    assert _generate(source, 1, seed=7) == _generate(source, 1, seed=7)
    assert _generate(source, 1, seed=7)[0] != _generate(source, 1, seed=8)[0]


def test_build_log_repeats_an_enriched_capture_line_for_line():
    """ENRICHED lines hold a 0x1D byte, which str.splitlines() would split them at."""
    template = build_log.load_template(SOURCE)
    original = SOURCE.read_text(encoding="utf-8", errors="surrogateescape").rstrip("\n").split("\n")
    assert len(template.lines) == len(original)
    generated = [text.rstrip("\n") for text, _ in build_log.generate([template], len(original))]
    assert generated == original


def _cache_stats(log: Path) -> dict:
    """benchmarks/cache_stats.py in a process of its own, on the pure-Python sources."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/cache_stats.py"), "--quiet", str(log)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(proc.stdout)


def test_caches_miss_on_the_unique_log_and_hit_on_repeats(source, tmp_path):
    """The point of the unique log: the body caches of the identifying records never hit on it,
    while the same capture repeated (build_log.py's way) hits them most of the time."""
    unique, repeated = tmp_path / "unique.log", tmp_path / "repeated.log"
    unique.write_text("".join(_generate(source, 2)[0]), encoding="utf-8", errors="surrogateescape")
    template = build_log.load_template(SOURCE)
    repeated.write_text("".join(t for t, _ in build_log.generate([template], 2 * len(source))),
                        encoding="utf-8", errors="surrogateescape")
    on_unique, on_repeated = _cache_stats(unique), _cache_stats(repeated)
    for stats in (on_unique, on_repeated):
        assert stats["lines"] == 2 * len(source)
        assert stats["fast_path_lines"] + stats["grammar_lines"] + stats["other_lines"] == stats["lines"]
        for table in stats["tables"].values():
            assert table["hits"] + table["misses"] == table["lookups"]
    for kind in IDENTIFYING:
        assert on_unique["by_record_type"][kind]["bodies"]["hits"] == 0, kind
        assert on_repeated["by_record_type"][kind]["bodies"]["hit_rate"] >= 0.5, kind
