"""Sysmon for Linux GUIDs, laid out byte for byte as Sysmon's GenerateUniqueId does.

A Sysmon GUID is 16 bytes rendered like a Windows GUID (Data1 little-endian uint32, Data2 and
Data3 little-endian uint16, Data4 raw bytes)::

    bytes 0-3   machine id (first 8 hex digits of /etc/machine-id, as a number)
    bytes 4-7   uint32 seconds since the Unix epoch (UTC) of the object's timestamp
    bytes 8-15  uint64 key, little-endian

Consumers join events on these strings and some decode them (machine part, `secs ==
floor(UtcTime)`), so the layout is kept exactly; what fills the parts is the converter's
choice (mapping/guids.py: the key real Sysmon takes from the image's end-of-code address).
"""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["ZERO_GUID", "logon_guid", "machine_id_from_hex", "sysmon_guid"]

ZERO_GUID = "{00000000-0000-0000-0000-000000000000}"

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_HEX = frozenset("0123456789abcdefABCDEF")


def sysmon_guid(machine_id: int, secs: int, key: int) -> str:
    """`{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (lower case) of the three parts.

    Equal to `"{%s}" % uuid.UUID(bytes_le=struct.pack("<IIQ", machine_id, secs, key))`,
    written out by hand because it runs for every event and is several times faster.
    """
    if not (0 <= machine_id <= _U32 and 0 <= secs <= _U32 and 0 <= key <= _U64):
        raise ValueError(f"GUID part out of range: machine {machine_id}, secs {secs}, key {key}")
    data4 = key.to_bytes(8, "little").hex()
    # %-formatting: an f-string parses its format specs again at every call.
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


def logon_guid(machine_id: int, logon_secs: int, uid: int, tty_index: int) -> str:
    """LogonGuid: seconds = logon time (0 if unknown), key = LUID {LowPart uid, HighPart tty}.

    Sysmon puts the real uid in bytes 8-11 and the controlling tty's index (`pts/3` → 3, 0
    without a tty) in bytes 12-15, e.g. uid 1000 on pts/2 logged in at 0x693465f1 →
    `{3e748dcd-65f1-6934-e803-000002000000}`.
    """
    if not (0 <= uid <= _U32 and 0 <= tty_index <= _U32):
        raise ValueError(f"LogonGuid part out of range: uid {uid}, tty {tty_index}")
    return sysmon_guid(machine_id, logon_secs, uid | (tty_index << 32))
