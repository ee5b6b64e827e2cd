"""Serial numbers of audit events: the kernel numbers events one after the other per host.

They order events of the same millisecond (`SerialUnwrapper`, across the 2^32 wrap) and show
events that never reached the log (`SerialGaps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import Record
from .types import auditd_own

__all__ = ["SerialGap", "SerialGaps", "SerialUnwrapper", "signed_delta"]


def signed_delta(serial: int, previous: int) -> int:
    """The step from `previous` to `serial` modulo 2^32, taken within ±2^31."""
    delta = (serial - previous) & 0xFFFFFFFF
    return delta - 0x100000000 if delta >= 0x80000000 else delta


class SerialUnwrapper:
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
        self.last_rank += signed_delta(serial, self.last_serial)
        self.last_serial = serial
        return self.last_rank


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
    serials of their own and are not checked. A serial far below the newest starts the node
    anew when its time is later than every record's before it (a reboot restarts the count);
    with an earlier or equal time it is a record that came late: auditd's dispatcher, when its
    queue to the plugins overflows, sends the rest of an event thousands of events late.
    """

    def __init__(self, window: int = 4096, max_gaps: int = 256) -> None:
        self._window = window
        self._max_gaps = max_gaps
        self._newest: dict[str | None, int] = {}  # unwrapped serial
        self._latest_msec: dict[str | None, int] = {}  # the latest time of the node's records
        self._open: list[SerialGap] = []

    def feed(self, record: Record) -> list[SerialGap]:
        """Take one record; return the gaps that are now known to stay open, oldest first."""
        if auditd_own(record.type_num):
            return []
        node = record.node
        msec = record.stamp.msec
        latest = self._latest_msec.get(node, msec)
        self._latest_msec[node] = max(latest, msec)
        newest = self._newest.get(node)
        if newest is None:
            self._newest[node] = record.stamp.serial
            return []
        serial = newest + signed_delta(record.stamp.serial, newest & 0xFFFFFFFF)
        if serial <= newest:
            if newest - serial > self._window and msec > latest:  # the count restarted: a new boot
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
