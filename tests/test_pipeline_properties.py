"""Property tests over the whole pipeline: attacker-controlled bytes in, valid events out.

Events are written the way the kernel writes them (`KernelExec.lines`: the hex rule for every
untrusted string, EXECVE split across records and long arguments split into `aN[i]` chunks
under a record budget, PROCTITLE cut at 128 bytes), with arbitrary bytes in every string
field: arguments, cwd, exe, comm, proctitle, rule key, node name and the ENRICHED user name.
The expected output values come from docs/output-format.md's escaping table, re-implemented
here (`documented_value`) rather than taken from the renderers under test.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from strategies import kernel_encode

from audit2sysmon import convert
from audit2sysmon.convert import Converter

SYSMON_TAG = " sysmon: "
PROCTITLE_MAX = 128  # the kernel logs at most this many bytes of the process title
EXECVE_BUDGET = 7500  # MAX_EXECVE_AUDIT_LEN: bytes of arguments per EXECVE record


def documented_value(data: bytes) -> str:
    """What a consumer reads for a value made of `data`, by docs/output-format.md's table:
    bytes that are not UTF-8 and the XML-forbidden characters as `\\xNN`, `-` for empty."""
    text = data.decode("utf-8", "surrogateescape")
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif (code < 0x20 and char not in "\t\n\r") or code in (0xFFFE, 0xFFFF):
            out.append("".join(f"\\x{b:02x}" for b in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out) or "-"


def _execve_bodies(args: list[bytes], budget: int) -> list[str]:
    """EXECVE record bodies as audit_log_execve_info writes them: `argc=N` only in the first
    record, a new record (its body starting with a space) when the budget is spent, and a
    long argument as `aN_len=L aN[0]=… aN[1]=…` chunks (hex when longer than the budget;
    `aN_len` counts hex digits, or the bytes of quoted chunks)."""
    records: list[list[str]] = [[f"argc={len(args)}"]]
    room = budget

    def put(item: str, size: int) -> None:
        nonlocal room
        if size > room and records[-1]:
            records.append([])
            room = budget
        records[-1].append(item)
        room -= size

    for index, arg in enumerate(args):
        encoded = kernel_encode(arg)
        if len(encoded) <= budget // 2:
            put(f"a{index}={encoded}", len(encoded))
            continue
        hexed = len(arg) > budget or not encoded.startswith('"')
        put(f"a{index}_len={2 * len(arg) if hexed else len(arg)}", 0)
        per = max(1, budget // 4)
        for part, at in enumerate(range(0, len(arg), per)):
            piece = arg[at : at + per]
            text = piece.hex().upper() if hexed else f'"{piece.decode("ascii")}"'
            put(f"a{index}[{part}]={text}", len(text))
    return [" ".join(records[0])] + [" " + " ".join(r) for r in records[1:]]


@dataclass(frozen=True)
class KernelExec:
    """One successful execve and the values a ProcessCreate must carry for it."""

    serial: int
    pid: int
    args: tuple[bytes, ...]
    cwd: bytes
    exe: bytes
    comm: bytes
    key: bytes
    user: bytes | None  # ENRICHED UID name; None: a RAW log line
    node: bytes | None
    msec: int = 1_700_000_000_000
    budget: int = EXECVE_BUDGET

    def lines(self) -> list[bytes]:
        """The event's records in kernel order (SYSCALL, EXECVE…, CWD, PROCTITLE) as bytes."""
        stamp = f"audit({self.msec // 1000}.{self.msec % 1000:03d}:{self.serial}):"
        head = (b"node=" + self.node + b" " if self.node is not None else b"") + b"type="
        enrich = b"" if self.user is None else b'\x1dARCH=x86_64 SYSCALL=execve UID=' + kernel_encode(self.user).encode()
        syscall = (
            f"SYSCALL msg={stamp} arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 "
            f"ppid=1 pid={self.pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 "
            f"sgid=1000 fsgid=1000 tty=pts0 ses=2 comm={kernel_encode(self.comm)} exe={kernel_encode(self.exe)} "
            f"key={kernel_encode(self.key)}"
        ).encode()
        out = [head + syscall + enrich]
        out += [head + f"EXECVE msg={stamp} {body}".encode() for body in _execve_bodies(list(self.args), self.budget)]
        out.append(head + f"CWD msg={stamp} cwd={kernel_encode(self.cwd)}".encode())
        title = b"\0".join(self.args)[:PROCTITLE_MAX]
        out.append(head + f"PROCTITLE msg={stamp} proctitle={kernel_encode(title)}".encode())
        return out

    def expected(self, hostname: str) -> dict[str, str]:
        """EventData values (and Computer) a consumer must read back."""
        return {
            "ProcessId": str(self.pid),
            "Image": documented_value(self.exe),
            "CommandLine": documented_value(b" ".join(self.args)),
            "CurrentDirectory": documented_value(self.cwd),
            "User": documented_value(self.user) if self.user else "1000",
            "Computer": documented_value(self.node) if self.node else hostname,
        }


