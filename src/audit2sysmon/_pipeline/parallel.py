"""`--jobs N`: worker processes read chunks of the log; the converter applies their facts.

Reading (parse, correlate, extract: reader.py) is most of a conversion's work and keeps no
state that reaches the output except through the facts, so N worker processes each read
chunks of the input with a fresh `FactReader`. The converter, in this process, applies the
facts in input order: the process table, GUIDs, EventRecordIDs and the output order are
those of one process, byte for byte.

A fresh reader is exact only where the true one would be in the same state, so chunks end
where an event has just closed (after a PROCTITLE line, which the kernel writes last, or its
EOE, with no other event of the lines before still open) and every seam is checked before a
chunk's facts are used:

* the chunk before must have ended *quiet*: no event open or held;
* the correlator's memory of recently closed keys and its serial unwrapping must agree
  with a fresh one for everything the chunk looked up (`correlate.SeamState.check`).

When a check fails, this process reads the chunk itself with a reader seeded with the true
state, and goes on reading in this process until a chunk ends quiet again; then the workers
take over. So a log without quiet points converts correctly at the speed of one process.
"""

from __future__ import annotations

import gc
import io
import marshal
import pickle
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from itertools import accumulate, repeat
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # imported where a pool starts: a run without --jobs does not pay for them
    import multiprocessing.context
    from concurrent.futures import Future, ProcessPoolExecutor

from ..audit.parse import record_head
from ..audit.seams import ChunkSummary, SeamState
from ..errors import Audit2SysmonError, ParseError
from ..mapping.facts import EventFacts
from ..mapping.plain import Plain, from_plain, to_plain
from ..mapping.users import UserDb
from ..options import Options
from .reader import ErrorHandler, FactReader, GapHandler, ReadStats

__all__ = ["CHUNK_BYTES", "CHUNK_LINES", "Chunk", "ParallelReader", "line_chunks", "read_chunk", "stream_chunks"]

CHUNK_BYTES = 1 << 20
CHUNK_LINES = 4096
# Where a chunk is cut: after the line of a PROCTITLE record (this module's docstring).
_PROCTITLE = b"type=PROCTITLE "
_LOOK_BACK = 64
_TAIL_BYTES = 32768
_READ_SIZE = 65536
# Chunks handed to workers, in input order; None once the worker pool they went to broke.
_InFlight = deque[tuple["Chunk", "Future[Packed] | None"]]
# An error as it crosses the process boundary: reason, path, line, column, text, source line.
ErrorTuple = tuple[str, "str | None", "int | None", "int | None", "str | None", "bytes | None"]


@dataclass(slots=True)
class Chunk:
    """Consecutive lines of one input: a block of bytes (whole lines) or a list of lines.

    A chunk does not know the number of its first line: a worker numbers its lines from 1
    and `ParallelReader`, which takes the chunks in order, adds the lines of the input's
    chunks before it. Counting the newlines of each block where it is cut would cost the
    main process, the sequential part of `--jobs`, a fourteenth of its work.
    """

    path: str
    lines: bytes | list[str | bytes]
    opens_input: bool  # the input's first chunk
    last: bool = False  # the last chunk of the whole conversion: its reader is flushed


@dataclass(slots=True)
class ChunkResult:
    """What reading a chunk gave: facts in order (`plain.to_plain`), rejected lines, counts,
    the seam summary."""

    facts: list[Plain]
    errors: list[ErrorTuple]
    counts: ReadStats
    summary: ChunkSummary


# A worker's result as it crosses the process boundary: the facts marshalled, the rest pickled.
Packed = tuple[bytes, bytes]


def read_chunk(settings: dict[str, Any], passwd: dict[int, str], chunk: Chunk) -> Packed:
    """Read one chunk with a fresh reader (this runs in a worker process); the packed result.

    The options come as a dict of their fields: a compiled build cannot unpickle a frozen
    dataclass, and the worker needs no state from the process that sent the chunk. `passwd`
    is the passwd file as the converter read it once, not read again per chunk. The result
    goes back packed so that the receiving process unpacks it itself (`_unpack`).
    """
    options = Options(**settings)
    errors: list[Audit2SysmonError] = []
    reader = FactReader(options, UserDb(passwd, options.local_users), on_error=errors.append)
    facts, summary = _read(reader, chunk, 1)
    rest = ([_error_tuple(e) for e in errors], reader.stats, summary)
    return marshal.dumps([to_plain(one) for one in facts]), pickle.dumps(rest, pickle.HIGHEST_PROTOCOL)


