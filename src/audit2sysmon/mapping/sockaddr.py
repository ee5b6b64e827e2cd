"""Socket addresses from SOCKADDR records, written the way Sysmon for Linux writes them.

A SOCKADDR record holds the `struct sockaddr` a syscall passed or returned, as hex in raw
logs (`saddr=020000097F000001…`) and as `{ saddr_fam=inet laddr=127.0.0.1 lport=9 }` in
`ausearch -i` text. Only the inet families matter to NetworkConnect: family 2 (AF_INET) and
10 (AF_INET6), port big-endian, then the address. Sysmon prints IPv4 as `%d.%d.%d.%d` and IPv6
as eight `%x` groups without `::` compression, so `::1` is `0:0:0:0:0:0:0:1`.

`SocketTable` keeps what the log showed of each socket before the connect or accept that
uses it: the protocol (from the type argument of an audited `socket()`, else from what the
socket was used for), the local address (from an audited `bind()`), and whether a flow of it
was already written. Audit records of connect/accept carry none of these.
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "AF_INET",
    "AF_INET6",
    "SocketAddress",
    "SocketInfo",
    "SocketTable",
    "decode",
    "format_ip",
    "from_interpreted",
    "unmapped",
    "unspecified",
]

AF_INET = 2
AF_INET6 = 10
_INTERPRETED_FAMILY = {"inet": AF_INET, "inet6": AF_INET6}
_INTERPRETED_PAIR = re.compile(r"([\w-]+)=(\S+)")


class SocketAddress(NamedTuple):
    """An inet or inet6 endpoint: `ip` already in Sysmon's text form.

    A NamedTuple: it crosses process boundaries in `--jobs` runs as a plain tuple
    (`facts.to_plain`).
    """

    is_ipv6: bool
    ip: str
    port: int


def unspecified(is_ipv6: bool) -> SocketAddress:
    """The any-address, port 0: what is written for an endpoint the log does not show."""
    return SocketAddress(is_ipv6, format_ip(bytes(16 if is_ipv6 else 4)), 0)


def unmapped(address: SocketAddress) -> SocketAddress:
    """An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it stands for.

    What Sysmon writes for the peer a dual-stack listener accepted: the kernel hands the
    accepting side an inet6 address, the connection is IPv4.
    """
    if not address.is_ipv6 or not address.ip.startswith(_MAPPED):
        return address
    import ipaddress  # here: rare, and its import is a tenth of the start-up's

    mapped = ipaddress.IPv6Address(address.ip).ipv4_mapped
    return address if mapped is None else SocketAddress(False, str(mapped), address.port)


_MAPPED = "0:0:0:0:0:ffff:"


def format_ip(packed: bytes) -> str:
    """Sysmon's text of a 4- or 16-byte address: dotted quad, or eight `%x` groups."""
    if len(packed) == 4:
        return ".".join(str(b) for b in packed)
    if len(packed) == 16:
        return ":".join(f"{group:x}" for group in struct.unpack(">8H", packed))
    raise ValueError(f"an IP address has 4 or 16 bytes, not {len(packed)}")


def decode(value: bytes) -> SocketAddress | None:
    """The inet/inet6 endpoint of a raw `struct sockaddr`, or None for any other family.

    The family is host-endian (little-endian on every architecture audit2sysmon has seen
    logs of; a big-endian host writes `0002`, which is read too). Truncated structures —
    the kernel logs only the length the caller passed — give None rather than a guess.
    """
    if len(value) < 2:
        return None
    family = value[0] | value[1] << 8
    if family not in (AF_INET, AF_INET6):
        family = value[0] << 8 | value[1]
    if family == AF_INET and len(value) >= 8:
        return SocketAddress(False, format_ip(value[4:8]), struct.unpack(">H", value[2:4])[0])
    if family == AF_INET6 and len(value) >= 24:
        return SocketAddress(True, format_ip(value[8:24]), struct.unpack(">H", value[2:4])[0])
    return None


def from_interpreted(text: str) -> SocketAddress | None:
    """The endpoint of `ausearch -i`'s `{ saddr_fam=inet6 laddr=::1 lport=9 }` text."""
    pairs = dict(_INTERPRETED_PAIR.findall(text))
    family = _INTERPRETED_FAMILY.get(pairs.get("saddr_fam", ""))
    if family is None or "laddr" not in pairs or not pairs.get("lport", "").isdecimal():
        return None
    try:
        import ipaddress

        address = ipaddress.ip_address(pairs["laddr"])
    except ValueError:
        return None
    if (address.version == 6) != (family == AF_INET6):
        return None
    return SocketAddress(family == AF_INET6, format_ip(address.packed), int(pairs["lport"]))


@dataclass(frozen=True, slots=True)
class SocketInfo:
    """What earlier records showed of one socket: its protocol (`tcp`, `udp`, `other`; None
    while unknown), where it is bound, and whether a NetworkConnect of it was written (a
    datagram socket's flow is written once: its connect, or its first send or receive)."""

    protocol: str | None = None
    local: SocketAddress | None = None
    reported: bool = False


@dataclass(slots=True)
class SocketTable:
    """(node, pid, fd) → `SocketInfo`, bounded, least recently used dropped first.

    Close is not audited, so an entry lives until its fd is reused by another audited
    socket() or accept, or until it ages out; docs/mapping.md says what that can confuse.
    """

    capacity: int = 65536
    _table: OrderedDict[tuple[str | None, int, int], SocketInfo] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    def get(self, node: str | None, pid: int, fd: int) -> SocketInfo:
        info = self._table.get((node, pid, fd))
        if info is None:
            return SocketInfo()
        self._table.move_to_end((node, pid, fd))
        return info

    def put(self, node: str | None, pid: int, fd: int, info: SocketInfo) -> None:
        key = (node, pid, fd)
        self._table[key] = info
        self._table.move_to_end(key)
        if len(self._table) > self.capacity:
            self._table.popitem(last=False)
