"""uid ↔ user name, the way `ausearch -i` answers it, but injectable for logs of other hosts.

Sysmon writes `getpwuid(uid)->pw_name` of the machine it runs on. A log converted elsewhere
must not take names from the converting machine blindly, so the order of sources is: the
name the record itself carries (ENRICHED `UID="…"`, interpreted `uid=name`), a passwd file
the caller gives (the log's host), the local account database (can be turned off), and
finally the decimal uid. uid 0 is `root` everywhere.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["UNSET_ID", "UserDb", "parse_passwd", "read_passwd"]

UNSET_ID = 4294967295


def read_passwd(path: str | os.PathLike[str]) -> dict[int, str]:
    """uid → name from a passwd(5) file; later duplicates do not override earlier lines."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return parse_passwd(handle, os.fspath(path))
    except OSError as exc:
        raise ConfigError(f"cannot read passwd file: {exc.strerror}", path=os.fspath(path)) from exc


def parse_passwd(lines: Iterable[str], path: str) -> dict[int, str]:
    """uid → name from the lines of a passwd(5) file read elsewhere (a fleet's files read by
    Spark); `path` names it in errors."""
    names: dict[int, str] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\n").split(":")
        if len(parts) < 3 or not parts[2].isdecimal():
            raise ConfigError("not a passwd line (name:password:uid:…)", path=path, line=lineno)
        names.setdefault(int(parts[2]), parts[0])
    return names


@dataclass(slots=True)
class UserDb:
    """Resolves uids to names and back with bounded caches; one per converter (no global state)."""

    passwd: dict[int, str] = field(default_factory=dict)
    local: bool = True
    _names: dict[int, str | None] = field(default_factory=dict, repr=False)
    _uids: dict[str, int | None] = field(default_factory=dict, repr=False)

    @classmethod
    def from_options(cls, passwd: str | os.PathLike[str] | Mapping[int, str] | None, local: bool) -> UserDb:
        """Build from the CLI/API options (`--passwd FILE` or uid → name entries, `--no-local-users`)."""
        if isinstance(passwd, Mapping):
            return cls(dict(passwd), local)
        return cls(read_passwd(passwd) if passwd is not None else {}, local)

    def name(self, uid: int) -> str:
        """The user name for `uid`, else its decimal text (never empty)."""
        if uid == 0:
            return "root"
        cached = self._names.get(uid)
        if cached is None and uid not in self._names:
            cached = self.passwd.get(uid)
            if cached is None and self.local:
                try:
                    cached = pwd.getpwuid(uid).pw_name
                except (KeyError, OverflowError):
                    cached = None
            if len(self._names) > 65536:
                self._names.clear()
            self._names[uid] = cached
        return cached if cached is not None else str(uid)

    def uid(self, name: str) -> int | None:
        """The uid for a name printed by `ausearch -i` (`root`, `unset`, `unknown(1234)`, `1000`)."""
        if name.isdecimal():
            return int(name)
        if name == "root":
            return 0
        if name == "unset":
            return UNSET_ID
        if name.startswith("unknown(") and name.endswith(")") and name[8:-1].isdecimal():
            return int(name[8:-1])
        if name in self._uids:
            return self._uids[name]
        found: int | None = next((u for u, n in self.passwd.items() if n == name), None)
        if found is None and self.local:
            try:
                found = pwd.getpwnam(name).pw_uid
            except KeyError:
                found = None
        if len(self._uids) > 65536:
            self._uids.clear()
        self._uids[name] = found
        return found
