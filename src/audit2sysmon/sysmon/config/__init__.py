"""Sysmon for Linux configuration files: read one, and apply it as Sysmon 1.5.2 does.

`load_config(path_or_bytes)` reads a configuration (refusing what Sysmon refuses, and hostile
XML) into a `SysmonConfig`, whose `decide(event_id, fields)` says whether an event is logged
and with which RuleName, `cut(event_id, name, value)` applies FieldSizes and `describe()`
prints the rules as understood. `NO_CONFIG` logs every event with RuleName `-`.
docs/config.md describes the format and every rule of the engine.
"""

from .conditions import CONDITION_NAMES, Condition
from .config import NO_CONFIG, SysmonConfig
from .model import Filter, OnMatch, Relation, Rule, RuleSet
from .reader import MAX_CONFIG_BYTES, MAX_NAME_BYTES, load_config

__all__ = [
    "CONDITION_NAMES",
    "MAX_CONFIG_BYTES",
    "MAX_NAME_BYTES",
    "NO_CONFIG",
    "Condition",
    "Filter",
    "OnMatch",
    "Relation",
    "Rule",
    "RuleSet",
    "SysmonConfig",
    "load_config",
]
