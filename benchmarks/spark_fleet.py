"""Spark (local mode) against the command with --jobs 2 on the same fleets, as whole processes.

For each fleet size (hosts × lines per host) a fleet is generated (benchmarks/build_log.py's
realistic log per host, renamed, clock-shifted and rotated into audit.log.2.gz, .1, audit.log
by tests/spark_fleet.py), then converted twice, in turn, each a whole process:

* spark: `python benchmarks/spark_fleet.py --spark-run FLEET` — a SparkSession on local[N],
  `convert_hosts` over the fleet, every event rendered (syslog) into Spark's `noop` sink, the
  per-host stats read. The child then converts the fleet a second time and reports both
  conversions' own times: the first pays for the JVM's warm-up (class loading, JIT), the
  second is what each further batch of hosts costs a running cluster.
* cli: `audit2sysmon HOSTDIR --jobs 2 -o /dev/null` for each host folder in turn, as a shell
  loop over a fleet would run it.

events/s is the events written (the same count for both: checked) divided by the time:
`spark s` is the whole Spark process as if it had converted once (start-up, JVM warm-up,
one conversion, shutdown), `warm s` the second conversion in the same process, `cli s` the
loop of commands. Nothing is asserted; the figures depend on the machine and on what else
runs on it (the load average is kept in the JSON).

Usage:
    python benchmarks/spark_fleet.py                          # default sizes, JSON to benchmarks/
    python benchmarks/spark_fleet.py --hosts 4 16 --lines 5000 50000 --json /tmp/spark.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build(root: Path, hosts: int, lines: int) -> list[Path]:
    """`hosts` folders of `lines` lines each (the same workload, another host each)."""
    build_log = _load("build_log", ROOT / "benchmarks" / "build_log.py")
    fleet = _load("spark_fleet", ROOT / "tests" / "spark_fleet.py")
    templates = [build_log.load_template(path) for path in build_log.SOURCES]
    source = [line.encode() for line, _ in build_log.generate(templates, lines)]
    folders = []
    for i in range(hosts):
        name = f"bench{i:03d}"
        folder = root / "logs" / f"host={name}"
        folder.mkdir(parents=True)
        fleet.write_rotated(folder, fleet.host_lines(source, name, node=True, offset_ms=i * 3_600_000), ("gz", None, None))
        folders.append(folder)
    return folders


def spark_run(fleet: Path, cores: int, memory: str) -> None:
    """The child process of the spark measurement: prints its figures as one JSON line."""
    # This folder's profile.py would shadow the standard library's, which PySpark imports.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    from zoneinfo import ZoneInfo

    from pyspark.sql import SparkSession

    from audit2sysmon import Options
    from audit2sysmon.spark import convert_hosts

    started = time.perf_counter()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(2 * cores))
        .config("spark.driver.memory", memory)  # local mode: the driver is the executor
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    times = [time.perf_counter()]
    for _ in range(2):
        result = convert_hosts(spark, str(fleet / "logs"), options=Options(tz=ZoneInfo("UTC"), local_users=False))
        result.events.write.format("noop").mode("overwrite").save()
        stats = result.stats().agg({"events_written": "sum", "lines": "sum"}).first()
        times.append(time.perf_counter())
    figures = {
        "startup_s": times[0] - started,
        "convert_s": times[1] - times[0],
        "warm_convert_s": times[2] - times[1],
        "events": stats[0],
        "lines": stats[1],
    }
    print(json.dumps(figures))
    spark.stop()


def measure_spark(fleet: Path, cores: int, memory: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--spark-run", str(fleet), "--cores", str(cores), "--memory", memory],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the Spark run failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    # The whole process as if it had converted once, as the command is measured: its wall
    # time less the second conversion, which the child timed itself.
    return {**figures, "wall_s": time.perf_counter() - started - figures["warm_convert_s"]}


def measure_cli(folders: list[Path], jobs: int) -> dict[str, float]:
    command = shutil.which("audit2sysmon", path=str(Path(sys.executable).parent)) or "audit2sysmon"
    started = time.perf_counter()
    events = 0
    for folder in folders:
        done = subprocess.run(
            [command, str(folder), "--jobs", str(jobs), "--tz", "UTC", "--no-local-users",
             "--hostname", folder.name, "-o", "/dev/null", "--stats"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        events += int(next(line.split()[-1] for line in done.stderr.splitlines() if "  events written" in line))
    return {"wall_s": time.perf_counter() - started, "events": events}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--lines", type=int, nargs="+", default=[5_000, 50_000], help="lines per host")
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N] and the command's --jobs")
    parser.add_argument(
        "--memory", default="4g", help="Spark's JVM heap (1g, Spark's default, spills the sort and collects garbage often)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results-spark.json")
    parser.add_argument("--spark-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spark_run is not None:
        spark_run(args.spark_run, args.cores, args.memory)
        return 0
    from audit2sysmon import build as which_build

    results = []
    header = (
        f"{'hosts':>5} {'lines/host':>10} {'events':>8} | {'spark s':>7} {'ev/s':>6} | {'warm s':>6} {'ev/s':>6} | "
        f"{'cli s':>6} {'ev/s':>6} | spark/cli warm/cli"
    )
    print(
        f"audit2sysmon {which_build()}, Spark local[{args.cores}] ({args.memory} heap) "
        f"vs the command with --jobs {args.cores}"
    )
    print(header)
    for lines in args.lines:
        for hosts in args.hosts:
            with tempfile.TemporaryDirectory(prefix="a2s-spark-bench-") as tmp:
                folders = build(Path(tmp), hosts, lines)
                spark = measure_spark(Path(tmp), args.cores, args.memory)
                cli = measure_cli(folders, args.cores)
            if spark["events"] != cli["events"]:
                raise SystemExit(f"spark wrote {spark['events']} events, the command {cli['events']}")
            row = {"hosts": hosts, "lines_per_host": lines, "spark": spark, "cli": cli}
            results.append(row)
            events = cli["events"]
            warm = spark["warm_convert_s"]
            print(
                f"{hosts:>5} {lines:>10} {events:>8} | {spark['wall_s']:>7.1f} {events / spark['wall_s']:>6.0f} | "
                f"{warm:>6.1f} {events / warm:>6.0f} | {cli['wall_s']:>6.1f} {events / cli['wall_s']:>6.0f} | "
                f"{cli['wall_s'] / spark['wall_s']:>8.2f}x {cli['wall_s'] / warm:>7.2f}x"
            )
    report = {
        "audit2sysmon_build": which_build(),
        "cores": args.cores,
        "spark_memory": args.memory,
        "load_average": os.getloadavg(),
        "results": results,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
