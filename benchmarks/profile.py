"""Profile the library's hot path on a benchmark input: stages, cProfile, parse, --jobs main process.

Runs what the `api` benchmark runs — `convert()` over the file, events discarded — and, with
`--render`, also renders every event as syslog the way the CLI does, then prints the top
functions by cumulative and by total (own) time. cProfile roughly doubles the run time, so
the default log is smaller than the benchmark's; the proportions are what matters.

Other modes (each on `--input KIND`, one of logs.py's kinds, or `--log FILE`):
    --stages        wall time of the pipeline cut after each stage, no profiler
    --parse         inside the parse stage: cProfile of `Parser.parse` alone (µs and calls
                    per line), objects per line, fast-path share (pure-Python build)
    --fields        what extraction reads of each record type (share of fields read), which
                    lines nothing downstream needs, checked by converting without them
                    (pure-Python build: it wraps `Record`'s methods)
    --main-process  the sequential part of `--jobs`: the main process's CPU per line over
                    pre-extracted facts beside one process's, and the speed-up ceilings
                    (Amdahl, pipelined) that implies for 2, 4, 8 and 16 workers

Usage:
    python benchmarks/profile.py                   # 100,000 lines, top 20
    python benchmarks/profile.py -n 500000 --top 30 --render
    python benchmarks/profile.py --log some/audit.log --save /tmp/a2s.prof
    python benchmarks/profile.py -n 500000 --stages   # wall time per stage, no profiler
    python benchmarks/profile.py --input unique --stages
    python benchmarks/profile.py --input unique --parse
    python benchmarks/profile.py --input diverse --fields
    python benchmarks/profile.py --input diverse --main-process
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
import gc
import io
import pstats
import time
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any

from audit2sysmon import convert


def _load(name: str) -> ModuleType:
    """A module of this directory by file (the directory itself is off sys.path, see above)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


build_log = _load("build_log")
_load("unique_log")
logs = _load("logs")
main_share = _load("main_share")


def workload(log: Path, render: bool) -> int:
    """Convert the whole log; returns the event count so nothing is optimised away."""
    n = 0
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        for event in convert(f):
            if render:
                event.to_syslog()
            n += 1
    return n


