"""What the command says on standard error: bad lines, warnings, progress, `--stats`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from ..convert import ConversionStats
from ..errors import Audit2SysmonError, Damage, NotConverted, Unresolved
from .args import PROG
from .output import OutputError, Target

__all__ = ["REPORT_LIMIT", "Progress", "Reporter", "format_stats"]

REPORT_LIMIT = 20
"""Malformed lines shown on standard error before they are only counted."""


class Reporter:
    """Malformed lines: `FILE:LINE: reason` on stderr (the first few), verbatim to --rejects.

    The error names file and line, and carries the line as read (`source_line`).
    """

    def __init__(
        self,
        say: Callable[[str], None],
        rejects: Target | None,
        limit: int = REPORT_LIMIT,
        what: str = "malformed line(s)",
    ) -> None:
        self._say = say
        self._rejects = rejects
        self._limit = limit
        self._what = what
        self.count = 0

    def __call__(self, error: Audit2SysmonError) -> None:
        self.count += 1
        if self.count <= self._limit:
            self._say(str(error))
        if self._rejects is not None and error.source_line is not None:
            line = error.source_line if error.source_line.endswith(b"\n") else error.source_line + b"\n"
            try:
                self._rejects.write(line)
            except OSError as exc:
                raise OutputError(exc) from exc

    def summary(self) -> None:
        hidden = self.count - self._limit
        if hidden > 0:
            kept = ", --rejects keeps them" if self._rejects is not None else ""
            self._say(f"{PROG}: {hidden} more {self._what} not shown (--stats counts them{kept})")


class Progress:
    """A tqdm bar over the bytes of the input files; absent unless stderr is a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        from tqdm import tqdm  # only for terminals: importing it costs startup time

        # No monitor thread: --jobs forks its workers after the bar exists, and forking while
        # another thread runs can leave a lock held in the child (Python 3.12 warns of it).
        tqdm.monitor_interval = 0
        self._bar = tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, file=stream, leave=False, dynamic_ncols=True
        )
        self._done = 0

    def advance(self, completed: int) -> None:
        """Move the bar to `completed` bytes of all files."""
        self._bar.update(completed - self._done)
        self._done = completed

    @contextmanager
    def hidden(self) -> Iterator[None]:
        """Clear the bar while a message is printed, then draw it again."""
        with self._bar.external_write_mode(file=self._bar.fp):
            yield

    def close(self) -> None:
        self._bar.close()


def format_stats(stats: ConversionStats, files: int) -> str:
    """The `--stats` report: lines read = records + skipped + rejected (docs/cli.md)."""
    rows = [
        (f"lines read ({files} file{'s' if files != 1 else ''})", stats.lines),
        ("  records", stats.records),
        ("  skipped (blank, comment, separator)", stats.skipped),
        ("  rejected (malformed)", stats.rejected),
        ("audit events", stats.events),
        ("successful execve/execveat", stats.exec_syscalls),
        ("ProcessCreate events written", stats.process_create),
        ("events written", stats.written),
    ]
    if stats.lost_events:
        rows.append(("audit events lost before reading", stats.lost_events))
    width = max(len(label) for label, _ in rows)
    text = [f"{PROG}: statistics"]
    text += [f"  {label:<{width}} {value:>10}" for label, value in rows]
    dropped = Counter({f"EventID {event_id}": count for event_id, count in sorted(stats.filtered.items())})
    for title, counts in (
        ("rejected lines by reason", stats.reasons),
        ("successful execs not written, by reason", stats.exec_rejected),
        ("converted events with damage, by kind", stats.damaged),
        ("events written with a value the log did not hold, by which", stats.unresolved),
        ("events the configuration dropped, by EventID", dropped),
        ("events the configuration logged, by RuleName", stats.rule_names),
    ):
        text += _by_reason(title, counts)
    return "\n".join(text) + "\n"


def _by_reason(
    title: str, counts: Counter[str] | Counter[NotConverted] | Counter[Damage] | Counter[Unresolved]
) -> list[str]:
    """The ten most frequent reasons of a counter, and what the others add up to."""
    if not counts:
        return []
    top = counts.most_common(10)
    rows = [f"  {title}:"] + [f"  {count:>10}  {reason}" for reason, count in top]
    rest = sum(counts.values()) - sum(count for _, count in top)
    if rest:
        rows.append(f"  {rest:>10}  (other reasons)")
    return rows
