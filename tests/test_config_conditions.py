"""The 16 conditions, each against a direct reading of its definition.

Every property goes through the real path: a one-filter configuration is written as XML, read
by `load_config`, and `decide` on a ProcessCreate tells whether the filter matched (an include
set logs exactly the events its filter matches). The reference functions below are written
from the definitions in docs/config.md (Sysmon for Linux 1.5.2: ASCII-only case folding,
`;` lists, string order in UTF-16 code units, `excludes any`/`excludes all` as Sysmon
measures them), not from the engine's code.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from xml.sax.saxutils import escape

from config_setup import config, fields
from hypothesis import given, settings
from hypothesis import strategies as st

from audit2sysmon.sysmon import SCHEMAS
from audit2sysmon.sysmon.config import CONDITION_NAMES

# Letters whose case Sysmon does not fold but Unicode does (É/é, the Kelvin sign K and k,
# dotted İ), characters above the surrogate range (U+FF21 Ａ) and beyond the BMP (🙂) for
# the UTF-16 order, separators and blanks. No CR: XML turns it into LF on reading.
ALPHABET = "aAbBzZ09/;.-_ \tÉéKkİiẞß\uff21\U0001f642"
chars = st.sampled_from(ALPHABET)
texts = st.text(chars, max_size=8)
items = st.text(st.sampled_from(ALPHABET.replace(";", "")), min_size=1, max_size=5)


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def swap_ascii_case(text: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if c.isascii() and i < len(flips) and flips[i] else c for i, c in enumerate(text))


def code_units(text: str) -> list[int]:
    data = text.encode("utf-16-le", "surrogatepass")
    return list(struct.unpack(f"<{len(data) // 2}H", data))


def found(needle: str, haystack: str) -> bool:
    """Sysmon's substring search: the empty text is in every non-empty field."""
    if needle == "":
        return haystack != ""
    return ascii_lower(needle) in ascii_lower(haystack)


REFERENCE = {
    "is": lambda v, r: ascii_lower(v) == ascii_lower(r),
    "is not": lambda v, r: ascii_lower(v) != ascii_lower(r),
    "contains": lambda v, r: found(r, v),
    "excludes": lambda v, r: not found(r, v),
    "contains any": lambda v, r: any(found(t, v) for t in r.split(";")),
    "contains all": lambda v, r: all(found(t, v) for t in r.split(";")),
    "excludes any": lambda v, r: not any(found(t, v) for t in r.split(";")),  # none present
    "excludes all": lambda v, r: not all(found(t, v) for t in r.split(";")),  # not all present
    "is any": lambda v, r: any(ascii_lower(v) == ascii_lower(t) for t in r.split(";")),
    "begin with": lambda v, r: ascii_lower(v)[: len(r)] == ascii_lower(r),
    "not begin with": lambda v, r: ascii_lower(v)[: len(r)] != ascii_lower(r),
    "end with": lambda v, r: len(r) <= len(v) and ascii_lower(v)[len(v) - len(r) :] == ascii_lower(r),
    "not end with": lambda v, r: not (len(r) <= len(v) and ascii_lower(v)[len(v) - len(r) :] == ascii_lower(r)),
    "less than": lambda v, r: code_units(ascii_upper(v)) < code_units(ascii_upper(r)),
    "more than": lambda v, r: code_units(ascii_upper(v)) > code_units(ascii_upper(r)),
    "image": lambda v, r: ascii_lower(v if "\\" in r else v.split("\\")[-1]) == ascii_lower(r),
}
LISTS = ("contains any", "contains all", "excludes any", "excludes all", "is any")


def matches(condition: str, value: str, rule: str, field: str = "CommandLine") -> bool:
    """Whether Sysmon's filter `<field condition=…>rule</field>` matches `value`."""
    cfg = config(
        f'<ProcessCreate onmatch="include"><{field} condition="{condition}">{escape(rule)}</{field}></ProcessCreate>'
    )
    return cfg.decide(1, fields(1, **{field: value})) is not None


@st.composite
def value_and_rule(draw: st.DrawFn, condition: str) -> tuple[str, str]:
    """A rule value and a field value that often contains, starts or ends with (parts of) it,
    in another ASCII case."""
    rule = ";".join(draw(st.lists(items, min_size=1, max_size=4))) if condition in LISTS else draw(texts)
    part = draw(st.sampled_from(rule.split(";")))
    flips = draw(st.lists(st.booleans(), max_size=len(part)))
    value = draw(
        st.one_of(
            texts,
            st.builds(lambda a, b: a + swap_ascii_case(part, flips) + b, texts, texts),
            st.just(swap_ascii_case(part, flips)),
            st.just(swap_ascii_case(rule, flips)),
        )
    )
    if condition == "image":
        value = draw(st.sampled_from([value, "C:\\dir\\" + value, value + "\\" + rule]))
    return value, rule


def _property(condition: str):
    @settings(max_examples=150, deadline=None)
    @given(value_and_rule(condition))
    def check(case: tuple[str, str]) -> None:
        value, rule = case
        assert matches(condition, value, rule) == REFERENCE[condition](value, rule), (value, rule)

    return check


