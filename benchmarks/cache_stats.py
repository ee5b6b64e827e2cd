"""How often the parser's caches hit on a log, and how many lines the fast path reads.

Each `Parser` keeps bounded caches in a `_Caches` object of its own (audit/parse.py), each
table emptied when full:

- per set of decoding rules (plain, kernel-only, EXECVE, ENRICHED tail) a table of decoded
  `key=value` pairs (`_Decoded.pairs`) and one of whole bodies (`_Decoded.bodies`; for a
  SYSCALL record its part from ` auid=` on, the pairs before it go to the pair table);
- `heads` (what a line holds before ` msg=audit(` -> node, type name, number, rules), `types`
  (the `type=` value -> name, number, rules: asked when `heads` misses) and `stamps` (stamp
  -> `Stamp`);
- and, process-wide, the memo of syscall names (`audit/syscalls.py`'s `_name_of`, an
  `lru_cache`: arch and syscall number -> name).

A figure measured on a log whose bodies repeat (build_log.py's) may owe most of its speed to
them, so the benchmark reports their hit rates beside each input's timings. This script
counts without changing the package: before converting, it puts a subclass of `_Caches` in
its place, whose instances hold counting dicts instead of plain ones, and wraps the
functions that take the fast path or the grammar. That only works on the pure-Python build
(a compiled module's classes cannot be subclassed from Python nor its functions replaced),
so run it on the sources: `run.py` starts it with `PYTHONPATH=<repo>/src`. The caches and
their bounds are the same code in both builds, so their hit rates are too.

It converts the whole log with `convert()` (as the `api` benchmark tool does), so every
lookup the conversion makes is counted, and prints the figures as JSON. Should more than
one parser be made, the figures are the sum over all of them.

Usage:
    PYTHONPATH=src python benchmarks/cache_stats.py LOG [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class Tally:
    """What the tables of one name (say `bodies[EXECVE]`) met, summed over every parser."""

    current_type = ""  # set by the counting `heads` and `type_of`: the record being parsed

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.stores = 0
        self.clears = 0

    def summary(self) -> dict[str, Any]:
        hits, misses = sum(self.hits.values()), sum(self.misses.values())
        return {
            "lookups": hits + misses,
            "hits": hits,
            "misses": misses,
            "hit_rate": _rate(hits, misses),
            "stores": self.stores,
            "clears": self.clears,
        }


class CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts `get` hits and misses (per record type), stores and clears in its tally.

    The parser's tables are only ever read with `get`, written with `[]=` and emptied with
    `clear` (audit/parse.py), so these three see every use."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key, default)
        if value is None:
            self.tally.misses[Tally.current_type] += 1
        else:
            self.tally.hits[Tally.current_type] += 1
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.tally.stores += 1
        super().__setitem__(key, value)

    def clear(self) -> None:
        self.tally.clears += 1
        super().clear()


class CountingHeads(CountingDict):
    """The `heads` table, which every fast-path line asks first: a hit also says which record
    type the lookups that follow are for (a miss goes on to `type_of`, which says it)."""

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key, default)
        if value is not None:
            Tally.current_type = value[1]
        return value


def _rate(hits: int, misses: int) -> float | None:
    return hits / (hits + misses) if hits + misses else None


RULES_NAMES = {(False, False): "plain", (False, True): "kernel-only", (True, True): "EXECVE"}


def measure(log: Path) -> dict[str, Any]:
    """Convert `log` with counting caches in place; hit rates and parse paths as a dict."""
    import audit2sysmon
    from audit2sysmon import convert
    from audit2sysmon.audit import grammar, parse, syscalls

    if audit2sysmon.build() != "pure Python":
        raise SystemExit("cache_stats.py needs the pure-Python sources (PYTHONPATH=<repo>/src): "
                         f"this interpreter imports the {audit2sysmon.build()} build")

    tallies: dict[str, Tally] = {}

    def counting(name: str, kind: type[CountingDict] = CountingDict) -> CountingDict:
        tally = tallies.get(name)
        if tally is None:
            tally = tallies[name] = Tally(name)
        return kind(tally)

    class CountingCaches(parse._Caches):
        """A parser's caches whose every table counts; `heads` and `type_of` also say which
        record type the lookups that follow are for."""

        __slots__ = ()

        def __init__(self) -> None:
            super().__init__()
            for rules, decoded in self.rules.items():
                decoded.pairs = counting(f"pairs[{RULES_NAMES[rules]}]")
                decoded.bodies = counting(f"bodies[{RULES_NAMES[rules]}]")
            self.enriched.pairs = counting("pairs[ENRICHED tail]")
            self.enriched.bodies = counting("bodies[ENRICHED tail]")
            self.heads = counting("heads", CountingHeads)
            self.types = counting("types")
            self.stamps = counting("stamps")

        def type_of(self, written: str) -> Any:
            known = super().type_of(written)
            Tally.current_type = known[0]
            return known

    syscalls._name_of.cache_clear()
    fast_parse = parse._fast_parse
    grammar_parse = grammar.grammar_parse
    paths: Counter[str] = Counter()
    lines_by_type: Counter[str] = Counter()

    def counted_fast_parse(line: str, source: Any, caches: Any) -> Any:
        Tally.current_type = ""
        record = fast_parse(line, source, caches)
        if record is not None:
            paths["fast path"] += 1
            lines_by_type[record.type_name] += 1
        return record

    def counted_grammar_parse(text: str, zone: Any, source: Any, caches: Any) -> Any:
        paths["grammar"] += 1
        record = grammar_parse(text, zone, source, caches)
        lines_by_type[record.type_name] += 1
        return record

    parse._Caches = CountingCaches  # type: ignore[misc]
    parse._fast_parse = counted_fast_parse
    grammar.grammar_parse = counted_grammar_parse

    lines = 0
    with open(log, encoding="utf-8", errors="surrogateescape") as f:

        def counted_lines() -> Any:
            nonlocal lines
            for line in f:
                lines += 1
                yield line

        for _ in convert(counted_lines()):
            pass

    if not tallies:
        raise SystemExit("no parser used the counting caches: audit/parse.py no longer makes its "
                         "caches with `_Caches()`, and this script needs updating")
    by_type: dict[str, dict[str, Any]] = {}
    for kind, n in lines_by_type.most_common():
        row: dict[str, Any] = {"lines": n}
        for what in ("pairs", "bodies"):
            kept = [t for t in tallies.values() if t.name.startswith(what) and "ENRICHED" not in t.name]
            hits = sum(t.hits[kind] for t in kept)
            misses = sum(t.misses[kind] for t in kept)
            row[what] = {"hits": hits, "misses": misses, "hit_rate": _rate(hits, misses)}
        by_type[kind] = row
    info = syscalls._name_of.cache_info()
    lru = {
        "syscalls._name_of": {
            "lookups": info.hits + info.misses,
            "hits": info.hits,
            "misses": info.misses,
            "hit_rate": _rate(info.hits, info.misses),
            "size": info.currsize,
            "maxsize": info.maxsize,
        }
    }
    return {
        "build": "pure Python (sources)",
        "lines": lines,
        "fast_path_lines": paths["fast path"],
        "grammar_lines": paths["grammar"],
        "other_lines": lines - paths["fast path"] - paths["grammar"],
        "fast_path_share": paths["fast path"] / lines if lines else None,
        "tables": {t.name: t.summary() for t in tallies.values()},
        "lru_caches": lru,
        "by_record_type": by_type,
    }


def print_summary(stats: dict[str, Any], title: str = "") -> None:
    """A compact table of the figures `measure` returns."""
    lines = stats["lines"]
    print(f"{title}caches ({stats['build']}): {lines:,} lines, fast path {stats['fast_path_lines']:,} "
          f"({100 * (stats['fast_path_share'] or 0):.1f} %), grammar {stats['grammar_lines']:,}, "
          f"skipped/rejected {stats['other_lines']:,}")
    print(f"  {'table':<24} {'lookups':>10} {'hit rate':>9} {'stores':>9} {'emptied':>8}")
    for name, row in stats["tables"].items():
        if not row["lookups"]:
            continue
        print(f"  {name:<24} {row['lookups']:>10,} {_pct(row['hit_rate']):>9} {row['stores']:>9,} {row['clears']:>8,}")
    for name, row in stats["lru_caches"].items():
        print(f"  {name + ' (lru)':<24} {row['lookups']:>10,} {_pct(row['hit_rate']):>9} {row['size']:>9,} {'-':>8}")
    print(f"  {'record type':<24} {'lines':>10} {'pairs hit':>9} {'bodies hit':>10}")
    for kind, row in stats["by_record_type"].items():
        print(f"  {kind:<24} {row['lines']:>10,} {_pct(row['pairs']['hit_rate']):>9} {_pct(row['bodies']['hit_rate']):>10}")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f} %"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--quiet", action="store_true", help="print the JSON only (what run.py reads)")
    args = ap.parse_args(argv)
    stats = measure(args.log)
    if args.quiet:
        print(json.dumps(stats))
        return 0
    print_summary(stats)
    if args.json:
        args.json.write_text(json.dumps(stats, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
