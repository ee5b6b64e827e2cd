"""Build an audit log in which no process, file or command line ever repeats.

The worst case for the parser's caches of decoded pairs and whole bodies: real logs repeat
(the benchmark log of build_log.py does so nearly always), this one repeats as little as a
log of real events can. It is made from the events of a real capture, which keeps the mix of
record types, the event shapes and the field layout of a real kernel, and rewrites whatever
identifies a process, a file or a command so that it is new:

- every pid of every copy of the source is a fresh pid (`pid=`, `ppid=`, and the child pid
  that a successful clone/fork/vfork/clone3 returns), so parent and child links still hold;
- every event gets a *salt*, a short suffix never used before, and every string its
  records show is salted: the executable (`exe=`), `comm=`, the CWD, every PATH name, every
  argument of EXECVE and PROCTITLE. A string is salted per path component (`/usr/bin/gcc`
  → `/usr_k3f/bin_k3f/gcc_k3f`), so within the event a directory and the names under it,
  the executable and the PATH item that names it, EXECVE and PROCTITLE, still agree;
- every inode an event shows is a fresh number;
- stamps and serials move on from copy to copy as in build_log.py.

So no body of a SYSCALL (from ` auid=` on: what the parser looks up whole), EXECVE, PATH,
CWD or PROCTITLE record is ever written twice. What still repeats are pairs of the SYSCALL
head (`arch=`, `syscall=`, `success=`, uids, a process's pid), BPRM_FCAPS capability sets
and the ENRICHED tails (user and syscall names), which no real log varies either.

That is beyond what a real log can do: a process shows the same executable, CWD and
PROCTITLE in each of its events (the compiler driver's search through PATH is eight failed
execs of one process). `scope="image"` salts per *process image* instead (a process from its
start or its last successful exec on; a forked child keeps its parent's image until it
execs): then nothing repeats between process images, but a process's own events repeat, as
on a real host whose programs never run twice. The mapper sees an executable change at every
event of the `event` scope and learns a new identity each time; the Sysmon events it writes
are the same in number and kind in both scopes.

Values keep the kernel's encoding: a quoted value stays quoted (a salt adds only `_`, digits
and lower-case letters, which the kernel writes quoted), a hex value stays hex. Lines get
longer by the salts (about 5 characters per path component or argument).

Deterministic: the same source, count, scope and seed give the same bytes. The seed picks where
pids, salts and inodes start.

Usage:
    python benchmarks/unique_log.py SOURCE -n 216813 -o /tmp/unique.log
    python benchmarks/unique_log.py SOURCE.xz -n 1000 -o -       # to stdout
    python benchmarks/unique_log.py SOURCE --scope image -o /tmp/unique-images.log
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import re
import sys
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

PID_MAX = 4_194_304  # /proc/sys/kernel/pid_max default on 64-bit kernels
FIRST_PID = 300  # the kernel restarts allocation above the reserved low pids on wrap
PROCTITLE_MAX = 128  # the kernel logs at most this many bytes of a process's argv

_HEAD = re.compile(r"(?:node=[^ \x1d]* )?type=(\S+) msg=audit\((\d+)\.(\d{3}):(\d+)\):")
_PIDS = re.compile(r"(?<=[ \x1d])(pid|ppid)=(\d+)")
_ARG = re.compile(r"a\d+(?:\[\d+\])?\Z")
# (arch, syscall number) of the calls that make a process: clone, fork, vfork, clone3 and the
# execs, for x86-64 and i386.
_CLONES = frozenset({("c000003e", n) for n in ("56", "57", "58", "435")} | {("40000003", n) for n in ("120", "2", "190", "435")})
_EXECS = frozenset({("c000003e", "59"), ("c000003e", "322"), ("40000003", "11"), ("40000003", "358")})
# Body keys whose value is a string this generator salts, per record type.
_SALTED = {"CWD": ("cwd",), "PATH": ("name",), "SYSCALL": ("exe",)}
_NULLS = frozenset({"(null)", "(none)", "?"})
SCOPES = ("event", "image")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def read_source(path: Path) -> list[str]:
    """The lines of a capture (xz-compressed when its name ends in .xz), without line ends."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        # not splitlines(): it also splits at the 0x1D byte that starts an ENRICHED tail
        return f.read().rstrip("\n").split("\n")


