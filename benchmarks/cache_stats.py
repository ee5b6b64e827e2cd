"""How often the parser's caches hit on a log, and how many lines the fast path reads.

The parser (audit2sysmon/parse.py) keeps bounded caches, each emptied when full:

- per set of decoding rules (plain, kernel-only, EXECVE, ENRICHED tail) a table of decoded
  `key=value` pairs (`_Decoded.pairs`) and one of whole bodies (`_Decoded.bodies`; for a
  SYSCALL record its part from ` auid=` on, the pairs before it go to the pair table);
- `_types_seen` (the `type=` value → name, number, rules) and `_stamps` (stamp → EventId);
- the `lru_cache`s `_hexable` (may this key hold hex?) and `calls._name_of` (arch and
  syscall number → name).

A figure measured on a log whose bodies repeat (build_log.py's) may owe most of its speed to
them, so the benchmark reports their hit rates beside each input's timings. This script
counts without changing the package: before converting, it puts a counting dict in place of
each table and wraps the functions that choose the record type and the parse path. That only
works on the pure-Python build (a compiled module's functions and classes cannot be
patched), so run it on the sources: `run.py` starts it with `PYTHONPATH=<repo>/src`. The
caches and their bounds are the same code in both builds, so their hit rates are too.

It converts the whole log with `convert()` (as the `api` benchmark tool does), so every
lookup the conversion makes is counted, and prints the figures as JSON.

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


class CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts `get` hits and misses (per record type), stores and clears."""

    current_type = ""  # set by the wrapped `_type_of`: the record being parsed

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.stores = 0
        self.clears = 0

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key, default)
        if value is None:
            self.misses[CountingDict.current_type] += 1
        else:
            self.hits[CountingDict.current_type] += 1
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.stores += 1
        super().__setitem__(key, value)

    def clear(self) -> None:
        self.clears += 1
        super().clear()

    def summary(self) -> dict[str, Any]:
        hits, misses = sum(self.hits.values()), sum(self.misses.values())
        return {
            "lookups": hits + misses,
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else None,
            "stores": self.stores,
            "clears": self.clears,
        }


def _rate(hits: int, misses: int) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def measure(log: Path) -> dict[str, Any]:
    """Convert `log` with counting caches in place; hit rates and parse paths as a dict."""
    import audit2sysmon
    from audit2sysmon import calls, convert, parse

    if audit2sysmon.build() != "pure Python":
        raise SystemExit("cache_stats.py needs the pure-Python sources (PYTHONPATH=<repo>/src): "
                         f"this interpreter imports the {audit2sysmon.build()} build")

    tables: list[CountingDict] = []

    def counting(name: str) -> CountingDict:
        table = CountingDict(name)
        tables.append(table)
        return table

    rules_names = {(False, False): "plain", (False, True): "kernel-only", (True, True): "EXECVE"}
    for rules_key, decoded in parse._BODY_RULES.items():
        decoded.pairs = counting(f"pairs[{rules_names[rules_key]}]")
        decoded.bodies = counting(f"bodies[{rules_names[rules_key]}]")
    parse._ENRICHED_RULES.pairs = counting("pairs[ENRICHED tail]")
    parse._ENRICHED_RULES.bodies = counting("bodies[ENRICHED tail]")
    parse._types_seen = counting("_types_seen")
    parse._stamps = counting("_stamps")
    parse._hexable.cache_clear()
    calls._name_of.cache_clear()

    type_of = parse._type_of
    fast_parse = parse._fast_parse
    grammar_parse = parse._grammar_parse
    paths: Counter[str] = Counter()
    lines_by_type: Counter[str] = Counter()

    def counted_type_of(written: str) -> Any:
        known = type_of(written)
        CountingDict.current_type = known[0]
        return known

    def counted_fast_parse(line: str, source: Any) -> Any:
        CountingDict.current_type = ""
        record = fast_parse(line, source)
        if record is not None:
            paths["fast path"] += 1
            lines_by_type[record.type_name] += 1
        return record

    def counted_grammar_parse(text: str, zone: Any, source: Any) -> Any:
        paths["grammar"] += 1
        record = grammar_parse(text, zone, source)
        lines_by_type[record.type_name] += 1
        return record

    parse._type_of = counted_type_of
    parse._fast_parse = counted_fast_parse
    parse._grammar_parse = counted_grammar_parse

    lines = 0
    with open(log, encoding="utf-8", errors="surrogateescape") as f:

        def counted_lines() -> Any:
            nonlocal lines
            for line in f:
                lines += 1
                yield line

        for _ in convert(counted_lines()):
            pass

    by_type: dict[str, dict[str, Any]] = {}
    for kind, n in lines_by_type.most_common():
        row: dict[str, Any] = {"lines": n}
        for what in ("pairs", "bodies"):
            hits = sum(t.hits[kind] for t in tables if t.name.startswith(what) and "ENRICHED" not in t.name)
            misses = sum(t.misses[kind] for t in tables if t.name.startswith(what) and "ENRICHED" not in t.name)
            row[what] = {"hits": hits, "misses": misses, "hit_rate": _rate(hits, misses)}
        by_type[kind] = row
    lru = {}
    for name, fn in (("_hexable", parse._hexable), ("calls._name_of", calls._name_of)):
        info = fn.cache_info()
        lru[name] = {
            "lookups": info.hits + info.misses,
            "hits": info.hits,
            "misses": info.misses,
            "hit_rate": _rate(info.hits, info.misses),
            "size": info.currsize,
            "maxsize": info.maxsize,
        }
    return {
        "build": "pure Python (sources)",
        "lines": lines,
        "fast_path_lines": paths["fast path"],
        "grammar_lines": paths["grammar"],
        "other_lines": lines - paths["fast path"] - paths["grammar"],
        "fast_path_share": paths["fast path"] / lines if lines else None,
        "tables": {t.name: t.summary() for t in tables},
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
