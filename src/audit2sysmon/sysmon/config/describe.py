"""The rules of a configuration as the engine understood them, in words (`--check-config`).

Like `sysmon -c`, but saying what matters for predicting the output: the order in which the
sets are tried, how each combines its filters, the RuleName each filter gives, and what
happens to an event no set matches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .manifest import EVENT_TYPES, EventType
from .model import Filter, OnMatch, Rule, RuleSet

if TYPE_CHECKING:
    from .config import SysmonConfig


def describe(config: SysmonConfig) -> str:
    lines = [f"Sysmon configuration {config.path or '(not from a file)'}"]
    lines.append(f"  schema version {config.schema_version}" + (f", SHA256 {config.sha256}" if config.sha256 else ""))
    lines.append(f"  HashAlgorithms: {','.join(config.hash_algorithms)}")
    sizes = ",".join(f"{name}:{size}" for name, size in config.field_sizes.items())
    lines.append(f"  FieldSizes: {sizes or 'none'}")
    lines.extend(f"  warning: {warning}" for warning in config.warnings)
    for event_type in EVENT_TYPES:
        rule_sets = tuple(s for i in event_type.event_ids for s in config.rules.get(i, ()))
        if rule_sets or event_type.written_on_linux:
            lines.append("")
            lines.extend(_event_type(event_type, sorted(rule_sets, key=lambda s: s.line)))
    return "\n".join(lines) + "\n"


def _event_type(event_type: EventType, rule_sets: list[RuleSet]) -> list[str]:
    ids = "/".join(str(i) for i in event_type.event_ids)
    title = f"{event_type.name} (EventID {ids})"
    if not rule_sets:
        verdict = "every event logged, RuleName -" if event_type.logged_by_default else "not logged"
        return [f"{title}: no rules: {verdict} (Sysmon's default for this event type)"]
    count = len(rule_sets)
    lines = [f"{title}: {count} rule set{'s' if count > 1 else ''}"]
    if not event_type.written_on_linux:
        lines[0] += " (Sysmon for Linux never writes these events)"
    for number, rule_set in enumerate(rule_sets, 1):
        lines.extend(_rule_set(number, rule_set))
    if count > 1:
        numbers = {id(s): n for n, s in enumerate(rule_sets, 1)}
        excludes = [s for s in rule_sets if s.onmatch is OnMatch.EXCLUDE]
        includes = [s for s in rule_sets if s.onmatch is OnMatch.INCLUDE]
        order = ", ".join(f"set {numbers[id(s)]}" for s in (*reversed(excludes), *reversed(includes)))
        lines.append(f"  tried in this order (exclude sets first, each kind from the last): {order}")
    if count > 1:
        otherwise = "not logged (two or more sets)"
    elif rule_sets[0].onmatch is OnMatch.EXCLUDE:
        otherwise = "logged, RuleName - (its only set is an exclude set)"
    else:
        otherwise = "not logged (its only set is an include set)"
    lines.append(f"  when no set matches: {otherwise}")
    return lines


def _rule_set(number: int, rule_set: RuleSet) -> list[str]:
    where = "RuleGroup" if rule_set.in_group else "no RuleGroup"
    if rule_set.in_group and rule_set.group_name is not None:
        where += f" name {rule_set.group_name!r}"
    action = "drop" if rule_set.onmatch is OnMatch.EXCLUDE else "log"
    head = (
        f"  set {number} ({_line(rule_set.line)}{where}): onmatch {rule_set.onmatch.value}: {action} the event"
        f" when it matches; filters combined with {rule_set.relation.value.upper()}"
    )
    if not rule_set.filters:
        return [head, "    no filters: never matches"]
    lines = [head]
    for item in rule_set.items:
        if isinstance(item, Rule):
            name = f" {item.name!r}" if item.name is not None else ""
            if not item.filters:
                lines.append(f"    Rule{name} ({_line(item.line)}no filters): takes no part")
                continue
            lines.append(f"    Rule{name} ({_line(item.line)}filters combined with {item.relation.value.upper()})")
            lines.extend(f"      {_filter(flt)}" for flt in item.filters)
        else:
            lines.append(f"    {_filter(item)}")
    return lines


def _filter(flt: Filter) -> str:
    gives = f"RuleName {flt.rule_name!r}" if flt.rule_name is not None else "no RuleName of its own"
    return f"{flt.field} {flt.condition.value} {flt.value!r} -> {gives} ({_line(flt.line).rstrip(', ')})"


def _line(line: int) -> str:
    """`line N, ` for rules read from a file (`NO_CONFIG`'s sets have no line)."""
    return f"line {line}, " if line else ""