def stages(log: Path, repeats: int = 1) -> list[tuple[str, float]]:
    """Wall time of the pipeline cut after each stage, without profiler overhead (best of `repeats`).

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
    best: dict[str, float] = {}
    for _ in range(repeats):  # in turn, so that a busy moment of the machine hits one round only
        for name, step in steps:
            start = time.perf_counter()
            step()
            seconds = time.perf_counter() - start
            best[name] = min(seconds, best.get(name, seconds))
    return list(best.items())


def report(stats: pstats.Stats, key: str, top: int) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(top)
    # Drop pstats' preamble (file name, totals) down to the table itself.
    text = out.getvalue()
    return text[text.index("   ncalls") :] if "   ncalls" in text else text


def _read_lines(log: Path) -> list[str]:
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        return list(f)


def _require_pure(mode: str) -> None:
    import audit2sysmon

    if audit2sysmon.build() != "pure Python":
        raise SystemExit(f"{mode} wraps the package's functions: run it on the pure-Python build "
                         "(PYTHONPATH=src, or a venv with a plain `pip install .`)")


# --------------------------------------------------------------------------- --parse


def parse_profile(log: Path, top: int, repeats: int) -> None:
    """Where the parse stage spends its time, per input line: cProfile of `Parser.parse` alone.

    Also, without the profiler: µs per line, and what the parser builds per line (fields per
    record, how many of them were decoded anew rather than found in a cache, and the memory
    blocks a parsed record keeps alive). The counts wrap `audit.parse._raw_field`, so they need
    the pure-Python build; the timing runs on either.
    """
    import audit2sysmon
    from audit2sysmon.audit import Parser

    lines = _read_lines(log)
    n = len(lines)
    print(f"{log}: {n:,} lines, {audit2sysmon.build()} build")

    def timed() -> float:
        parser = Parser()
        start = time.perf_counter()
        for number, line in enumerate(lines, 1):
            parser.parse(line, number)
        return time.perf_counter() - start

    # The library runs with the collector as its caller set it; the CLI collects every 50,000
    # allocations instead of 700. Parsing a log whose fields miss the caches allocates a lot.
    for label, threshold in (("default collector (700)", 700), ("the CLI's collector (50,000)", 50_000)):
        gc.set_threshold(threshold, 10, 10)
        plain = min(timed() for _ in range(repeats))
        print(f"Parser.parse without profiler, {label}: {plain:.2f}s = {1e6 * plain / n:.2f} µs/line (best of {repeats})")
    gc.set_threshold(700, 10, 10)

    if audit2sysmon.build() == "pure Python":
        _object_counts(lines)
        profiler = cProfile.Profile()
        parser = Parser()
        profiler.enable()
        for number, line in enumerate(lines, 1):
            parser.parse(line, number)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.strip_dirs()
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"\ncProfile of Parser.parse: {total:.2f}s under the profiler ({1e6 * total / n:.2f} µs/line inflated; "
              f"the plain run above is the true total)")
        print(f"{'function':<44} {'calls/line':>10} {'own µs/line':>12} {'cum µs/line':>12} {'own share':>9}")
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
        for (path, line_no, func), (_, ncalls, tottime, cumtime, _) in rows:
            name = f"{Path(path).name}:{line_no}({func})" if line_no else func
            print(f"{name[:44]:<44} {ncalls / n:>10.2f} {1e6 * tottime / n:>12.2f} {1e6 * cumtime / n:>12.2f} "
                  f"{100 * tottime / total:>8.1f}%")
    else:
        print("(the compiled build hides its functions from cProfile: use perf, see benchmarks/README.md)")


def _object_counts(lines: list[str]) -> None:
    """Fields per record, fields decoded anew, blocks kept alive per record (a new parser's
    caches start empty)."""
    from audit2sysmon.audit import Parser, parse

    raw_field = parse._raw_field
    made = 0

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal made
        made += 1
        return raw_field(*args, **kwargs)  # type: ignore[arg-type]

    parse._raw_field = counted  # type: ignore[assignment]
    try:
        parser = Parser()
        gc.collect()
        before = sys.getallocatedblocks()
        records = [parser.parse(line, number) for number, line in enumerate(lines, 1)]
        kept = sys.getallocatedblocks() - before
    finally:
        parse._raw_field = raw_field
    n = len(lines)
    fields = sum(len(r.fields) + len(r.enriched) for r in records if r is not None)
    print(f"per line: {fields / n:.1f} fields (body + ENRICHED tail), {made / n:.2f} decoded anew "
          f"(a new Field each: the others came from the caches), "
          f"{kept / n:.1f} small-object blocks kept alive per parsed record "
          f"(Record, its index dict, fields tuple, location, stamp, new Fields with their str and bytes)")
    del records


# --------------------------------------------------------------------------- --fields


def fields_read(log: Path) -> None:
    """What extraction reads of each record type, and which lines could go unread.

    Extraction (`facts.extract`) is the only stage that reads record bodies: correlation
    reads headers, and everything after reads the facts. So wrapping `Record`'s accessors
    while extracting counts every field that can reach the output. EXECVE records are read
    whole (`argv.execve_argv` walks their fields), which the wrapper counts too.

    Then the claim "these lines are never needed" is checked the hard way: the log is
    converted with and without them and the Sysmon events compared.
    """
    _require_pure("--fields")
    from collections import Counter, defaultdict

    from audit2sysmon import convert
    from audit2sysmon.audit import Correlator, Parser, Record
    from audit2sysmon.mapping import UserDb, argv, facts

    lines = _read_lines(log)
    read: dict[int, set[str]] = defaultdict(set)
    originals = {name: getattr(Record, name) for name in ("get", "text", "value", "enrichment")}

    def wrap(name: str) -> object:
        method = originals[name]

        def wrapper(self: Record, key: str) -> object:
            read[id(self)].add(key if name != "enrichment" else "\\x1d" + key)
            return method(self, key)

        return wrapper

    def whole(fn: Callable[[list[Record]], Any]) -> Callable[[Iterable[Record]], Any]:
        def wrapper(records: Iterable[Record]) -> Any:
            kept = list(records)
            for rec in kept:
                read[id(rec)].update(f.key for f in rec.fields)
            return fn(kept)

        return wrapper

    readers_of_all = ("execve_argv", "execve_damage")  # mapping/argv.py's, as facts.py imported them
    for name in originals:
        setattr(Record, name, wrap(name))
    for name in readers_of_all:
        setattr(facts, name, whole(getattr(argv, name)))
    records_of: Counter[str] = Counter()
    fields_of: Counter[str] = Counter()
    read_of: Counter[str] = Counter()
    unread_records: Counter[str] = Counter()
    keys_read: dict[str, Counter[str]] = defaultdict(Counter)
    failed_exec_lines: Counter[str] = Counter()
    failed_exec_numbers: set[int] = set()  # line numbers of CWD and PATH records of failed execs
    never_read_numbers: set[int] = set()
    users = UserDb({}, False)
    try:
        parser, correlator = Parser(), Correlator()

        def extract(events: object) -> None:
            for event in events:  # type: ignore[attr-defined]
                facts.extract(event, users)
                first = event.records[0]
                syscall = next((r for r in event.records if r.type_name == "SYSCALL"), None)
                failed_exec = (
                    syscall is not None and originals["text"](syscall, "success") == "no"
                    and originals["text"](syscall, "syscall") in ("59", "322")
                )
                for rec in event.records:
                    got = read.pop(id(rec), set())
                    kind = rec.type_name
                    records_of[kind] += 1
                    fields_of[kind] += len(rec.fields)
                    read_of[kind] += len([k for k in got if not k.startswith("\\x1d")])
                    keys_read[kind].update(got)
                    if not got:
                        unread_records[kind] += 1
                        never_read_numbers.add(rec.source.line)
                    if failed_exec:
                        failed_exec_lines[kind] += 1
                        if kind in ("CWD", "PATH"):
                            failed_exec_numbers.add(rec.source.line)
                del first

        for number, line in enumerate(lines, 1):
            record = parser.parse(line, number)
            if record is not None:
                extract(correlator.feed(record))
        extract(correlator.flush())
    finally:
        for name, method in originals.items():
            setattr(Record, name, method)
        for name in readers_of_all:
            setattr(facts, name, getattr(argv, name))

    n = len(lines)
    print(f"{log}: {n:,} lines; fields of each record type that extraction reads")
    print(f"{'record type':<14} {'lines':>8} {'share':>7} {'fields/rec':>10} {'read/rec':>9} {'read share':>10} "
          f"{'never read':>10}  keys read (share of records)")
    for kind, count in records_of.most_common():
        shown = ", ".join(f"{k.replace(chr(92) + 'x1d', 'ENRICHED:')} {100 * c / count:.0f}%"
                          for k, c in keys_read[kind].most_common(12))
        print(f"{kind:<14} {count:>8,} {100 * count / n:>6.1f}% {fields_of[kind] / count:>10.1f} "
              f"{read_of[kind] / count:>9.1f} {100 * read_of[kind] / max(1, fields_of[kind]):>9.1f}% "
              f"{unread_records[kind]:>10,}  {shown}")
    print(f"\nrecords of failed execve events: {sum(failed_exec_lines.values()):,} lines "
          f"({100 * sum(failed_exec_lines.values()) / n:.1f} %): "
          + ", ".join(f"{k} {v:,}" for k, v in failed_exec_lines.most_common()))
    print(f"records no field of which is read: {len(never_read_numbers):,} lines ({100 * len(never_read_numbers) / n:.1f} %): "
          + ", ".join(f"{k} {v:,}" for k, v in unread_records.most_common()))

    def events_of(kept: list[str]) -> list[tuple[int, str]]:
        return [(e.event_id, e.to_xml()) for e in convert(kept, hostname="vm", passwd=None)]

    reference = events_of(lines)
    for what, dropped in (
        ("records no field of which is read", never_read_numbers),
        ("CWD and PATH records of failed execs", failed_exec_numbers),
    ):
        kept = [line for number, line in enumerate(lines, 1) if number not in dropped]
        same = events_of(kept) == reference
        print(f"converted without the {len(dropped):,} lines of {what}: "
              f"{'the same' if same else 'DIFFERENT'} {len(reference):,} Sysmon events")


# --------------------------------------------------------------------------- --main-process


WORKERS = (2, 4, 8, 16)  # the --jobs values whose ceilings --main-process prints


def main_process(log: Path, repeats: int) -> None:
    """The sequential part of `--jobs`: what the main process does per line, against one process.

    Workers parse, correlate and extract chunks; the main process cuts the input into chunks,
    unpacks each worker's result, rebuilds the facts (`plain.from_plain`), applies them
    (`Converter.apply`: process table, Sysmon fields) and renders and writes them. Here the
    workers' part runs first, in this process, with the worker's own function
    (`parallel.read_chunk`) over the chunks `parallel.stream_chunks` cuts; then the main
    process's part is timed alone over those packed results, as often as `repeats` asks
    (best of CPU time). One process is timed the same way: a `Converter` reading the file
    and an `EventWriter` writing syslog, as the CLI does, without the interpreter's start-up.
    The CLI's garbage-collector setting (threshold 50,000) is used throughout.

    Timing the main process alone over facts extracted beforehand is the point: on a machine
    with few cores the workers and the main process compete for them, and a `--jobs` run
    says more about the cores than about how much of the work stays sequential. The ceilings
    printed are what that sequential share allows with N workers on enough cores.
    """
    import os
    import resource
    import subprocess
    from dataclasses import fields as dc_fields

    import audit2sysmon
    from audit2sysmon._pipeline.parallel import Chunk, Packed, read_chunk, stream_chunks
    from audit2sysmon.cli.output import EventWriter
    from audit2sysmon.convert import Converter
    from audit2sysmon.mapping import UserDb
    from audit2sysmon.options import Options
    from audit2sysmon.sysmon.render import formatter

    options = Options()
    settings = {f.name: getattr(options, f.name) for f in dc_fields(options)}
    passwd = UserDb.from_options(options.passwd, options.local_users).passwd
    with open(log, "rb") as f:
        n = sum(1 for _ in f)
    gc.set_threshold(50_000, 20, 20)

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        return min(times)

    def one_process() -> None:
        conv = Converter(options)
        with open(log, "rb") as lines, open(os.devnull, "wb") as out:
            writer = EventWriter(out, formatter("syslog"))
            for events in conv.feed_input(lines, str(log)):
                writer.write(events)
            writer.write(conv.flush())
            writer.flush()

    def cut() -> list[Chunk]:
        with open(log, "rb") as f:
            return list(stream_chunks(f, str(log)))

    t_cut = best(cut)
    chunks = cut()
    packed: list[Packed] = []

    def work() -> None:
        packed.clear()
        packed.extend(read_chunk(settings, passwd, chunk) for chunk in chunks)

    t_work = best(work)
    t_one = best(one_process)  # after the workers' part, which paid for the one-time costs (the grammar)
    facts_bytes = sum(len(data) for data, _ in packed)

    def main_part(apply: bool, render: bool, rebuild: bool = True) -> None:
        main_share.main_part(packed, options, rebuild=rebuild, apply=apply, render=render)

    t_unpack = best(lambda: main_part(False, False, rebuild=False))
    t_rebuild = best(lambda: main_part(False, False))
    t_apply = best(lambda: main_part(True, False))
    t_main = best(lambda: main_part(True, True))

    def whole(jobs: int) -> tuple[float, float]:
        """(CPU s, wall s) of `audit2sysmon LOG -o /dev/null -f syslog --jobs N`, best of `repeats`."""
        exe = Path(sys.executable).with_name("audit2sysmon")
        out = []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([str(exe), str(log), "-o", os.devnull, "-f", "syslog", "--jobs", str(jobs)], check=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            out.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall))
        return min(out)

    cli_cpu, cli_wall = whole(1)
    jobs_cpu, jobs_wall = whole(2)

    def us(seconds: float) -> str:
        return f"{1e6 * seconds / n:6.2f} µs/line"

    main_total = t_cut + t_main
    print(f"{log}: {n:,} lines, {len(chunks)} chunks, {audit2sysmon.build()} build; CPU time, best of {repeats}")
    print(f"one process (Converter + syslog writer)  {us(t_one)}  (without start-up)")
    print(f"workers' part (parallel.read_chunk)      {us(t_work)}  (parse, correlate, extract, pack; "
          f"{facts_bytes / n:.0f} bytes of marshalled facts per line)")
    print("main process, alone, over the packed results:")
    print(f"  cut the input into chunks              {us(t_cut)}")
    print(f"  unpack results, check seams            {us(t_unpack)}")
    print(f"  + rebuild facts (from_plain)           {us(t_rebuild - t_unpack)}")
    print(f"  + apply (Converter.apply)              {us(t_apply - t_rebuild)}")
    print(f"  + render syslog and write              {us(t_main - t_apply)}")
    print(f"  main process in all                    {us(main_total)}")
    print(f"whole CLI processes, start-up included: --jobs 1 {cli_wall:.2f} s wall, {cli_cpu:.2f} s CPU "
          f"({n / cli_wall:,.0f} lines/s); --jobs 2 {jobs_wall:.2f} s wall, {jobs_cpu:.2f} s CPU in all processes "
          f"({n / jobs_wall:,.0f} lines/s, {cli_wall / jobs_wall:.2f}x)")

    share = main_total / t_one
    print(f"\nCPU per line: one process {1e6 * t_one / n:.2f} µs, main process {1e6 * main_total / n:.2f} µs: "
          f"serial share f = {share:.2f}")
    print("speed-up ceilings over one process with N workers, on enough cores:")
    print("  Amdahl: 1 / (f + (1 - f) / N), the main process's work never overlapping the workers'")
    print("  pipelined: the main process applies chunk k while the workers read chunk k+1, bounded by")
    print("             the main process (one / main) and by the workers' CPU (N x one / workers)")
    print(f"  {'N':>4} {'Amdahl':>8} {'pipelined':>10}")
    for k in WORKERS:
        print(f"  {k:>4} {1 / (share + (1 - share) / k):>7.2f}x {min(1 / share, k * t_one / t_work):>9.2f}x")
    print(f"  {'∞':>4} {1 / share:>7.2f}x {1 / share:>9.2f}x")
    cores = os.cpu_count() or 1
    print(f"with this machine's {cores} cores for workers and main process together: "
          f"at most {cores * t_one / (t_work + main_total):.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--lines", type=int, default=100_000, help="generated log size (default 100000)")
    ap.add_argument("--log", type=Path, help="profile this existing log instead")
    ap.add_argument("--input", choices=logs.KINDS, help="profile this benchmark input (logs.py) instead")
    ap.add_argument("--top", type=int, default=20, help="rows per table (default 20)")
    ap.add_argument("--render", action="store_true", help="also render each event as syslog")
    ap.add_argument("--stages", action="store_true", help="time the pipeline stage by stage instead")
    ap.add_argument("--parse", action="store_true", help="profile inside the parse stage (per line)")
    ap.add_argument("--fields", action="store_true", help="which fields extraction reads; unneeded lines")
    ap.add_argument("--main-process", action="store_true", help="the sequential part of --jobs against one process")
    ap.add_argument("--repeats", type=int, default=3,
                    help="--stages, --parse, --main-process: best of this many runs (default 3)")
    ap.add_argument("--save", type=Path, help="also write the raw profile (for snakeviz, pstats)")
    args = ap.parse_args(argv)
    if args.log:
        log = args.log
    elif args.input:
        log = logs.ensure(args.input).path
    else:
        log = build_log.ensure_log(args.lines)[0]

    if args.parse:
        parse_profile(log, args.top, args.repeats)
        return 0
    if args.fields:
        fields_read(log)
        return 0
    if args.main_process:
        main_process(log, args.repeats)
        return 0

    if args.stages:
        with open(log, "rb") as f:
            lines = sum(1 for _ in f)
        print(f"{log}: {lines} lines; cumulative wall time per pipeline stage (no profiler, best of {args.repeats})")
        previous = 0.0
        for name, seconds in stages(log, args.repeats):
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
