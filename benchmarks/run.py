"""Benchmark audit2sysmon against laurel and ausearch on three kinds of input log.

Every tool runs as a whole process (start-up included, as a user would run it), several
times, interleaved round-robin (inputs and tools) so machine noise spreads over all alike;
the median wall time is reported. Peak RSS is the kernel's own per-process accounting, read
through GNU `/usr/bin/time -f %M`: `os.wait4` alone would report at least this script's own
RSS, because Linux carries the parent's high-water mark across fork+exec into the child's maxrss.

Inputs (logs.py; `--inputs`, default all three, the headline first):
    diverse     a real high-variety ENRICHED capture (benchmarks/data/diverse-dev), 216,813
                lines; `--diverse-copies K` repeats it with shifted stamps and pids
    unique      the diverse capture's events rewritten so that no body repeats (unique_log.py)
    repetitive  build_log.py's log: real captures repeated, caches hit 95-100 %

Tools:
    cli              `audit2sysmon LOG -o /dev/null -f syslog`
    cli-jobs         the same with `--jobs N` (`--jobs` below, default 2): N worker processes
    cli-main.xml     `cli` applying Microsoft's published Sysmon for Linux configuration main.xml
                     (`-c tests/fixtures/config/main.xml`): what a configuration costs
    cli-collect-all  `cli` applying Microsoft's collect-all.xml: the configuration machinery
                     with every event still written
    api              the library alone: `convert()` over the file, events discarded
    laurel           `laurel -c CONFIG < LOG > /dev/null` with `[auditlog] file = "-"` (JSON on stdout)
    ausearch         `ausearch -i -if LOG > /dev/null`

The two configuration tools run on the headline input only (the first of `--inputs`, or
`--log`): what a configuration costs per event is the same on every input.

Usage:
    python benchmarks/run.py                       # all three inputs, 3 runs each, all tools
    python benchmarks/run.py --inputs diverse -r 5 --json benchmarks/results-diverse.json
    python benchmarks/run.py --inputs repetitive -n 5000000 -r 1 --tools cli,api
    python benchmarks/run.py --log /path/audit.log --json /tmp/results.json

Noise: other processes on the machine skew wall time. Before each run the script waits
until the CPUs are quiet (at most `--max-background` cores busy over a 0.5 s sample, waiting
at most `--max-wait` s), and it measures the CPU other processes used during the run
(/proc/stat minus the run's own CPU); a run during which they used more than
`--max-background` cores is repeated (`--retries`) and kept in the JSON as discarded.
Before and after the tools it also times a CPU-bound loop alone and as two processes at
once (parallel capacity): on a machine with two real cores that is about 2.0; `--jobs`
cannot beat it.

Cache hit rates: for each input, cache_stats.py converts the log once on the pure-Python
sources with counting caches in place (a compiled build cannot be instrumented; the caches
are the same code), and the figures go beside the timings (`--no-caches` skips it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import logs
from build_log import DEFAULT_LINES
from cache_stats import _pct

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The CLI with a Sysmon configuration (`-c`): Microsoft's own, as published with Sysmon for Linux.
CONFIGS = {
    "cli-main.xml": ROOT / "tests" / "fixtures" / "config" / "main.xml",
    "cli-collect-all": ROOT / "tests" / "fixtures" / "config" / "collect-all.xml",
}
TOOLS = ("cli", "cli-jobs", *CONFIGS, "api", "laurel", "ausearch")
LAUREL_VERSION = "0.5.1"

# The library alone: convert() over the file's lines, every event dropped; the ProcessCreate
# count goes to stdout so the run can be checked against the log's known count.
API_SNIPPET = """
import sys
from audit2sysmon import convert
n = 0
with open(sys.argv[1], encoding="utf-8", errors="surrogateescape") as f:
    for event in convert(f):
        n += event.event_id == 1
print(n)
"""

# laurel's own defaults (enrichment on, as a user would run it), writing JSON lines to stdout.
LAUREL_CONFIG = """directory = "{directory}"
statusreport-period = 0

