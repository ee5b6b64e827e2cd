"""audit2sysmon on a live host under load: as auditd's plugin, and following auditd's log.

A private auditd (the live tests' harness, tests/live/auditd_capture.py) audits every execve
while paced generator processes exec `/bin/true <tag>` at `--rate` execs per second for
`--duration` seconds, each exec with its own tag. Then, for each mode:

    plugin   auditd starts `audit2sysmon --plugin -o FILE --stats` (a wrapper keeps its standard
             error, which auditd leaves on /dev/null); hashes and /proc parents on, as deployed.
             auditd's queue to its plugins is the distribution's (q_depth 2000, overflow_action
             SYSLOG), `--q-depth` changes it.
    follow   `audit2sysmon --follow -o FILE --stats audit.log` while auditd rotates its log by
             size (max_log_file 2 MB, ROTATE, num_logs 99) and, every `--rotate-every` seconds,
             on SIGUSR1.

What is reported:
  - the rate the generators achieved, and the execs the kernel logged (their EXECVE records in
    every audit.log file), written (ProcessCreates with the tag in our output), missing and
    duplicated, by tag; and the successful execve records of the whole machine vs all our
    ProcessCreates (other programs run here too);
  - what was lost on the way and who saw it: the kernel's `lost` counter (`auditctl -s`),
    auditd's own report of its plugin queue (SIGCONT: /var/run/auditd.state, `max plugin
    queue depth used`, `plugin queue overflow detected`), and our count of audit events whose
    serial numbers never arrived (`--stats`: audit events lost before reading);
  - latency from the exec (the audit stamp, UtcTime) to the moment a reader tailing our output
    file saw its line (p50, p99, max), and TimeCreated − UtcTime from the lines themselves
    (live TimeCreated is the moment the event was written);
  - our process's CPU seconds (user+sys) and peak RSS (VmHWM), read from /proc before it stops.

Needs root, auditd, and no other auditd running (like the live tests). Nothing is asserted.

Usage:
    python benchmarks/live.py                           # 2,000/s for 10 s, both modes
    python benchmarks/live.py --duration 60 --json benchmarks/results-live.json
    python benchmarks/live.py --modes plugin --rate 4000 --duration 20 --keep /tmp/a2s-live
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from live.auditd_capture import RULE_KEY, LiveUnavailable, PrivateAuditd, audit_status, check_machine
from run import build, machine, parallel_capacity

MODES = ("plugin", "follow")
EXEC_RULES = [["-a", "always,exit", "-F", f"arch={arch}", "-S", "execve,execveat", "-k", RULE_KEY]
              for arch in ("b64", "b32")]
STATE_FILE = Path("/var/run/auditd.state")
CATCH_UP = 300.0  # seconds our output may take to reach the last exec after the load ends
TICKS = os.sysconf("SC_CLK_TCK")

# One generator process: `rate` execs per second of a program, each with its own tag, paced
# against the clock (when it falls behind it spawns at once until it has caught up, with at
# most 64 children running), children reaped as they exit. Prints how many it started and in
# how many seconds.
GENERATOR = r"""
import os, sys, time
rate, duration, prefix, true = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.monotonic()
end = start + duration
spawned = running = 0
while True:
    now = time.monotonic()
    if now >= end:
        break
    due = int((now - start) * rate) + 1
    while spawned < due and running < 64:  # a bounded burst: behind, it does not fork-bomb
        os.posix_spawn(true, [true, f"{prefix}-{spawned}"], {})
        spawned += 1
        running += 1
    while running:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if not pid:
            break
        running -= 1
    pause = start + spawned / rate - time.monotonic()
    if pause > 0:
        time.sleep(pause)
elapsed = time.monotonic() - start
while running:
    os.waitpid(-1, 0)
    running -= 1
