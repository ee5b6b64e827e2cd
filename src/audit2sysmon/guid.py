"""Sysmon for Linux GUIDs, laid out byte for byte as Sysmon's GenerateUniqueId does.

A Sysmon GUID is 16 bytes rendered like a Windows GUID (Data1 little-endian uint32, Data2 and
Data3 little-endian uint16, Data4 raw bytes)::

    bytes 0-3   machine id (first 8 hex digits of /etc/machine-id, as a number)
    bytes 4-7   uint32 seconds since the Unix epoch (UTC) of the object's timestamp
    bytes 8-15  uint64 key, little-endian

Consumers join events on these strings and some decode them (machine part, `secs ==
floor(UtcTime)`), so we keep the layout exactly and only synthesise what audit records
cannot give us: the key. Real Sysmon uses the image's end-of-code address there; we use a
hash of the audit event's identity, so the same event always gets the same GUID (raw log or
`ausearch -i` text, converted once or twice) and two events practically never share one.
"""

from __future__ import annotations

import hashlib

from .errors import ConfigError

ZERO_GUID = "{00000000-0000-0000-0000-000000000000}"

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
# Real keys are user-space addresses (`0x00005[5-6]…`): the top 16 bits are zero. Our keys keep
# that look; 48 bits of hash still make a collision between two events of the same second on
# the same machine negligible (about 1e-7 even at 10,000 execs in that second).
_KEY_MASK = 0x0000FFFFFFFFFFFF
_HEX = frozenset("0123456789abcdefABCDEF")


def sysmon_guid(machine_id: int, secs: int, key: int) -> str:
    """`{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (lower case) of the three parts.

    Equal to `"{%s}" % uuid.UUID(bytes_le=struct.pack("<IIQ", machine_id, secs, key))`,
    written out by hand because it runs for every event and is several times faster.
    """
    if not (0 <= machine_id <= _U32 and 0 <= secs <= _U32 and 0 <= key <= _U64):
        raise ValueError(f"GUID part out of range: machine {machine_id}, secs {secs}, key {key}")
    data4 = key.to_bytes(8, "little").hex()
    # %-formatting: an f-string parses its format specs again at every call (issue 6).
    return "{%08x-%04x-%04x-%s-%s}" % (machine_id, secs & 0xFFFF, secs >> 16, data4[:4], data4[4:])  # noqa: UP031


def machine_id_from_hex(text: str) -> int:
    """The machine part from `/etc/machine-id` text or the first group of a Sysmon GUID.

    Sysmon reads the first 8 characters of /etc/machine-id as hex; users copy either that
    file's content or a GUID from a Sysmon log (`{2424faa4-…}`), so both are accepted.
    """
    digits = text.strip().removeprefix("{")[:8]
    if len(digits) != 8 or not _HEX.issuperset(digits):
        raise ConfigError(f"machine id must start with 8 hex digits: {text!r}")
    return int(digits, 16)


def machine_id_from_node(node: str) -> int:
    """A stable 32-bit machine part derived from the node (host) name.

    Used when the caller gives no machine id, so every host of a multi-node log still gets
    its own GUID space. It is a hash: 32 bits make a clash between two hosts of one fleet
    unlikely (birthday bound: about 1 in 10,000 for 1,000 hosts), not impossible; pass the
    real machine id when GUIDs must match a host's own Sysmon.
    """
    digest = hashlib.blake2b(
        node.encode("utf-8", "surrogateescape"), digest_size=4, person=b"a2s-machine"
    ).digest()
    return int.from_bytes(digest, "big")


def event_key(node: str | None, msec: int, serial: int, pid: int) -> int:
    """The 8-byte GUID key of one audit event: a pure function of its identity.

    The identity is what every text form of the log agrees on (node, `audit(SEC.MSEC:SERIAL)`
    stamp, pid), so raw and `ausearch -i` input give the same key. See `_KEY_MASK` for why
    the top 16 bits are zero.
    """
    identity = f"{node or ''}\0{msec}\0{serial}\0{pid}".encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(identity, digest_size=8, person=b"a2s-event").digest()
    return int.from_bytes(digest, "little") & _KEY_MASK


def logon_guid(machine_id: int, logon_secs: int, uid: int, tty_index: int) -> str:
    """LogonGuid: seconds = logon time (0 if unknown), key = LUID {LowPart uid, HighPart tty}.

    Sysmon puts the real uid in bytes 8-11 and the controlling tty's index (`pts/3` → 3, 0
    without a tty) in bytes 12-15, e.g. uid 1000 on pts/2 logged in at 0x693465f1 →
    `{3e748dcd-65f1-6934-e803-000002000000}`.
    """
    if not (0 <= uid <= _U32 and 0 <= tty_index <= _U32):
        raise ValueError(f"LogonGuid part out of range: uid {uid}, tty {tty_index}")
    return sysmon_guid(machine_id, logon_secs, uid | (tty_index << 32))
