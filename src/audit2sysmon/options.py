"""One typed options object shared by the command line and the library API.

The CLI builds an `Options` from its flags and the API from keyword arguments
(`convert(lines, tz=…, machine_id=…)`), so both always mean the same thing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Literal

from .audit.correlate import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_OPEN
from .errors import ConfigError
from .sysmon.config import NO_CONFIG, SysmonConfig, load_config
from .sysmon.guid import machine_id_from_hex

__all__ = ["SUPPORTED_EVENTS", "InputFormat", "Options", "TimeCreated"]

InputFormat = Literal["auto", "raw", "interpreted"]
TimeCreated = Literal["event", "now"]
# The Sysmon EventIDs the map stage can write from audit records (docs/mapping.md).
SUPPORTED_EVENTS = frozenset({1, 3, 5, 9, 10, 11, 23})


@dataclass(frozen=True, slots=True)
class Options:
    """How a conversion reads its input and writes its events.

    Attributes:
        tz: zone of `ausearch -i` timestamps and of the syslog header; None = this machine's.
        hostname: Computer for records without `node=`; None = this machine's short name.
        machine_id: the 32-bit machine part of every GUID; None = derived from the node name.
        passwd: a passwd(5) file of the host that wrote the log, for uid → name (or its
            entries, uid → name, read elsewhere: `mapping.users.parse_passwd`).
        local_users: also ask this machine's account database (as `ausearch -i` does).
        input_format: `auto` detects raw or interpreted text per line.
        max_open_events / max_event_age_ms: the correlation window (events and log-time ms).
        hold_events: hold an event back (within the window) until what it names is known:
            a child's parent, the directory of a file named through a directory fd; off when
            following a live log, where latency matters more.
        time_created: `event` writes the event time as TimeCreated (deterministic output),
            `now` the conversion time, as Sysmon itself does.
        first_record_id: EventRecordID of the first event written.
        execution_pid: the `<Execution ProcessID=…>` value (Sysmon writes its own pid).
        events: the Sysmon EventIDs to write (`SUPPORTED_EVENTS` by default); the others
            are still read, so the process table stays complete.
        serial_gaps: warn about audit events whose serial numbers never appear (lost before
            the log was read); only meaningful for a log of everything the kernel wrote, such
            as a live audit.log (on with `--follow`), not for one cut down to some processes.
        config: a Sysmon configuration (a `SysmonConfig`, or the path of its XML file): which
            events are logged and with which RuleName, and FieldSizes. None logs every event
            with RuleName `-`, as Microsoft's collect-all configuration does (docs/config.md).
        parent_argv0: write only the parent's argv[0] in ParentCommandLine, as Sysmon for
            Linux does, instead of its whole command line (docs/mapping.md).
        hash_images, proc_parents: live enrichment, for a log read on the host that writes it
            as it is written (`--plugin`, `--follow`), never for archives (the files have
            changed since): ProcessCreate's Hashes from the executed file, and a parent the
            log never showed from /proc (docs/deploy.md).
    """

    tz: tzinfo | None = None
    hostname: str | None = None
    machine_id: int | None = None
    passwd: str | os.PathLike[str] | Mapping[int, str] | None = None
    local_users: bool = True
    input_format: InputFormat = "auto"
    max_open_events: int = DEFAULT_MAX_OPEN
    max_event_age_ms: int = DEFAULT_MAX_AGE_MS
    hold_events: bool = True
    time_created: TimeCreated = "event"
    first_record_id: int = 1
    execution_pid: int = 0
    events: frozenset[int] = SUPPORTED_EVENTS
    serial_gaps: bool = False
    config: SysmonConfig | str | os.PathLike[str] | None = None
    parent_argv0: bool = False
    hash_images: bool = False
    proc_parents: bool = False

    def __post_init__(self) -> None:
        if self.input_format not in ("auto", "raw", "interpreted"):
            raise ConfigError(f"input format must be auto, raw or interpreted, not {self.input_format!r}")
        if self.time_created not in ("event", "now"):
            raise ConfigError(f"time_created must be event or now, not {self.time_created!r}")
        if self.max_open_events < 1 or self.max_event_age_ms < 0:
            raise ConfigError("the correlation window needs max_open_events >= 1 and max_event_age_ms >= 0")
        if self.machine_id is not None and not 0 <= self.machine_id <= 0xFFFFFFFF:
            raise ConfigError("machine_id must fit in 32 bits")
        if not isinstance(self.events, frozenset) or not self.events <= SUPPORTED_EVENTS:
            supported = ",".join(map(str, sorted(SUPPORTED_EVENTS)))
            raise ConfigError(f"events must be a frozenset of EventIDs among {supported}, not {self.events!r}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Options:
        """Options from API keywords; a hex string machine id is accepted as on the CLI."""
        known = {f.name for f in fields(cls)}
        unknown = set(kwargs) - known
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(sorted(unknown))}")
        if isinstance(kwargs.get("machine_id"), str):
            kwargs["machine_id"] = machine_id_from_hex(kwargs["machine_id"])
        if "events" in kwargs and not isinstance(kwargs["events"], (frozenset, str)):
            kwargs["events"] = frozenset(kwargs["events"])
        config = kwargs.get("config")
        if config is not None and not isinstance(config, SysmonConfig):
            kwargs["config"] = load_config(config)
        return cls(**kwargs)

    def sysmon_config(self) -> SysmonConfig | None:
        """The configuration to apply, loaded when `config` is a path; None when every event
        is logged with RuleName `-` (no configuration, or one that says just that)."""
        config = self.config
        if config is None or config is NO_CONFIG:
            return None
        return config if isinstance(config, SysmonConfig) else load_config(config)

    def hostname_or_default(self) -> str:
        """Computer for lines without `node=`: the option, else this machine's short name."""
        return self.hostname if self.hostname is not None else socket.gethostname().split(".")[0]

    def time_created_for(self, msec: int) -> datetime:
        """TimeCreated of an event that happened at `msec` (ms since the epoch, UTC)."""
        if self.time_created == "now":
            return datetime.now(timezone.utc)
        return _EPOCH + timedelta(milliseconds=msec)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
