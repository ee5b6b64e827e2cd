"""File names from PATH records, made absolute the way Sysmon for Linux shows them.

A syscall that names files gets one PATH record per inode it touched (`item=0 …`), each with
the name as the caller passed it, the inode, the mode and a `nametype` (`PARENT` for the
directory an entry is created in or removed from, `CREATE`, `DELETE`, `NORMAL`). Names may be
relative: to the CWD record's directory, or, for `openat`/`unlinkat` with a directory fd, to a
directory the records do not name at all — the kernel then even writes the CWD into the
PARENT record's name (kernel/audit.c `audit_log_name`, `name_len == 0`), while its inode is
the true directory's. `PathResolver` remembers the paths of directories whose absolute name
the log did show (dev + inode → path) and uses them for such names; docs/mapping.md says what
is written when it cannot.
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..audit.records import AuditEvent
from ..audit.types import CWD, PATH

__all__ = ["PathItem", "PathResolver", "cwd_of", "file_type", "join", "path_items"]
# S_IFMT values (sys/stat.h) with the names `ausearch -i` writes for them (`mode=block,660`).
_FILE_TYPES = {
    0o140000: "socket",
    0o120000: "link",
    0o100000: "file",
    0o060000: "block",
    0o040000: "dir",
    0o020000: "character",
    0o010000: "fifo",
}
_S_IFMT = 0o170000


class PathItem(NamedTuple):
    """One PATH record: the name as passed, what kind of entry it is, and its inode.

    A NamedTuple rather than a dataclass: it crosses process boundaries in `--jobs` runs
    as a plain tuple (`facts.to_plain`), which a tuple becomes at no cost.
    """

    name: str | None
    nametype: str | None
    file_type: str | None
    inode: tuple[str, str] | None

    @property
    def is_dir(self) -> bool:
        return self.file_type == "dir"


def path_items(event: AuditEvent) -> list[PathItem]:
    """The event's PATH records in item order (`ausearch -i` prints them reversed)."""
    numbered = []
    for position, rec in enumerate(event.all(PATH)):
        item = rec.text("item")
        dev, inode = rec.text("dev"), rec.text("inode")
        numbered.append(
            (
                int(item) if item is not None and item.isdecimal() else position,
                PathItem(
                    rec.text("name"),
                    rec.text("nametype"),
                    file_type(rec.text("mode")),
                    (dev, inode) if dev is not None and inode is not None else None,
                ),
            )
        )
    return [item for _, item in sorted(numbered, key=lambda pair: pair[0])]


def file_type(mode: str | None) -> str | None:
    """`0100644` (raw, octal) or `file,644` (`ausearch -i`) → `file`; None when unknown."""
    if not mode:
        return None
    if "," in mode:
        return mode.split(",", 1)[0]
    try:
        return _FILE_TYPES.get(int(mode, 8) & _S_IFMT)
    except ValueError:
        return None


def cwd_of(event: AuditEvent) -> str | None:
    rec = event.first(CWD)
    return rec.text("cwd") if rec is not None else None


def join(directory: str, name: str) -> str:
    """`<directory>/<name>` without normalising, as Sysmon writes FileDelete names."""
    return f"{directory.rstrip('/')}/{name}"


@dataclass(slots=True)
class PathResolver:
    """Absolute names of PATH items; remembers directories by (node, dev, inode).

    `capacity` bounds the directory memory (least recently used dropped first). A directory
    renamed or removed after it was seen keeps its old path here until it is seen again.
    """

    capacity: int = 65536
    _dirs: OrderedDict[tuple[str | None, str, str], str] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    def learn(self, node: str | None, cwd: str | None, items: Sequence[PathItem], relative_to_cwd: bool) -> None:
        """Remember every directory among an event's PATH `items` whose absolute path they show.

        `relative_to_cwd` says whether the call's relative names start at the CWD (no dirfd,
        or AT_FDCWD); when they do not, a relative name's directory is unknown and a PARENT
        name is the kernel's CWD stand-in, so only absolute names are learned.
        """
        # Through a dirfd, a PARENT name is the kernel's CWD stand-in unless the name passed
        # was absolute (then the dirfd was ignored and the PARENT name is its directory part).
        parents_named = relative_to_cwd or any(
            i.nametype != "PARENT" and i.name and i.name.startswith("/") for i in items
        )
        for item in items:
            if not item.is_dir or item.inode is None or not item.name:
                continue
            if item.nametype == "PARENT" and not parents_named:
                continue
            if item.name.startswith("/"):
                path = item.name
            elif relative_to_cwd and cwd is not None:
                path = join(cwd, item.name)
            else:
                continue
            key = (node, *item.inode)
            self._dirs[key] = posixpath.normpath(path)
            self._dirs.move_to_end(key)
            if len(self._dirs) > self.capacity:
                self._dirs.popitem(last=False)

    def resolve(
        self,
        node: str | None,
        cwd: str | None,
        items: Sequence[PathItem],
        item: PathItem,
        relative_to_cwd: bool,
        *,
        normalise: bool,
    ) -> str | None:
        """The absolute name of `item` (one of an event's `items`), or its name as passed
        when no directory is known.

        Absolute names are kept; relative ones are joined to the CWD, or — for a dirfd — to
        the remembered path of the PARENT item's inode. `normalise` folds `.`, `..` and
        doubled slashes (Sysmon's FileCreate shows the kernel's d_path; FileDelete does not).
        """
        name = item.name
        if not name:
            return None
        if name.startswith("/"):
            path = name
        elif relative_to_cwd:
            if cwd is None:
                return name
            path = join(cwd, name)
        else:
            parent = next((p for p in items if p.nametype == "PARENT"), None)
            directory = self._dirs.get((node, *parent.inode)) if parent and parent.inode else None
            if directory is None:
                return name
            path = join(directory, posixpath.basename(name.rstrip("/")))
        return posixpath.normpath(path) if normalise else path
