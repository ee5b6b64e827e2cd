"""argv rebuilt from EXECVE records written the way the kernel writes them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from audit2sysmon.audit.parse import Parser
from audit2sysmon.mapping.argv import execve_argv

MAX_EXECVE_AUDIT_LEN = 7500


def _encode(value: bytes) -> str:
    """The kernel's rule: hex when any byte is '"', below 0x21 or above 0x7e, else quoted."""
    if any(b == 0x22 or b < 0x21 or b > 0x7E for b in value):
        return value.hex().upper()
    return f'"{value.decode("ascii")}"'


def kernel_execve_lines(argv: list[bytes], header: str, chunk: int) -> list[str]:
    """EXECVE records as audit_log_execve_info() splits them (budget per record, aN[i] chunks).

    `chunk` stands in for the kernel's per-record budget so that small generated arguments
    exercise the same splitting as real 8 KB ones.
    """
    records: list[list[str]] = [[f"argc={len(argv)}"]]
    used = 0
    for index, arg in enumerate(argv):
        text = _encode(arg)
        if len(text) <= chunk:
            if used + len(text) > chunk and used:
                records.append([])
                used = 0
            records[-1].append(f"a{index}={text}")
            used += len(text)
            continue
        hexed = arg.hex().upper()  # long arguments are always hex, aN_len counts hex digits
        records[-1].append(f"a{index}_len={len(hexed)}")
        step = max(2, chunk - chunk % 2)  # the kernel cuts between bytes, never inside one
        for part, start in enumerate(range(0, len(hexed), step)):
            records.append([f"a{index}[{part}]={hexed[start:start + step]}"])
        used = chunk
    return [header + " ".join(fields) for fields in records if fields]


@settings(max_examples=300, deadline=None)
@given(
    argv=st.lists(st.binary(min_size=0, max_size=40), min_size=0, max_size=12),
    chunk=st.integers(min_value=4, max_value=60),
)
def test_argv_round_trips_through_split_execve_records(argv, chunk):
    parser = Parser(path="<generated>")
    lines = kernel_execve_lines(argv, "type=EXECVE msg=audit(1700000000.001:5): ", chunk)
    records = [parser.parse(line) for line in lines]
    assert argv == execve_argv(records)


@settings(max_examples=100, deadline=None)
@given(argv=st.lists(st.binary(max_size=30), min_size=1, max_size=8), seed=st.randoms())
def test_record_order_does_not_matter(argv, seed):
    parser = Parser(path="<generated>")
    lines = kernel_execve_lines(argv, "type=EXECVE msg=audit(1700000000.001:5): ", 10)
    seed.shuffle(lines)
    assert argv == execve_argv([parser.parse(line) for line in lines])


def test_a_wrong_argc_never_invents_arguments():
    parser = Parser(path="<generated>")
    record = parser.parse('type=EXECVE msg=audit(1700000000.001:5): argc=4000000000 a0="ls" a1="-l"')
    assert [b"ls", b"-l"] == execve_argv([record])
    short = parser.parse('type=EXECVE msg=audit(1700000000.001:5): argc=1 a0="ls" a1="-l"')
    assert [b"ls"] == execve_argv([short])


def test_no_execve_records_means_no_argv():
    assert execve_argv([]) is None


def test_twelve_thousand_byte_argument_from_the_live_capture():
    """The dev workload passed one 12,000-byte argument; the kernel split it into chunks."""
    from pathlib import Path

    log = Path(__file__).parent / "fixtures" / "live" / "dev-raw" / "audit.log"
    parser = Parser(path=str(log))
    records = [
        r for r in (parser.parse(line) for line in log.read_bytes().splitlines())
        if r is not None and r.type_name == "EXECVE" and r.stamp.serial == _serial_of_long_arg(log)
    ]
    argv = execve_argv(records)
    assert [b"/usr/bin/printf", b"%s", b"y" * 12000] == argv


def _serial_of_long_arg(log) -> int:
    import re

    match = re.search(rb"audit\(\d+\.\d+:(\d+)\):[^\n]* a2_len=", log.read_bytes())
    assert match, "the capture splits the long argument"
    return int(match.group(1))
