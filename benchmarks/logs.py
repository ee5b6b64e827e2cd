"""The benchmark's three kinds of input, built (or unpacked) once into a temp-dir cache.

- `repetitive`: build_log.py's log, the real busy captures repeated with shifted pids and
  stamps. Its bodies repeat almost always, so the parser's caches hit 95-100 %: the best case.
- `diverse`: a real high-variety ENRICHED capture (data/diverse-dev/), unpacked; with
  `copies` > 1 it is repeated the way build_log.py repeats the busy captures (stamps, serials
  and pids shifted per copy). The headline figure.
- `unique`: unique_log.py's rewrite of the diverse capture's events in which no pid, path,
  argument, inode or CWD repeats between process images: the worst case for the caches.

Every log has a sidecar `*.meta.json` with its line and ProcessCreate counts.
"""

from __future__ import annotations

import json
import lzma
import os
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))
import build_log
import unique_log

KINDS = ("diverse", "unique", "repetitive")  # the headline first
DIVERSE = HERE / "data" / "diverse-dev" / "audit.log.xz"


@dataclass(frozen=True, slots=True)
class InputLog:
    """One input: its kind, the file, and what is known of it (lines, ProcessCreate, bytes, how built)."""

    kind: str
    path: Path
    meta: dict[str, object]

    @property
    def lines(self) -> int:
        return self._count("lines")

    @property
    def process_create(self) -> int:
        return self._count("process_create")

    def _count(self, key: str) -> int:
        value = self.meta[key]
        if not isinstance(value, int):
            raise ValueError(f"{self.path}: meta {key} is {value!r}, not a count")
        return value


def cache_dir() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / "audit2sysmon-bench"


def _cached(path: Path, how: dict[str, object]) -> dict[str, object] | None:
    """The meta of `path` when it exists and was built the way `how` says."""
    meta_file = build_log.meta_path(path)
    if not path.exists() or not meta_file.exists():
        return None
    meta: dict[str, object] = json.loads(meta_file.read_text())
    if meta.get("built") != how or path.stat().st_size != meta.get("bytes"):
        return None
    return meta


def _write(path: Path, how: dict[str, object], lines: object) -> dict[str, object]:
    """Write (text, is ProcessCreate) pairs to `path` through a temp file; returns its meta."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    count = process_create = 0
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as out:
        buf: list[str] = []
        for text, is_exec in lines:  # type: ignore[attr-defined]
            buf.append(text)
            count += 1
            process_create += is_exec
            if len(buf) >= 10_000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    os.replace(tmp, path)
    meta = {"lines": count, "process_create": process_create, "bytes": path.stat().st_size, "built": how}
    build_log.meta_path(path).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _source_id(source: Path) -> str:
    return f"{source.name} ({source.stat().st_size} bytes)"


def repetitive(lines: int = build_log.DEFAULT_LINES) -> InputLog:
    path, meta = build_log.ensure_log(lines)
    return InputLog("repetitive", path, meta)


def diverse(copies: int = 1, source: Path = DIVERSE) -> InputLog:
    """The capture unpacked (copies == 1), or repeated `copies` times with shifted stamps and pids."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    path = cache_dir() / f"diverse-x{copies}.log"
    how = {"kind": "diverse", "source": _source_id(source), "copies": copies}
    meta = _cached(path, how)
    if meta is None:
        plain = cache_dir() / "diverse-x1.log"
        plain_how = {**how, "copies": 1}
        if _cached(plain, plain_how) is None:
            with lzma.open(source, "rt", encoding="utf-8", errors="surrogateescape", newline="") as src:
                _write(plain, plain_how, ((line, bool(build_log._EXEC.search(line))) for line in src))
        if copies == 1:
            meta = _cached(plain, plain_how)
            assert meta is not None
        else:
            template = build_log.load_template(plain)
            meta = _write(path, how, build_log.generate([template], copies * len(template.lines)))
    return InputLog("diverse", path, meta)


def unique(lines: int | None = None, seed: int = 1, scope: str = "event", source: Path = DIVERSE) -> InputLog:
    """unique_log.py over the diverse capture's events; `lines` defaults to the capture's count.

    `scope` "event": no body repeats at all; "image": none repeats between process images
    (unique_log.py's docstring)."""
    src = diverse(1, source)
    count = lines if lines is not None else src.lines
    path = cache_dir() / f"unique-{scope}-{count}-seed{seed}.log"
    how = {"kind": "unique", "source": _source_id(source), "lines": count, "seed": seed, "scope": scope}
    meta = _cached(path, how)
    if meta is None:
        meta = _write(path, how, unique_log.UniqueLog(unique_log.read_source(src.path), seed, scope).lines(count))
    return InputLog("unique" if scope == "event" else f"unique-{scope}", path, meta)


def existing(path: Path) -> InputLog:
    """Any log given by path: counted with build_log.py's ProcessCreate rule."""
    lines = process_create = 0
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            lines += 1
            process_create += bool(build_log._EXEC.search(line))
    return InputLog("log", path.resolve(), {"lines": lines, "process_create": process_create, "bytes": path.stat().st_size})


def ensure(kind: str, *, lines: int = build_log.DEFAULT_LINES, copies: int = 1, unique_lines: int | None = None,
           seed: int = 1, scope: str = "event") -> InputLog:
    """The input of `kind` (one of KINDS), built when missing."""
    if kind == "repetitive":
        return repetitive(lines)
    if kind == "diverse":
        return diverse(copies)
    if kind == "unique":
        return unique(unique_lines, seed, scope)
    raise ValueError(f"unknown input kind {kind!r} (choose from {', '.join(KINDS)})")
