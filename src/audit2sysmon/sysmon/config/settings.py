"""The two options that change what we write: `<HashAlgorithms>` and `<FieldSizes>`.

Both are read as Sysmon reads them, which is stricter than it looks: the element's whole
text is the value, so a value written on its own indented line carries that whitespace and
Sysmon refuses it; we refuse the same files, with the reason.
"""

from __future__ import annotations

import re

from .conditions import fold
from .manifest import ALL_FIELD_NAMES, HASH_ALL, HASH_NAMES, HASH_ORDER

ELLIPSIS = "..."
NO_VALUE = "-"
_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1
_FIELD_SIZES_TEXT = re.compile(r"[A-Za-z0-9,:]*")
_LEADING_DIGITS = re.compile(r"[0-9]*")


class OptionError(ValueError):
    """An option value Sysmon refuses; the reader adds where it was."""


def parse_hash_algorithms(text: str) -> tuple[str, ...]:
    """The algorithms of `<HashAlgorithms>`, in the order Sysmon writes the hashes.

    `*` or `all` selects every algorithm; otherwise a comma-separated list of `SHA1`
    (`SHA-1`), `MD5` (`MD-5`), `SHA256` (`SHA-256`) and `IMPHASH` (`IMP-HASH`), ignoring
    ASCII case. Sysmon writes them SHA1, MD5, SHA256, IMPHASH whatever the order given, and
    refuses an unknown name, so a space after a comma, an empty item (`md5,,sha1`) or a
    leading comma; one trailing comma is ignored, as Sysmon ignores it.
    """
    if fold(text) in HASH_ALL:
        return HASH_ORDER
    items = text.split(",")
    if len(items) > 1 and items[-1] == "":
        items.pop()
    chosen = set()
    for item in items:
        algorithm = HASH_NAMES.get(fold(item))
        if algorithm is None:
            raise OptionError(
                f"unknown hash algorithm {item!r} in {text!r}; Sysmon accepts a comma-separated list of"
                " SHA1, MD5, SHA256, IMPHASH (no spaces), or * for all"
            )
        chosen.add(algorithm)
    return tuple(name for name in HASH_ORDER if name in chosen)


def parse_field_sizes(text: str) -> dict[str, int]:
    """`<FieldSizes>` (`CommandLine:100,Image:20`) as field name → size in bytes.

    As Sysmon reads it: only letters, digits, `,` and `:` (so no spaces or line breaks);
    items without `:` are ignored; a field name must be one of the manifest's (any event,
    case as written) and applies to that field in every event; the size is the number its
    leading digits make (C's `atoi`) and must be at least 1.
    """
    if not _FIELD_SIZES_TEXT.fullmatch(text):
        bad = next(ch for ch in text if not (ch.isascii() and (ch.isalnum() or ch in ",:")))
        raise OptionError(
            f"FieldSizes {text!r} has the character {bad!r}; Sysmon allows only letters, digits, ',' and ':'"
        )
    sizes: dict[str, int] = {}
    for item in text.split(","):
        name, colon, number = item.partition(":")
        if not colon:
            continue
        if name not in ALL_FIELD_NAMES:
            raise OptionError(f"FieldSizes names {name!r}, which is no field of any Sysmon event")
        size = _atoi(number)
        if size <= 0:
            raise OptionError(f"FieldSizes gives {name} the size {size}; a size must be at least 1")
        sizes[name] = size
    return sizes


def _atoi(text: str) -> int:
    """C's `atoi` as glibc computes it: the leading digits (0 if none), clamped to a C
    `long`, then wrapped to an `int`."""
    digits = _LEADING_DIGITS.match(text)
    value = min(int(digits.group()) if digits and digits.group() else 0, _LONG_MAX)
    return (value + _INT_MAX + 1) % 2**32 - _INT_MAX - 1


def cut_to_size(value: str, size: int) -> str:
    """`value` cut to at most `size` bytes of UTF-8 as Sysmon's FieldSizes cuts it.

    Unchanged when it fits. Sizes 1 and 2 give `-`. Otherwise the value is cut and `...`
    appended so the result is `size` bytes, except that we never cut inside a character:
    Sysmon cuts bytes and can leave half a character (invalid UTF-8); we cut before that
    character, so the result can be one to three bytes shorter than `size`. Bytes that were
    not UTF-8 in the input (carried as lone surrogates) count one byte each.
    """
    if len(value) * 4 <= size or _utf8_size(value) <= size:
        return value
    if size < len(ELLIPSIS):
        return NO_VALUE
    room = size - len(ELLIPSIS)
    # The value is longer than `size` bytes, so this stops before its end.
    position = 0
    used = _utf8_length(value[0])
    while used <= room:
        position += 1
        used += _utf8_length(value[position])
    return value[:position] + ELLIPSIS


def _utf8_size(value: str) -> int:
    try:
        return len(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return sum(_utf8_length(char) for char in value)


def _utf8_length(char: str) -> int:
    code = ord(char)
    if code < 0x80 or 0xDC80 <= code <= 0xDCFF:  # ASCII, or one undecodable input byte
        return 1
    if code < 0x800:
        return 2
    return 3 if code < 0x10000 else 4
