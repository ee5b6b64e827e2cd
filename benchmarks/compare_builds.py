"""Compare the output of two installed builds of audit2sysmon, byte for byte, on many logs.

A refactor or a speed-up must not change one output byte. This runs the `audit2sysmon`
command of two Python environments (say, one with the tree before a change installed and one
with the tree after it) on every fixture log and on the benchmark logs, in each output
format, in one process and with `--jobs 2`, with `--stats`, and compares what each wrote to
standard output and standard error.

    python benchmarks/compare_builds.py --before /tmp/venv-old/bin/python --after .venv/bin/python
    python benchmarks/compare_builds.py --before … --after … --log /tmp/diverse.log --bench-lines 200000

Exit status 0 when every run gave the same bytes, 1 otherwise (the differing runs are listed,
with the first differing line).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = ROOT / "tests" / "fixtures"
# The options every run gets, so nothing depends on the machine (zone, host, accounts).
FIXED = ["--hostname", "testhost", "--machine-id", "3d1219c7", "--passwd", str(FIXTURES / "live" / "passwd"),
         "--no-local-users", "--stats"]
FORMATS = ("syslog", "xml", "json")


@dataclass(frozen=True, slots=True)
class Case:
    """One run of the command: an input with its zone, a format, a number of jobs."""

    log: Path
    zone: str
    output: str
    jobs: int

    def argv(self) -> list[str]:
        return [*FIXED, "--tz", self.zone, "-f", self.output, "--jobs", str(self.jobs), str(self.log)]

    def __str__(self) -> str:
        where = self.log.relative_to(ROOT) if self.log.is_relative_to(ROOT) else self.log
        return f"{where} -f {self.output} --jobs {self.jobs}"


def fixture_logs() -> Iterator[tuple[Path, str]]:
    """Every log under tests/fixtures with the zone its `ausearch -i` text was printed in."""
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.suffix not in (".log", ".txt") or path.name in ("README.md",):
            continue
        if path.name.startswith("interpreted-"):
            zone = path.stem.split("-", 2)[2].replace("_", "/", 1)
            yield path, zone
        elif path.suffix == ".log" and path.parent.name != "reference":
            yield path, "UTC"


def run(python: str, case: Case) -> tuple[bytes, bytes]:
    proc = subprocess.run([python, "-m", "audit2sysmon", *case.argv()], capture_output=True, timeout=3600)
    return proc.stdout, proc.stderr + f"\nexit {proc.returncode}\n".encode()


def first_difference(a: bytes, b: bytes) -> str:
    for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), 1):
        if x != y:
            return f"line {number}:\n  before: {x[:300]!r}\n  after:  {y[:300]!r}"
    extra = abs(len(a.splitlines()) - len(b.splitlines()))
    return f"one output has {extra} more lines"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="python of the environment with the old tree installed")
    ap.add_argument("--after", required=True, help="python of the environment with the new tree installed")
    ap.add_argument("--log", type=Path, action="append", default=[], help="another log to compare on (repeatable)")
    ap.add_argument("--bench-lines", type=int, default=100_000,
                    help="also build the repetitive benchmark log of this many lines (0: none)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes of the parallel runs (default 2)")
    args = ap.parse_args(argv)
    logs = list(fixture_logs()) + [(path, "UTC") for path in args.log]
    with tempfile.TemporaryDirectory() as tmp:
        if args.bench_lines:
            bench = Path(tmp) / "bench.log"
            subprocess.run([sys.executable, str(HERE / "build_log.py"), "-n", str(args.bench_lines), "-o", str(bench)],
                           check=True, capture_output=True)
            logs.append((bench, "UTC"))
        cases = [Case(log, zone, output, jobs) for log, zone in logs for output in FORMATS for jobs in (1, args.jobs)]
        differing = 0
        for case in cases:
            before, after = run(args.before, case), run(args.after, case)
            same = before == after
            digest = hashlib.sha256(after[0]).hexdigest()[:12]
            print(f"{'same' if same else 'DIFFERENT':9} {len(after[0]):>11} bytes {digest}  {case}")
            if not same:
                differing += 1
                part = 0 if before[0] != after[0] else 1
                print("          " + first_difference(before[part], after[part]).replace("\n", "\n          "))
    print(f"\n{len(cases) - differing} of {len(cases)} runs gave the same bytes")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
