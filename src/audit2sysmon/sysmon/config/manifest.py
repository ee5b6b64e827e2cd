"""What Sysmon for Linux's manifest lets a configuration name: event types, fields, options.

Sysmon builds the configuration's grammar from its manifest, and the manifest of Sysmon for
Linux lists every event type of Sysmon for Windows as usable on all platforms. So a Linux
configuration may hold rules for `DnsQuery` or `ImageLoad`: Sysmon accepts them and, never
writing those events, never applies them. We accept the same files (saying so in a warning)
rather than refuse a configuration that works with the real Sysmon.

Field lists of the event types Sysmon for Linux writes come from `SCHEMAS`, the single table
of our output; the others are copied here from the manifest (schema 4.81, unchanged in 4.90).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import SCHEMAS

# The newest schema this engine knows (Sysmon for Linux 1.5), as major and minor number.
SCHEMA_MAJOR = 4
SCHEMA_MINOR_MAX = 90
# Schema versions up to 4.1 combined the filters of a set with OR when nothing was said;
# later ones with AND.
AND_DEFAULT_AFTER_MINOR = 10

# EventIDs that no rule filters: service state, configuration change, error report.
NEVER_FILTERED = frozenset({4, 16, 255})


@dataclass(frozen=True, slots=True)
class EventType:
    """One event element of `<EventFiltering>` (the manifest's `rulename`).

    `event_ids`/`fields`: the events it stands for and each one's fields (several only for
    the Windows registry, pipe and WMI families). `logged_by_default`: the manifest's
    `ruledefault`, what Sysmon does with such events when the configuration has no rules for
    them. `written_on_linux`: Sysmon for Linux emits these events at all.
    """

    name: str
    event_ids: tuple[int, ...]
    fields: tuple[tuple[str, ...], ...]
    logged_by_default: bool
    written_on_linux: bool


def _linux(event_id: int, logged_by_default: bool = False) -> EventType:
    schema = SCHEMAS[event_id]
    return EventType(schema.name, (event_id,), (schema.fields,), logged_by_default, True)


_WINDOWS_FIELDS = (
    (2, "FileCreateTime", "RuleName UtcTime ProcessGuid ProcessId Image TargetFilename CreationUtcTime"
     " PreviousCreationUtcTime User"),
    (6, "DriverLoad", "RuleName UtcTime ImageLoaded Hashes Signed Signature SignatureStatus"),
    (7, "ImageLoad", "RuleName UtcTime ProcessGuid ProcessId Image ImageLoaded FileVersion Description"
     " Product Company OriginalFileName Hashes Signed Signature SignatureStatus User"),
    (8, "CreateRemoteThread", "RuleName UtcTime SourceProcessGuid SourceProcessId SourceImage"
     " TargetProcessGuid TargetProcessId TargetImage NewThreadId StartAddress StartModule"
     " StartFunction SourceUser TargetUser"),
    (12, "RegistryEvent", "RuleName EventType UtcTime ProcessGuid ProcessId Image TargetObject User"),
    (13, "RegistryEvent", "RuleName EventType UtcTime ProcessGuid ProcessId Image TargetObject Details User"),
    (14, "RegistryEvent", "RuleName EventType UtcTime ProcessGuid ProcessId Image TargetObject NewName User"),
    (15, "FileCreateStreamHash", "RuleName UtcTime ProcessGuid ProcessId Image TargetFilename"
     " CreationUtcTime Hash Contents User"),
    (17, "PipeEvent", "RuleName EventType UtcTime ProcessGuid ProcessId PipeName Image User"),
    (18, "PipeEvent", "RuleName EventType UtcTime ProcessGuid ProcessId PipeName Image User"),
    (19, "WmiEvent", "RuleName EventType UtcTime Operation User EventNamespace Name Query"),
    (20, "WmiEvent", "RuleName EventType UtcTime Operation User Name Type Destination"),
    (21, "WmiEvent", "RuleName EventType UtcTime Operation User Consumer Filter"),
    (22, "DnsQuery", "RuleName UtcTime ProcessGuid ProcessId QueryName QueryStatus QueryResults Image User"),
    (24, "ClipboardChange", "RuleName UtcTime ProcessGuid ProcessId Image Session ClientInfo Hashes"
     " Archived User"),
    (25, "ProcessTampering", "RuleName UtcTime ProcessGuid ProcessId Image Type User"),
    (26, "FileDeleteDetected", "RuleName UtcTime ProcessGuid ProcessId User Image TargetFilename"
     " Hashes IsExecutable"),
)  # fmt: skip


def _windows() -> list[EventType]:
    """The Windows-only event types, one per name, with their families grouped."""
    grouped: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for event_id, name, fields in _WINDOWS_FIELDS:
        grouped.setdefault(name, []).append((event_id, tuple(fields.split())))
    return [
        EventType(name, tuple(i for i, _ in members), tuple(f for _, f in members), False, False)
        for name, members in grouped.items()
    ]


# In EventID order: `describe` lists them so, and real Sysmon counts them so.
EVENT_TYPES: tuple[EventType, ...] = tuple(
    sorted(
        [
            _linux(1, logged_by_default=True),
            _linux(3),
            _linux(5, logged_by_default=True),
            _linux(9),
            _linux(10),
            _linux(11),
            _linux(23),
            _linux(100),
            *_windows(),
        ],
        key=lambda event_type: event_type.event_ids[0],
    )
)
EVENT_TYPE_BY_NAME = {event_type.name: event_type for event_type in EVENT_TYPES}
# Event types Sysmon for Linux writes, by EventID: the ones `decide` answers for.
LINUX_EVENT_TYPES = {t.event_ids[0]: t for t in EVENT_TYPES if t.written_on_linux}

# Every field name of the manifest: what `<FieldSizes>` may name (Sysmon refuses others).
ALL_FIELD_NAMES = frozenset(
    [name for schema in SCHEMAS.values() for name in schema.fields]
    + [name for t in EVENT_TYPES for fields in t.fields for name in fields]
)

# Elements allowed under <Sysmon> besides <EventFiltering>, from the manifest's options
# (`PipeMonitoring` and `ProcessAccess` take the `Config` suffix there). HashAlgorithms and
# FieldSizes change what we write; the others concern Sysmon's own service, drivers or
# Windows, and have no effect on converted audit logs.
USED_OPTIONS = ("HashAlgorithms", "FieldSizes")
INAPPLICABLE_OPTIONS = (
    "ArchiveDirectory",
    "CaptureClipboard",
    "CheckRevocation",
    "DnsLookup",
    "DriverName",
    "PipeMonitoringConfig",
    "ProcessAccessConfig",
)
# Options that take no value (the manifest's `argument="none"`).
EMPTY_OPTIONS = frozenset({"CaptureClipboard"})
OPTION_NAMES = USED_OPTIONS + INAPPLICABLE_OPTIONS

# HashAlgorithms: each name Sysmon accepts, and the order in which it writes the hashes.
HASH_ORDER = ("SHA1", "MD5", "SHA256", "IMPHASH")
HASH_NAMES = {
    "sha1": "SHA1",
    "sha-1": "SHA1",
    "md5": "MD5",
    "md-5": "MD5",
    "sha256": "SHA256",
    "sha-256": "SHA256",
    "imphash": "IMPHASH",
    "imp-hash": "IMPHASH",
}
HASH_ALL = ("*", "all")
DEFAULT_HASHES = ("SHA256",)  # Sysmon for Linux's default since 1.3
