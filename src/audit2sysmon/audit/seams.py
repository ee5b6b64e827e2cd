"""Seams: where a log may be cut so that chunks read by fresh correlators give the same events.

A log cut into consecutive chunks, each run by a fresh correlator, gives exactly the events of
one correlator over the whole log when, at every cut, the true correlator is `quiet()` and what
it remembers across the cut (the keys it closed lately, each node's serial unwrapping) changes
nothing after it. A worker cannot know that memory, so it sends back a small `ChunkSummary`
(`Correlator.summary()`); the process that applies the chunks keeps the memory in a
`SeamState` that `check`s each seam, and a chunk that fails is run again by a correlator
seeded with it (`Correlator(seed=state)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .serials import signed_delta

__all__ = ["DEFAULT_MAX_OPEN", "ChunkSummary", "Key", "SeamState"]

# Measured on the live corpus and go-libaudit's out_of_order.log (docs/correlation.md):
# at most 2 other events between the first and last record of an event.
DEFAULT_MAX_OPEN = 1024

Key = tuple[str | None, int, int]
"""An event's identity: (node, milliseconds, serial)."""


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
            if known is not None and known[1] + signed_delta(first, known[0]) != first:
                return "serial numbers wrap across the seam"
        return None

    def advance(self, summary: ChunkSummary) -> None:
        """Move past an accepted chunk (fresh and checked, or seeded): chain its memory.

        The chunk's keys (each once, a correlator's memory) were closed after all of ours, so
        they go to the end in their order and the oldest fall out, as `Correlator._finish`
        does one key at a time: with a full chunk's memory (a 1 MiB chunk closes more than the
        default 1,024 keys), none of ours is left.
        """
        memory = summary.closed
        room = self.max_open - len(memory)  # for the newest of ours that the chunk did not close
        if room > 0:
            newer = set(memory)
            memory = [key for key in self.closed if key not in newer][-room:] + memory
        self.closed = list(memory)
        if summary.serials_reset:
            self.serials = {}
        for node, (_, last_serial, last_rank) in summary.serials.items():
            self.serials[node] = (last_serial, last_rank)