def _base36(n: int) -> str:
    out = ""
    while True:
        n, digit = divmod(n, 36)
        out = _DIGITS[digit] + out
        if not n:
            return out


def _decode(raw: str) -> tuple[bytes, bool] | None:
    """(bytes, was quoted) of a kernel string value; None for a null marker or a bare word."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1].encode("utf-8", "surrogateescape"), True
    if raw in _NULLS:
        return None
    try:
        return bytes.fromhex(raw), False
    except ValueError:
        return None


def _encode(value: bytes, quoted: bool) -> str:
    return '"' + value.decode("utf-8", "surrogateescape") + '"' if quoted else value.hex().upper()


def salted(value: bytes, salt: bytes) -> bytes:
    """Every path component of `value` with `salt` appended (`.`, `..` and empty ones kept)."""
    return b"/".join(part if part in (b"", b".", b"..") else part + salt for part in value.split(b"/"))


@dataclass(slots=True)
class _Copy:
    """What one copy of the source maps: pids, the process image of each pid, inodes, event salts."""

    pids: dict[int, int] = field(default_factory=dict)
    # new pid -> (salt, executable as written) of its current image (`image` scope)
    images: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    inodes: dict[tuple[bytes, str], str] = field(default_factory=dict)
    events: OrderedDict[str, bytes] = field(default_factory=OrderedDict)  # stamp -> salt


class UniqueLog:
    """Rewrites the lines of a source capture, copy after copy, so that nothing repeats."""

    def __init__(self, source: Sequence[str], seed: int = 1, scope: str = "event") -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if not source:
            raise ValueError("the source capture is empty")
        heads = []
        for n, line in enumerate(source, 1):
            m = _HEAD.match(line)
            if m is None:
                raise ValueError(f"source line {n}: not a raw or ENRICHED audit record with a stamp")
            heads.append((int(m.group(2)) * 1000 + int(m.group(3)), int(m.group(4))))
        self.source = source
        self.per_event = scope == "event"
        self.first_ms = min(ms for ms, _ in heads)
        self.last_ms = max(ms for ms, _ in heads)
        self.min_serial = min(s for _, s in heads)
        self.max_serial = max(s for _, s in heads)
        rng = random.Random(seed)
        self._next_pid = rng.randrange(FIRST_PID, 100_000)
        self._next_salt = rng.randrange(36**2, 36**3)
        self._next_inode = rng.randrange(10**6, 10**7)

    def lines(self, count: int) -> Iterator[tuple[str, bool]]:
        """`count` lines (each ending in a newline) with "is a ProcessCreate", copy after copy."""
        written = 0
        next_ms, next_serial = self.first_ms, self.min_serial
        while written < count:
            d_ms, d_serial = next_ms - self.first_ms, next_serial - self.min_serial
            copy = _Copy()
            for line in self.source[: count - written]:
                yield self._rewrite(line, copy, d_ms, d_serial)
            written += min(len(self.source), count - written)
            next_ms = self.last_ms + d_ms + 1000
            next_serial = self.max_serial + d_serial + 1

    # -- allocation ------------------------------------------------------------------------

    def _pid(self, copy: _Copy, old: int) -> int:
        new = copy.pids.get(old)
        if new is None:
            if self._next_pid >= PID_MAX:
                self._next_pid = FIRST_PID
            new = copy.pids[old] = self._next_pid
            self._next_pid += 1
        return new

    def _salt(self) -> bytes:
        salt = ("_" + _base36(self._next_salt)).encode()
        self._next_salt += 1
        return salt

    def _image(self, copy: _Copy, pid: int, parent: int | None, child: int | None, is_exec: bool, exe: str) -> bytes:
        """The salt of `pid`'s process image (`image` scope), learning from this SYSCALL.

        A successful exec starts a new image. A clone's child runs the image of the process
        that cloned it (unless the child was seen first: a vfork parent's record comes after
        its child's). A process first seen without either runs its parent's image if it
        shows the parent's executable, else an image of its own; so does a process whose
        executable changed without an exec in the log.
        """
        images = copy.images
        known = images.get(pid)
        if is_exec or (known is not None and known[1] != exe):
            known = images[pid] = (self._salt(), exe)
        elif known is None:
            mother = images.get(parent) if parent is not None else None
            known = images[pid] = mother if mother is not None and mother[1] == exe else (self._salt(), exe)
        if child is not None and child not in images:
            images[child] = known
        return known[0]

    def _event_salt(self, copy: _Copy, stamp: str, salt: bytes | None = None) -> bytes:
        """The salt of the event `stamp`: its SYSCALL's process image (set by that record),
        else one of its own."""
        known = copy.events.get(stamp)
        if known is None:
            known = copy.events[stamp] = salt if salt is not None else self._salt()
            if len(copy.events) > 4096:
                copy.events.popitem(last=False)
        return known

    def _inode(self, copy: _Copy, salt: bytes, old: str) -> str:
        new = copy.inodes.get((salt, old))
        if new is None:
            new = copy.inodes[(salt, old)] = str(self._next_inode)
            self._next_inode += 1
        return new

    # -- rewriting -------------------------------------------------------------------------

    def _rewrite(self, line: str, copy: _Copy, d_ms: int, d_serial: int) -> tuple[str, bool]:
        m = _HEAD.match(line)
        assert m is not None  # checked in __init__
        kind = m.group(1)
        ms = int(m.group(2)) * 1000 + int(m.group(3)) + d_ms
        stamp = f"{ms // 1000}.{ms % 1000:03d}:{int(m.group(4)) + d_serial}"
        head = line[: m.start(2)] + stamp + "):"
        body, sep, tail = line[m.end() :].partition("\x1d")
        is_exec = False
        if kind == "SYSCALL":
            body, is_exec = self._syscall(body, copy, stamp)
        elif kind in ("EXECVE", "PROCTITLE", "CWD", "PATH"):
            body = self._strings(kind, body, copy, self._event_salt(copy, stamp))
        else:
            body = _PIDS.sub(lambda p: f"{p.group(1)}={self._pid(copy, int(p.group(2)))}", body)
        return head + body + sep + tail + "\n", is_exec

    def _syscall(self, body: str, copy: _Copy, stamp: str) -> tuple[str, bool]:
        pairs = body.split(" ")
        at = {pair.partition("=")[0]: i for i, pair in reversed(list(enumerate(pairs)))}
        value = {key: pairs[i].partition("=")[2] for key, i in at.items()}
        call = (value.get("arch", ""), value.get("syscall", ""))
        success = value.get("success") == "yes"
        pid = self._pid(copy, int(value["pid"])) if value.get("pid", "").isdecimal() else None
        parent = self._pid(copy, int(value["ppid"])) if value.get("ppid", "").isdecimal() else None
        exit_code = value.get("exit", "")
        cloned = success and call in _CLONES and exit_code.isdecimal() and int(exit_code) > 0
        child = self._pid(copy, int(exit_code)) if cloned else None
        is_exec = pid is not None and success and call in _EXECS
        if pid is not None:
            pairs[at["pid"]] = f"pid={pid}"
        if parent is not None:
            pairs[at["ppid"]] = f"ppid={parent}"
        if child is not None:
            pairs[at["exit"]] = f"exit={child}"
        if self.per_event or pid is None:
            salt = self._salt()
        else:
            salt = self._image(copy, pid, parent, child, is_exec, value.get("exe", ""))
        self._event_salt(copy, stamp, salt)
        if "comm" in at:
            decoded = _decode(value["comm"])
            if decoded is not None:
                comm, quoted = decoded
                pairs[at["comm"]] = "comm=" + _encode(comm[: max(0, 15 - len(salt))] + salt, quoted)
        return self._salt_pairs(pairs, at, value, "SYSCALL", salt, copy), is_exec

    def _strings(self, kind: str, body: str, copy: _Copy, salt: bytes) -> str:
        pairs = body.split(" ")
        if kind == "PROCTITLE":
            for i, pair in enumerate(pairs):
                key, _, raw = pair.partition("=")
                decoded = _decode(raw) if key == "proctitle" else None
                if decoded is not None:
                    title, quoted = decoded
                    new = b"\0".join(salted(arg, salt) for arg in title.split(b"\0"))
                    if len(title) >= PROCTITLE_MAX:  # the kernel cut it: so is the new one
                        new = new[:PROCTITLE_MAX]
                    pairs[i] = "proctitle=" + _encode(new, quoted)
            return " ".join(pairs)
        if kind == "EXECVE":
            for i, pair in enumerate(pairs):
                key, _, raw = pair.partition("=")
                decoded = _decode(raw) if _ARG.match(key) else None
                if decoded is not None:
                    pairs[i] = f"{key}=" + _encode(salted(decoded[0], salt), decoded[1])
            return " ".join(pairs)
        at = {pair.partition("=")[0]: i for i, pair in reversed(list(enumerate(pairs)))}
        value = {key: pairs[i].partition("=")[2] for key, i in at.items()}
        if kind == "PATH" and value.get("inode", "").isdecimal():
            pairs[at["inode"]] = "inode=" + self._inode(copy, salt, value["inode"])
        return self._salt_pairs(pairs, at, value, kind, salt, copy)

    @staticmethod
    def _salt_pairs(
        pairs: list[str], at: dict[str, int], value: dict[str, str], kind: str, salt: bytes, copy: _Copy
    ) -> str:
        for key in _SALTED.get(kind, ()):
            decoded = _decode(value[key]) if key in at else None
            if decoded is not None:
                pairs[at[key]] = f"{key}=" + _encode(salted(decoded[0], salt), decoded[1])
        return " ".join(pairs)


def record_repeats(lines: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per record type: records, distinct bodies, and (SYSCALL) distinct tails from ` auid=`.

    What the parser's caches could hit at best: a body seen before (within their bounds).
    """
    records: Counter[str] = Counter()
    bodies: dict[str, set[str]] = {}
    tails: set[str] = set()
    for line in lines:
        m = _HEAD.match(line)
        if m is None:
            continue
        kind = m.group(1)
        body = line[m.end() :].partition("\x1d")[0]
        records[kind] += 1
        if kind == "SYSCALL":
            at = body.find(" auid=")
            tails.add(body[at:] if at > 0 else body)
        bodies.setdefault(kind, set()).add(body)
    out = {kind: {"records": n, "distinct_bodies": len(bodies[kind])} for kind, n in records.most_common()}
    if "SYSCALL" in out:
        out["SYSCALL"]["distinct_tails_from_auid"] = len(tails)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="a raw or ENRICHED capture (.xz allowed) whose events are the shapes")
    ap.add_argument("-n", "--lines", type=int, help="line count (default: as many as the source has)")
    ap.add_argument("-o", "--output", default="-", help="output file, - for stdout (default)")
    ap.add_argument("--seed", type=int, default=1, help="where pids, salts and inodes start (default 1)")
    ap.add_argument("--scope", choices=SCOPES, default="event",
                    help="salt strings per event (default: no body repeats) or per process image")
    args = ap.parse_args(argv)
    source = read_source(args.source)
    count = args.lines if args.lines is not None else len(source)
    if count < 1:
        ap.error("--lines must be positive")
    execs = 0
    with ExitStack() as stack:
        out = (
            sys.stdout
            if args.output == "-"
            else stack.enter_context(open(args.output, "w", encoding="utf-8", errors="surrogateescape"))
        )
        for text, is_exec in UniqueLog(source, args.seed, args.scope).lines(count):
            out.write(text)
            execs += is_exec
    print(json.dumps({"lines": count, "process_create": execs}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
