"""The `--jobs` main process's share of one process's work, counted in instructions.

CPU time on a shared virtual machine varies by a third from run to run; callgrind's
instruction counts do not. This runs the installed audit2sysmon under
`valgrind --tool=callgrind` four times on one log, each a separate process, and subtracts:

- `empty`: start-up (imports, a converter over an empty file);
- `one`: a `Converter` and the syslog `EventWriter` over the log, as the CLI runs them;
- `workers`: the workers' part (`parallel.read_chunk` over the chunks `stream_chunks` cuts);
- `main`: the workers' part, then the main process's: cutting the input again, unpacking
  each result, checking the seams, rebuilding the facts, applying, rendering, writing.

one - empty is one process's work, main - workers the main process's, workers - empty the
workers'. Their ratio is the serial share f that bounds `--jobs N` (docs/performance.md).

    python benchmarks/main_share.py LOG          # the first 50,000 lines take ~5 min
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import fields as dc_fields
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit2sysmon._pipeline.parallel import Packed
    from audit2sysmon.options import Options

MODES = ("empty", "one", "workers", "main")


def run_mode(log: str, mode: str) -> None:
    """One measured process: what `mode` names, over `log` (see the module docstring)."""
    from audit2sysmon._pipeline.parallel import read_chunk, stream_chunks
    from audit2sysmon.cli.output import EventWriter
    from audit2sysmon.convert import Converter
    from audit2sysmon.mapping import UserDb
    from audit2sysmon.options import Options
    from audit2sysmon.sysmon.render import formatter

    options = Options()
    gc.set_threshold(50_000, 20, 20)  # the CLI's setting
    if mode in ("empty", "one"):
        conv = Converter(options)
        with open(os.devnull if mode == "empty" else log, "rb") as lines, open(os.devnull, "wb") as out:
            writer = EventWriter(out, formatter("syslog"))
            for events in conv.feed_input(lines, log):
                writer.write(events)
            writer.write(conv.flush())
            writer.flush()
        return
    settings = {f.name: getattr(options, f.name) for f in dc_fields(options)}
    passwd = UserDb.from_options(options.passwd, options.local_users).passwd
    with open(log, "rb") as f:
        packed = [read_chunk(settings, passwd, chunk) for chunk in stream_chunks(f, log)]
    if mode == "main":
        with open(log, "rb") as f:
            for _ in stream_chunks(f, log):
                pass
        main_part(packed, options)


def main_part(packed: list[Packed], options: Options, *, rebuild: bool = True, apply: bool = True,
              render: bool = True) -> None:
    """The `--jobs` main process over the workers' packed results: unpack each, check its
    seam, rebuild the facts, apply them, render syslog to /dev/null. Each flag stops it a
    step earlier (`profile.py --main-process` times the steps one by one)."""
    from audit2sysmon._pipeline.parallel import _unpack
    from audit2sysmon.audit.seams import SeamState
    from audit2sysmon.cli.output import EventWriter
    from audit2sysmon.convert import Converter
    from audit2sysmon.mapping.plain import from_plain
    from audit2sysmon.sysmon.render import formatter

    conv = Converter(options)
    state = SeamState(max_open=options.max_open_events)
    with open(os.devnull, "wb") as out:
        writer = EventWriter(out, formatter("syslog"))
        lines_before = 0
        for one in packed:
            result = _unpack(one)
            state.check(result.summary)
            state.advance(result.summary)
            before, lines_before = lines_before, lines_before + result.counts.lines
            if not rebuild:
                continue
            rebuilt = map(from_plain, result.facts, repeat(before))
            if not apply:
                for _ in rebuilt:
                    pass
                continue
            events = conv.apply(rebuilt)
            if render:
                writer.write(events)
        if render:
            writer.write(conv.flush())
            writer.flush()


def instructions(log: str, mode: str) -> int:
    """Instructions callgrind counts for one process of `mode`."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable,
             __file__, "--mode", mode, log],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from callgrind for {mode}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", type=Path)
    ap.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one measured process
    args = ap.parse_args()
    if args.mode:
        run_mode(str(args.log), args.mode)
        return
    import audit2sysmon

    counts = {mode: instructions(str(args.log), mode) for mode in MODES}
    one = counts["one"] - counts["empty"]
    workers = counts["workers"] - counts["empty"]
    main_part = counts["main"] - counts["workers"]
    print(f"{args.log}: {audit2sysmon.build()} build; instructions, start-up excluded")
    print(f"one process       {one / 1e6:10,.0f} M")
    print(f"workers' part     {workers / 1e6:10,.0f} M  ({workers / one:.2f} of one process)")
    print(f"main process      {main_part / 1e6:10,.0f} M  (share f = {main_part / one:.3f})")
    f = main_part / one
    for n in (2, 4, 8, 16):
        print(f"N = {n:2d}: Amdahl {1 / (f + (1 - f) / n):.2f}x, pipelined {min(1 / f, n * one / workers):.2f}x")


if __name__ == "__main__":
    main()