print(spawned, elapsed)
"""

_COMMAND = re.compile(r'<Data Name="CommandLine">\S+ (a2s-bench-[^<]+)</Data>')
_UTC = re.compile(r'<Data Name="UtcTime">(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})</Data>')
_CREATED = re.compile(r'<TimeCreated SystemTime="(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})')
_MARKER = re.compile(r"/bin/true a2s-live-end-[0-9a-f]{32}")
_LOGGED_MARKER = re.compile(rb'a1="a2s-live-end-[0-9a-f]{32}"')
_EXECVE_TAG = re.compile(rb'type=EXECVE msg=audit\([^)]*\): argc=2 a0="[^"]*" a1="(a2s-bench-[^"]+)"')


def _epoch(match: re.Match[str]) -> float:
    """Seconds since the epoch of a UTC time matched as (year, month, day, h, m, s, fraction)."""
    *whole, fraction = match.groups()
    return calendar.timegm(tuple(map(int, whole))) + int(fraction) / 10 ** len(fraction)


class Tail(threading.Thread):
    """Reads a growing output file and notes when each tagged ProcessCreate line appeared."""

    def __init__(self, path: Path, prefix: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.prefix = prefix
        self.stop = threading.Event()
        self.seen: list[tuple[str, float, float, float]] = []  # tag, seen, UtcTime, TimeCreated
        self.lines = 0
        self.process_creates = 0
        self.started = threading.Event()  # Sysmon's Started (EventID 4) was written
        self.markers: set[str] = set()  # the harness's end markers seen in ProcessCreates

    def wait_for(self, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while marker not in self.markers:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def run(self) -> None:
        while not self.path.exists() and not self.stop.is_set():
            time.sleep(0.005)
        with open(self.path, "rb") as handle:
            partial = b""
            while True:
                chunk = handle.read(1 << 20)
                if not chunk:
                    if self.stop.is_set():
                        return
                    time.sleep(0.005)
                    continue
                now = time.time()
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for raw in lines:
                    self._line(raw.decode("utf-8", "replace"), now)

    def _line(self, line: str, now: float) -> None:
        self.lines += 1
        if "<EventID>1</EventID>" in line:
            marker = _MARKER.search(line)
            if not self.markers:  # what comes after the first marker is not compared
                self.process_creates += 1
            if marker is not None:
                self.markers.add(marker.group())
        elif "<EventID>4</EventID>" in line:
            self.started.set()
        if self.prefix not in line:
            return
        tag, utc, created = _COMMAND.search(line), _UTC.search(line), _CREATED.search(line)
        if tag and utc and created:
            self.seen.append((tag.group(1), now, _epoch(utc), _epoch(created)))


@dataclass
class Result:
    mode: str
    target_rate: float
    duration: float
    generators: int
    achieved_rate: float = 0.0
    spawned: int = 0
    kernel_logged: int = 0
    written: int = 0
    missing: int = 0
    duplicated: int = 0
    written_not_logged: int = 0
    machine_execs_logged: int = 0
    machine_process_creates: int = 0
    kernel_lost: int = 0
    auditd_queue: dict[str, str] = field(default_factory=dict)
    our_lost_events: int = 0
    our_damaged: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    time_created_ms: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    cpu_sys_s: float = 0.0
    peak_rss_mb: float = 0.0
    auditd_cpu_s: float = 0.0
    log_files: int = 1
    rotations_forced: int = 0
    caught_up_s: float | None = None
    exit_status: int | None = None
    stats: str = ""


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(pick(0.50) * 1000, 1), "p99": round(pick(0.99) * 1000, 1),
            "max": round(ordered[-1] * 1000, 1), "mean": round(statistics.fmean(ordered) * 1000, 1)}


def cpu_and_rss(pid: int) -> tuple[float, float, float]:
    """(user+sys CPU seconds, of which sys, peak RSS in MB) of a running process."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    user, system = int(fields[11]) / TICKS, int(fields[12]) / TICKS
    with open(f"/proc/{pid}/status") as handle:
        hwm = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    return user + system, system, hwm / 1024


def auditd_queue_state(auditd: PrivateAuditd) -> dict[str, str]:
    """auditd's own report (SIGCONT writes /var/run/auditd.state): its plugin queue."""
    existed = STATE_FILE.exists()
    before = STATE_FILE.stat().st_mtime_ns if existed else 0
    os.kill(auditd.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not STATE_FILE.exists() or STATE_FILE.stat().st_mtime_ns == before):
        time.sleep(0.02)
    text = STATE_FILE.read_text() if STATE_FILE.exists() else ""
    if not existed:
        STATE_FILE.unlink(missing_ok=True)  # nothing of ours stays behind
    return {key.strip(): value.strip() for key, _, value in (line.partition("=") for line in text.splitlines())
            if "queue" in key}


# The program the generators run: exit_group(0) and nothing else, as a 129-byte static x86-64
# ELF (an ELF header, one loadable segment, 9 bytes of code). Executing /bin/true costs about
# 0.4 ms of CPU, most of it the dynamic loader: at 2,000 execs/s that is most of one of this
# machine's two cores, taken from auditd and the converter being measured. The kernel audits
# this exec like any other (SYSCALL, EXECVE, CWD, one PATH: no interpreter, PROCTITLE).
_CODE = bytes([0xB8, 0xE7, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05])  # mov eax, 231; xor edi, edi; syscall
_BASE, _EHSIZE, _PHSIZE = 0x400000, 64, 56


