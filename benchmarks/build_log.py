"""Build a large, realistic RAW audit.log by repeating the project's real captures.

Why repeat real captures rather than synthesise records: the benchmark must exercise the same
record mix, field shapes and event sizes the converter meets on a real host (the busy capture is
a shell loop plus auditctl on a real kernel). Each repetition ("block") is shifted so that it is
a new stretch of the same log rather than a duplicate:

- timestamps move forward so a block starts one second after the previous one ended, keeping
  the spacing (and the out-of-order lines) of the original;
- kernel serials continue after the previous block's highest serial, so `node+serial+timestamp`
  stays unique and the records of one event still share it, as in the original;
- `pid=` / `ppid=` move to a fresh pid range per block (wrapping below the kernel's pid_max,
  as real pids do), so parent/child links inside a block hold and no block reuses another's.

The output is deterministic (same arguments, same bytes) and written as a stream, so a
5,000,000-line log costs no more memory than a small one.

Usage:
    python benchmarks/build_log.py                      # 500,000 lines to the default cache path
    python benchmarks/build_log.py -n 5000000 -o /tmp/big.log
    python benchmarks/build_log.py -n 1000 -o -         # to stdout
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (
    ROOT / "tests/fixtures/live/busy-raw/audit.log",
    ROOT / "tests/fixtures/live/dev-raw/audit.log",
)
DEFAULT_LINES = 500_000
PID_MAX = 4_194_304  # /proc/sys/kernel/pid_max default on 64-bit kernels
FIRST_PID = 300  # the kernel restarts allocation above the reserved low pids on wrap

_STAMP = re.compile(r"msg=audit\((\d+)\.(\d{3}):(\d+)\)")
_PID = re.compile(r"(?<=[ \x1d])(pid|ppid)=(\d+)")
# A successful execve/execveat SYSCALL record is one ProcessCreate (x86-64 and i386 numbers).
_EXEC = re.compile(
    r"type=SYSCALL .*\barch=(?:c000003e syscall=(?:59|322)|40000003 syscall=(?:11|358)) success=yes "
)


@dataclass(frozen=True, slots=True)
class TemplateLine:
    """One source line as a format string with its time, serial and pids pulled out."""

    fmt: str
    ms: int
    serial: int
    pids: tuple[int, ...]
    process_create: bool


@dataclass(frozen=True, slots=True)
class Template:
    """One capture file, ready to be stamped out at any offset."""

    lines: tuple[TemplateLine, ...]
    first_ms: int
    last_ms: int
    min_serial: int
    max_serial: int
    min_pid: int
    max_pid: int


def load_template(path: Path) -> Template:
    """Turn a capture into format strings; every line must carry an audit(…) stamp."""
    lines = []
    # split("\n"), not splitlines(): that also splits at the 0x1D byte before an ENRICHED tail
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    for n, raw in enumerate(text.rstrip("\n").split("\n"), 1):
        stamp = _STAMP.search(raw)
        if stamp is None:
            raise ValueError(f"{path}:{n}: no msg=audit(...) stamp")
        pids = tuple(int(m.group(2)) for m in _PID.finditer(raw))
        head = raw[: stamp.start()].replace("{", "{{").replace("}", "}}")
        # split() with the two groups gives text, key, digits, text, key, digits, …, text
        parts = _PID.split(raw[stamp.end() :].replace("{", "{{").replace("}", "}}"))
        tail = parts[0] + "".join(
            f"{parts[i]}={{{3 + i // 3}}}{parts[i + 2]}" for i in range(1, len(parts), 3)
        )
        fmt = head + "msg=audit({0}.{1:03d}:{2})" + tail
        ms = int(stamp.group(1)) * 1000 + int(stamp.group(2))
        lines.append(TemplateLine(fmt, ms, int(stamp.group(3)), pids, bool(_EXEC.search(raw))))
    all_pids = [p for line in lines for p in line.pids] or [FIRST_PID]
    return Template(
        lines=tuple(lines),
        first_ms=min(line.ms for line in lines),
        last_ms=max(line.ms for line in lines),
        min_serial=min(line.serial for line in lines),
        max_serial=max(line.serial for line in lines),
        min_pid=min(all_pids),
        max_pid=max(all_pids),
    )


def generate(templates: Sequence[Template], count: int) -> Iterator[tuple[str, bool]]:
    """`count` lines (each ending in a newline) with "is a ProcessCreate": templates in turn."""
    next_ms = templates[0].first_ms
    next_serial = templates[0].min_serial
    next_pid = templates[0].min_pid
    written = 0
    block = 0
    while written < count:
        tpl = templates[block % len(templates)]
        block += 1
        d_ms = next_ms - tpl.first_ms
        d_serial = next_serial - tpl.min_serial
        span = tpl.max_pid - tpl.min_pid + 1
        if next_pid + span >= PID_MAX:
            next_pid = FIRST_PID
        d_pid = next_pid - tpl.min_pid
        for line in tpl.lines[: count - written]:
            ms = line.ms + d_ms
            text = line.fmt.format(
                ms // 1000, ms % 1000, line.serial + d_serial, *(p + d_pid for p in line.pids)
            )
            yield text + "\n", line.process_create
        written += min(len(tpl.lines), count - written)
        next_ms = tpl.last_ms + d_ms + 1000
        next_serial = tpl.max_serial + d_serial + 1
        next_pid += span


def default_path(count: int) -> Path:
    """Where generated logs live: a temp dir (never the repository; the logs are large)."""
    return Path(tempfile.gettempdir()) / "audit2sysmon-bench" / f"raw-{count}.log"


def meta_path(log: Path) -> Path:
    """The sidecar JSON that records how a log was built and how many ProcessCreates it holds."""
    return log.with_name(log.name + ".meta.json")


def build(count: int, out: Path | None) -> dict[str, object]:
    """Write the log (to stdout when `out` is None) and return its metadata."""
    templates = [load_template(p) for p in SOURCES]
    lines = process_create = size = 0
    with contextlib.ExitStack() as stack:
        stream = (
            sys.stdout
            if out is None
            else stack.enter_context(open(out, "w", encoding="utf-8", errors="surrogateescape"))
        )
        buf: list[str] = []
        for text, is_exec in generate(templates, count):
            buf.append(text)
            lines += 1
            process_create += is_exec
            size += len(text)
            if len(buf) >= 10_000:
                stream.write("".join(buf))
                buf.clear()
        stream.write("".join(buf))
    return {
        "lines": lines,
        "process_create": process_create,
        "bytes": size,
        "sources": [str(p.relative_to(ROOT)) for p in SOURCES],
    }


def ensure_log(count: int, out: Path | None = None) -> tuple[Path, dict[str, object]]:
    """The log of `count` lines at `out` (or the default path), built only when missing."""
    path = out if out is not None else default_path(count)
    meta_file = meta_path(path)
    if path.exists() and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("lines") == count and path.stat().st_size == meta.get("bytes"):
            return path, meta
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    meta = build(count, tmp)
    os.replace(tmp, path)
    meta_file.write_text(json.dumps(meta, indent=1) + "\n")
    return path, meta


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--lines", type=int, default=DEFAULT_LINES, help="line count (default 500000)")
    ap.add_argument("-o", "--output", help="output file, - for stdout (default: a temp-dir cache path)")
    args = ap.parse_args(argv)
    if args.lines < 1:
        ap.error("--lines must be positive")
    if args.output == "-":
        meta = build(args.lines, None)
        print(json.dumps(meta), file=sys.stderr)
        return 0
    path, meta = ensure_log(args.lines, Path(args.output) if args.output else None)
    print(f"{path}: {meta['lines']} lines, {meta['process_create']} ProcessCreate, {meta['bytes']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