def _unpack(packed: Packed) -> ChunkResult:
    """A worker's result, unpacked with the cyclic garbage collector paused.

    The facts are plain tuples of str, int, bool, bytes and None, which `marshal` writes
    and reads at half of pickle's cost; the rest is small and pickled. Unpacking
    builds tens of thousands of small tuples that all live on, and each batch of them sets
    off a collection that walks every live object: with the collector running this cost 4
    times what the unpacking itself does (measured: 1.6 against 0.4 µs per line). Facts
    hold no reference cycles, so nothing is left for the collector to find.
    """
    data, rest = packed
    enabled = gc.isenabled()
    gc.disable()
    try:
        facts = marshal.loads(data)
        errors, counts, summary = pickle.loads(rest)
    finally:
        if enabled:
            gc.enable()
    return ChunkResult(facts, errors, counts, summary)


def _read(reader: FactReader, chunk: Chunk, first_line: int) -> tuple[list[EventFacts], ChunkSummary]:
    """The facts of a chunk's events, its lines numbered from `first_line`, and the summary
    its seam is judged by; the last chunk of the conversion also gives the events still open."""
    reader.start_file(chunk.path, first_line)
    facts: list[EventFacts] = []
    feed = reader.feed
    for line in _lines(chunk.lines):
        got = feed(line)
        if got:
            facts.extend(got)
    summary = reader.correlator.summary()
    if chunk.last:
        facts.extend(reader.flush())
    return facts, summary


def _lines(lines: bytes | list[str | bytes]) -> Iterable[str | bytes]:
    """The lines of a chunk; a block's lines keep their newline, as a file's lines do."""
    return io.BytesIO(lines) if isinstance(lines, bytes) else lines


def _error_tuple(error: Audit2SysmonError) -> ErrorTuple:
    return (error.reason, error.path, error.line, error.column, error.text, error.source_line)


def _error(fields: ErrorTuple, lines_before: int) -> ParseError:
    """The error a worker sent, at its line of the input (the worker counted from the chunk)."""
    reason, path, line, column, text, source_line = fields
    if line is not None:
        line += lines_before
    error = ParseError(reason, path=path, line=line, column=column, text=text)
    error.source_line = source_line
    return error


