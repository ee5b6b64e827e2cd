"""`SysmonConfig`: a loaded configuration, and the questions the converter asks it.

`decide` says whether an event is logged and with which RuleName, `cut` applies FieldSizes,
`describe` prints the rules as understood (`audit2sysmon --check-config`). `NO_CONFIG` is what
audit2sysmon does without a configuration: log every event with RuleName `-`, as Microsoft's
collect-all configuration does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .describe import describe
from .manifest import DEFAULT_HASHES, EVENT_TYPES, LINUX_EVENT_TYPES, NEVER_FILTERED, SCHEMA_MAJOR, SCHEMA_MINOR_MAX
from .matcher import NO_NAME, EventPlan
from .model import OnMatch, Relation, RuleSet
from .settings import cut_to_size

# Sysmon keeps FieldSizes in a table indexed by EventID below 100: EventID 100 (eBPF) and 255
# (error report) are never cut.
_FIELD_SIZES_BELOW = 100


@dataclass(frozen=True, slots=True)
class SysmonConfig:
    """A Sysmon for Linux configuration as Sysmon 1.5.2 applies it.

    Attributes:
        path: where it was read from (None: given as bytes without a name, or `NO_CONFIG`).
        schema_version: the `schemaversion` attribute as written.
        hash_algorithms: what ProcessCreate's Hashes holds, in Sysmon's order (SHA1, MD5,
            SHA256, IMPHASH); SHA256 alone when the file does not say.
        field_sizes: `<FieldSizes>`: field name → size in bytes (see `cut`).
        sha256: hex SHA-256 of the file's bytes.
        file_hashes: the file's hashes as EventID 16's ConfigurationFileHash writes them
            (`MD5=…,SHA256=…` by `hash_algorithms`; `-` without a file).
        warnings: what the file asks for that converted audit logs cannot honour, one
            sentence each.
        rules: the rule sets of each EventID, in file order (see `model.RuleSet`).
    """

    path: str | None
    schema_version: str
    hash_algorithms: tuple[str, ...]
    field_sizes: Mapping[str, int]
    sha256: str
    file_hashes: str
    warnings: tuple[str, ...]
    rules: Mapping[int, tuple[RuleSet, ...]]
    plans: Mapping[int, EventPlan] = field(repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        path: str | None,
        schema_version: str,
        hash_algorithms: tuple[str, ...],
        field_sizes: Mapping[str, int],
        sha256: str,
        file_hashes: str,
        warnings: tuple[str, ...],
        rule_sets: tuple[RuleSet, ...],
    ) -> SysmonConfig:
        """A configuration from its parts, with each event type's rules compiled for `decide`."""
        rules: dict[int, tuple[RuleSet, ...]] = {}
        for rule_set in rule_sets:
            rules[rule_set.event_id] = (*rules.get(rule_set.event_id, ()), rule_set)
        plans = {
            event_id: EventPlan.compile(rules.get(event_id, ()), event_type.logged_by_default)
            for event_id, event_type in LINUX_EVENT_TYPES.items()
        }
        return cls(
            path,
            schema_version,
            hash_algorithms,
            MappingProxyType(dict(field_sizes)),
            sha256,
            file_hashes,
            warnings,
            MappingProxyType(rules),
            MappingProxyType(plans),
        )

    def decide(self, event_id: int, fields: Mapping[str, str]) -> str | None:
        """Whether Sysmon would log this event: None if not, else the RuleName to write.

        `fields` are the event's EventData values as we write them (before `cut`: Sysmon
        filters first and cuts afterwards). EventIDs 4, 16 and 255 are never filtered.
        Raises ValueError for an EventID Sysmon for Linux does not write, and KeyError when
        a filter needs a field that `fields` lacks.
        """
        plan = self.plans.get(event_id)
        if plan is not None:
            return plan.decide(fields)
        if event_id in NEVER_FILTERED:
            return NO_NAME
        raise ValueError(f"Sysmon for Linux writes no EventID {event_id}")

    def cut(self, event_id: int, name: str, value: str) -> str:
        """`value` of field `name` as FieldSizes leaves it (see `settings.cut_to_size`).

        Applies to every field so named, RuleName included, in every event below EventID
        100; values are cut after `decide`, as Sysmon cuts them after filtering.
        """
        size = self.field_sizes.get(name)
        if size is None or event_id >= _FIELD_SIZES_BELOW:
            return value
        return cut_to_size(value, size)

    def describe(self) -> str:
        """The rules as understood, for people (`audit2sysmon --check-config`)."""
        return describe(self)


def _log_everything() -> SysmonConfig:
    """One empty exclude set per event type Sysmon for Linux writes: every event logged."""
    latest = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR_MAX}"
    rule_sets = tuple(
        RuleSet(t.name, t.event_ids[0], OnMatch.EXCLUDE, Relation.OR, (), False, None, 0)
        for t in EVENT_TYPES
        if t.written_on_linux
    )
    return SysmonConfig.build(
        path=None,
        schema_version=latest,
        hash_algorithms=DEFAULT_HASHES,
        field_sizes={},
        sha256="",
        file_hashes="-",
        warnings=(),
        rule_sets=rule_sets,
    )


NO_CONFIG = _log_everything()
