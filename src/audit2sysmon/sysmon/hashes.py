"""Sysmon's Hashes text: `ALGO=hex` for each chosen algorithm, comma-joined, `-` for none.

Sysmon for Linux writes the algorithms of a configuration's `<HashAlgorithms>` in its own
order (SHA1, MD5, SHA256, IMPHASH) whatever order the file gives, with lower-case hex:
`MD5=81756ec4…,SHA256=aca992db…`. IMPHASH is the import hash of a Windows PE image: an ELF
file has none, so it is left out. Used for ProcessCreate's Hashes (of the executed file) and
EventID 16's ConfigurationFileHash (of the configuration file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["Digests", "hashes_text"]

# Sysmon's order, and the hashlib name of each algorithm a file on Linux can have.
_ORDER = (("SHA1", "sha1"), ("MD5", "md5"), ("SHA256", "sha256"))


class Digests:
    """The chosen algorithms' digests of one stream of bytes, fed in chunks."""

    __slots__ = ("_hashers",)

    def __init__(self, algorithms: Iterable[str]) -> None:
        chosen = set(algorithms)
        self._hashers = [(name, hashlib.new(function)) for name, function in _ORDER if name in chosen]

    def update(self, chunk: bytes) -> None:
        for _, hasher in self._hashers:
            hasher.update(chunk)

    def text(self) -> str:
        """`SHA1=…,MD5=…,SHA256=…` of what was fed, in Sysmon's order; `-` for no algorithm."""
        return ",".join(f"{name}={hasher.hexdigest()}" for name, hasher in self._hashers) or "-"


def hashes_text(data: bytes, algorithms: Iterable[str]) -> str:
    """The Hashes text of `data` (a configuration file's bytes, say)."""
    digests = Digests(algorithms)
    digests.update(data)
    return digests.text()
