"""File names from PATH records, made absolute the way Sysmon for Linux shows them.

A syscall that names files gets one PATH record per inode it touched (`item=0 …`), each with
the name as the caller passed it, the inode, the mode and a `nametype` (`PARENT` for the
directory an entry is created in or removed from, `CREATE`, `DELETE`, `NORMAL`). Names may be
relative: to the CWD record's directory, or, for `openat`/`unlinkat` with a directory fd, to a
directory the records do not name at all — the kernel then even writes the CWD into the
PARENT record's name (kernel/audit.c `audit_log_name`, `name_len == 0`), while its inode is
the true directory's. `PathResolver` remembers the paths of directories whose absolute name
the log did show (dev + inode → path) and uses them for such names; where none is known the
name is `Unplaced`, which the mapper may hold until a later record shows the directory
(docs/mapping.md says what is written when none does).
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..audit.records import AuditEvent
from ..audit.types import CWD, PATH

__all__ = [
    "UNKNOWN_DIRECTORY",
    "DirectoryKey",
    "PathItem",
    "PathResolver",
    "Unplaced",
    "cwd_of",
    "file_type",
    "join",
    "path_items",
]

UNKNOWN_DIRECTORY = "<unknown directory>"
"""What stands for a directory the log never showed, in front of the name as passed: not a
path (it does not start with `/`), so no consumer takes `<unknown directory>/x` for one."""
DirectoryKey = tuple["str | None", str, str]
"""A directory by node, device and inode."""
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


class Unplaced(NamedTuple):
    """A relative name whose directory the log has not shown (yet): `directory` is the key a
    later record may show it under (None when nothing can: no CWD record, no PARENT inode),
    `name` the name as passed."""

    directory: DirectoryKey | None
    name: str

    @property
    def marked(self) -> str:
        """The name as written when the directory stays unknown: `<unknown directory>/name`."""
        return f"{UNKNOWN_DIRECTORY}/{self.name}"


def path_items(event: AuditEvent) -> list[PathItem]:
    """The event's PATH records in item order (`ausearch -i` prints them reversed)."""
    numbered = []
    for position, rec in enumerate(event.all(PATH)):
        item = rec.text("item")
        dev, inode = rec.text("dev"), rec.text("inode")
        numbered.append(
            (
                int(item) if item is not None and item.isdecimal() else position,
                tuple.__new__(  # PathItem(…) without its generated (Python) constructor: facts.py
                    PathItem,
                    (
                        rec.text("name"),
                        rec.text("nametype"),
                        file_type(rec.text("mode")),
                        (dev, inode) if dev is not None and inode is not None else None,
                    ),
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
    _dirs: OrderedDict[DirectoryKey, str] = field(
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
            key: DirectoryKey = (node, *item.inode)
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
    ) -> str | Unplaced | None:
        """The absolute name of `item` (one of an event's `items`); `Unplaced` when its
        directory is unknown; None when it has no name.

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
                return Unplaced(None, name)
            path = join(cwd, name)
        else:
            parent = next((p for p in items if p.nametype == "PARENT"), None)
            unplaced = Unplaced((node, *parent.inode) if parent and parent.inode else None, name)
            return self.place(unplaced, normalise=normalise) or unplaced
        return posixpath.normpath(path) if normalise else path

    def place(self, unplaced: Unplaced, *, normalise: bool) -> str | None:
        """The absolute name of `unplaced` once its directory is known, else None."""
        key = unplaced.directory
        directory = self._dirs.get(key) if key is not None else None
        if directory is None:
            return None
        path = join(directory, posixpath.basename(unplaced.name.rstrip("/")))
        return posixpath.normpath(path) if normalise else path

    def knows(self, key: DirectoryKey) -> bool:
        """Whether the path of directory `key` is known."""
        return key in self._dirs
