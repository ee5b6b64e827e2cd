"""Deciding one event: which rule set matches it, whether it is logged, and its RuleName.

This is Sysmon for Linux 1.5.2's rule engine as measured beside auditd and as written in its
source (SysmonCommon `rules.c`); the order of every step matters, because a RuleName is set
by each filter that matches on the way, even in a set that finally does not match:

1. The sets of the event type are tried exclude sets first, then include sets, each kind
   from the last in the file to the first. The first set that matches decides: an exclude
   set drops the event, an include set logs it with the RuleName set so far.
2. When no set matches: with no set at all, the manifest's default (ProcessCreate and
   ProcessTerminate logged, others not); with exactly one set, an exclude set logs the event
   and an include set drops it; with two or more sets, the event is dropped. The RuleName is
   then `-`.
3. A set without filters never matches.
4. A set combined with OR matches at its first matching filter or `<Rule>`. A set combined
   with AND tries its filters in file order; once a field has matched, later filters on it
   are skipped (they neither match nor name the event); a failing filter is forgiven while a
   later filter on the same field (outside Rules) follows; a failing `<Rule>` fails the set.
   So filters on one field are OR-ed, filters on different fields AND-ed.
5. A `<Rule>` tries its filters in file order and stops at the first match (OR) or the
   first failure (AND); no skipping inside it.
6. A filter that matches sets the RuleName to the name it carries, if any (see
   `model.Filter.rule_name`). Names set in sets tried earlier stay unless overwritten, so a
   half-matching Rule can name an event logged by an unnamed filter of another set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .conditions import fold
from .model import Filter, OnMatch, Relation, Rule, RuleSet

NO_NAME = "-"


@dataclass(slots=True)
class _Event:
    """The event being decided: its fields, folded once each, and the RuleName so far."""

    fields: Mapping[str, str]
    rule_name: str | None = None
    folded: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        folded = self.folded.get(name)
        if folded is None:
            folded = self.folded[name] = fold(self.fields[name])
        return folded

    def test(self, flt: Filter) -> bool:
        """Whether `flt` matches; a match sets the RuleName the filter carries."""
        if flt.pattern.test(self.value(flt.field)):
            if flt.rule_name is not None:
                self.rule_name = flt.rule_name
            return True
        return False


@dataclass(frozen=True, slots=True)
class _SetFilter:
    """A filter directly in a set; `forgivable`: a later filter of the set (outside Rules)
    tests the same field, so in an AND set a failure here does not end the set yet."""

    filter: Filter
    forgivable: bool


@dataclass(frozen=True, slots=True)
class _Set:
    drops: bool
    any_match: bool  # OR; else AND
    steps: tuple[_SetFilter | Rule, ...]  # Rules without filters left out

    @classmethod
    def compile(cls, rule_set: RuleSet) -> _Set:
        steps: list[_SetFilter | Rule] = []
        later_fields: set[str] = set()  # fields of the filters after this one, outside Rules
        for item in reversed(rule_set.items):
            if isinstance(item, Rule):
                if item.filters:
                    steps.append(item)
            else:
                steps.append(_SetFilter(item, item.field in later_fields))
                later_fields.add(item.field)
        steps.reverse()
        return cls(rule_set.onmatch is OnMatch.EXCLUDE, rule_set.relation is Relation.OR, tuple(steps))

    def matches(self, event: _Event) -> bool:
        if not self.steps:
            return False
        if self.any_match:
            for step in self.steps:
                if isinstance(step, Rule):
                    if _rule_matches(step, event):
                        return True
                elif event.test(step.filter):
                    return True
            return False
        matched: set[str] = set()
        for step in self.steps:
            if isinstance(step, Rule):
                if not _rule_matches(step, event):
                    return False
                continue
            name = step.filter.field
            if name in matched:
                continue
            if event.test(step.filter):
                matched.add(name)
            elif not step.forgivable:
                return False
        return True


def _rule_matches(rule: Rule, event: _Event) -> bool:
    any_match = rule.relation is Relation.OR
    for flt in rule.filters:
        if event.test(flt) == any_match:
            return any_match
    return not any_match


@dataclass(frozen=True, slots=True)
class EventPlan:
    """The rules of one event type in the order Sysmon tries them, and what happens when
    none matches (`otherwise`: the RuleName to log with, None to drop)."""

    sets: tuple[_Set, ...]
    otherwise: str | None

    @classmethod
    def compile(cls, rule_sets: tuple[RuleSet, ...], logged_by_default: bool) -> EventPlan:
        """`rule_sets` in file order; `logged_by_default` is the manifest's default."""
        excludes = [s for s in rule_sets if s.onmatch is OnMatch.EXCLUDE]
        includes = [s for s in rule_sets if s.onmatch is OnMatch.INCLUDE]
        order = [_Set.compile(s) for s in (*reversed(excludes), *reversed(includes))]
        if not rule_sets:
            otherwise = NO_NAME if logged_by_default else None
        elif len(rule_sets) == 1:
            otherwise = NO_NAME if rule_sets[0].onmatch is OnMatch.EXCLUDE else None
        else:
            otherwise = None
        return cls(tuple(order), otherwise)

    def decide(self, fields: Mapping[str, str]) -> str | None:
        """None to drop the event, else the RuleName to write (`-` when none)."""
        event = _Event(fields)
        for rule_set in self.sets:
            if rule_set.matches(event):
                return None if rule_set.drops else (event.rule_name or NO_NAME)
        return self.otherwise
