"""The command's inputs: compressed files, rotated sets in age order, and a log that grows.

Three facts about how audit logs sit on disk shape this module:

* logrotate and archives compress them, not always with a telling suffix, so the format is
  read from the magic bytes (gzip, bzip2, xz: all in the standard library);
* auditd rotates `audit.log` into `audit.log.1`, `.2`, … (the highest number is the oldest), and
  a conversion must read them oldest first so that a parent's exec is seen before its child's;
* a live log is appended to, rotated (renamed, a new file created) and sometimes truncated,
  and a follower must survive all three as `tail -F` does.

Lines are bytes with their `\\n`; decoding is the parser's job (it keeps invalid UTF-8).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import select
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from .convert import Opened

__all__ = [
    "POLL_INTERVAL",
    "READ_ERRORS",
    "FileIdentity",
    "LineSplitter",
    "Source",
    "expand_directory",
    "follow_fd",
    "follow_file",
    "identity",
    "is_audit_log",
    "newer_siblings",
    "open_source",
    "open_stream",
    "order_inputs",
    "read_error",
    "rotation_number",
    "standard_input",
]

POLL_INTERVAL = 0.25
"""Seconds between looks at a followed file that has nothing new (tail -F uses 1 s)."""

_MAGIC: tuple[tuple[bytes, Callable[[io.BufferedReader], io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw)),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
_COMPRESSED_SUFFIX = r"(?:\.(?:gz|bz2|xz))?"
_ROTATED = re.compile(rf"(?P<base>.+)\.(?P<number>\d+){_COMPRESSED_SUFFIX}\Z")
_BASE_NAME = "audit.log"


FileIdentity = tuple[int, int]
"""(device, inode): what a file is, whatever name it has now."""


def identity(stat: os.stat_result) -> FileIdentity:
    return (stat.st_dev, stat.st_ino)


@dataclass(slots=True)
class Source:
    """One opened input: `lines` to read, `raw` the file under any decompressor.

    `raw.tell()` is how far into the file on disk the reader is, which is what a progress
    bar over file sizes needs (a compressed file's text is longer than the file).
    """

    name: str
    lines: io.BufferedIOBase
    raw: io.BufferedReader

    def position(self) -> int:
        """Bytes of the file on disk consumed so far."""
        return self.raw.tell()

    def identity(self) -> FileIdentity:
        """(device, inode) of the file being read, which stays what it is if renamed."""
        return identity(os.fstat(self.raw.fileno()))

    def close(self) -> None:
        self.lines.close()
        self.raw.close()


def open_source(path: str, stdin: BinaryIO | None = None) -> Source:
    """Open `path` (or `stdin` when path is `-`), decompressing by magic bytes.

    Raises OSError when the file cannot be opened; a damaged compressed stream raises one of
    `READ_ERRORS` later, while it is read.
    """
    if path == "-":
        if stdin is None:
            raise ValueError("path '-' needs the stdin stream")
        return open_stream(stdin, "<stdin>")
    return open_stream(open(path, "rb"), path)


def open_stream(stream: BinaryIO, name: str) -> Source:
    """An input already open (a file's bytes held in memory, a pipe), decompressed by its
    magic bytes as `open_source` does; read as a stream (never expanded whole)."""
    raw = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, stream))
    head = raw.peek(6)[:6]
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return Source(name, opener(raw), raw)
    return Source(name, raw, raw)


READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)
"""What reading a damaged input raises (a truncated gzip member, a bad xz block, I/O)."""


def read_error(name: str, lines_read: int, error: Exception) -> str:
    """How the command (and a fleet's per-host report) says that an input ended early."""
    return f"{name}: read error after line {lines_read}: {error}"


def is_audit_log(path: str) -> bool:
    """Whether `path` names a member of an audit.log rotated set (`audit.log`, `audit.log.N`,
    `audit.log.N.gz|bz2|xz`): the files the command reads from a folder."""
    return rotation_number(os.path.basename(path))[0] == _BASE_NAME


def rotation_number(path: str) -> tuple[str, int]:
    """(base, n) for a member of a rotated set: `audit.log.2.gz` → (`audit.log`, 2).

    The live file itself is number 0; any other name is a set of its own.
    """
    match = _ROTATED.match(path)
    if match is None:
        return path, 0
    return match["base"], int(match["number"])


def order_inputs(paths: Iterable[str]) -> list[str]:
    """The paths in conversion order: members of one rotated set oldest first.

    Sets keep the place of their first member on the command line, so unrelated files are
    still read in the order given; inside a set the highest number comes first and the live
    file last. `-` (standard input) is never part of a set.
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for index, path in enumerate(paths):
        base, number = (f"\0stdin{index}", 0) if path == "-" else rotation_number(path)
        groups.setdefault(base, []).append((number, path))
    return [
        path
        for members in groups.values()
        for _, path in sorted(members, key=lambda member: -member[0])
    ]


def expand_directory(directory: str) -> list[str]:
    """The audit.log files of a log directory (`audit.log`, `audit.log.N[.gz|.bz2|.xz]`)."""
    names = [name for name in os.listdir(directory) if is_audit_log(name)]
    paths = [os.path.join(directory, name) for name in sorted(names)]
    return [path for path in paths if os.path.isfile(path)]


class LineSplitter:
    """Cuts chunks of a byte stream into whole lines; a line without its `\\n` waits."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def push(self, chunk: bytes) -> list[bytes]:
        """The complete lines (with `\\n`) that `chunk` finishes."""
        if b"\n" not in chunk:
            self._partial += chunk
            return []
        parts = (self._partial + chunk).split(b"\n")
        self._partial = parts.pop()
        return [part + b"\n" for part in parts]

    def rest(self) -> bytes:
        """What is left after the last `\\n` (the stream has ended), and forget it."""
        rest, self._partial = self._partial, b""
        return rest


_CHUNK = 1 << 16


def follow_file(
    path: str,
    stop: threading.Event,
    poll_interval: float = POLL_INTERVAL,
    *,
    after: FileIdentity | None = None,
    from_end: bool = False,
) -> Iterator[bytes | Opened | None]:
    """Lines of `path` from its start, then its new lines as they are written, like `tail -F`.

    Yields None each time it has caught up (nothing more to read right now): the caller's
    moment to flush output; and `Opened` before the first line of each file it opens, so
    that line numbers in reports restart with the file. Survives rotation, truncation (the
    file got shorter than what was read: read again from the start) and a missing file (wait
    for it). Ends when `stop` is set. A truncation that the file outgrows between two looks is not seen, as with tail.
    Other errors (permissions) raise OSError.

    Rotation never skips a file. When the name points to a new file, the old one is read to
    its end; then every rotated sibling newer than it (`audit.log.1`, `.2`, …, see
    `newer_siblings`), oldest first, and only then the file at the name. A follower that
    looked at the name too late (the log rotated twice between two looks, or the follower was
    stalled) would otherwise never read the files in between. `after` is the identity of a
    file of the set read just before (the last of the older files a command line named): its
    newer siblings are read before `path` too, so a rotation while those were converted loses
    nothing either. `from_end`: the file at `path` is read from its end (what is written from
    now on), not from its start.
    """
    handle: io.FileIO | None = None
    finished = after  # the file read to its end last: what comes next is newer than it
    splitter = LineSplitter()
    try:
        while not stop.is_set():
            if handle is None:
                handle = _next_file(path, finished)
                if handle is None:
                    yield None
                    stop.wait(poll_interval)
                    continue
                yield Opened(handle.name if isinstance(handle.name, str) else path)
                if from_end:
                    handle.seek(0, os.SEEK_END)
                    from_end = False
            chunk = handle.read(_CHUNK)
            if chunk:
                yield from splitter.push(chunk)
                continue
            yield None
            if stop.is_set():
                break
            current = _stat_if_there(path)
            opened = os.fstat(handle.fileno())
            if current is not None and identity(current) != identity(opened):
                # Another file has the name: this one is complete (auditd writes only the
                # file at the name). Its last line may lack its newline: pass it on as is.
                yield from splitter.push(handle.read())
                rest = splitter.rest()
                if rest:
                    yield rest
                handle.close()
                handle = None
                finished = identity(opened)
                continue
            if opened.st_size < handle.tell():
                splitter.rest()
                handle.seek(0)
                yield Opened(path)
                continue
            stop.wait(poll_interval)
    finally:
        if handle is not None:
            handle.close()


@dataclass(frozen=True, slots=True)
class Sibling:
    """A rotated member of a live log's set, as listed: `audit.log.2` is number 2."""

    number: int
    path: str
    identity: FileIdentity


def rotated_siblings(path: str) -> list[Sibling]:
    """The uncompressed rotated files of `path`'s set (`path.1`, `path.2`, …), any order.

    auditd renames `audit.log` to `audit.log.1` after moving `.1` to `.2` and so on, and
    never compresses; logrotate compresses only what it rotated before (`delaycompress`), so
    the files a follower may still have to read are the uncompressed ones.
    """
    directory, base = os.path.split(path)
    found: list[Sibling] = []
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return found
    for name in names:
        stem, dot, number = name.rpartition(".")
        if stem != base or not dot or not number.isdecimal():
            continue
        member = os.path.join(directory, name)
        stat = _stat_if_there(member)
        if stat is not None:
            found.append(Sibling(int(number), member, identity(stat)))
    return found


def newer_siblings(path: str, finished: FileIdentity) -> list[Sibling]:
    """The rotated files of `path`'s set written after the file `finished`, oldest first.

    Found among the siblings, `finished` is `path.N`: the newer ones are those numbered
    below N. Not found, it was removed, and auditd removes only the oldest member of a set,
    so every sibling is newer.
    """
    siblings = sorted(rotated_siblings(path), key=lambda s: -s.number)
    position = next((s.number for s in siblings if s.identity == finished), None)
    return [s for s in siblings if position is None or s.number < position]


def _next_file(path: str, finished: FileIdentity | None) -> io.FileIO | None:
    """The file to read after `finished`: its oldest newer sibling, else the file at `path`.

    A rotation between listing the names and opening one moves every name: the opened file
    is checked to be the one listed, and the names are listed again when it is not.
    """
    if finished is not None:
        for _ in range(_LIST_ATTEMPTS):
            newer = newer_siblings(path, finished)
            if not newer:
                break
            handle = _open_if_there(newer[0].path)
            if handle is not None and identity(os.fstat(handle.fileno())) == newer[0].identity:
                return handle
            if handle is not None:
                handle.close()
    return _open_if_there(path)


_LIST_ATTEMPTS = 8


def follow_fd(
    fd: int, stop: threading.Event, poll_interval: float = POLL_INTERVAL, *, head: bytes = b""
) -> Iterator[bytes | None]:
    """Lines of a pipe or terminal as they come, until its end or until `stop` is set.

    Waits with select() so a stop request is seen within `poll_interval` even while no line
    arrives (a blocking read would only return with the next line). Yields None after each
    chunk it has passed on and after each quiet poll: the caller's moment to flush. A last
    line without `\\n` is passed on at the end of the stream. `head`: bytes already read
    from `fd`, which come first.
    """
    splitter = LineSplitter()
    if head:
        yield from splitter.push(head)
        yield None
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], poll_interval)
        if not ready:
            yield None
            continue
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            rest = splitter.rest()
            if rest:
                yield rest
            return
        yield from splitter.push(chunk)
        yield None


def standard_input(fd: int, stop: threading.Event, poll_interval: float = POLL_INTERVAL) -> Iterator[bytes | None]:
    """Standard input as a live source (`follow_fd`: every line as it comes, None when it has
    caught up), decompressed first when it is compressed (magic bytes, as `open_source`).

    The first bytes are waited for with the same select() loop, so a silent pipe is a live
    source from the start: the caller hears of it (None) and a stop request is seen. A
    compressed input is an archive, read to its end.
    """
    head = b""
    while len(head) < _MAGIC_BYTES:
        if stop.is_set():
            return
        ready, _, _ = select.select([fd], [], [], poll_interval)
        if not ready:
            yield None
            continue
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            break
        head += chunk
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            raw = cast(io.BufferedReader, io.BufferedReader(cast(io.RawIOBase, _Prefixed(head, fd))))
            yield from opener(raw)
            return
    yield from follow_fd(fd, stop, poll_interval, head=head)


_MAGIC_BYTES = 6


class _Prefixed(io.RawIOBase):
    """A file descriptor's bytes after `head`, bytes already read from it."""

    def __init__(self, head: bytes, fd: int) -> None:
        self._head = head
        self._fd = fd

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = os.read(self._fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open_if_there(path: str) -> io.FileIO | None:
    try:
        return io.FileIO(path, "r")
    except FileNotFoundError:
        return None


def _stat_if_there(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
