"""A fleet of hosts built from the real captures, for the Spark tests and benchmark.

Every host is one capture made into another machine's log folder, as a fleet's collectors
would store it: its own name (node= rewritten, or removed so the hostname option names it),
its own clock (every audit(SEC.MSEC:…) stamp shifted), its own accounts (a passwd file where
uid 1000 has another name) and machine id, and a rotated set (audit.log.N, the highest the
oldest, some compressed with gzip, bzip2 or xz). One host is damaged: garbage lines among its
records and a gzip file cut short. Two hosts have passwd files the command refuses (missing,
not a passwd file). Folders also hold files that are not part of the audit.log set.

Deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LIVE = Path(__file__).parent / "fixtures" / "live"
SMALL = ("dev-raw", "dev-enriched", "pair-dev")
BUSY = ("busy-raw", "busy-enriched")
_STAMP = re.compile(rb"msg=audit\((\d+)\.(\d{3}):")
_NODE = re.compile(rb"^node=\S+ ")
_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": lambda data: gzip.compress(data, mtime=0),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}
GARBAGE = (
    b"garbage that is no audit record\n",
    b"type=SYSCALL msg=audit(17958\xff\xfe: arch=\n",
    b"node=x type=EXECVE msg=audit(1795852574.094:4943): argc=\n",
)


@dataclass(slots=True)
class Host:
    """One generated host: its folder and the options the command needs to convert it."""

    name: str
    folder: Path
    lines: int  # lines written into its audit.log files (garbage included)
    passwd: Path | None = None
    machine_id: str | None = None
    damaged: bool = False
    refused: bool = False  # its passwd file cannot be used: the command converts nothing
    files: list[Path] = field(default_factory=list)

    def cli_args(self) -> list[str]:
        """The command's options for this host, matching what the Spark job is given."""
        args = ["--tz", "UTC", "--no-local-users", "--hostname", self.name]
        if self.passwd is not None:
            args += ["--passwd", str(self.passwd)]
        if self.machine_id is not None:
            args += ["--machine-id", self.machine_id]
        return args


def shift_stamps(line: bytes, offset_ms: int) -> bytes:
    """The line with its audit(SEC.MSEC:…) stamp moved by `offset_ms` (a host's clock)."""

    def shifted(match: re.Match[bytes]) -> bytes:
        ms = int(match[1]) * 1000 + int(match[2]) + offset_ms
        return b"msg=audit(%d.%03d:" % divmod(ms, 1000)

    return _STAMP.sub(shifted, line, count=1)


def host_lines(source: Sequence[bytes], name: str, *, node: bool, offset_ms: int) -> list[bytes]:
    """A capture's lines as host `name` would have written them."""
    prefix = b"node=" + name.encode() + b" " if node else b""
    return [shift_stamps(_NODE.sub(prefix, line), offset_ms) for line in source]


def write_rotated(folder: Path, lines: Sequence[bytes], compress: Sequence[str | None]) -> list[Path]:
    """Split `lines` into len(compress) files named as auditd rotates them (audit.log.N, the
    highest oldest); compress[i] compresses the i-th oldest file (None: plain)."""
    count = len(compress)
    cuts = [len(lines) * i // count for i in range(count + 1)]
    paths = []
    for i, how in enumerate(compress):
        number = count - 1 - i
        data = b"".join(lines[cuts[i] : cuts[i + 1]])
        name = "audit.log" if number == 0 else f"audit.log.{number}"
        if how is not None:
            data = _COMPRESS[how](data)
            name += f".{how}"
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def _passwd(folder: Path, user: str) -> Path:
    """The captures' accounts with uid 1000 renamed: each host has its own names."""
    text = (LIVE / "passwd").read_text().replace("cloudsdk:", f"{user}:")
    path = folder / "passwd"
    path.write_text(text)
    return path


def build_fleet(root: Path, hosts: int = 30, busy: int = 2) -> list[Host]:
    """`hosts` host folders under root/logs/host=NAME (accounts under root/etc); `busy` of
    them from the 13,754-line captures, the others from the 614-line ones."""
    logs, etc = root / "logs", root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    sources = {name: (LIVE / name / "audit.log").read_bytes().splitlines(keepends=True) for name in SMALL + BUSY}
    schemes: tuple[tuple[str | None, ...], ...] = (
        (None,),
        ("gz", None),
        ("gz", "gz", None, None),
        ("bz2", None, None),
        ("xz", "gz", None),
        (None, None, None),
    )
    fleet = []
    for i in range(hosts):
        name = f"web{i:02d}" if i % 3 else f"db{i:02d}.prod"
        kind = BUSY[i % len(BUSY)] if i < busy else SMALL[i % len(SMALL)]
        lines = host_lines(sources[kind], name, node=i % 5 != 4, offset_ms=i * 86_399_937 - 5_000_000_000)
        host = Host(name, logs / f"host={name}", 0)
        host.folder.mkdir(parents=True)
        host.machine_id = f"{0x3d1219c7 + i * 0x1000193:08x}"[-8:] if i % 4 else None
        if i % 2:
            (etc / name).mkdir()
            host.passwd = _passwd(etc / name, f"user{i}")
        damaged = i == busy + 1
        if damaged:
            for at, garbage in zip((5, len(lines) // 2, len(lines) - 10), GARBAGE):  # in each file
                lines.insert(at, garbage)
            host.damaged = True
        compress = ("gz", None, None) if damaged else schemes[i % len(schemes)]
        host.files = write_rotated(host.folder, lines, compress)
        host.lines = len(lines)
        if damaged:  # the oldest file, gzip: cut in the middle of its compressed stream
            oldest = host.files[0]
            data = oldest.read_bytes()
            oldest.write_bytes(data[: len(data) // 2])
        (host.folder / "audit.log.bak").write_bytes(b"not part of the rotated set\n")
        (host.folder / "notes.txt").write_bytes(b"collector notes\n")
        fleet.append(host)
    # Two hosts whose passwd file the command refuses: one missing, one that is no passwd file.
    fleet[-1].passwd, fleet[-1].refused = etc / "missing-passwd", True
    bad = etc / "bad-passwd"
    bad.write_text("this is not a passwd file\n")
    fleet[-2].passwd, fleet[-2].refused = bad, True
    return fleet