def minimal_program(path: Path) -> Path:
    size = _EHSIZE + _PHSIZE + len(_CODE)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, _BASE + _EHSIZE + _PHSIZE, _EHSIZE, 0, 0, _EHSIZE, _PHSIZE, 1, 0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)  # PT_LOAD, R+X
    path.write_bytes(header + segment + _CODE)
    path.chmod(0o755)
    return path


@contextmanager
def generators(rate: float, duration: float, count: int, prefix: str,
               program: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """The generator processes. Their script is a file: each exec's ParentCommandLine is the
    generator's command line, which stays as short as a real parent's."""
    script = program.with_name("generate.py")
    script.write_text(GENERATOR)
    procs = [subprocess.Popen([sys.executable, str(script), str(rate / count), str(duration), f"{prefix}-{n}",
                               str(program)], stdout=subprocess.PIPE, text=True) for n in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_load(result: Result, prefix: str, program: Path) -> None:
    with generators(result.target_rate, result.duration, result.generators, prefix, program) as procs:
        outputs = [proc.communicate(timeout=result.duration + 120)[0].split() for proc in procs]
    result.spawned = sum(int(spawned) for spawned, _ in outputs)
    result.achieved_rate = round(result.spawned / max(float(elapsed) for _, elapsed in outputs), 1)


def account(result: Result, logs: Sequence[Path], tail: Tail, prefix: str) -> None:
    """Execs the kernel logged vs lines we wrote, by tag; latencies."""
    logged: Counter[str] = Counter()
    for log in logs:
        data = log.read_bytes()
        logged.update(tag.decode() for tag in _EXECVE_TAG.findall(data) if tag.startswith(prefix.encode()))
        marker = _LOGGED_MARKER.search(data)
        if marker is not None:  # the harness's own execs after it (auditctl) are not ours to see
            data = data[: marker.start()]
        result.machine_execs_logged += data.count(b" syscall=59 success=yes ") + data.count(b" syscall=322 success=yes ")
    written = Counter(tag for tag, _, _, _ in tail.seen)
    result.kernel_logged = sum(logged.values())
    result.written = sum(written.values())
    result.missing = sum(1 for tag in logged if tag not in written)
    result.duplicated = sum(count - 1 for count in written.values() if count > 1)
    result.written_not_logged = sum(1 for tag in written if tag not in logged)
    result.machine_process_creates = tail.process_creates
    result.latency_ms = percentiles([seen - utc for _, seen, utc, _ in tail.seen])
    result.time_created_ms = percentiles([created - utc for _, _, utc, created in tail.seen])


def lost_by_us(stats: str) -> int:
    match = re.search(r"audit events lost before reading\s+(\d+)", stats)
    return int(match.group(1)) if match else 0


def damaged_by_kind(stats: str) -> dict[str, int]:
    """`--stats`' list of converted events with damage (records that did not arrive), by kind."""
    block = stats.partition("converted events with damage, by kind:\n")[2]
    counts = {}
    for line in block.splitlines():
        match = re.fullmatch(r"\s+(\d+)\s+(.+)", line)
        if match is None or line.lstrip().endswith(":"):
            break
        counts[match.group(2)] = int(match.group(1))
    return counts


def wait_for_output(tail: Tail, marker: str, result: Result, load_end: float) -> None:
    """Until our output has the marker's ProcessCreate: every exec before it is written."""
    if tail.wait_for(marker, CATCH_UP):
        result.caught_up_s = round(time.monotonic() - load_end, 2)


def bench_plugin(args: argparse.Namespace, work: Path) -> Result:
    result = Result("plugin", args.rate, args.duration, args.generators)
    prefix = f"a2s-bench-{uuid.uuid4().hex[:8]}"
    out, err = work / "plugin.log", work / "plugin.err"
    wrapper = work / "audit2sysmon-plugin"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(args.python)} -m audit2sysmon "$@" 2>>{shlex.quote(str(err))}\n')
    wrapper.chmod(0o755)
    (work / "plugin.args").write_text(f"--plugin\n-o\n{out}\n--stats\n")
    conf = (f"active = yes\ndirection = out\npath = {wrapper}\ntype = always\nargs = @{work / 'plugin.args'}\n"
            "format = string\n")
    settings = {"q_depth": str(args.q_depth), "overflow_action": "SYSLOG"}
    directory = work / "auditd-plugin"
    directory.mkdir(mode=0o750)
    tail = Tail(out, prefix)
    tail.start()
    lost_before = audit_status().lost
    with PrivateAuditd(directory, "RAW", rules=EXEC_RULES, settings=settings,
                       plugins={"audit2sysmon.conf": conf}) as auditd:
        tail.started.wait(60)
        pid = plugin_pid(out)
        run_load(result, prefix, args.program)
        load_end = time.monotonic()
        marker = auditd.wait_for_marker()
        wait_for_output(tail, marker, result, load_end)
        result.cpu_s, result.cpu_sys_s, result.peak_rss_mb = cpu_and_rss(pid)
        result.auditd_cpu_s = cpu_and_rss(auditd.pid)[0]
        result.auditd_queue = auditd_queue_state(auditd)
        result.kernel_lost = audit_status().lost - lost_before
    time.sleep(1)  # the plugin writes Stopped and its statistics after auditd's SIGTERM
    tail.stop.set()
    tail.join()
    result.stats = err.read_text(errors="replace") if err.exists() else ""
    result.our_lost_events = lost_by_us(result.stats)
    result.our_damaged = damaged_by_kind(result.stats)
    account(result, [auditd.log], tail, prefix)
    return result


def plugin_pid(out: Path) -> int:
    """The plugin's pid: Execution ProcessID of its first line (the configuration event)."""
    first = out.read_text("utf-8").split("\n", 1)[0]
    return int(re.search(r'<Execution ProcessID="(\d+)"', first).group(1))


def bench_follow(args: argparse.Namespace, work: Path) -> Result:
    result = Result("follow", args.rate, args.duration, args.generators)
    prefix = f"a2s-bench-{uuid.uuid4().hex[:8]}"
    out, err = work / "follow.log", work / "follow.err"
    settings = {"max_log_file": "2", "max_log_file_action": "ROTATE", "num_logs": "99"}
    directory = work / "auditd-follow"
    directory.mkdir(mode=0o750)
    tail = Tail(out, prefix)
    tail.start()
    lost_before = audit_status().lost
    with PrivateAuditd(directory, "RAW", rules=EXEC_RULES, settings=settings) as auditd, \
            open(err, "wb") as stderr:
        follower = subprocess.Popen([args.python, "-m", "audit2sysmon", "--follow", "-o", str(out), "--stats",
                                     str(auditd.log)], stderr=stderr)
        try:
            tail.started.wait(60)
            rotating = threading.Event()

            def rotate() -> None:
                while not rotating.wait(args.rotate_every):
                    auditd.rotate()
                    result.rotations_forced += 1

            rotator = threading.Thread(target=rotate, daemon=True)
            rotator.start()
            run_load(result, prefix, args.program)
            rotating.set()
            rotator.join()
            load_end = time.monotonic()
            marker = auditd.wait_for_marker()
            wait_for_output(tail, marker, result, load_end)
            result.cpu_s, result.cpu_sys_s, result.peak_rss_mb = cpu_and_rss(follower.pid)
            result.auditd_cpu_s = cpu_and_rss(auditd.pid)[0]
            result.kernel_lost = audit_status().lost - lost_before
        finally:
            follower.send_signal(signal.SIGTERM)
            try:
                result.exit_status = follower.wait(timeout=60)
            except subprocess.TimeoutExpired:
                follower.kill()
                follower.wait()
    tail.stop.set()
    tail.join()
    logs = sorted(directory.glob("audit.log*"))
    result.log_files = len(logs)
    result.stats = err.read_text(errors="replace")
    result.our_lost_events = lost_by_us(result.stats)
    result.our_damaged = damaged_by_kind(result.stats)
    account(result, logs, tail, prefix)
    return result


def print_table(results: list[Result]) -> None:
    rows = [
        ("target execs/s", lambda r: f"{r.target_rate:,.0f}"),
        ("achieved execs/s", lambda r: f"{r.achieved_rate:,.0f}"),
        ("duration s", lambda r: f"{r.duration:g}"),
        ("execs spawned", lambda r: f"{r.spawned:,}"),
        ("execs the kernel logged", lambda r: f"{r.kernel_logged:,}"),
        ("ProcessCreates written", lambda r: f"{r.written:,}"),
        ("missing", lambda r: f"{r.missing:,}"),
        ("duplicated", lambda r: f"{r.duplicated:,}"),
        ("written, not logged", lambda r: f"{r.written_not_logged:,}"),
        ("machine: execve logged", lambda r: f"{r.machine_execs_logged:,}"),
        ("machine: ProcessCreates", lambda r: f"{r.machine_process_creates:,}"),
        ("kernel lost (auditctl -s)", lambda r: f"{r.kernel_lost:,}"),
        ("auditd queue overflow", lambda r: r.auditd_queue.get("plugin queue overflow detected", "-")),
        ("auditd max queue depth", lambda r: r.auditd_queue.get("max plugin queue depth used", "-")),
        ("lost before reading (ours)", lambda r: f"{r.our_lost_events:,}"),
        ("damaged events (ours)", lambda r: f"{sum(r.our_damaged.values()):,}"),
        ("latency p50 ms", lambda r: f"{r.latency_ms.get('p50', float('nan')):.1f}"),
        ("latency p99 ms", lambda r: f"{r.latency_ms.get('p99', float('nan')):.1f}"),
        ("latency max ms", lambda r: f"{r.latency_ms.get('max', float('nan')):.1f}"),
        ("TimeCreated-UtcTime p50 ms", lambda r: f"{r.time_created_ms.get('p50', float('nan')):.1f}"),
        ("TimeCreated-UtcTime p99 ms", lambda r: f"{r.time_created_ms.get('p99', float('nan')):.1f}"),
        ("caught up after load, s", lambda r: "never" if r.caught_up_s is None else f"{r.caught_up_s:.2f}"),
        ("our CPU s (user+sys)", lambda r: f"{r.cpu_s:.1f}"),
        ("  of which sys", lambda r: f"{r.cpu_sys_s:.1f}"),
        ("our CPU per exec, ms", lambda r: f"{1000 * r.cpu_s / max(r.written, 1):.3f}"),
        ("our peak RSS MB", lambda r: f"{r.peak_rss_mb:.1f}"),
        ("auditd CPU s", lambda r: f"{r.auditd_cpu_s:.1f}"),
        ("log files (rotations)", lambda r: f"{r.log_files} ({r.rotations_forced} forced)"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':<{width}}  " + "  ".join(f"{r.mode:>12}" for r in results))
    for label, cell in rows:
        print(f"{label:<{width}}  " + "  ".join(f"{cell(r):>12}" for r in results))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="execs per second (default 2000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10; documented: 60)")
    parser.add_argument("--generators", type=int, default=2, help="generator processes sharing the rate (default 2)")
    parser.add_argument("--modes", default=",".join(MODES), help="plugin, follow or both (default)")
    parser.add_argument("--q-depth", type=int, default=2000, help="auditd's plugin queue (default 2000, Debian's)")
    parser.add_argument("--rotate-every", type=float, default=5.0, help="follow: forced rotation period, s")
    parser.add_argument("--program", type=Path,
                        help="the program the generators exec (default: a minimal static ELF, x86-64; "
                        "elsewhere /bin/true)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose audit2sysmon runs")
    parser.add_argument("--json", type=Path, help="write the results here (e.g. benchmarks/results-live.json)")
    parser.add_argument("--keep", type=Path, help="keep logs and outputs in this new directory")
    args = parser.parse_args(argv)
    modes = [mode for mode in args.modes.split(",") if mode]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode(s) {sorted(unknown)}")
    try:
        check_machine()
    except LiveUnavailable as reason:
        print(f"live.py: cannot run here: {reason}", file=sys.stderr)
        return 2
    build_name = subprocess.run([args.python, "-c", "import audit2sysmon; print(audit2sysmon.build())"],
                                capture_output=True, text=True, check=True).stdout.strip()
    meta = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "audit2sysmon_build": build_name,
            "benchmark_interpreter_build": build(), "parallel_capacity_2_processes": round(parallel_capacity(), 2),
            "loadavg_before": os.getloadavg(), "generators": args.generators, "q_depth": args.q_depth}
    print(f"audit2sysmon ({build_name}); two processes do {meta['parallel_capacity_2_processes']}x the work of one; "
          f"load {meta['loadavg_before'][0]:.2f}")
    if args.keep is not None:
        args.keep.mkdir(parents=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="a2s-live-bench-") as temporary:
        work = args.keep if args.keep is not None else Path(temporary)
        if args.program is None:
            args.program = minimal_program(work / "true") if os.uname().machine == "x86_64" else Path("/bin/true")
        meta["program"] = str(args.program)
        for mode in modes:
            mode_dir = work / mode
            mode_dir.mkdir()
            print(f"{mode}: {args.rate:,.0f} execs/s for {args.duration:g} s …", flush=True)
            results.append((bench_plugin if mode == "plugin" else bench_follow)(args, mode_dir))
    meta["loadavg_after"] = os.getloadavg()
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps({**meta, "results": [asdict(r) for r in results]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