[auditlog]
file = "-"
"""


@dataclass(slots=True)
class Run:
    """One process: wall time, CPU, the kernel's peak RSS for it, and how it ended."""

    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kb: int
    returncode: int
    timed_out: bool = False
    stdout: str = ""
    # CPU cores that other processes kept busy during the run (/proc/stat minus the run's own CPU)
    background_cores: float | None = None
    discarded: bool = False  # run again because the background was busier than allowed


@dataclass(slots=True)
class ToolResult:
    """All runs of one tool and the figures derived from them."""

    name: str
    command: list[str] = field(default_factory=list)
    version: str | None = None
    skipped: str | None = None
    runs: list[Run] = field(default_factory=list)
    clean_runs: int = 0  # runs during which other processes stayed below --max-background
    median_wall_s: float | None = None
    lines_per_s: float | None = None
    process_create_per_s: float | None = None
    peak_rss_mb: float | None = None
    median_cpu_s: float | None = None
    lines_per_s_vs_laurel: float | None = None
    peak_rss_vs_laurel: float | None = None
    error: str | None = None


GNU_TIME = "/usr/bin/time"


def run_once(cmd: Sequence[str], stdin_path: str | None, timeout: float, capture: bool) -> Run:
    """Start `cmd`, wait for it with wait4 (CPU of it and its children), kill it after `timeout` s.

    Under GNU time (a 2 MB process) the tool's peak RSS is its own; without it, wait4's figure
    is used and includes this script's RSS at fork time (see the module docstring).
    """
    rss_file = None
    if os.path.exists(GNU_TIME):
        fd, rss_file = tempfile.mkstemp(prefix="a2s-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file, *cmd]
    with open(stdin_path or os.devnull, "rb") as stdin:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=stdin,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    # Drain the pipes in threads, or a chatty child would block on a full pipe.
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda s, buf: buf.append(s.read()), args=(s, buf))
        for s, buf in ((proc.stdout, out), (proc.stderr, err))
        if s is not None
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    timer.cancel()
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = b"".join(out).decode(errors="replace").strip()
    if proc.returncode != 0 and not timed_out.is_set():
        text = (text + "\n" + b"".join(err).decode(errors="replace")).strip()[-2000:]
    maxrss_kb = usage.ru_maxrss
    if rss_file is not None:
        with open(rss_file) as f:
            last = f.read().strip().splitlines()[-1:]  # after "Command exited with ..." if any
        os.unlink(rss_file)
        if last and last[0].isdigit():
            maxrss_kb = int(last[0])
    return Run(
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        maxrss_kb=maxrss_kb,
        returncode=proc.returncode,
        timed_out=timed_out.is_set(),
        stdout=text,
    )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (/proc/stat: not idle,
    not waiting for I/O; time stolen by the hypervisor counts as busy, it is lost to us too)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def background_now(seconds: float = 0.5) -> float:
    """CPU cores other processes keep busy right now (sampled while this script sleeps)."""
    before = cpu_busy_s()
    time.sleep(seconds)
    return (cpu_busy_s() - before) / seconds


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Wait until other processes use at most `limit` cores (or `max_wait` s passed); the last sample."""
    deadline = time.monotonic() + max_wait
    busy = background_now()
    while busy > limit and time.monotonic() < deadline:
        print(f"  waiting: other processes keep {busy:.2f} cores busy", file=sys.stderr)
        time.sleep(2)
        busy = background_now()
    return busy


def measured_run(cmd: Sequence[str], stdin_path: str | None, timeout: float, capture: bool) -> Run:
    """`run_once`, with the CPU other processes used meanwhile (the machine's busy time minus
    the run's own user+sys CPU, per second of wall time)."""
    before = cpu_busy_s()
    run = run_once(cmd, stdin_path, timeout, capture)
    others = cpu_busy_s() - before - run.user_s - run.sys_s
    run.background_cores = max(0.0, others) / run.wall_s if run.wall_s > 0 else None
    return run


def ensure_laurel(install: bool) -> tuple[str | None, str | None]:
    """(path, None) when laurel is usable, else (None, why not); apt-installs it when allowed."""
    path = shutil.which("laurel") or (os.path.exists("/usr/sbin/laurel") and "/usr/sbin/laurel") or None
    if path is None and install:
        if os.geteuid() != 0:
            return None, "laurel is not installed and installing it with apt needs root"
        proc = subprocess.run(
            ["apt-get", "install", "-y", "laurel"],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if proc.returncode != 0:
            return None, f"apt-get install laurel failed: {proc.stderr.strip()[-500:]}"
        path = shutil.which("laurel") or "/usr/sbin/laurel"
    if path is None:
        return None, "laurel is not installed (`apt-get install laurel`, or run without --no-install-laurel)"
    return path, None


def tool_version(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else None


def prepare(name: str, log: Path, workdir: Path, install_laurel: bool, jobs: int) -> tuple[ToolResult, str | None]:
    """The command for tool `name` and the file it reads on stdin (or why it is skipped)."""
    result = ToolResult(name)
    stdin: str | None = None
    if name in ("cli", "cli-jobs", *CONFIGS):
        exe = Path(sys.executable).with_name("audit2sysmon")
        if importlib.util.find_spec("audit2sysmon.cli") is None:
            result.skipped = "audit2sysmon.cli does not exist yet"
        elif not exe.exists() and shutil.which("audit2sysmon") is None:
            result.skipped = "the audit2sysmon command is not installed in this environment"
        else:
            result.command = [str(exe) if exe.exists() else "audit2sysmon", str(log), "-o", os.devnull, "-f", "syslog"]
            if name == "cli-jobs":
                result.command += ["--jobs", str(jobs)]
            if name in CONFIGS:
                result.command += ["-c", str(CONFIGS[name])]
            result.version = tool_version([result.command[0], "--version"])
    elif name == "api":
        result.command = [sys.executable, "-c", API_SNIPPET, str(log)]
        result.version = tool_version([sys.executable, "-c", "import audit2sysmon; print(audit2sysmon.__version__)"])
    elif name == "laurel":
        path, why = ensure_laurel(install_laurel)
        if path is None:
            result.skipped = why
        else:
            config = workdir / "laurel.toml"
            config.write_text(LAUREL_CONFIG.format(directory=workdir))
            result.command = [path, "-c", str(config)]
            result.version = tool_version([path, "--version"])
            if result.version != LAUREL_VERSION:
                print(f"note: laurel is {result.version}; the published figures were measured against {LAUREL_VERSION}", file=sys.stderr)
            stdin = str(log)
    elif name == "ausearch":
        path = shutil.which("ausearch") or "/usr/sbin/ausearch"
        if not os.path.exists(path):
            result.skipped = "ausearch is not installed (apt-get install auditd)"
        else:
            result.command = [path, "-i", "-if", str(log)]
            result.version = tool_version([path, "-v"])
    else:
        raise ValueError(name)
    return result, stdin


def summarise(result: ToolResult, lines: int, process_create: int, max_background: float) -> None:
    """Medians over the runs that finished; only over the clean ones (other processes used at
    most `max_background` cores) when there are any, which `clean_runs` counts."""
    good = [r for r in result.runs if r.returncode == 0 and not r.timed_out and not r.discarded]
    bad = [r for r in result.runs if r.returncode != 0 or r.timed_out]
    if bad:
        first = bad[0]
        result.error = "timed out" if first.timed_out else f"exit {first.returncode}: {first.stdout}"
    clean = [r for r in good if r.background_cores is not None and r.background_cores <= max_background]
    result.clean_runs = len(clean)
    good = clean or good
    if not good:
        return
    median = statistics.median(r.wall_s for r in good)
    result.median_wall_s = median
    result.lines_per_s = lines / median
    result.process_create_per_s = process_create / median
    result.peak_rss_mb = max(r.maxrss_kb for r in good) / 1024
    result.median_cpu_s = statistics.median(r.user_s + r.sys_s for r in good)


def compare(results: dict[str, ToolResult]) -> None:
    laurel = results.get("laurel")
    if laurel is None or laurel.lines_per_s is None:
        return
    for result in results.values():
        if result.lines_per_s is not None:
            result.lines_per_s_vs_laurel = result.lines_per_s / laurel.lines_per_s
            result.peak_rss_vs_laurel = result.peak_rss_mb / laurel.peak_rss_mb  # type: ignore[operator]


def machine() -> dict[str, object]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        **interpreter(),
    }


def interpreter() -> dict[str, object]:
    """Which build of Python ran the cli and api tools: its real path, how it was configured,
    and whether it runs from a shared libpython.

    The pure-Python build's speed is the interpreter's. Distributions build theirs with
    profile-guided and link-time optimisation (Debian's is also linked statically), and
    Debian 12's python3 ran the pure build in 9 % fewer instructions, and faster still by the
    clock, than a plain `./configure --enable-shared` build, as pyenv makes by default. A
    figure is only comparable with one from the same interpreter.
    """
    return {
        "python_executable": os.path.realpath(sys.executable),
        "python_configure": sysconfig.get_config_var("CONFIG_ARGS"),
        "python_shared_libpython": shared_libpython(),
    }


def shared_libpython() -> bool | None:
    """Whether this interpreter runs from a shared libpython (None: cannot tell)."""
    try:
        with open("/proc/self/maps") as f:
            return any("libpython" in line for line in f)
    except OSError:
        return None


def build() -> str:
    """Which audit2sysmon the cli and api tools run (`audit2sysmon.build()`): both run this
    interpreter's installed package."""
    try:
        import audit2sysmon
    except ImportError:
        return "not installed"
    return audit2sysmon.build()


PROBE = "x = 0\nfor i in range(20_000_000):\n    x += i\n"


def parallel_capacity() -> float:
    """How much CPU-bound work two processes get done at once, compared with one.

    Two real cores give about 2.0. Virtual CPUs that share a physical core (or a host that
    is busy) give less, and that caps what `--jobs` can gain on this machine.
    """

    def timed(copies: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", PROBE]) for _ in range(copies)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - start

    one = min(timed(1) for _ in range(2))
    two = min(timed(2) for _ in range(2))
    return 2 * one / two


@dataclass(slots=True)
class Bench:
    """One input log with its tools' results and its cache hit rates."""

    log: logs.InputLog
    tools: dict[str, ToolResult]
    stdin: dict[str, str | None]
    caches: dict[str, object] | None = None


def print_table(benches: list[Bench]) -> None:
    for bench in benches:
        log = bench.log
        print(f"{log.kind:<10} {log.path} ({log.lines:,} lines, {log.process_create:,} ProcessCreate, "
              f"{int(log.meta['bytes']) / log.lines:.0f} bytes/line)")  # type: ignore[call-overload]
    head = (
        f"{'input':<10} {'tool':<15} {'median s':>9} {'CPU s':>7} {'lines/s':>11} {'PC/s':>9} {'peak RSS':>10} "
        f"{'x laurel':>9} {'RSS x laurel':>13} {'clean':>6}"
    )
    print(head)
    print("-" * len(head))
    for bench in benches:
        for r in bench.tools.values():
            name = f"{bench.log.kind:<10} {r.name:<15}"
            if r.skipped:
                print(f"{name} skipped: {r.skipped}")
                continue
            if r.lines_per_s is None:
                print(f"{name} failed: {r.error}")
                continue
            ratio = f"{r.lines_per_s_vs_laurel:.2f}" if r.lines_per_s_vs_laurel is not None else "-"
            rss_ratio = f"{r.peak_rss_vs_laurel:.2f}" if r.peak_rss_vs_laurel is not None else "-"
            finished = [run for run in r.runs if not run.discarded and run.returncode == 0]
            clean = f"{r.clean_runs}/{len(finished)}"
            print(
                f"{name} {r.median_wall_s:>9.2f} {r.median_cpu_s:>7.2f} {r.lines_per_s:>11,.0f} "
                f"{r.process_create_per_s:>9,.0f} {r.peak_rss_mb:>8.1f}MB {ratio:>9} {rss_ratio:>13} {clean:>6}"
            )
            if r.error:
                print(f"{'':<26} (some runs failed: {r.error})")


def _config_cost(base: ToolResult, res: ToolResult) -> tuple[float, float, float] | None:
    """(CPU s, extra CPU s, wall ratio) of `res` against `base`; None when either has no median."""
    if base.median_cpu_s is None or base.median_wall_s is None or res.median_cpu_s is None or res.median_wall_s is None:
        return None
    return res.median_cpu_s, res.median_cpu_s - base.median_cpu_s, res.median_wall_s / base.median_wall_s


def print_config_cost(benches: list[Bench]) -> None:
    """What applying a configuration costs the CLI, against the same CLI without one (`cli`),
    on the inputs where both ran: CPU time per line, and wall time as a ratio."""
    rows = []
    for bench in benches:
        base = bench.tools.get("cli")
        for name in CONFIGS:
            res = bench.tools.get(name)
            cost = _config_cost(base, res) if base is not None and res is not None else None
            if cost is not None:
                rows.append((bench.log, name, *cost))
    if not rows:
        return
    print("\nconfiguration cost (CLI with -c against the CLI without; medians):")
    print(f"{'input':<10} {'tool':<15} {'CPU s':>7} {'CPU µs/line':>12} {'extra µs/line':>14} {'wall x cli':>11}")
    for log, name, cpu, extra, wall in rows:
        print(f"{log.kind:<10} {name:<15} {cpu:>7.2f} {1e6 * cpu / log.lines:>12.2f} "
              f"{1e6 * extra / log.lines:>+14.2f} {wall:>11.2f}")


CACHE_TYPES = ("SYSCALL", "PROCTITLE", "PATH", "CWD", "EXECVE")


def cache_figures(log: Path) -> dict[str, object]:
    """cache_stats.py over `log` in a process of its own, on the pure-Python sources."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, str(HERE / "cache_stats.py"), "--quiet", str(log)],
        check=False, capture_output=True, text=True, env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-1000:]}
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _rate(tables: dict[str, dict[str, int]], prefix: str) -> str:
    """The hit rate of the body tables (`prefix` "bodies") or the pair tables ("pairs") of
    every set of decoding rules together, ENRICHED tails aside."""
    kept = [t for name, t in tables.items() if name.startswith(prefix) and "ENRICHED" not in name]
    total = sum(t["lookups"] for t in kept)
    return _pct(sum(t["hits"] for t in kept) / total if total else None)


def print_caches(benches: list[Bench]) -> None:
    """Per input: fast-path share, overall hit rates of the pair and body tables, and the
    body hit rate of the record types that make most lines."""
    rows = [(b.log.kind, b.caches) for b in benches if b.caches is not None]
    if not rows:
        return
    print("\nparser caches (pure-Python sources; hit = found in the table):")
    head = f"{'input':<10} {'fast path':>9} {'pairs':>7} {'bodies':>7} {'stamps':>7} " + " ".join(
        f"{'body ' + t:>14}" for t in CACHE_TYPES
    )
    print(head)
    for kind, stats in rows:
        if "error" in stats:
            print(f"{kind:<10} failed: {stats['error']}")
            continue
        tables: dict[str, dict[str, int]] = stats["tables"]  # type: ignore[assignment]

        by_type: dict[str, dict[str, dict[str, float]]] = stats["by_record_type"]  # type: ignore[assignment]
        # `_stamps` in the JSONs written while the parser's caches were module globals
        stamps = tables["stamps"] if "stamps" in tables else tables["_stamps"]
        print(
            f"{kind:<10} {_pct(stats['fast_path_share']):>9} {_rate(tables, 'pairs'):>7} {_rate(tables, 'bodies'):>7} "  # type: ignore[arg-type]
            f"{_pct(stamps['hits'] / max(1, stamps['lookups'])):>7} "
            + " ".join(f"{_pct(by_type[t]['bodies']['hit_rate']) if t in by_type else '-':>14}" for t in CACHE_TYPES)
        )


def run_tool(bench: Bench, name: str, args: argparse.Namespace, label: str) -> None:
    """One run of one tool on one input, repeated while the background was too busy."""
    res = bench.tools[name]
    for attempt in range(args.retries + 1):
        wait_for_quiet(args.max_background, args.max_wait)
        run = measured_run(res.command, bench.stdin[name], args.timeout, capture=name == "api")
        res.runs.append(run)
        state = "TIMEOUT" if run.timed_out else f"rc={run.returncode}"
        bg = run.background_cores if run.background_cores is not None else 0.0
        print(f"{label} {bench.log.kind:<10} {name:<15} {run.wall_s:8.2f}s  {run.maxrss_kb / 1024:7.1f} MB  "
              f"{state}  bg {bg:.2f}", file=sys.stderr)
        if name == "api" and run.returncode == 0 and run.stdout != str(bench.log.process_create):
            print(f"warning: the library wrote {run.stdout} ProcessCreate events, "
                  f"the log holds {bench.log.process_create}", file=sys.stderr)
        if bg <= args.max_background or attempt == args.retries or run.timed_out:
            return
        run.discarded = True
        print(f"  the background used {bg:.2f} cores: run again", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", default=",".join(logs.KINDS), help=f"comma list of {', '.join(logs.KINDS)}")
    ap.add_argument("-n", "--lines", type=int, default=DEFAULT_LINES, help="repetitive log size (default 500000)")
    ap.add_argument("--diverse-copies", type=int, default=1, help="repeat the diverse capture K times (default 1)")
    ap.add_argument("--unique-lines", type=int, help="unique log size (default: the diverse capture's)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the unique log (default 1)")
    ap.add_argument("--log", type=Path, help="benchmark this existing log instead of the inputs")
    ap.add_argument("-r", "--repetitions", type=int, default=3, help="runs per tool and input; the median is reported")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {', '.join(TOOLS)}")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes of the cli-jobs tool (default 2)")
    ap.add_argument("--timeout", type=float, default=900, help="kill a single run after this many seconds")
    ap.add_argument("--max-background", type=float, default=0.3,
                    help="CPU cores other processes may use during a run before it is repeated (default 0.3)")
    ap.add_argument("--retries", type=int, default=2, help="repeat a run this often at most when the background was busy")
    ap.add_argument("--max-wait", type=float, default=120, help="wait at most this many s for quiet CPUs before a run")
    ap.add_argument("--no-caches", dest="caches", action="store_false", help="do not measure cache hit rates")
    ap.add_argument("--json", type=Path, default=HERE / "results-diverse.json",
                    help="where to write the figures (default benchmarks/results-diverse.json)")
    ap.add_argument("--no-install-laurel", dest="install_laurel", action="store_false",
                    help="do not apt-get install laurel when it is missing")
    ap.add_argument("--summary", type=Path, metavar="JSON",
                    help="print the tables of an earlier run's JSON again (medians over its clean runs)")
    args = ap.parse_args(argv)
    if args.summary:
        earlier = load_benches(args.summary, args.max_background)
        print_table(earlier)
        print_config_cost(earlier)
        print_caches(earlier)
        return 0
    names = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(names) - set(TOOLS)
    if unknown or not names:
        ap.error(f"--tools takes a comma list of {', '.join(TOOLS)}")
    kinds = [k.strip() for k in args.inputs.split(",") if k.strip()]
    if not args.log and (not kinds or set(kinds) - set(logs.KINDS)):
        ap.error(f"--inputs takes a comma list of {', '.join(logs.KINDS)}")

    if args.log:
        inputs = [logs.existing(args.log)]
    else:
        print(f"preparing the inputs {', '.join(kinds)} ...", file=sys.stderr)
        inputs = [
            logs.ensure(kind, lines=args.lines, copies=args.diverse_copies, unique_lines=args.unique_lines, seed=args.seed)
            for kind in kinds
        ]

    capacity = parallel_capacity()
    print(f"parallel capacity: two CPU-bound processes get {capacity:.2f}x the work of one done", file=sys.stderr)
    load_before = os.getloadavg()
    benches: list[Bench] = []
    with tempfile.TemporaryDirectory(prefix="a2s-bench-") as tmp:
        for log in inputs:
            prepared = {
                name: prepare(name, log.path, Path(tmp), args.install_laurel, args.jobs)
                for name in names
                if name not in CONFIGS or log is inputs[0]
            }
            bench = Bench(log, {n: r for n, (r, _) in prepared.items()}, {n: stdin for n, (_, stdin) in prepared.items()})
            benches.append(bench)
            if args.caches:
                print(f"cache hit rates on {log.kind} ...", file=sys.stderr)
                bench.caches = cache_figures(log.path)
        for name, res in benches[0].tools.items():
            if res.skipped:
                print(f"{name}: skipped ({res.skipped})", file=sys.stderr)
        for rep in range(args.repetitions):
            for bench in benches:
                with open(bench.log.path, "rb") as f:  # keep it in the page cache
                    while f.read(1 << 20):
                        pass
                for name, res in bench.tools.items():
                    if res.skipped or (res.runs and res.runs[-1].timed_out):
                        continue
                    run_tool(bench, name, args, f"[{rep + 1}/{args.repetitions}]")
            # after every round, so that an interrupted run keeps what it measured
            write_json(args, benches, capacity, None, load_before, rounds=rep + 1)
    capacity_after = parallel_capacity()

    print(f"\naudit2sysmon build: {build()}")
    linked = {True: "from a shared libpython", False: "linked statically", None: "linking unknown"}
    print(f"python: {platform.python_version()} {os.path.realpath(sys.executable)} ({linked[shared_libpython()]})")
    print_table(benches)
    print_config_cost(benches)
    print_caches(benches)
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    print(f"parallel capacity: two CPU-bound processes get {capacity:.2f}x (before) and {capacity_after:.2f}x "
          f"(after) the work of one done (cli-jobs: --jobs {args.jobs})")
    write_json(args, benches, capacity, capacity_after, load_before, rounds=args.repetitions)
    print(f"\nfigures written to {args.json}")
    return 0


def load_benches(path: Path, max_background: float) -> list[Bench]:
    """The inputs and runs of a JSON this script wrote, summarised again."""
    data = json.loads(path.read_text())
    known = {f.name for f in fields(ToolResult)}
    benches = []
    for entry in data["inputs"]:
        log = logs.InputLog(entry["input"], Path(entry["log"]["path"]), entry["log"])
        tools = {}
        for name, raw in entry["tools"].items():
            res = ToolResult(**{k: v for k, v in raw.items() if k in known and k != "runs"})
            res.runs = [Run(**run) for run in raw["runs"]]
            summarise(res, log.lines, log.process_create, max_background)
            tools[name] = res
        compare(tools)
        benches.append(Bench(log, tools, {}, entry.get("caches")))
    print(f"{path}: {data['audit2sysmon_build']} build, {data['when']}, medians over runs with at most "
          f"{max_background} background cores where there are any")
    return benches


def write_json(
    args: argparse.Namespace,
    benches: list[Bench],
    capacity: float,
    capacity_after: float | None,
    load_before: tuple[float, float, float],
    rounds: int,
) -> None:
    """The figures so far (`rounds` of `args.repetitions` done) to `args.json`."""
    for bench in benches:
        for res in bench.tools.values():
            summarise(res, bench.log.lines, bench.log.process_create, args.max_background)
        compare(bench.tools)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "audit2sysmon_build": build(),
        "parallel_capacity_2_processes": capacity,
        "parallel_capacity_2_processes_after": capacity_after,
        "cli_jobs": args.jobs,
        # Other work on the machine skews wall time (not CPU time): the load averages and
        # each run's background_cores tell.
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "max_background_cores": args.max_background,
        "repetitions": args.repetitions,
        "rounds_done": rounds,
        "rss_source": "GNU time %M" if os.path.exists(GNU_TIME) else "os.wait4 (includes this script's RSS)",
        "laurel_config": LAUREL_CONFIG,
        "headline": benches[0].log.kind,
        "inputs": [
            {
                "input": bench.log.kind,
                "log": {**bench.log.meta, "path": str(bench.log.path)},
                "caches": bench.caches,
                "tools": {name: asdict(res) for name, res in bench.tools.items()},
            }
            for bench in benches
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
