"""Benchmark audit2sysmon against laurel and ausearch on one generated RAW log.

Every tool runs as a whole process (start-up included, as a user would run it), several
times, interleaved round-robin so machine noise spreads over all tools alike; the median
wall time is reported. Peak RSS is the kernel's own per-process accounting, read through
GNU `/usr/bin/time -f %M`: `os.wait4` alone would report at least this script's own RSS,
because Linux carries the parent's high-water mark across fork+exec into the child's maxrss.

Tools:
    cli       `audit2sysmon LOG -o /dev/null -f syslog`
    cli-jobs  the same with `--jobs N` (`--jobs` below, default 2): N worker processes
    api       the library alone: `convert()` over the file, events discarded
    laurel    `laurel -c CONFIG < LOG > /dev/null` with `[auditlog] file = "-"` (JSON on stdout)
    ausearch  `ausearch -i -if LOG > /dev/null`

Usage:
    python benchmarks/run.py                       # 500,000 lines, 3 runs each, all tools
    python benchmarks/run.py -n 5000000 -r 1 --tools cli,api
    python benchmarks/run.py --log /path/audit.log --json /tmp/results.json

Parallel capacity: before the tools run, the script times a CPU-bound loop alone and as two
processes at once, and prints how much work two processes get done compared with one. On
a machine with two real cores that is about 2.0; `--jobs` cannot beat it.
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
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_log import _EXEC, DEFAULT_LINES, ensure_log

HERE = Path(__file__).resolve().parent
TOOLS = ("cli", "cli-jobs", "api", "laurel", "ausearch")
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


@dataclass(slots=True)
class ToolResult:
    """All runs of one tool and the figures derived from them."""

    name: str
    command: list[str] = field(default_factory=list)
    version: str | None = None
    skipped: str | None = None
    runs: list[Run] = field(default_factory=list)
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
    if name in ("cli", "cli-jobs"):
        exe = Path(sys.executable).with_name("audit2sysmon")
        if importlib.util.find_spec("audit2sysmon.cli") is None:
            result.skipped = "audit2sysmon.cli does not exist yet"
        elif not exe.exists() and shutil.which("audit2sysmon") is None:
            result.skipped = "the audit2sysmon command is not installed in this environment"
        else:
            result.command = [str(exe) if exe.exists() else "audit2sysmon", str(log), "-o", os.devnull, "-f", "syslog"]
            if name == "cli-jobs":
                result.command += ["--jobs", str(jobs)]
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
                print(f"note: laurel is {result.version}, the issue's yardstick is {LAUREL_VERSION}", file=sys.stderr)
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


def summarise(result: ToolResult, lines: int, process_create: int) -> None:
    good = [r for r in result.runs if r.returncode == 0 and not r.timed_out]
    bad = [r for r in result.runs if r not in good]
    if bad:
        first = bad[0]
        result.error = "timed out" if first.timed_out else f"exit {first.returncode}: {first.stdout}"
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
    }


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


def print_table(results: dict[str, ToolResult], meta: dict[str, object]) -> None:
    print(f"\nlog: {meta['path']} ({meta['lines']:,} lines, {meta['process_create']:,} ProcessCreate)")
    print(f"audit2sysmon build: {build()}")
    head = (
        f"{'tool':<9} {'median s':>9} {'CPU s':>7} {'lines/s':>11} {'PC/s':>9} {'peak RSS':>10} "
        f"{'x laurel':>9} {'RSS x laurel':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in results.values():
        if r.skipped:
            print(f"{r.name:<9} skipped: {r.skipped}")
            continue
        if r.lines_per_s is None:
            print(f"{r.name:<9} failed: {r.error}")
            continue
        ratio = f"{r.lines_per_s_vs_laurel:.2f}" if r.lines_per_s_vs_laurel is not None else "-"
        rss_ratio = f"{r.peak_rss_vs_laurel:.2f}" if r.peak_rss_vs_laurel is not None else "-"
        print(
            f"{r.name:<9} {r.median_wall_s:>9.2f} {r.median_cpu_s:>7.2f} {r.lines_per_s:>11,.0f} {r.process_create_per_s:>9,.0f} "
            f"{r.peak_rss_mb:>8.1f}MB {ratio:>9} {rss_ratio:>13}"
        )
        if r.error:
            print(f"{'':<9} (some runs failed: {r.error})")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--lines", type=int, default=DEFAULT_LINES, help="generated log size (default 500000)")
    ap.add_argument("--log", type=Path, help="benchmark this existing RAW log instead of a generated one")
    ap.add_argument("-r", "--repetitions", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {', '.join(TOOLS)}")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes of the cli-jobs tool (default 2)")
    ap.add_argument("--timeout", type=float, default=900, help="kill a single run after this many seconds")
    ap.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the figures")
    ap.add_argument("--no-install-laurel", dest="install_laurel", action="store_false",
                    help="do not apt-get install laurel when it is missing")
    args = ap.parse_args(argv)
    names = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(names) - set(TOOLS)
    if unknown or not names:
        ap.error(f"--tools takes a comma list of {', '.join(TOOLS)}")

    if args.log:
        log = args.log.resolve()
        # the same "is a ProcessCreate" rule the generator counts with
        lines = process_create = 0
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                lines += 1
                process_create += bool(_EXEC.search(line))
        meta: dict[str, object] = {"lines": lines, "process_create": process_create, "bytes": log.stat().st_size}
    else:
        print(f"building a {args.lines:,}-line log ...", file=sys.stderr)
        log, meta = ensure_log(args.lines)
    meta = {**meta, "path": str(log)}
    with open(log, "rb") as f:  # warm the page cache so the first tool does not pay for the disk
        while f.read(1 << 20):
            pass

    capacity = parallel_capacity()
    print(f"parallel capacity: two CPU-bound processes get {capacity:.2f}x the work of one done", file=sys.stderr)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="a2s-bench-") as tmp:
        prepared = {name: prepare(name, log, Path(tmp), args.install_laurel, args.jobs) for name in names}
        results = {name: res for name, (res, _) in prepared.items()}
        for name, (res, _) in prepared.items():
            if res.skipped:
                print(f"{name}: skipped ({res.skipped})", file=sys.stderr)
        for rep in range(args.repetitions):
            for name, (res, stdin) in prepared.items():
                if res.skipped or (res.runs and res.runs[-1].timed_out):
                    continue
                run = run_once(res.command, stdin, args.timeout, capture=name == "api")
                res.runs.append(run)
                state = "TIMEOUT" if run.timed_out else f"rc={run.returncode}"
                print(
                    f"[{rep + 1}/{args.repetitions}] {name:<8} {run.wall_s:8.2f}s  "
                    f"{run.maxrss_kb / 1024:7.1f} MB  {state}",
                    file=sys.stderr,
                )
                if name == "api" and run.returncode == 0 and run.stdout != str(meta["process_create"]):
                    print(
                        f"warning: the library wrote {run.stdout} ProcessCreate events, "
                        f"the log holds {meta['process_create']}",
                        file=sys.stderr,
                    )

    for res in results.values():
        summarise(res, int(meta["lines"]), int(meta["process_create"]))  # type: ignore[call-overload]
    compare(results)
    print_table(results, meta)
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    print(f"parallel capacity: two CPU-bound processes get {capacity:.2f}x the work of one done "
          f"(cli-jobs: --jobs {args.jobs})")

    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "audit2sysmon_build": build(),
        "parallel_capacity_2_processes": capacity,
        "cli_jobs": args.jobs,
        # Other work on the machine skews wall time (not CPU time): the load averages tell.
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "log": meta,
        "repetitions": args.repetitions,
        "rss_source": "GNU time %M" if os.path.exists(GNU_TIME) else "os.wait4 (includes this script's RSS)",
        "laurel_config": LAUREL_CONFIG,
        "tools": {name: asdict(res) for name, res in results.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
