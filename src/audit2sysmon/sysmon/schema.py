"""The Sysmon for Linux manifest as data: the envelope every event shares, and per EventID its
System values and the order of its EventData fields.

These are Sysmon for Linux's manifest (schema 4.81/4.90) and its XML writer's constants. They
are the contract with every consumer, so they live in one table, are checked for consistency
when the module is imported, and the tests compare them with real Sysmon lines rather than
with themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CHANNEL",
    "KEYWORDS",
    "NO_VALUE",
    "POSITIONS",
    "PROVIDER_GUID",
    "PROVIDER_NAME",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "SECURITY_USER_ID",
    "EventSchema",
]

PROVIDER_NAME = "Linux-Sysmon"
PROVIDER_GUID = "{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"
CHANNEL = "Linux-Sysmon/Operational"
SECURITY_USER_ID = "0"  # Sysmon's geteuid(): it runs as root
KEYWORDS = "0x8000000000000000"
NO_VALUE = "-"
"""What Sysmon writes for an empty or missing value."""
SCHEMA_VERSION = "4.90"
"""The manifest schema of the events written (Sysmon for Linux 1.5), EventID 4's SchemaVersion."""


@dataclass(frozen=True, slots=True)
class EventSchema:
    """One event's manifest entry: its System constants and its EventData field order."""

    event_id: int
    name: str
    version: int
    level: int
    task: int
    opcode: int
    keywords: str
    fields: tuple[str, ...]


def _schema(event_id: int, name: str, version: int, fields: str, *, level: int = 4) -> EventSchema:
    """Sysmon's descriptor rule (extractMsgOp.sh): Task = EventID, Opcode 0, one keyword."""
    names = tuple(fields.split())
    return EventSchema(event_id, name, version, level, event_id, 0, KEYWORDS, names)


_PROCESS = "RuleName UtcTime ProcessGuid ProcessId Image"
SCHEMAS: dict[int, EventSchema] = {
    s.event_id: s
    for s in (
        _schema(
            1,
            "ProcessCreate",
            5,
            f"{_PROCESS} FileVersion Description Product Company OriginalFileName CommandLine"
            " CurrentDirectory User LogonGuid LogonId TerminalSessionId IntegrityLevel Hashes"
            " ParentProcessGuid ParentProcessId ParentImage ParentCommandLine ParentUser",
        ),
        _schema(
            3,
            "NetworkConnect",
            5,
            f"{_PROCESS} User Protocol Initiated SourceIsIpv6 SourceIp SourceHostname SourcePort"
            " SourcePortName DestinationIsIpv6 DestinationIp DestinationHostname DestinationPort"
            " DestinationPortName",
        ),
        _schema(4, "Sysmon service state changed", 3, "UtcTime State Version SchemaVersion"),
        _schema(5, "ProcessTerminate", 3, f"{_PROCESS} User"),
        _schema(9, "RawAccessRead", 2, f"{_PROCESS} Device User"),
        _schema(
            10,
            "ProcessAccess",
            3,
            "RuleName UtcTime SourceProcessGUID SourceProcessId SourceThreadId SourceImage"
            " TargetProcessGUID TargetProcessId TargetImage GrantedAccess CallTrace SourceUser"
            " TargetUser",
        ),
        _schema(11, "FileCreate", 2, f"{_PROCESS} TargetFilename CreationUtcTime User"),
        _schema(
            16, "Sysmon config state changed", 3, "UtcTime Configuration ConfigurationFileHash"
        ),
        _schema(
            23,
            "FileDelete",
            5,
            "RuleName UtcTime ProcessGuid ProcessId User Image TargetFilename Hashes IsExecutable"
            " Archived",
        ),
        # Linux-only eBPF event (1.5+): its descriptor is all zeros, unlike every other event.
        EventSchema(
            100,
            "eBPFEvent",
            0,
            0,
            0,
            0,
            "0x0",
            tuple(f"{_PROCESS} User BpfCommand BpfProgramType BpfProgramId BpfProgramName".split()),
        ),
        _schema(255, "Error report", 3, "UtcTime ID Description", level=2),
    )
}

_FIELD_NAME = re.compile(r"[A-Z][A-Za-z0-9]*\Z")


def _check_schemas(schemas: Mapping[int, EventSchema]) -> dict[int, dict[str, int]]:
    """Fail at import on a typo in the table; return each schema's field → position map."""
    positions: dict[int, dict[str, int]] = {}
    for event_id, schema in schemas.items():
        where = f"Sysmon schema {event_id}"
        if schema.event_id != event_id:
            raise AssertionError(f"{where}: listed under the wrong id {schema.event_id}")
        if len(set(schema.fields)) != len(schema.fields):
            raise AssertionError(f"{where}: duplicate field in {schema.fields}")
        bad = [name for name in schema.fields if not _FIELD_NAME.match(name)]
        if bad or "UtcTime" not in schema.fields:
            raise AssertionError(f"{where}: bad field names {bad} or no UtcTime")
        if not re.fullmatch(r"0x[0-9a-f]+", schema.keywords) or schema.level not in (0, 2, 4):
            raise AssertionError(f"{where}: bad keywords {schema.keywords} or level {schema.level}")
        if schema.task not in (event_id, 0):
            raise AssertionError(f"{where}: task {schema.task} is neither the id nor 0")
        positions[event_id] = {name: i for i, name in enumerate(schema.fields)}
    return positions


POSITIONS = _check_schemas(SCHEMAS)
"""Each EventID's field name -> position in `EventSchema.fields`."""


