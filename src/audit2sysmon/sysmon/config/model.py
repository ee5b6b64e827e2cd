"""A Sysmon configuration's rules as read: rule sets, `<Rule>` groups and field filters.

A *rule set* is one event element (`<ProcessCreate onmatch="include">`), inside a
`<RuleGroup>` or directly under `<EventFiltering>`. Its children, in file order, are field
filters (`<Image condition="end with">wget</Image>`) and `<Rule>` groups of field filters.
Each filter carries the RuleName it gives when it matches, already resolved from its own
`name`, its Rule's and its RuleGroup's, as Sysmon resolves it when it loads the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from .conditions import Condition, Pattern


class OnMatch(Enum):
    """What a rule set does with an event it matches."""

    INCLUDE = "include"  # log it
    EXCLUDE = "exclude"  # drop it


class Relation(Enum):
    """How the filters of a set or of a `<Rule>` combine."""

    AND = "and"
    OR = "or"


@dataclass(frozen=True, slots=True)
class Filter:
    """One field filter: `<field condition="…" name="…">value</field>`.

    `value` is the text as written (whitespace kept). `rule_name` is the RuleName this filter
    gives when it matches: its own `name`, else its `<Rule>`'s, else its `<RuleGroup>`'s;
    None when none of those is written or the nearest one written is empty (`name=""`),
    in which case a match leaves the RuleName as it was.
    """

    field: str
    condition: Condition
    value: str
    rule_name: str | None
    line: int
    pattern: Pattern = dataclasses.field(repr=False, compare=False)

    @classmethod
    def make(cls, field_name: str, condition: Condition, value: str, rule_name: str | None, line: int) -> Filter:
        return cls(field_name, condition, value, rule_name, line, Pattern.prepare(condition, value))


@dataclass(frozen=True, slots=True)
class Rule:
    """A `<Rule>`: filters combined by `relation` (OR when the file says nothing).

    `name` is the attribute as written (None: absent); its filters already carry the name
    they give. A Rule without filters takes no part in matching, as in Sysmon.
    """

    relation: Relation
    name: str | None
    filters: tuple[Filter, ...]
    line: int


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One event element with its filters and Rules in file order.

    `group_name` is the enclosing `<RuleGroup name>` (None: no RuleGroup or no name);
    `in_group` tells whether there is a RuleGroup at all. `event_id` is the EventID the set
    applies to (the first of its family for the Windows registry, pipe and WMI events).
    """

    event_type: str
    event_id: int
    onmatch: OnMatch
    relation: Relation
    items: tuple[Filter | Rule, ...]
    in_group: bool
    group_name: str | None
    line: int

    @property
    def filters(self) -> tuple[Filter, ...]:
        """Every filter of the set, those inside Rules included, in file order."""
        found: list[Filter] = []
        for item in self.items:
            if isinstance(item, Rule):
                found.extend(item.filters)
            else:
                found.append(item)
        return tuple(found)
