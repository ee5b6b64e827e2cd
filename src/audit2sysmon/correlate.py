"""Group audit records into events: the records that share (node, timestamp, serial).

An audit.log file has no end-of-event record (auditd drops EOE when it writes the file), records
of several events interleave, and a record can arrive after records of later events. So an event
is held open until something shows it is complete, and a bounded window of open events decides
the rest. See docs/correlation.md for the contract and the evidence behind the defaults.

An event closes when:

* an EOE record with its key arrives (plugin streams, syslog); the EOE itself is not kept;
* its PROCTITLE arrives after its SYSCALL: the kernel writes PROCTITLE last;
* it is a record of a type that never shares its event (user-space, auditd's own, KERNEL):
  such a record is emitted at once as a one-record event;
* it leaves the window: more than `max_open` events are open (the oldest by arrival goes), or
  the newest record of its node is more than `max_age_ms` of *log* time away from it (in either
  direction, so a clock that jumps back does not pin old events);
* it reaches `max_records` records;
* the input ends (`flush`).

Every record is returned in exactly one event (EOE records aside); nothing is dropped.

Seams (for `--jobs N`): a log cut into consecutive chunks, each run by a fresh correlator,
gives exactly the events of one correlator over the whole log when, at every cut, the true
correlator is `quiet()` and what it remembers across the cut (the keys it closed lately, each
node's serial unwrapping) changes nothing after it. A worker cannot know that memory, so it
sends back a small `ChunkSummary`; the main process keeps the memory in a `SeamState` that
`check`s each seam, and a chunk that fails is run again by a correlator seeded with it.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

from .errors import ConfigError
from .records import EventId, Record

SYSCALL = 1300
EOE = 1320
PROCTITLE = 1327

# Measured on the live corpus and go-libaudit's out_of_order.log (docs/correlation.md):
# at most 2 other events between the first and last record of an event, and one record that
# came 7,845 ms of log time after a newer event.
DEFAULT_MAX_OPEN = 1024
DEFAULT_MAX_AGE_MS = 30_000
# An execve within the default 2 MiB argument limit needs about a thousand EXECVE records at most.
DEFAULT_MAX_RECORDS = 10_000

Key = tuple[str | None, int, int]


def stands_alone(type_num: int | None) -> bool:
    """True for types the kernel or user space never put in a multi-record event.

    USER (1005), user-space messages (1100-1199, 2100-2999), auditd's DAEMON_* (1200-1299) and
    KERNEL (2000). LOGIN (1006), AVC and CONFIG_CHANGE are *not* here: they come before the
    SYSCALL of their event. Unknown types (None) wait for the window rather than risk a split.
    """
    if type_num is None:
        return False
    return (
        type_num == 1005
        or 1100 <= type_num <= 1299
        or type_num == 2000
        or 2100 <= type_num <= 2999
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """The records of one audit event, in the order they arrived.

    `late` is True when an event with this key had already been emitted: its records came
    after the window closed it (records spread far apart, or a duplicated event).
    """

    node: str | None
    event_id: EventId
    records: tuple[Record, ...]
    late: bool = False

    def first(self, type_num: int) -> Record | None:
        """The first record of type `type_num` (e.g. the SYSCALL), or None."""
        for record in self.records:
            if record.type_num == type_num:
                return record
        return None

    def all(self, type_num: int) -> tuple[Record, ...]:
        """Every record of type `type_num` in arrival order (e.g. all EXECVE parts)."""
        return tuple(record for record in self.records if record.type_num == type_num)


@dataclass(slots=True)
class CorrelatorStats:
    """Counters that say how events were closed, so a bad window shows up in a report.

    `events` equals the sum of the `closed_*` counters. `late_records` counts records whose
    key had already been emitted (they form a second event with the same key); `spurious_eoe`
    counts EOE records for keys never seen (an EOE right after PROCTITLE is expected, not
    spurious). `peak_open` is the most events held at once.
    """

    records: int = 0
    events: int = 0
    closed_by_eoe: int = 0
    closed_by_marker: int = 0
    closed_by_window: int = 0
    closed_by_size: int = 0
    closed_at_end: int = 0
    late_records: int = 0
    eoe_records: int = 0
    spurious_eoe: int = 0
    peak_open: int = 0


class _Pending:
    """An open event: mutable while records arrive, frozen into an AuditEvent on close."""

    __slots__ = ("key", "event_id", "records", "seq", "has_syscall", "late", "rank")

    def __init__(self, key: Key, record: Record, seq: int, late: bool, rank: int = 0) -> None:
        self.key = key
        self.rank = rank
        self.late = late
        self.event_id = record.event_id
        self.records = [record]
        self.seq = seq
        self.has_syscall = record.type_num == SYSCALL

    def freeze(self) -> AuditEvent:
        return AuditEvent(self.key[0], self.event_id, tuple(self.records), self.late)


def _order(pending: _Pending) -> tuple[int, int, int]:
    """Emission order: log time, then serial (unwrapped), then arrival.

    Time and serial make the order a property of the events themselves, so the same log gives
    the same order as raw lines and as `ausearch -i` text (which reorders records and events);
    arrival only breaks the tie of a duplicated key. `rank` is the serial unwrapped across
    the 2^32 wrap, so 4294967295 sorts before the 0 that follows it.
    """
    return (pending.event_id.msec, pending.rank, pending.seq)


def _signed_delta(serial: int, previous: int) -> int:
    """The step from `previous` to `serial` modulo 2^32, taken within ±2^31."""
    delta = (serial - previous) & 0xFFFFFFFF
    return delta - 0x100000000 if delta >= 0x80000000 else delta


class _SerialUnwrapper:
    """Unwraps one node's 32-bit serials into a monotonic rank, like TCP sequence numbers.

    Each serial is placed at the signed distance (within ±2^31) from the previous one, so a
    wrap from 4294967295 to 0 moves forward by one instead of back by 2^32. `first_serial`
    is kept for `SeamState.check`: a fresh unwrapper ranks it as itself.
    """

    __slots__ = ("first_serial", "last_rank", "last_serial")

    def __init__(self, serial: int, rank: int) -> None:
        self.first_serial = serial
        self.last_serial = serial
        self.last_rank = rank

    def rank(self, serial: int) -> int:
        self.last_rank += _signed_delta(serial, self.last_serial)
        self.last_serial = serial
        return self.last_rank


@dataclass(slots=True)
class ChunkSummary:
    """What the main process needs from a chunk's correlator to judge the seam before it.

    `closed` is the memory of closed keys, oldest first. `first_lookups` are the keys that
    missed it while it had room: the true correlator still remembered keys from before the
    seam then, so those misses may have been hits. `serials` maps each node to (first serial,
    last serial, last rank) of its unwrapper. `serials_reset` (more nodes than the window) and
    `lookups_overflow` (a run of unmatched EOEs) say the summary cannot prove the seam.
    Every size is bounded by `max_open`, not by the chunk.
    """

    quiet: bool
    closed: list[Key]
    first_lookups: list[Key]
    serials: dict[str | None, tuple[int, int, int]]
    serials_reset: bool
    lookups_overflow: bool


@dataclass(slots=True)
class SeamState:
    """What the true correlator carries across a quiet seam, kept by the main process.

    With nothing open or held, only two things survive a cut: the keys closed lately
    (`closed`, oldest first, to flag late records and expected EOEs) and each node's (last
    serial, last rank) (to order events of the same millisecond across nodes). `check` says
    whether a fresh run of the next chunk was exact; `advance` moves past an accepted chunk;
    `Correlator(seed=state)` runs a chunk that failed as the true correlator would.
    """

    max_open: int = DEFAULT_MAX_OPEN
    closed: list[Key] = field(default_factory=list)
    serials: dict[str | None, tuple[int, int]] = field(default_factory=dict)

    def check(self, summary: ChunkSummary) -> str | None:
        """None if a fresh correlator ran the chunk exactly as the true one; else why not.

        A fresh memory misses only keys that the true one might still hold, and a fresh
        unwrapper ranks a node's first serial as itself: both must agree with this state.
        The true unwrappers are cleared past `max_open + 1` nodes, so that must not happen.
        """
        memory = set(self.closed)
        if any(key in memory for key in summary.first_lookups):
            return "a record of an event from before the seam"
        if summary.lookups_overflow:
            return "too many unmatched keys to compare across the seam"
        serials = self.serials
        new_nodes = sum(node not in serials for node in summary.serials)
        if summary.serials_reset or len(serials) + new_nodes > self.max_open + 1:
            return "more nodes than the window keeps serial numbers for"
        for node, (first, _, _) in summary.serials.items():
            known = serials.get(node)
            if known is not None and known[1] + _signed_delta(first, known[0]) != first:
                return "serial numbers wrap across the seam"
        return None

    def advance(self, summary: ChunkSummary) -> None:
        """Move past an accepted chunk (fresh and checked, or seeded): chain its memory.

        The chunk's keys were closed after all of ours, so they go to the end in their order
        and the oldest fall out, as `Correlator._finish` does one key at a time.
        """
        memory: OrderedDict[Key, None] = OrderedDict.fromkeys(self.closed)
        for key in summary.closed:
            memory.pop(key, None)
            memory[key] = None
        while len(memory) > self.max_open:
            memory.popitem(last=False)
        self.closed = list(memory)
        if summary.serials_reset:
            self.serials = {}
        for node, (_, last_serial, last_rank) in summary.serials.items():
            self.serials[node] = (last_serial, last_rank)


def auditd_own(type_num: int | None) -> bool:
    """DAEMON_* records (1200-1299): auditd numbers them itself, apart from the kernel's serials."""
    return type_num is not None and 1200 <= type_num <= 1299


