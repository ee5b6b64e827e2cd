"""Profile the library's hot path (cProfile) on a generated RAW log.

Runs what the `api` benchmark runs — `convert()` over the file, events discarded — and, with
`--render`, also renders every event as syslog the way the CLI does, then prints the top
functions by cumulative and by total (own) time. cProfile roughly doubles the run time, so
the default log is smaller than the benchmark's; the proportions are what matters.

Usage:
    python benchmarks/profile.py                   # 100,000 lines, top 20
    python benchmarks/profile.py -n 500000 --top 30 --render
    python benchmarks/profile.py --log some/audit.log --save /tmp/a2s.prof
    python benchmarks/profile.py -n 500000 --stages   # wall time per stage, no profiler
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# This file is named profile.py, and cProfile imports the stdlib `profile`: take this
# script's directory off the path first, or cProfile would import this file instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Sequence

from audit2sysmon import convert

_spec = importlib.util.spec_from_file_location("build_log", HERE / "build_log.py")
assert _spec is not None and _spec.loader is not None
build_log = importlib.util.module_from_spec(_spec)
sys.modules["build_log"] = build_log  # dataclasses look their module up by name
_spec.loader.exec_module(build_log)


def workload(log: Path, render: bool) -> int:
    """Convert the whole log; returns the event count so nothing is optimised away."""
    n = 0
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        for event in convert(f):
            if render:
                event.to_syslog()
            n += 1
    return n


def stages(log: Path) -> list[tuple[str, float]]:
    """Wall time of the pipeline cut after each stage, without profiler overhead.

    cProfile inflates cheap, frequently called functions; these cumulative timings show
    where the time really goes: read -> parse -> correlate -> extract (what a `--jobs` worker
    does) -> apply (convert()) -> render.
    """
    from audit2sysmon._pipeline.reader import FactReader
    from audit2sysmon.audit import Correlator, Parser
    from audit2sysmon.mapping import UserDb
    from audit2sysmon.options import Options

    def read() -> None:
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            for _ in f:
                pass

    def parse() -> None:
        parser = Parser()
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            for n, line in enumerate(f, 1):
                parser.parse(line, n)

    def correlate() -> None:
        parser, correlator = Parser(), Correlator()
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            for n, line in enumerate(f, 1):
                record = parser.parse(line, n)
                if record is not None:
                    correlator.feed(record)
        correlator.flush()

    def extract() -> None:
        reader = FactReader(Options(), UserDb())
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                reader.feed(line)
        reader.flush()

    steps = [
        ("read lines", read),
        ("+ parse", parse),
        ("+ correlate", correlate),
        ("+ extract facts", extract),
        ("+ apply (convert())", lambda: workload(log, render=False)),
        ("+ render syslog", lambda: workload(log, render=True)),
    ]
    out = []
    for name, step in steps:
        start = time.perf_counter()
        step()
        out.append((name, time.perf_counter() - start))
    return out


def report(stats: pstats.Stats, key: str, top: int) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(top)
    # Drop pstats' preamble (file name, totals) down to the table itself.
    text = out.getvalue()
    return text[text.index("   ncalls") :] if "   ncalls" in text else text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--lines", type=int, default=100_000, help="generated log size (default 100000)")
    ap.add_argument("--log", type=Path, help="profile this existing RAW log instead")
    ap.add_argument("--top", type=int, default=20, help="rows per table (default 20)")
    ap.add_argument("--render", action="store_true", help="also render each event as syslog")
    ap.add_argument("--stages", action="store_true", help="time the pipeline stage by stage instead")
    ap.add_argument("--save", type=Path, help="also write the raw profile (for snakeviz, pstats)")
    args = ap.parse_args(argv)
    log = args.log if args.log else build_log.ensure_log(args.lines)[0]

    if args.stages:
        with open(log, "rb") as f:
            lines = sum(1 for _ in f)
        print(f"{log}: {lines} lines; cumulative wall time per pipeline stage (no profiler)")
        previous = 0.0
        for name, seconds in stages(log):
            print(f"  {name:<20} {seconds:7.2f}s  (stage {seconds - previous:+6.2f}s)  {lines / seconds:>10,.0f} lines/s")
            previous = seconds
        return 0

    profiler = cProfile.Profile()
    profiler.enable()
    events = workload(log, args.render)
    profiler.disable()
    if args.save:
        profiler.dump_stats(args.save)

    stats = pstats.Stats(profiler)
    stats.strip_dirs()
    print(f"{log}: {events} events, {stats.total_tt:.2f}s under cProfile")  # type: ignore[attr-defined]
    print(f"\n== top {args.top} by cumulative time ==")
    print(report(stats, "cumulative", args.top))
    print(f"== top {args.top} by total (own) time ==")
    print(report(stats, "tottime", args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
