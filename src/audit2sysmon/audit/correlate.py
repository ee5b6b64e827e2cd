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
Where a log may be cut so that fresh correlators give the same events: seams.py.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import ConfigError
from .records import AuditEvent, Record
from .seams import DEFAULT_MAX_OPEN, ChunkSummary, Key, SeamState
from .serials import SerialUnwrapper
from .types import EOE, PROCTITLE, STANDS_ALONE, SYSCALL

__all__ = [
    "DEFAULT_MAX_AGE_MS",
    "DEFAULT_MAX_OPEN",
    "DEFAULT_MAX_RECORDS",
    "Correlator",
    "CorrelatorStats",
]

# Measured on the live corpus and go-libaudit's out_of_order.log (docs/correlation.md): one
# record came 7,845 ms of log time after a newer event.
DEFAULT_MAX_AGE_MS = 30_000
# An execve within the default 2 MiB argument limit needs about a thousand EXECVE records at most.
DEFAULT_MAX_RECORDS = 10_000


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


class _Open:
    """An open event: mutable while records arrive, frozen into an AuditEvent on close."""

    __slots__ = ("closed", "has_syscall", "key", "late", "rank", "records", "seq", "stamp")

    def __init__(self, key: Key, record: Record, seq: int, late: bool, rank: int = 0) -> None:
        self.key = key
        self.rank = rank
        self.late = late
        self.stamp = record.stamp
        self.records = [record]
        self.seq = seq
        self.has_syscall = record.type_num == SYSCALL
        self.closed = False

    def freeze(self) -> AuditEvent:
        return AuditEvent(self.key[0], self.stamp, tuple(self.records), self.late)


