"""Reading a Sysmon configuration file: hardened XML in, `SysmonConfig` out.

A configuration comes from whoever deploys Sysmon, so it is read as untrusted input:

- at most `MAX_CONFIG_BYTES` (4 MiB; real configurations are tens of KiB), checked before
  anything is parsed, reading no more of a file than that;
- UTF-8 (with or without BOM), UTF-16LE (BOM, or a NUL second byte as Sysmon detects it) or
  an encoding the XML declaration names; bytes invalid in it are refused with their place;
- no DOCTYPE at all (so no entity can be declared, expanded or fetched): any `<!DOCTYPE` in
  the text is refused before parsing;
- lxml with entity resolution, network access and DTD loading off and `huge_tree` off, which
  also keeps libxml2's limit of 256 nested elements (the format itself nests 6 deep);
- then the structure of the format, element by element: anything Sysmon would not accept is a
  `ConfigError` naming the file and line (and the column, for what the parser refuses) and
  what is valid there.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by _parse: lxml is a tenth of the start-up, and most runs read no configuration
    from lxml import etree

from ...errors import ConfigError
from ..hashes import hashes_text
from .conditions import CONDITION_NAMES, condition_named, fold
from .config import SysmonConfig
from .manifest import (
    AND_DEFAULT_AFTER_MINOR,
    DEFAULT_HASHES,
    EMPTY_OPTIONS,
    EVENT_TYPE_BY_NAME,
    EVENT_TYPES,
    INAPPLICABLE_OPTIONS,
    OPTION_NAMES,
    SCHEMA_MAJOR,
    SCHEMA_MINOR_MAX,
    EventType,
)
from .model import Filter, OnMatch, Relation, Rule, RuleSet
from .settings import OptionError, parse_field_sizes, parse_hash_algorithms

MAX_CONFIG_BYTES = 4 * 1024 * 1024
# Sysmon refuses a configuration in which a filter's RuleName is longer than this (bytes of
# UTF-8: it measures the name with strlen before storing it in 256 UTF-16 units).
MAX_NAME_BYTES = 255

_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
# C's strtod, as Sysmon's std::stod reads the schema version: leading blanks, then a number.
_LEADING_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_POSITION_SUFFIX = re.compile(r", line \d+, column \d+$")
_XML_BLANKS = " \t\r\n"


def load_config(source: str | os.PathLike[str] | bytes, *, path: str | None = None) -> SysmonConfig:
    """Read a Sysmon for Linux configuration from a file path or from the file's bytes.

    `path` names the bytes in messages (and in `SysmonConfig.path`). Raises `ConfigError`
    (path, line, column, reason) for a file that cannot be read or that Sysmon would refuse.
    """
    if isinstance(source, bytes):
        data = source
    else:
        path = os.fspath(source)
        data = _read_file(path)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(_too_large(len(data)), path=path)
    text = _decode(data, path)
    doctype = text.find("<!DOCTYPE")
    if doctype >= 0:
        line, column = _line_and_column(text, doctype)
        raise ConfigError(
            "a DOCTYPE is not allowed in a Sysmon configuration (it could declare entities)",
            path=path, line=line, column=column,
        )  # fmt: skip
    root = _parse(text, path)
    return _Reader(path).read(root, data)


def _too_large(size: int) -> str:
    return f"larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB ({size} bytes or more); not read as a configuration"


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read the configuration: {error.strerror or error}", path=path) from None


def _decode(data: bytes, path: str | None) -> str:
    """The file's text, from the encoding Sysmon would read it in."""
    if data.startswith(_UTF8_BOM):
        body, encoding = data[len(_UTF8_BOM) :], "utf-8"
    elif data.startswith(b"\xff\xfe"):
        body, encoding = data[2:], "utf-16-le"
    elif data.startswith(b"\xfe\xff"):
        raise ConfigError("UTF-16 big-endian is not read by Sysmon; save the file as UTF-8", path=path, line=1)
    elif len(data) >= 2 and data[1] == 0:
        body, encoding = data, "utf-16-le"  # Sysmon's test: '<' or a blank, then a NUL byte
    else:
        declared = _DECLARED_ENCODING.match(data)
        body, encoding = data, declared.group(1).decode("ascii") if declared else "utf-8"
        try:
            wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
        except LookupError:
            raise ConfigError(f"unknown encoding {encoding!r} in the XML declaration", path=path, line=1) from None
        if wide:
            raise ConfigError(
                f"the XML declaration says {encoding}, but the file is 8-bit text; save it as UTF-8 or UTF-16LE",
                path=path, line=1,
            )  # fmt: skip
    try:
        return body.decode(encoding)
    except LookupError:  # a codec that is no text encoding (base64, rot13)
        raise ConfigError(f"unknown encoding {encoding!r} in the XML declaration", path=path, line=1) from None
    except UnicodeDecodeError as error:
        before = body[: error.start].decode(encoding, "replace")
        line, column = _line_and_column(before, len(before))
        raise ConfigError(
            f"invalid {encoding} ({error.reason}: byte 0x{body[error.start]:02x})", path=path, line=line, column=column
        ) from None


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _parse(text: str, path: str | None) -> etree._Element:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        encoding="utf-8",  # the text is re-encoded below, whatever the declaration says
    )
    try:
        return etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        reason = _POSITION_SUFFIX.sub("", str(error.msg)).strip()
        raise ConfigError(
            f"not well-formed XML: {reason}", path=path, line=line or None, column=column or None
        ) from None


