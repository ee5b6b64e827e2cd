"""Building small Sysmon configurations and events for the configuration engine's tests."""

from __future__ import annotations

from pathlib import Path

from audit2sysmon.sysmon import SCHEMAS
from audit2sysmon.sysmon.config import SysmonConfig, load_config

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = FIXTURES / "config"


def config(filtering: str, *, schema: str = "4.90", options: str = "") -> SysmonConfig:
    """A configuration whose <EventFiltering> holds `filtering`, read by the real reader."""
    text = f'<Sysmon schemaversion="{schema}">{options}<EventFiltering>{filtering}</EventFiltering></Sysmon>'
    return load_config(text.encode("utf-8"), path="test.xml")


def fields(event_id: int, **values: str) -> dict[str, str]:
    """Every EventData field of `event_id` as `-` (Sysmon's empty value), except `values`."""
    event = dict.fromkeys(SCHEMAS[event_id].fields, "-")
    unknown = set(values) - set(event)
    assert not unknown, f"EventID {event_id} has no field {unknown}"
    event.update(values)
    return event
