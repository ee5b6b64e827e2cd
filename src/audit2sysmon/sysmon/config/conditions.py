"""The 16 filter conditions of a Sysmon configuration, compared the way Sysmon for Linux does.

Sysmon compares in UTF-16 with its own ASCII-only case folding (`A`-`Z` only: `É` and `é`
differ), lowers the rule's value once when it loads the configuration and then, per
condition:

- `is` / `is not`: equal or not, ignoring ASCII case;
- `contains` / `excludes`: the value is found in the field or not;
- `contains any` / `contains all`: some / every `;`-separated item is found;
- `excludes any`: **no** item is found; `excludes all`: **not every** item is found (the
  reverse of what the names say, and of Sysmon for Windows' documentation: measured on
  Sysmon for Linux 1.5.2, and so written in its source);
- `is any`: the field equals one of the items;
- `begin with` / `end with` and their `not` forms: prefix / suffix;
- `less than` / `more than`: string order of the two texts with ASCII letters upper-cased,
  code unit by code unit in UTF-16 (so `9` is more than `10000`, and a ProcessId compares
  as text);
- `image`: if the rule's value has no `\\`, the field is cut after its last `\\` first,
  then compared as `is`; Linux paths have no `\\`, so it compares the whole path.

Two corners of Sysmon's substring search are kept as well. An empty search text is found in
every non-empty field and in no empty one. An empty item in a `;` list (`a;;b`, `;a`) is not
skipped: Sysmon then searches for the rest of the rule's text from that point (`;b`), and an
empty item at the end (`a;`) is found in every non-empty field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Sysmon's WideTolower/WideToupper: ASCII letters only.
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
LIST_SEPARATOR = ";"


def fold(text: str) -> str:
    """`text` with ASCII letters lowered and nothing else changed (Sysmon's case folding).

    `str.lower` is the same thing, and faster, when the text is ASCII; other letters must
    keep their case because Sysmon does not fold them.
    """
    return text.lower() if text.isascii() else text.translate(_LOWER)


def _order_key(folded: str) -> bytes:
    """What `less than`/`more than` compare: ASCII letters upper-cased, as UTF-16 code units.

    The UTF-16 big-endian bytes order like the code units (surrogate pairs sort below
    U+E000-U+FFFF there, not above as code points would); `surrogatepass` lets undecodable
    input bytes, which reach us as lone surrogates, take part like any other unit.
    """
    upper = folded.upper() if folded.isascii() else folded.translate(_UPPER)
    return upper.encode("utf-16-be", "surrogatepass")


class Condition(Enum):
    """A filter's `condition` attribute, in the manifest's order; the value is its name."""

    IS = "is"
    IS_NOT = "is not"
    CONTAINS = "contains"
    CONTAINS_ANY = "contains any"
    IS_ANY = "is any"
    CONTAINS_ALL = "contains all"
    EXCLUDES = "excludes"
    EXCLUDES_ANY = "excludes any"
    EXCLUDES_ALL = "excludes all"
    BEGIN_WITH = "begin with"
    NOT_BEGIN_WITH = "not begin with"
    END_WITH = "end with"
    NOT_END_WITH = "not end with"
    LESS_THAN = "less than"
    MORE_THAN = "more than"
    IMAGE = "image"


CONDITION_NAMES = tuple(condition.value for condition in Condition)
_BY_NAME = {condition.value: condition for condition in Condition}


def condition_named(name: str | None) -> Condition | None:
    """The condition of an attribute value, None if Sysmon knows no such condition.

    Names are compared ignoring ASCII case only, spaces included (`End With` is `end with`,
    `end  with` is nothing); no attribute or an empty one means `is`.
    """
    if not name:
        return Condition.IS
    return _BY_NAME.get(fold(name))


def _search_texts(folded_rule: str) -> tuple[str, ...]:
    """What Sysmon searches the field for, one per `;` item of a `*any`/`*all` rule.

    A non-empty item is searched for as it is. For an empty item Sysmon's search runs to the
    end of the whole rule text, so it looks for the rest of the rule from that item on.
    """
    texts = []
    start = 0
    while True:
        end = folded_rule.find(LIST_SEPARATOR, start)
        stop = len(folded_rule) if end < 0 else end
        texts.append(folded_rule[start:stop] if stop > start else folded_rule[start:])
        if end < 0:
            return tuple(texts)
        start = end + 1


def _found(text: str, folded_value: str) -> bool:
    """Sysmon's substring search: an empty text is found in any non-empty value only."""
    return text in folded_value if text else folded_value != ""


@dataclass(frozen=True, slots=True)
class Pattern:
    """One filter's condition with its rule value prepared once (`prepare`), tested against
    field values.

    `test` takes the field value already folded (`fold`), so a value tested by several
    filters of one event is folded once.
    """

    condition: Condition
    text: str  # the rule's value, folded
    items: tuple[str, ...]  # what the `;` list conditions look for
    key: bytes  # order key of `text`, for less than / more than
    whole_image: bool  # `image`: the rule has a `\`, so the whole field is compared

    @classmethod
    def prepare(cls, condition: Condition, value: str) -> Pattern:
        text = fold(value)
        items: tuple[str, ...] = ()
        if condition in _LIST_CONDITIONS:
            items = _search_texts(text)
        elif condition is Condition.IS_ANY:
            items = tuple(text.split(LIST_SEPARATOR))
        return cls(condition, text, items, _order_key(text), "\\" in text)

    def test(self, folded_value: str) -> bool:
        """Whether the field value (folded) satisfies this condition, exactly as Sysmon decides."""
        condition = self.condition
        text = self.text
        if condition is Condition.IS:
            return folded_value == text
        if condition is Condition.END_WITH:
            return folded_value.endswith(text)
        if condition is Condition.CONTAINS:
            return _found(text, folded_value)
        if condition is Condition.BEGIN_WITH:
            return folded_value.startswith(text)
        if condition is Condition.CONTAINS_ANY:
            return any(_found(item, folded_value) for item in self.items)
        if condition is Condition.IS_ANY:
            return folded_value in self.items
        if condition is Condition.IS_NOT:
            return folded_value != text
        if condition is Condition.CONTAINS_ALL:
            return all(_found(item, folded_value) for item in self.items)
        if condition is Condition.EXCLUDES:
            return not _found(text, folded_value)
        if condition is Condition.EXCLUDES_ANY:
            return not any(_found(item, folded_value) for item in self.items)
        if condition is Condition.EXCLUDES_ALL:
            return not all(_found(item, folded_value) for item in self.items)
        if condition is Condition.NOT_BEGIN_WITH:
            return not folded_value.startswith(text)
        if condition is Condition.NOT_END_WITH:
            return not folded_value.endswith(text)
        if condition is Condition.IMAGE:
            if not self.whole_image:
                folded_value = folded_value[folded_value.rfind("\\") + 1 :]
            return folded_value == text
        if condition is Condition.LESS_THAN:
            return _order_key(folded_value) < self.key
        return _order_key(folded_value) > self.key  # MORE_THAN


_LIST_CONDITIONS = frozenset(
    (Condition.CONTAINS_ANY, Condition.CONTAINS_ALL, Condition.EXCLUDES_ANY, Condition.EXCLUDES_ALL)
)