def _is_element(node: etree._Element) -> bool:
    """Elements, not comments or processing instructions (which Sysmon skips)."""
    return isinstance(node.tag, str)


@dataclass(slots=True)
class _Options:
    """The options seen under <Sysmon>: the last value of each, as Sysmon keeps the last."""

    values: dict[str, tuple[str, int]] = field(default_factory=dict)
    stopped_by: str | None = None


class _Reader:
    """Walks one parsed file; every refusal names the element and what is valid there."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.warnings: list[str] = []
        self.and_by_default = True

    def fail(self, node: etree._Element, reason: str) -> ConfigError:
        return ConfigError(reason, path=self.path, line=node.sourceline)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def read(self, root: etree._Element, data: bytes) -> SysmonConfig:
        if root.tag != "Sysmon":
            raise self.fail(root, f"the root element must be <Sysmon>, not <{root.tag}>")
        self.attributes(root, ("schemaversion",))
        schema_version = self.schema_version(root)
        self.no_text(root)
        options = _Options()
        rule_sets: list[RuleSet] = []
        for child in root:
            if not _is_element(child):
                continue
            if child.tag == "EventFiltering":
                self.attributes(child, ())
                rule_sets.extend(self.event_filtering(child))
            elif child.tag in OPTION_NAMES:
                self.option(child, options)
            else:
                valid = ", ".join(("EventFiltering", *OPTION_NAMES))
                raise self.fail(child, f"unknown element <{child.tag}> in <Sysmon>; valid: {valid}")
        hash_algorithms: tuple[str, ...] = DEFAULT_HASHES
        field_sizes: dict[str, int] = {}
        for name, (value, line) in options.values.items():
            try:
                if name == "HashAlgorithms":
                    hash_algorithms = parse_hash_algorithms(value)
                elif name == "FieldSizes":
                    field_sizes = parse_field_sizes(value)
            except OptionError as error:
                raise ConfigError(str(error), path=self.path, line=line) from None
        return SysmonConfig.build(
            path=self.path,
            schema_version=schema_version,
            hash_algorithms=hash_algorithms,
            field_sizes=field_sizes,
            sha256=hashlib.sha256(data).hexdigest(),
            file_hashes=hashes_text(data, hash_algorithms),
            warnings=tuple(self.warnings),
            rule_sets=tuple(rule_sets),
        )

    def schema_version(self, root: etree._Element) -> str:
        """The attribute as written, checked as Sysmon reads it (a C number, to 2 decimals).

        Sysmon for Linux reads schema 4.x; we know its rules up to 4.90 (Sysmon for Linux
        1.5) and refuse newer ones rather than guess. Up to 4.1 the filters of a set combine
        with OR by default, after that with AND.
        """
        attribute = root.get("schemaversion")
        if attribute is None:
            raise self.fail(root, 'the <Sysmon> element needs a schemaversion attribute (schemaversion="4.90")')
        written = str(attribute)
        number = _LEADING_NUMBER.match(written)
        rounded = f"{float(number.group(1)):.2f}" if number else ""
        major, _, minor = rounded.partition(".")
        latest = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR_MAX}"
        if major != str(SCHEMA_MAJOR):
            raise self.fail(root, f"schemaversion {written!r}: Sysmon for Linux reads schema 4.x configurations")
        if int(minor) > SCHEMA_MINOR_MAX:
            raise self.fail(
                root, f"schemaversion {written!r} is newer than the newest known ({latest}, Sysmon for Linux 1.5)"
            )
        self.and_by_default = int(minor) > AND_DEFAULT_AFTER_MINOR
        return written

    def attributes(self, node: etree._Element, allowed: tuple[str, ...]) -> None:
        for name in node.attrib:
            if name not in allowed:
                valid = ", ".join(allowed) if allowed else "none"
                raise self.fail(node, f"<{node.tag}> has no attribute {name!r} (valid: {valid})")

    def no_text(self, node: etree._Element) -> None:
        """Elements that hold only elements: text there is refused, blanks are layout."""
        texts = [node.text, *(child.tail for child in node)]
        if any(text and text.strip(_XML_BLANKS) for text in texts):
            raise self.fail(node, f"<{node.tag}> holds text; only elements belong there")

    def text(self, node: etree._Element) -> str | None:
        """An element's text as Sysmon takes it: all text pieces, comments skipped, nothing
        trimmed; None when there is no text at all."""
        pieces = [node.text] if node.text is not None else []
        for child in node:
            if _is_element(child):
                raise self.fail(child, f"<{node.tag}> holds the element <{child.tag}>; only text belongs there")
            if child.tail is not None:
                pieces.append(child.tail)
        return "".join(pieces) if pieces else None

    def option(self, node: etree._Element, options: _Options) -> None:
        """One option element; Sysmon keeps the last value of each.

        Sysmon's loop over the options ends at the first one without any text, so the
        options after it are ignored; so do we, with a warning. `<CaptureClipboard/>`,
        which never has text, is such an option.
        """
        name = str(node.tag)
        self.attributes(node, ())
        value = self.text(node)
        if name in EMPTY_OPTIONS and value is not None:
            raise self.fail(node, f"<{name}> takes no value")
        if name in INAPPLICABLE_OPTIONS:
            self.warn(f"<{name}> accepted, has no effect on converted audit logs")
        if options.stopped_by is not None:
            self.warn(
                f"<{name}> (line {node.sourceline}) is ignored, as Sysmon ignores every option after"
                f" <{options.stopped_by}>, which has no value"
            )
        elif value is None:
            options.stopped_by = name
        else:
            options.values[name] = (value, node.sourceline or 0)

    def event_filtering(self, node: etree._Element) -> list[RuleSet]:
        self.no_text(node)
        rule_sets = []
        for child in node:
            if not _is_element(child):
                continue
            if child.tag == "RuleGroup":
                rule_sets.append(self.rule_group(child))
            else:
                rule_sets.append(self.rule_set(child, None))
        return rule_sets

    def rule_group(self, node: etree._Element) -> RuleSet:
        self.attributes(node, ("name", "groupRelation"))
        self.no_text(node)
        events = [child for child in node if _is_element(child)]
        if len(events) != 1:
            raise self.fail(node, f"a <RuleGroup> holds exactly one event element, this one holds {len(events)}")
        return self.rule_set(events[0], node)

    def relation(self, node: etree._Element, written: str) -> Relation:
        """`groupRelation` of a RuleGroup: `and` or `or`, ignoring ASCII case."""
        try:
            return Relation(fold(written))
        except ValueError:
            raise self.fail(node, f"groupRelation must be and or or, not {written!r}") from None

    def rule_set(self, node: etree._Element, group: etree._Element | None) -> RuleSet:
        event_type = EVENT_TYPE_BY_NAME.get(str(node.tag))
        if event_type is None:
            valid = ", ".join(t.name for t in EVENT_TYPES)
            where = "<RuleGroup>" if group is not None else "<EventFiltering>"
            raise self.fail(node, f"unknown event type <{node.tag}> in {where}; valid: {valid}")
        self.attributes(node, ("onmatch", "default"))
        self.no_text(node)
        onmatch = self.onmatch(node)
        default_relation = Relation.AND if self.and_by_default else Relation.OR
        group_name: str | None = None
        relation = default_relation
        if group is not None:
            group_name = group.get("name")
            written = group.get("groupRelation")
            if written is not None:
                relation = self.relation(group, written)
        items: list[Filter | Rule] = []
        for child in node:
            if not _is_element(child):
                continue
            if child.tag == "Rule":
                items.append(self.rule(child, event_type, group_name))
            else:
                items.append(self.filter(child, event_type, group_name))
        if not event_type.written_on_linux:
            self.warn(f"<{event_type.name}> rules accepted; Sysmon for Linux never writes {event_type.name} events")
        return RuleSet(
            event_type.name,
            self.family_member(node, event_type, items),
            onmatch,
            relation,
            tuple(items),
            group is not None,
            group_name,
            node.sourceline or 0,
        )

    def onmatch(self, node: etree._Element) -> OnMatch:
        """`onmatch="include|exclude"`, or the older `default=`, whose values mean the
        opposite (`default="include"`: logged unless a filter matches)."""
        onmatch, default = node.get("onmatch"), node.get("default")
        if (onmatch is None) == (default is None):
            raise self.fail(node, f'<{node.tag}> needs an onmatch attribute (onmatch="include" or onmatch="exclude")')
        written = onmatch if onmatch is not None else default
        choice = fold(written or "")
        if choice not in ("include", "exclude"):
            attribute = "onmatch" if onmatch is not None else "default"
            raise self.fail(node, f"{attribute} must be include or exclude, not {written!r}")
        if default is not None:
            choice = "exclude" if choice == "include" else "include"
        return OnMatch(choice)

    def rule(self, node: etree._Element, event_type: EventType, group_name: str | None) -> Rule:
        self.attributes(node, ("name", "groupRelation"))
        self.no_text(node)
        written = node.get("groupRelation")
        relation = Relation.OR
        if written is not None and fold(written) != "or":
            relation = Relation.AND
            if fold(written) != "and":
                self.warn(
                    f"line {node.sourceline}: <Rule groupRelation={written!r}> is taken as and, as Sysmon takes it"
                )
        name = node.get("name")
        inherited = name if name is not None else group_name
        filters = []
        for child in node:
            if _is_element(child):
                if child.tag == "Rule":
                    raise self.fail(child, "a <Rule> cannot hold another <Rule>")
                filters.append(self.filter(child, event_type, inherited))
        return Rule(relation, name, tuple(filters), node.sourceline or 0)

    def filter(self, node: etree._Element, event_type: EventType, inherited: str | None) -> Filter:
        """A field filter; `inherited` is the name it takes when it has none: its <Rule>'s,
        else its <RuleGroup>'s (an empty name is a name: it stops the fall-back)."""
        field_name = str(node.tag)
        if not any(field_name in fields for fields in event_type.fields):
            valid = ", ".join(dict.fromkeys(name for fields in event_type.fields for name in fields))
            raise self.fail(node, f"<{event_type.name}> has no field <{field_name}>; its fields: Rule, {valid}")
        self.attributes(node, ("condition", "name"))
        written = node.get("condition")
        condition = condition_named(written)
        if condition is None:
            raise self.fail(
                node, f"unknown condition {written!r} on <{field_name}>; valid: {', '.join(CONDITION_NAMES)}"
            )
        own = node.get("name")
        name = own if own is not None else inherited
        if name is not None and len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise self.fail(node, f"RuleName longer than {MAX_NAME_BYTES} bytes (Sysmon refuses it): {name[:40]!r}…")
        value = self.text(node)
        return Filter.make(field_name, condition, value or "", name or None, node.sourceline or 0)

    def family_member(self, node: etree._Element, event_type: EventType, items: list[Filter | Rule]) -> int:
        """The EventID a set applies to: for the registry, pipe and WMI families, the first
        member that has every field the set uses (Sysmon's choice)."""
        used = set()
        for item in items:
            for flt in item.filters if isinstance(item, Rule) else (item,):
                used.add(flt.field)
        for event_id, fields in zip(event_type.event_ids, event_type.fields, strict=True):
            if used <= set(fields):
                return event_id
        raise self.fail(node, f"no single {event_type.name} event has all the fields {', '.join(sorted(used))}")