_any_bytes = st.binary(max_size=24)
# The node name is auditd's (name_format); it cannot hold the separators of the line itself.
_node = st.binary(min_size=0, max_size=12).filter(lambda b: not any(c in b for c in b" \n\x1d"))
# A user name the converter takes as a name (not empty, not a number, not auditd's `unknown(N)`).
_user = st.binary(min_size=1, max_size=12).filter(
    lambda b: not b.decode("utf-8", "surrogateescape").isdecimal() and not b.startswith(b"unknown(")
)


@st.composite
def kernel_execs(draw, count: int = 3) -> list[KernelExec]:
    """1..count exec events with distinct serials and pids, all on one node."""
    node = draw(st.none() | _node)
    enriched = draw(st.booleans())
    budget = draw(st.sampled_from([EXECVE_BUDGET, 64, 16]))  # small budgets force the splitting
    n = draw(st.integers(1, count))
    return [
        KernelExec(
            serial=100 + i,
            pid=2000 + i,
            args=tuple(draw(st.lists(_any_bytes | st.binary(min_size=20, max_size=90), min_size=1, max_size=6))),
            cwd=draw(_any_bytes),
            exe=draw(_any_bytes),
            comm=draw(st.binary(max_size=16)),
            key=draw(_any_bytes),
            user=draw(_user) if enriched else None,
            node=node,
            budget=budget,
        )
        for i in range(n)
    ]


OPTIONS = {"hostname": "converter-host", "machine_id": 0x2424FAA4, "passwd": None, "local_users": False}
RULES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _convert(execs: list[KernelExec]) -> tuple[list, list]:
    errors: list = []
    warnings: list = []
    conv = Converter(on_error=errors.append, on_warning=warnings.append, **OPTIONS)
    out = []
    for line in (line for e in execs for line in e.lines()):
        out += conv.feed(line)
    out += conv.flush()
    assert (errors, warnings) == ([], [])
    stats = conv.stats
    assert stats.exec_syscalls == stats.process_create + sum(stats.exec_rejected.values()) == len(execs)
    return out, errors


@RULES
@given(kernel_execs())
def test_one_well_formed_processcreate_per_exec_in_every_format(execs):
    events, _ = _convert(execs)
    assert [e.event_id for e in events] == [1] * len(execs)
    for event, exe in zip(events, execs):
        want = exe.expected(OPTIONS["hostname"])
        # XML: one line, well-formed, every value read back by a real XML parser.
        xml = event.to_xml()
        assert xml.splitlines() == [xml]
        root = etree.fromstring(xml.encode("utf-8"))
        data = {d.get("Name"): d.text or "" for d in root.iter("Data")}
        assert root.findtext("System/Computer") == want.pop("Computer")
        assert {k: data[k] for k in want} == want
        # syslog: the same XML after a one-token host, never a raw line break.
        line = event.to_syslog()
        assert "\n" not in line and "\r" not in line and line.splitlines() == [line]
        header, _, body = line.partition(SYSMON_TAG)
        assert len(header.split()) == 4 and body == xml
        # JSON: valid, UTF-8, one line, the same values as the XML.
        text = event.to_json()
        assert text.splitlines() == [text]
        doc = json.loads(text.encode("utf-8"))["Event"]
        assert doc["EventData"] == data
        assert doc["System"]["Computer"] == root.findtext("System/Computer")


@RULES
@given(kernel_execs(count=2), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_convert_over_bytes_and_text_gives_the_same_events(execs, newline, last_newline):
    """convert() over the lines of a file as bytes (any line end, last one maybe missing)
    equals the event per event conversion of the records."""
    raw = newline.encode().join(line for e in execs for line in e.lines()) + (newline.encode() if last_newline else b"")
    from_bytes = [e.to_xml() for e in convert(io.BytesIO(raw), **OPTIONS)]  # a binary file splits at \n only
    from_records = [e.to_xml() for e in _convert(execs)[0]]
    assert from_bytes == from_records