@dataclass(slots=True)
class SerialGap:
    """Serials `first`..`last` of `node` that a record of serial `last + 1` skipped, at `where`.

    `seen` holds those that arrived late after all (records of events on other CPUs are
    written out of order); the rest never came.
    """

    node: str | None
    first: int
    last: int
    where: Record
    seen: set[int] = field(default_factory=set)

    @property
    def missing(self) -> int:
        return self.last - self.first + 1 - len(self.seen)


class SerialGaps:
    """Finds audit events that never reached the log, by the serial numbers they left out.

    The kernel numbers every audit event it emits, one serial after the other per host, and
    writes every record of a complete log with its event's serial: a serial that never
    appears is an event that was lost (the kernel's backlog overflowed, auditd's queue to a
    plugin overflowed, or a rotated log was removed before it was read). Events of different
    CPUs are written slightly out of order, so a skipped serial is only reported once the
    node's serials have gone `window` past it without it; `flush` reports the rest.

    Only a log of everything the kernel wrote can be checked this way: a log cut down to
    some processes skips serials on purpose, so the converter checks only where asked
    (`Options.serial_gaps`, on when following a live log). auditd's own DAEMON records carry
    serials of their own and are not checked; a serial far below the newest (a reboot
    restarts the count) starts the node anew.
    """

    def __init__(self, window: int = 4096, max_gaps: int = 256) -> None:
        self._window = window
        self._max_gaps = max_gaps
        self._newest: dict[str | None, int] = {}  # unwrapped serial
        self._open: list[SerialGap] = []

    def add(self, record: Record) -> list[SerialGap]:
        """Take one record; return the gaps that are now known to stay open, oldest first."""
        if auditd_own(record.type_num):
            return []
        node = record.node
        newest = self._newest.get(node)
        if newest is None:
            self._newest[node] = record.event_id.serial
            return []
        serial = newest + _signed_delta(record.event_id.serial, newest & 0xFFFFFFFF)
        if serial <= newest:
            if newest - serial > self._window:  # the count restarted: a new boot
                self._newest[node] = serial
                self._open = [gap for gap in self._open if gap.node != node]
                return []
            for gap in self._open:
                if gap.node == node and gap.first <= serial <= gap.last:
                    gap.seen.add(serial)
            return []
        if serial > newest + 1:
            self._open.append(SerialGap(node, newest + 1, serial - 1, record))
        self._newest[node] = serial
        return self._closed(node, serial)

    def flush(self) -> list[SerialGap]:
        """End of input: every gap still open stays open."""
        gaps, self._open = self._open, []
        return [gap for gap in gaps if gap.missing > 0]

    def _closed(self, node: str | None, newest: int) -> list[SerialGap]:
        """Gaps that `newest` has left more than the window behind (and the oldest ones past
        `max_gaps`, so that a log that skips serials all the time stays in bounded memory)."""
        done: list[SerialGap] = []
        keep: list[SerialGap] = []
        excess = len(self._open) - self._max_gaps
        for gap in self._open:
            if excess > 0 or (gap.node == node and newest - gap.last > self._window):
                excess -= 1
                if gap.missing > 0:
                    done.append(gap)
            else:
                keep.append(gap)
        self._open = keep
        return done