test_is = _property("is")
test_is_not = _property("is not")
test_contains = _property("contains")
test_excludes = _property("excludes")
test_contains_any = _property("contains any")
test_contains_all = _property("contains all")
test_excludes_any = _property("excludes any")
test_excludes_all = _property("excludes all")
test_is_any = _property("is any")
test_begin_with = _property("begin with")
test_not_begin_with = _property("not begin with")
test_end_with = _property("end with")
test_not_end_with = _property("not end with")
test_less_than = _property("less than")
test_more_than = _property("more than")
test_image = _property("image")


def test_every_condition_has_a_property():
    assert set(REFERENCE) == set(CONDITION_NAMES)
    assert all(f"test_{name.replace(' ', '_')}" in globals() for name in CONDITION_NAMES)


# What real Sysmon for Linux 1.5.2 did with these, measured beside auditd.


def test_excludes_any_is_true_when_no_item_is_present():
    assert matches("excludes any", "/usr/bin/wget -q", "curl;ftp")
    assert not matches("excludes any", "/usr/bin/wget -q", "curl;wget")


def test_excludes_all_is_true_when_not_every_item_is_present():
    assert matches("excludes all", "/usr/bin/wget -q", "wget;curl")
    assert not matches("excludes all", "/usr/bin/wget -q", "wget;-q")


def test_less_and_more_than_compare_text_even_for_a_process_id():
    assert matches("more than", "6779", "10000", field="ProcessId")  # 6 > 1
    assert not matches("more than", "6462", "9", field="ProcessId")  # 6 < 9
    assert matches("less than", "10", "9", field="ProcessId")


def test_image_compares_the_whole_linux_path():
    assert not matches("image", "/usr/bin/uname", "uname", field="Image")
    assert matches("image", "/usr/bin/uname", "/USR/bin/uname", field="Image")


def test_no_condition_means_is_and_names_ignore_ascii_case():
    cfg = config(
        '<ProcessCreate onmatch="include"><User>root</User><Image condition="End With">/ls</Image></ProcessCreate>'
    )
    assert cfg.decide(1, fields(1, User="ROOT", Image="/bin/LS")) == "-"
    assert cfg.decide(1, fields(1, User="root2", Image="/bin/ls")) is None


def test_whitespace_in_values_is_kept():
    assert matches("is", " x ", " x ")
    assert not matches("is", "x", " x ")
    assert matches("contains", "a\tb", "\t")


# Case folding is ASCII only, as in Sysmon (its towlower/towupper know A-Z only).


def test_only_ascii_letters_fold():
    assert matches("is", "CAFÉ", "café") is False
    assert matches("is", "CAFé", "café")
    assert not matches("is", "\u212a", "k")  # the Kelvin sign lowers to k in Unicode, not in Sysmon
    assert not matches("contains", "İ", "i")


def test_order_is_by_utf16_code_units():
    # U+1F642 is a surrogate pair (D83D DE42): below U+FF21 in UTF-16, above it as a code point.
    assert matches("less than", "\U0001f642", "\uff21")
    assert not matches("more than", "\U0001f642", "\uff21")
    # Upper-casing before comparing: 'a' becomes 'A' (0x41), below '_' (0x5f).
    assert matches("less than", "a", "_")


# Corners of Sysmon's substring search, from its source (rules.c FindSubString / NextItem).


def test_empty_search_text_is_found_in_every_non_empty_field():
    assert matches("contains", "x", "")
    assert not matches("contains", "", "")
    assert matches("excludes", "", "")


def test_empty_list_item_searches_for_the_rest_of_the_rule():
    # "a;;b" looks for "a", ";b" and "b".
    assert not matches("contains all", "a b", "a;;b")
    assert matches("contains all", "a;b", "a;;b")
    # A trailing ";" adds an empty item, found in every non-empty field.
    assert not matches("excludes any", "zzz", "a;")
    assert matches("contains any", "zzz", "a;")


def test_undecodable_bytes_compare_as_themselves():
    # Bytes that were not UTF-8 reach the engine as lone surrogates (surrogateescape).
    value = "/tmp/\udcff\udcfe"
    assert matches("begin with", value, "/TMP/", field="Image")
    assert matches("contains", value, "tmp", field="Image")
    assert matches("less than", value, "\uff21", field="Image")


def test_the_examples_of_docs_config_md():
    """Every row of the conditions table in docs/config.md, run."""
    table = (Path(__file__).parent.parent / "docs" / "config.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if re.match(r"\| `[a-z ]+` \| ", line)]
    seen = set()
    for row in rows:
        condition, _, rule, good, bad = (cell.strip() for cell in row.strip("|").split(" | "))
        rule, good, bad = (re.search(r"`([^`]*)`", cell).group(1) for cell in (rule, good, bad))
        field = re.match(r"<(\w+)", rule).group(1)
        event_id = 1 if field in SCHEMAS[1].fields else 11
        cfg = config(f'<{SCHEMAS[event_id].name} onmatch="include">{rule}</{SCHEMAS[event_id].name}>')
        assert cfg.decide(event_id, fields(event_id, **{field: good})) == "-", row
        assert cfg.decide(event_id, fields(event_id, **{field: bad})) is None, row
        seen.add(condition.strip("`"))
    assert seen == set(CONDITION_NAMES)
