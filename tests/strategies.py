"""Hypothesis strategies for audit record lines, shared by the test modules.

`kernel_encode` is written from the kernel's rule (kernel/audit.c `audit_log_n_untrustedstring`),
not from the parser, so round-trip tests compare two independent implementations.
"""

from __future__ import annotations

from hypothesis import strategies as st

TYPE_NAMES = ("SYSCALL", "EXECVE", "PATH", "CWD", "PROCTITLE", "SOCKADDR", "USER_ACCT", "LOGIN",
              "BPF", "UNKNOWN[1334]", "UNKNOWN[2999]", "1300", "NOT_A_TYPE")
KEYS = ("a0", "a1", "a2[0]", "a2_len", "argc", "arch", "pid", "uid", "auid", "comm", "exe", "name", "key",
        "cwd", "proctitle", "saddr", "subj", "res", "old-auid", "cap_fp", "data", "x")


def kernel_encode(value: bytes) -> str:
    """How the kernel writes an untrusted string: upper-case hex if any byte is '"', below 0x21
    or above 0x7e, else the text in double quotes."""
    if any(b == 0x22 or b < 0x21 or b > 0x7E for b in value):
        return value.hex().upper()
    return '"' + value.decode("ascii") + '"'


_SAFE = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\"'{}")
_words = st.text(_SAFE, min_size=0, max_size=12)


_braced = st.lists(
    st.one_of(_words, st.builds(lambda k, v: f"{k}={v}", _words, _words), st.sampled_from(["", "\x07", "a\tb", "{", "}", "\x1d"])),
    max_size=4,
).map(lambda parts: "{ " + " ".join(parts) + " }")


@st.composite
def raw_values(draw) -> str:
    """A value as it may stand after `key=` in a raw line, including the irregular ones."""
    return draw(
        st.one_of(
            _words,
            st.binary(max_size=12).map(kernel_encode),
            st.sampled_from(["(null)", "(none)", "?", "", '""', '"(null)"']),
            st.binary(min_size=1, max_size=6).map(lambda b: b.hex().upper() + '"'),  # stray quote
            st.binary(min_size=1, max_size=6).map(lambda b: b.hex()),  # lower-case hex
            _words.map(lambda w: f'"{w} {w}"'),  # user-space quoting with a space
            _words.map(lambda w: "{ " + w + " }"),
            _braced,  # as auditd enriches a SOCKADDR: SADDR={ saddr_fam=inet laddr=… lport=… }
        )
    )


@st.composite
def body_items(draw) -> str:
    """One body item: mostly `key=value`, sometimes a free word or a msg='…' body."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(_SAFE, min_size=1, max_size=8).filter(lambda w: "=" not in w))
    if kind == 1:
        inner = " ".join(draw(st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), raw_values()), max_size=4)))
        return f"msg='{inner}'"
    return f"{draw(st.sampled_from(KEYS))}={draw(raw_values())}"


@st.composite
def raw_lines(draw) -> str:
    """Raw audit.log lines, from the plain ones the fast path takes to irregular ones it must
    leave to the grammar (free words, msg bodies, spaces in quotes, enriched tails, odd spacing)."""
    node = draw(st.one_of(st.none(), st.text(_SAFE, max_size=8)))
    head = (f"node={node} " if node is not None else "") + f"type={draw(st.sampled_from(TYPE_NAMES))}"
    sec = draw(st.integers(0, 4_000_000_000))
    ms = draw(st.integers(0, 999))
    serial = draw(st.integers(0, 2**32 - 1))
    items = draw(st.lists(body_items(), max_size=8))
    sep = draw(st.sampled_from([" ", " ", "  "]))
    line = f"{head} msg=audit({sec}.{ms:03d}:{serial}):" + "".join(sep + item for item in items)
    if draw(st.booleans()):
        tail = draw(st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["UID", "AUID", "ARCH", "SADDR"]), raw_values()), max_size=4))
        line += "\x1d" + " ".join(tail)
    return line + draw(st.sampled_from(["", " ", "\n"]))


# -- Sysmon values ---------------------------------------------------------------------------------


def expected_value(text: str) -> str:
    """A Sysmon value as every output format carries it: the documented rule, written
    independently of the renderer's translate tables."""
    out = []
    for char in text:
        code = ord(char)
        if char in "\t\n\r":
            out.append(char)
        elif code < 0x20:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append("".join(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    return "".join(out)


def original_bytes(text: str) -> bytes:
    return b"".join(
        bytes([ord(c) - 0xDC00])
        if 0xDC80 <= ord(c) <= 0xDCFF
        else c.encode("utf-8", "surrogatepass")
        for c in text
    )


_SPECIAL = "\t\n\r\x00\x01\x0b\x0c\x1b\x1f\x7f\x80\x85\x9f\u2028\u2029\ufffe\uffff&<>\"'\\ "
_CHARS = st.one_of(
    st.characters(),
    st.sampled_from(_SPECIAL),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b)),
)
# Event values: any text, the characters the escaping rule is about, undecodable bytes.
SYSMON_TEXT = st.one_of(
    st.lists(_CHARS).map("".join),
    st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")),
)