class Correlator:
    """Turns a stream of records into a stream of events in O(1) amortised time per record.

    Open events live in one insertion-ordered map (oldest arrival first, for the size window)
    and one per node (for the age window, so nodes with skewed clocks do not evict each
    other). Only the oldest entry is ever inspected, never the whole window.
    """

    def __init__(
        self,
        *,
        max_open: int = DEFAULT_MAX_OPEN,
        max_age_ms: int = DEFAULT_MAX_AGE_MS,
        max_records: int = DEFAULT_MAX_RECORDS,
        seed: SeamState | None = None,
    ) -> None:
        """`seed`: continue from the true state at a quiet seam instead of from nothing."""
        if max_open < 1 or max_records < 1 or max_age_ms < 0:
            raise ConfigError(
                f"correlation window needs max_open >= 1, max_records >= 1, max_age_ms >= 0 "
                f"(got {max_open}, {max_records}, {max_age_ms})"
            )
        if seed is not None and seed.max_open != max_open:
            raise ConfigError(f"seed is for max_open={seed.max_open}, not {max_open}")
        self._max_open = max_open
        self._max_age_ms = max_age_ms
        self._max_records = max_records
        self._open: OrderedDict[Key, _Pending] = OrderedDict()
        self._by_node: dict[str | None, OrderedDict[Key, _Pending]] = {}
        # Keys emitted lately, to tell a late record or an expected EOE from a new key.
        self._closed: OrderedDict[Key, None] = OrderedDict()
        self._seq = 0
        self._serials: dict[str | None, _SerialUnwrapper] = {}
        if seed is not None:
            self._closed.update(dict.fromkeys(seed.closed))
            for node, (serial, rank) in seed.serials.items():
                self._serials[node] = _SerialUnwrapper(serial, rank)
        # For summary(): keys that missed `_closed` while it had room (see `_was_closed`).
        self._first_lookups: dict[Key, None] = {}
        self._lookups_overflow = False
        self._serials_reset = False
        # Closed events wait here until no open event is older: output is in log order.
        self._ready: list[tuple[tuple[int, int, int], _Pending]] = []
        # Open events by order; entries of events closed since are skipped lazily.
        self._open_order: list[tuple[tuple[int, int, int], Key]] = []
        self.stats = CorrelatorStats()

    def add(self, record: Record) -> list[AuditEvent]:
        """Take one record; return the events it completes or pushes out, oldest first."""
        stats = self.stats
        stats.records += 1
        event_id = record.event_id
        key: Key = (record.node, event_id.msec, event_id.serial)
        type_num = record.type_num
        done: list[_Pending] = []
        self._expire(record.node, event_id.msec, done)

        if type_num == EOE:
            stats.eoe_records += 1
            pending = self._open.get(key)
            if pending is not None:
                stats.closed_by_eoe += 1
                self._close(pending, done)
            elif not self._was_closed(key):
                stats.spurious_eoe += 1
        elif stands_alone(type_num):
            late = self._was_closed(key)
            pending = _Pending(key, record, self._next_seq(), late, self._rank(record))
            stats.late_records += pending.late
            stats.closed_by_marker += 1
            self._finish(pending, done)
        else:
            pending = self._open.get(key)
            if pending is None:
                pending = self._start(key, record, done)
            else:
                pending.records.append(record)
                if type_num == SYSCALL:
                    pending.has_syscall = True
            stats.late_records += pending.late
            if type_num == PROCTITLE and pending.has_syscall:
                stats.closed_by_marker += 1
                self._close(pending, done)
            elif len(pending.records) >= self._max_records:
                stats.closed_by_size += 1
                self._close(pending, done)

        return self._emit(done)

    def flush(self) -> list[AuditEvent]:
        """End of input: every open event, oldest first."""
        done = list(self._open.values())
        self.stats.closed_at_end += len(done)
        self.stats.events += len(done)
        self._open.clear()
        self._by_node.clear()
        self._open_order.clear()
        return self._emit(done)

    @property
    def open_events(self) -> int:
        """How many events are held right now (never more than `max_open`)."""
        return len(self._open)

    def quiet(self) -> bool:
        """Nothing open and nothing held back: a cut here loses no event (see `SeamState`)."""
        return not self._open and not self._ready

    def summary(self) -> ChunkSummary:
        """What `SeamState` needs to judge the seam before this run's chunk (call before flush)."""
        serials = {
            node: (u.first_serial, u.last_serial, u.last_rank) for node, u in self._serials.items()
        }
        return ChunkSummary(
            self.quiet(),
            list(self._closed),
            list(self._first_lookups),
            serials,
            self._serials_reset,
            self._lookups_overflow,
        )

    def _was_closed(self, key: Key) -> bool:
        """True if `key` was closed lately; a miss is noted for `summary()` while it may matter.

        Until `max_open` keys are remembered, the true correlator over a longer log still holds
        keys from before this run, so a miss here may be a hit there. (Not until `max_open`
        closes: closing a remembered key again evicts nothing.) Once full, both memories are
        the same and a miss costs one comparison. Keys missed by new events are open or
        remembered, 2 * max_open at most; more come from unmatched EOEs, and are not kept.
        """
        closed = self._closed
        if key in closed:
            return True
        if len(closed) < self._max_open:
            lookups = self._first_lookups
            if len(lookups) < 2 * self._max_open:
                lookups[key] = None
            elif key not in lookups:
                self._lookups_overflow = True
        return False

    def _rank(self, record: Record) -> int:
        serial = record.event_id.serial
        unwrapper = self._serials.get(record.node)
        if unwrapper is None:
            if len(self._serials) > self._max_open:
                self._serials.clear()
                self._serials_reset = True
            unwrapper = self._serials[record.node] = _SerialUnwrapper(serial, serial)
        return unwrapper.rank(serial)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _start(self, key: Key, record: Record, done: list[_Pending]) -> _Pending:
        pending = _Pending(key, record, self._next_seq(), self._was_closed(key), self._rank(record))
        self._open[key] = pending
        heapq.heappush(self._open_order, (_order(pending), key))
        node_open = self._by_node.get(key[0])
        if node_open is None:
            node_open = self._by_node[key[0]] = OrderedDict()
        node_open[key] = pending
        while len(self._open) > self._max_open:
            self.stats.closed_by_window += 1
            self._close(next(iter(self._open.values())), done)
        if len(self._open) > self.stats.peak_open:
            self.stats.peak_open = len(self._open)
        return pending

    def _expire(self, node: str | None, msec: int, done: list[_Pending]) -> None:
        """Close this node's oldest events while they are too far in log time from `msec`."""
        node_open = self._by_node.get(node)
        max_age = self._max_age_ms
        while node_open:
            head = next(iter(node_open.values()))
            if abs(msec - head.event_id.msec) <= max_age:
                return
            self.stats.closed_by_window += 1
            self._close(head, done)

    def _close(self, pending: _Pending, done: list[_Pending]) -> None:
        key = pending.key
        del self._open[key]
        node_open = self._by_node[key[0]]
        del node_open[key]
        if not node_open:
            del self._by_node[key[0]]
        self._finish(pending, done)

    def _finish(self, pending: _Pending, done: list[_Pending]) -> None:
        self.stats.events += 1
        closed = self._closed
        closed.pop(pending.key, None)
        closed[pending.key] = None
        if len(closed) > self._max_open:
            closed.popitem(last=False)
        done.append(pending)

    def _emit(self, done: list[_Pending]) -> list[AuditEvent]:
        """Release closed events in order, holding those that an older open event precedes.

        The held ones are bounded: past `max_open` of them, the open events that hold them
        back are closed as if the window had passed them.
        """
        ready = self._ready
        for pending in done:
            heapq.heappush(ready, (_order(pending), pending))
        out: list[AuditEvent] = []
        while ready:
            oldest_open = self._oldest_open()
            if oldest_open is not None and oldest_open < ready[0][0]:
                if len(ready) <= self._max_open:
                    break
                blocker = self._open[self._open_order[0][1]]
                self.stats.closed_by_window += 1
                self._close(blocker, [])
                heapq.heappush(ready, (_order(blocker), blocker))
                continue
            out.append(heapq.heappop(ready)[1].freeze())
        return out

    def _oldest_open(self) -> tuple[int, int, int] | None:
        """Order key of the oldest open event (dropping stale heap entries on the way)."""
        heap = self._open_order
        while heap:
            order, key = heap[0]
            pending = self._open.get(key)
            if pending is not None and pending.seq == order[2]:
                return order
            heapq.heappop(heap)
        return None