def stream_chunks(stream: BinaryIO | io.IOBase, path: str, size: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks of about `size` bytes of a binary stream, cut where an event just closed.

    The stream is read one buffer at a time (`read1`), as reading it line by line does, so
    an error in it (a damaged compressed file) comes after every whole line before it.
    """
    read = getattr(stream, "read1", stream.read)
    opens_input, data, parts, have = True, b"", [], 0
    try:
        while True:
            block = read(min(size, _READ_SIZE))
            if not block:
                break
            parts.append(block)
            have += len(block)
            if have < size:
                continue
            data = b"".join(parts)
            cut = _cut(data)
            if cut:
                yield Chunk(path, data[:cut], opens_input)
                opens_input = False
                data = data[cut:]
            parts, have = [data], len(data)
    except Exception:
        data = b"".join(parts)
        if b"\n" in data:  # the whole lines read before the error, as a line reader gives them
            yield Chunk(path, data[: data.rfind(b"\n") + 1], opens_input)
        raise
    data = b"".join(parts)
    if data:
        yield Chunk(path, data, opens_input)


def _cut(data: bytes) -> int:
    """Where to end a chunk of `data`: the index after a line (0: no whole line yet).

    After the last line that `_closes_all` accepts among the block's last lines; else after
    the last PROCTITLE line; else after the last whole line.
    """
    start = max(0, len(data) - _TAIL_BYTES)
    lines = data[start:].split(b"\n")
    ends = list(accumulate(len(line) + 1 for line in lines))
    # Whole lines only, each with the next one whole too; the first may have been cut.
    for index in range(len(lines) - 3, 0, -1):
        if _closes_all(lines, index):
            return start + ends[index]
    at = data.rfind(_PROCTITLE)
    if at >= 0 and (end := data.find(b"\n", at)) >= 0:
        return end + 1
    return data.rfind(b"\n") + 1


def line_chunks(lines: Iterable[str | bytes], path: str, count: int = CHUNK_LINES) -> Iterator[Chunk]:
    """Chunks of at least `count` lines, cut where an event just closed (at most 4 × `count`
    lines when no such place comes)."""
    batch: list[str | bytes] = []
    opens_input = True
    for line in lines:
        batch.append(line)
        size = len(batch)
        if size > count and (size > 4 * count or _closes_all(batch, size - 2)):
            yield Chunk(path, batch[:-1], opens_input)
            opens_input = False
            batch = [line]
    if batch:
        yield Chunk(path, batch, opens_input)


def _closes_all(lines: Sequence[str | bytes], index: int) -> bool:
    """Whether no event is likely to be open after `lines[index]` (`lines[index + 1]` exists).

    The kernel writes PROCTITLE last, so an event is over after it, or after its EOE where
    the stream has EOE records (a seam between them would fail its check). But events of
    other CPUs interleave: every event whose SYSCALL is among the `_LOOK_BACK` lines before
    must have its PROCTITLE there too. This only picks a good place; the seam checks prove
    it, and a wrong guess costs speed, not correctness.
    """
    head, after = _head(lines[index]), _head(lines[index + 1])
    if head is None or head[0] not in (b"PROCTITLE", b"EOE") or (after is not None and after == (b"EOE", head[1])):
        return False
    started: set[bytes] = set()
    closed: set[bytes] = set()
    for line in lines[max(0, index - _LOOK_BACK) : index + 1]:
        found = _head(line)
        if found is not None:
            kind, key = found
            if kind == b"SYSCALL":
                started.add(key)
            elif kind == b"PROCTITLE":
                closed.add(key)
    return started <= closed


def _head(line: str | bytes) -> tuple[bytes, bytes] | None:
    """(type, node + event id) of a raw record line, or None."""
    return record_head(line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line)


class ParallelReader:
    """Reads inputs with `jobs` worker processes and returns their facts in input order.

    The seam state crosses inputs: one conversion of several files is one stream of
    records, as it is for a converter reading in-process. The last chunk read is held back
    until the next input or `finish`, because only the very last chunk may be flushed. Lines
    fed one at a time (`feed`) are read in this process, after the held chunk, by the reader
    that carries the true state on; the workers take over again at the next quiet seam of a
    whole input.
    """

    def __init__(
        self,
        options: Options,
        users: UserDb,
        jobs: int,
        *,
        on_error: ErrorHandler | None,
        on_gap: GapHandler | None = None,
    ) -> None:
        """`users` is the converter's user database: readers in this process share it, and
        workers get its passwd entries."""
        self.options = options
        self._users = users
        self.jobs = jobs
        self.fresh_chunks = 0  # chunks whose worker's reading was used
        self.local_chunks = 0  # chunks read in this process (a seam that could not be proved)
        self._done = ReadStats()  # lines of the workers' chunks and of finished local readers
        self._on_error = on_error
        self._on_gap = on_gap
        self._state = SeamState(max_open=options.max_open_events)
        # What a worker needs to read (parse, correlate, extract); the Sysmon configuration is
        # applied in this process, by the mapper.
        self._settings = {f.name: getattr(options, f.name) for f in fields(options) if f.name != "config"}
        self._pool: ProcessPoolExecutor | None = None
        self._local: FactReader | None = None  # set while this process reads (not quiet yet)
        self._tail: Chunk | None = None
        self._last_chunk: Chunk | None = None
        self._lines_before = 0  # lines of its input before the next chunk, in the order they are read
        self._path = "<input>"
        self._held_facts: list[EventFacts] = []

    @property
    def stats(self) -> ReadStats:
        """What became of every line read so far, by the workers and in this process."""
        if self._local is None:
            return self._done
        total = ReadStats()
        total.add(self._done)
        total.add(self._local.stats)
        return total

    def read(self, chunks: Iterable[Chunk]) -> Iterator[Iterable[EventFacts]]:
        """The facts of each chunk of one input, in order (the input's last chunk is held).

        An error while reading the input (a damaged compressed file) is raised after the
        facts of every chunk read before it, as reading in one process would.
        """
        failure: list[Exception] = []
        self._last_chunk = None
        if self._held_facts:
            yield self._take_held()
        yield from self._run(self._hold_last(_until_error(chunks, failure)))
        if failure:
            raise failure[0]

    def start_file(self, path: str) -> None:
        """Name the input that lines fed one at a time come from (numbered from 1)."""
        self._held_facts += self._drain_tail()
        self._path = path
        if self._local is not None:
            self._local.start_file(path)

    def feed(self, line: str | bytes, lineno: int | None = None) -> list[EventFacts]:
        """Read one line in this process, after everything handed out before it."""
        facts = self._here().feed(line, lineno)
        if self._held_facts:
            facts = self._take_held() + facts
        return facts

    def finish(self) -> list[EventFacts]:
        """End of the conversion: the facts of the held chunk and of every open event."""
        held = self._take_held()
        tail, self._tail = self._tail, None
        if tail is None:
            local = self._local
            facts = local.flush() if local is not None else []
            return held + facts
        tail.last = True
        return held + [fact for facts in self._run(iter([tail])) for fact in facts]

    def close(self) -> None:
        """Stop the workers (also what an interrupted conversion calls)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def input_lines(self) -> int:
        """Lines of the current input read so far, once `read` has returned or raised (for
        "read error after line N"): the chunks read, and the last one, held back."""
        chunk = self._last_chunk
        if chunk is None:
            return self._local.lineno if self._local is not None else 0
        if chunk is not self._tail:
            return self._lines_before
        lines = chunk.lines
        count = len(lines) if isinstance(lines, list) else lines.count(b"\n") + (not lines.endswith(b"\n"))
        return self._first_line(chunk) - 1 + count

    def _first_line(self, chunk: Chunk) -> int:
        """The number of a chunk's first line in its input, when the chunks before it are read."""
        return 1 if chunk.opens_input else self._lines_before + 1

    def _take_held(self) -> list[EventFacts]:
        held, self._held_facts = self._held_facts, []
        return held

    def _drain_tail(self) -> list[EventFacts]:
        """The held chunk, read in this process: lines fed one at a time come after it."""
        tail, self._tail = self._tail, None
        self._last_chunk = None
        return [] if tail is None else self._read_here(tail)

    def _here(self) -> FactReader:
        """The reader that goes on from the true state in this process."""
        if self._local is None:
            self._local = self._seeded()
            self._local.start_file(self._path)
        return self._local

    def _hold_last(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        held, self._tail = self._tail, None
        for chunk in chunks:
            self._last_chunk = chunk
            if held is not None:
                yield held
            held = chunk
        self._tail = held

    def _run(self, source: Iterator[Chunk]) -> Iterator[Iterable[EventFacts]]:
        pending: _InFlight = deque()
        while True:
            if self._local is None:
                self._fill(pending, source)
            if pending:
                chunk, future = pending.popleft()
                if self._local is None and future is not None:
                    result = self._result(future, pending)
                    if (
                        result is not None
                        and (result.summary.quiet or chunk.last)
                        and self._state.check(result.summary) is None
                    ):
                        yield self._accept(chunk, result)
                        continue
                if future is not None:
                    future.cancel()
            else:
                next_chunk = next(source, None)
                if next_chunk is None:
                    return
                chunk = next_chunk
            yield self._read_here(chunk)

    def _result(self, future: Future[Packed], pending: _InFlight) -> ChunkResult | None:
        """A worker's result, or None when a worker died (killed for memory, say)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return _unpack(future.result())
        except BrokenProcessPool:
            self._drop_pool(pending)
            return None

    def _drop_pool(self, pending: _InFlight) -> None:
        """A dead worker breaks its pool and every chunk handed to it: those chunks are read
        in this process like ones whose seam failed, and a new pool takes the chunks after
        them. A lost worker costs time, not events."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for index, (chunk, _) in enumerate(pending):
            pending[index] = (chunk, None)

    def _fill(self, pending: _InFlight, source: Iterator[Chunk]) -> None:
        """Keep every worker busy, with a chunk queued behind each.

        While this process applies one chunk, each worker may finish one: with less queued
        than that, a worker waits for this process and a core idles.
        """
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        while len(pending) <= 2 * self.jobs:
            chunk = next(source, None)
            if chunk is None:
                return
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.jobs, mp_context=_context())
            future: Future[Packed] | None
            try:
                future = self._pool.submit(read_chunk, self._settings, self._users.passwd, chunk)
            except BrokenProcessPool:
                self._drop_pool(pending)
                future = None
            pending.append((chunk, future))

    def _accept(self, chunk: Chunk, result: ChunkResult) -> Iterator[EventFacts]:
        """Use a worker's reading of a chunk whose start was proved exact and whose end is quiet.

        The worker numbered the chunk's lines from 1; its errors and facts move to their lines
        in the input. The facts are rebuilt one at a time, as they are applied: built all at
        once, the chunk's tens of thousands of objects would live long enough for the garbage
        collector to walk them again and again (6 % of this process's time).
        """
        self.fresh_chunks += 1
        self._done.add(result.counts)
        before = self._first_line(chunk) - 1
        self._lines_before = before + result.counts.lines
        if self._on_error is not None:
            for fields in result.errors:
                self._on_error(_error(fields, before))
        self._state.advance(result.summary)
        return map(from_plain, result.facts, repeat(before))

    def _read_here(self, chunk: Chunk) -> list[EventFacts]:
        """Read a chunk in this process, continuing the true reader state."""
        self.local_chunks += 1
        reader = self._local if self._local is not None else self._seeded()
        self._local = reader
        facts, summary = _read(reader, chunk, self._first_line(chunk))
        self._lines_before = reader.lineno
        if summary.quiet and not chunk.last:
            self._state.advance(summary)
            self._done.add(reader.stats)
            self._local = None
        return facts

    def _seeded(self) -> FactReader:
        return FactReader(self.options, self._users, on_error=self._on_error, on_gap=self._on_gap, seed=self._state)


def _until_error(chunks: Iterable[Chunk], failure: list[Exception]) -> Iterator[Chunk]:
    """The chunks up to an error in the input, which is kept in `failure` for later."""
    try:
        yield from chunks
    except Exception as exc:
        failure.append(exc)


def _context() -> multiprocessing.context.BaseContext:
    """`fork` on Linux: workers start at once and inherit the imported package. Elsewhere the
    platform's default (macOS's fork is unsafe with system frameworks loaded)."""
    import multiprocessing

    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
