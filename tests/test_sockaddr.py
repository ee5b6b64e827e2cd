"""SOCKADDR decoding: real records from the corpus, and Sysmon's address text for any address."""

from __future__ import annotations

import ipaddress
import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from audit2sysmon.mapping.sockaddr import (
    SocketAddress,
    decode,
    format_ip,
    from_interpreted,
    unspecified,
)


def test_real_inet_records():
    # busy-raw: a non-blocking connect to the discard port; go-libaudit normal.log: the GCE metadata server.
    assert decode(bytes.fromhex("020000097F0000010000000000000000")) == SocketAddress(False, "127.0.0.1", 9)
    assert decode(bytes.fromhex("02000050A9FEA9FE0000000000000000")) == SocketAddress(False, "169.254.169.254", 80)
    # audit-rhel7.log: AF_INET6, port 22, the any-address.
    inet6 = bytes.fromhex("0A000016000000000000000000000000000000000000000000000000")
    assert decode(inet6) == SocketAddress(True, "0:0:0:0:0:0:0:0", 22)


def test_other_families_and_truncated_structures_give_nothing():
    assert decode(bytes.fromhex("100000000000000000000000")) is None  # netlink (pair-dev auditctl)
    assert decode(b"\x01\x00/var/run/nscd/socket\x00") is None  # AF_UNIX
    assert decode(bytes.fromhex("0200")) is None
    assert decode(bytes.fromhex("0A0000160000000000000000")) is None


def test_ipv6_is_written_as_eight_groups_without_compression():
    assert format_ip(socket.inet_pton(socket.AF_INET6, "::1")) == "0:0:0:0:0:0:0:1"
    assert format_ip(socket.inet_pton(socket.AF_INET6, "fe80::a:0:0:1")) == "fe80:0:0:0:a:0:0:1"
    assert unspecified(True) == SocketAddress(True, "0:0:0:0:0:0:0:0", 0)
    assert unspecified(False) == SocketAddress(False, "0.0.0.0", 0)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 65535))
def test_raw_and_interpreted_forms_agree_for_any_ipv6(packed, port):
    raw = struct.pack("<H", 10) + struct.pack(">H", port) + bytes(4) + packed + bytes(4)
    text = f"{{ saddr_fam=inet6 laddr={ipaddress.IPv6Address(packed)} lport={port} }}"
    decoded = decode(raw)
    assert decoded == from_interpreted(text)
    assert [int(g, 16) for g in decoded.ip.split(":")] == list(struct.unpack(">8H", packed))


@given(st.binary(min_size=4, max_size=4), st.integers(0, 65535))
def test_raw_and_interpreted_forms_agree_for_any_ipv4(packed, port):
    raw = struct.pack("<H", 2) + struct.pack(">H", port) + packed + bytes(8)
    text = f"{{ saddr_fam=inet laddr={ipaddress.IPv4Address(packed)} lport={port} }}"
    assert decode(raw) == from_interpreted(text) == SocketAddress(False, str(ipaddress.IPv4Address(packed)), port)


def test_interpreted_forms_of_other_families():
    assert from_interpreted("{ saddr_fam=netlink nlnk-fam=16 nlnk-pid=0 }") is None
    assert from_interpreted("{ saddr_fam=local path=/var/run/nscd/socket }") is None
    assert from_interpreted("{ saddr_fam=inet laddr=::1 lport=9 }") is None