def _order(pending: _Open) -> tuple[int, int, int]:
    """Emission order: log time, then serial (unwrapped), then arrival.

    Time and serial make the order a property of the events themselves, so the same log gives
    the same order as raw lines and as `ausearch -i` text (which reorders records and events);
    arrival only breaks the tie of a duplicated key. `rank` is the serial unwrapped across
    the 2^32 wrap, so 4294967295 sorts before the 0 that follows it.
    """
    return (pending.stamp.msec, pending.rank, pending.seq)


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
        self._open: OrderedDict[Key, _Open] = OrderedDict()
        self._by_node: dict[str | None, OrderedDict[Key, _Open]] = {}
        # Keys emitted lately, to tell a late record or an expected EOE from a new key.
        self._closed: OrderedDict[Key, None] = OrderedDict()
        self._seq = 0
        self._serials: dict[str | None, SerialUnwrapper] = {}
        if seed is not None:
            self._closed.update(dict.fromkeys(seed.closed))
            for node, (serial, rank) in seed.serials.items():
                self._serials[node] = SerialUnwrapper(serial, rank)
        # For summary(): keys that missed `_closed` while it had room (see `_was_closed`).
        self._first_lookups: dict[Key, None] = {}
        self._lookups_overflow = False
        self._serials_reset = False
        # Closed events wait here until no open event is older: output is in log order.
        self._ready: list[tuple[tuple[int, int, int], _Open]] = []
        # Open events by order; entries of events closed since are skipped lazily.
        self._open_order: list[tuple[tuple[int, int, int], Key]] = []
        # The open event of the record before, while it stays open (see `feed`).
        self._last: _Open | None = None
        # Where the window was last checked: the node, the log time, and how many events had
        # finished then (see `feed`).
        self._checked_node: str | None = None
        self._checked_msec = -1
        self._checked_events = -1
        self.stats = CorrelatorStats()

    def feed(self, record: Record) -> list[AuditEvent]:
        """Take one record; return the events it completes or pushes out, oldest first."""
        stats = self.stats
        stats.records += 1
        stamp = record.stamp
        type_num = record.type_num
        done: list[_Open] = []
        last = self._last
        pending: _Open | None
        node, msec = record.node, stamp.msec
        if msec != self._checked_msec or node != self._checked_node or stats.events != self._checked_events:
            # Unless the record before had this node and time and no event finished since its
            # check: then this node's oldest open event is the one that passed that check, or
            # one that record started at this very time, and nothing can be too old.
            self._expire(node, msec, done)
            self._checked_node, self._checked_msec = node, msec
            self._checked_events = stats.events
        if last is not None and not last.closed and stamp is last.stamp and node == last.key[0]:
            # Most records continue the event of the record before them (the parser gives
            # the records of one stamp one `Stamp`): its key is known, and it is open.
            key = last.key
            known: _Open | None = last
        else:
            key = (node, msec, stamp.serial)
            known = self._open.get(key)

        if type_num == EOE:
            stats.eoe_records += 1
            pending = known
            if pending is not None:
                stats.closed_by_eoe += 1
                self._close(pending, done)
            elif not self._was_closed(key):
                stats.spurious_eoe += 1
        elif type_num in STANDS_ALONE:
            late = self._was_closed(key)
            pending = _Open(key, record, self._next_seq(), late, self._rank(record))
            stats.late_records += pending.late
            stats.closed_by_marker += 1
            self._finish(pending, done)
        else:
            pending = known
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
        out = self._emit(done) if done else []  # may close an open event that holds closed ones back
        self._last = pending if pending is not None and not pending.closed else None
        return out

    def flush(self) -> list[AuditEvent]:
        """End of input: every open event, oldest first."""
        done = list(self._open.values())
        self._last = None  # these close without `_finish`, which would mark them `closed`
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
        serial = record.stamp.serial
        unwrapper = self._serials.get(record.node)
        if unwrapper is None:
            if len(self._serials) > self._max_open:
                self._serials.clear()
                self._serials_reset = True
            unwrapper = self._serials[record.node] = SerialUnwrapper(serial, serial)
        return unwrapper.rank(serial)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _start(self, key: Key, record: Record, done: list[_Open]) -> _Open:
        pending = _Open(key, record, self._next_seq(), self._was_closed(key), self._rank(record))
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

    def _expire(self, node: str | None, msec: int, done: list[_Open]) -> None:
        """Close this node's oldest events while they are too far in log time from `msec`."""
        node_open = self._by_node.get(node)
        max_age = self._max_age_ms
        while node_open:
            head = next(iter(node_open.values()))
            if abs(msec - head.stamp.msec) <= max_age:
                return
            self.stats.closed_by_window += 1
            self._close(head, done)

    def _close(self, pending: _Open, done: list[_Open]) -> None:
        key = pending.key
        del self._open[key]
        node_open = self._by_node[key[0]]
        del node_open[key]
        if not node_open and len(self._by_node) > self._max_open:
            # A node's map stays while it is empty, for its next event: most logs have
            # one node, and making it anew for each event cost more than the event's
            # other bookkeeping. Past `max_open` nodes, an emptied one goes: at most that
            # many empty ones are kept, however many nodes a log names.
            del self._by_node[key[0]]
        self._finish(pending, done)

    def _finish(self, pending: _Open, done: list[_Open]) -> None:
        pending.closed = True
        self.stats.events += 1
        closed = self._closed
        closed.pop(pending.key, None)
        closed[pending.key] = None
        if len(closed) > self._max_open:
            closed.popitem(last=False)
        done.append(pending)

    def _emit(self, done: list[_Open]) -> list[AuditEvent]:
        """Release closed events in order, holding those that an older open event precedes.

        The held ones are bounded: past `max_open` of them, the open events that hold them
        back are closed as if the window had passed them. With nothing closed just now,
        nothing held can have become free (only a close makes an open event no longer the
        oldest, or the held ones more), so most records return at once.
        """
        if not done:
            return []
        ready = self._ready
        if not ready and not self._open and len(done) == 1:
            # The common close: one event, nothing held, nothing open (every entry of the
            # order heap is stale then). The loop below would release it alone too.
            self._open_order.clear()
            return [done[0].freeze()]
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
