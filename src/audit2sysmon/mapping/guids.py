"""How the converter fills the parts of a Sysmon GUID that audit records cannot give.

Real Sysmon keys a ProcessGuid with the image's end-of-code address, which no audit record
holds. We use a hash of the audit event's identity instead, so the same event always gets the
same GUID (raw log or `ausearch -i` text, converted once or twice) and two events practically
never share one. The machine part is the host's machine id when the caller gives it, else a
hash of the node name, so every host of a multi-node log has its own GUID space.
"""

from __future__ import annotations

import hashlib

__all__ = ["event_key", "machine_id_from_node"]

# Real keys are user-space addresses (`0x00005[5-6]…`): the top 16 bits are zero. Our keys keep
# that look; 48 bits of hash still make a collision between two events of the same second on
# the same machine negligible (about 1e-7 even at 10,000 execs in that second).
_KEY_MASK = 0x0000FFFFFFFFFFFF


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
