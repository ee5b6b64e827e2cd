"""Precedence, defaults and RuleName: one test per case of Sysmon for Linux 1.5.2's engine.

Each expected result follows from the rules measured on the real Sysmon (docs/config.md):
exclude sets first, then include sets, each from the last in the file; the first set that
matches decides; the defaults when none matches; filters on one field OR-ed in a set-level
AND; the RuleName of the last filter tried that matched, leaking from sets tried earlier.
"""

from __future__ import annotations

import re

import pytest
from config_setup import config, fields

from audit2sysmon.errors import ConfigError
from audit2sysmon.sysmon.config import NO_CONFIG, load_config

WGET = fields(1, Image="/usr/bin/wget", User="root", CommandLine="wget -q http://x")
CURL = fields(1, Image="/usr/bin/curl", User="alice", CommandLine="curl -s http://x")
LS = fields(1, Image="/usr/bin/ls", User="root", CommandLine="ls -la")


def group(event: str, body: str, *, onmatch: str, name: str | None = None, relation: str | None = "or") -> str:
    attributes = "".join(f' {k}="{v}"' for k, v in (("name", name), ("groupRelation", relation)) if v is not None)
    return f'<RuleGroup{attributes}><{event} onmatch="{onmatch}">{body}</{event}></RuleGroup>'


# Defaults when no set matches.


def test_include_only_logs_what_matches():
    cfg = config(group("ProcessCreate", '<Image name="W" condition="end with">/wget</Image>', onmatch="include"))
    assert cfg.decide(1, WGET) == "W"
    assert cfg.decide(1, LS) is None


def test_exclude_only_drops_what_matches_and_logs_the_rest_unnamed():
    cfg = config(group("ProcessCreate", '<Image name="W" condition="end with">/wget</Image>', onmatch="exclude"))
    assert cfg.decide(1, WGET) is None
    assert cfg.decide(1, LS) == "-"


def test_include_and_exclude_exclude_wins_and_unmatched_is_dropped():
    cfg = config(
        group("ProcessCreate", '<Image name="I" condition="contains">/usr/bin/</Image>', onmatch="include")
        + group("ProcessCreate", '<User name="E">root</User>', onmatch="exclude")
    )
    assert cfg.decide(1, WGET) is None  # both match: the exclude set is tried first
    assert cfg.decide(1, CURL) == "I"  # only the include set matches
    assert cfg.decide(1, fields(1, Image="/opt/x", User="bob")) is None  # two sets, none matches


def test_no_sets_gives_the_manifest_default():
    cfg = config(group("FileDelete", '<TargetFilename condition="contains">x</TargetFilename>', onmatch="include"))
    assert cfg.decide(1, LS) == "-"  # ProcessCreate: logged
    assert cfg.decide(5, fields(5, Image="/usr/bin/ls")) == "-"  # ProcessTerminate: logged
    for event_id in (3, 9, 10, 11, 100):  # the others: not logged
        assert cfg.decide(event_id, fields(event_id)) is None, event_id


def test_two_exclude_only_sets_drop_what_neither_matches():
    cfg = config(
        group("ProcessTerminate", '<Image condition="end with">/tty</Image>', onmatch="exclude")
        + group("ProcessTerminate", "<User>nobody</User>", onmatch="exclude")
    )
    assert cfg.decide(5, fields(5, Image="/usr/bin/echo", User="root")) is None
    assert cfg.decide(5, fields(5, Image="/usr/bin/tty", User="root")) is None


def test_an_empty_include_set_logs_nothing():
    cfg = config('<ProcessCreate onmatch="include"/>')
    assert cfg.decide(1, WGET) is None


def test_an_empty_exclude_set_logs_everything_only_when_alone():
    alone = config('<ProcessCreate onmatch="exclude"/>')
    assert alone.decide(1, WGET) == "-"
    with_include = config(
        '<ProcessCreate onmatch="exclude"/>'
        + group("ProcessCreate", '<Image name="C" condition="end with">/curl</Image>', onmatch="include")
    )
    assert with_include.decide(1, CURL) == "C"
    assert with_include.decide(1, WGET) is None  # two sets, none matches


def test_never_filtered_events_and_unknown_ids():
    cfg = config('<ProcessCreate onmatch="include"/>')
    for event_id in (4, 16, 255):
        assert cfg.decide(event_id, {}) == "-"
    with pytest.raises(ValueError, match="EventID 2"):
        cfg.decide(2, {})


def test_no_config_logs_everything_unnamed():
    for event_id in (1, 3, 5, 9, 10, 11, 23, 100):
        assert NO_CONFIG.decide(event_id, fields(event_id)) == "-"


def test_microsoft_collect_all_logs_everything_unnamed():
    from config_setup import CONFIGS

    cfg = load_config(CONFIGS / "collect-all.xml")
    for event_id in (1, 3, 5, 9, 10, 11, 23):
        assert cfg.decide(event_id, fields(event_id)) == "-"
    assert cfg.decide(100, fields(100)) is None  # collect-all predates eBPFEvent: Sysmon's default


# Order of the sets.


def test_of_two_matching_include_sets_the_last_in_the_file_decides():
    cfg = config(
        group("ProcessCreate", '<Image name="first" condition="end with">/wget</Image>', onmatch="include")
        + group("ProcessCreate", '<User name="last">root</User>', onmatch="include")
    )
    assert cfg.decide(1, WGET) == "last"
    assert cfg.decide(1, fields(1, Image="/usr/bin/wget", User="bob")) == "first"


def test_exclude_sets_are_tried_before_include_sets_wherever_they_stand():
    # The exclude set half-matches (its AND fails) and names the event on the way; the include
    # set after it in the file is tried after it, matches through an unnamed filter, and
    # logs the event with the leaked name.
    cfg = config(
        group("ProcessCreate", '<Image condition="end with">/wget</Image>', onmatch="include")
        + group(
            "ProcessCreate",
            '<Image name="leaked" condition="end with">/wget</Image><User>nobody</User>',
            onmatch="exclude",
            relation="and",
        )
    )
    assert cfg.decide(1, WGET) == "leaked"


# RuleName: own name, else Rule's, else RuleGroup's; name="" stops the fall-back.


def test_rule_name_falls_back_from_filter_to_rule_to_group():
    cfg = config(
        group(
            "ProcessCreate",
            '<Rule name="rule"><Image name="own" condition="end with">/wget</Image>'
            '<Image condition="end with">/curl</Image></Rule>'
            '<Rule><Image condition="end with">/ls</Image></Rule>'
            '<Image condition="end with">/cat</Image>',
            onmatch="include",
            name="group",
        )
    )
    assert cfg.decide(1, WGET) == "own"
    assert cfg.decide(1, CURL) == "rule"
    assert cfg.decide(1, LS) == "group"  # a Rule without a name passes the group's on
    assert cfg.decide(1, fields(1, Image="/bin/cat")) == "group"


def test_an_empty_name_stops_the_fall_back():
    cfg = config(
        group(
            "ProcessCreate",
            '<Rule name="rule"><Image name="" condition="end with">/wget</Image></Rule>'
            '<Rule name=""><Image condition="end with">/curl</Image></Rule>'
            '<Image name="" condition="end with">/ls</Image>',
            onmatch="include",
            name="group",
        )
    )
    assert cfg.decide(1, WGET) == "-"
    assert cfg.decide(1, CURL) == "-"
    assert cfg.decide(1, LS) == "-"


def test_without_any_name_the_rule_name_is_a_dash():
    cfg = config('<ProcessCreate onmatch="include"><Image condition="end with">/wget</Image></ProcessCreate>')
    assert cfg.decide(1, WGET) == "-"


def test_within_a_set_the_first_matching_rule_in_file_order_names_the_event():
    cfg = config(
        group(
            "ProcessCreate",
            '<Rule name="one"><User>root</User></Rule><Rule name="two"><Image condition="end with">/wget</Image></Rule>',
            onmatch="include",
        )
    )
    assert cfg.decide(1, WGET) == "one"


def test_a_half_matching_rule_names_an_event_logged_by_an_unnamed_filter():
    cfg = config(
        group(
            "ProcessCreate",
            '<Rule name="half" groupRelation="and"><User>root</User><Image condition="end with">/curl</Image></Rule>'
            '<Image name="" condition="end with">/wget</Image>',
            onmatch="include",
        )
    )
    assert cfg.decide(1, WGET) == "half"  # User matched (name set), Image failed, then /wget
    assert cfg.decide(1, fields(1, Image="/usr/bin/wget", User="bob")) == "-"


def test_a_later_named_filter_overwrites_a_leaked_name():
    cfg = config(
        group(
            "ProcessCreate",
            '<Rule name="half" groupRelation="and"><User>root</User><Image condition="end with">/curl</Image></Rule>'
            '<Image name="wget" condition="end with">/wget</Image>',
            onmatch="include",
        )
    )
    assert cfg.decide(1, WGET) == "wget"


def test_no_name_leaks_onto_an_event_no_set_matches():
    cfg = config(
        group("ProcessCreate", '<Image name="half" condition="end with">/wget</Image><User>bob</User>',
              onmatch="exclude", relation="and")
    )  # fmt: skip
    assert cfg.decide(1, WGET) == "-"  # logged by the only (exclude) set's default: no name


# Combining filters.


def test_group_level_and_ors_filters_on_the_same_field():
    cfg = config(
        group(
            "ProcessCreate",
            '<Image condition="end with">/wget</Image><Image condition="end with">/curl</Image><User>root</User>',
            onmatch="include",
            relation="and",
        )
    )
    assert cfg.decide(1, WGET) == "-"
    assert cfg.decide(1, fields(1, Image="/usr/bin/curl", User="root")) == "-"
    assert cfg.decide(1, CURL) is None  # User fails
    assert cfg.decide(1, LS) is None  # neither Image filter matches


def test_once_a_field_matched_later_filters_on_it_are_skipped():
    cfg = config(
        group(
            "ProcessCreate",
            '<Image name="first" condition="contains">bin</Image><Image name="second" condition="end with">/wget</Image>',
            onmatch="include",
            relation="and",
        )
    )
    assert cfg.decide(1, WGET) == "first"  # the second Image filter is not tried
    assert cfg.decide(1, fields(1, Image="/opt/wget")) == "second"  # the first failed, forgiven


def test_the_last_filter_tried_that_matched_names_the_event():
    cfg = config(
        '<ProcessCreate onmatch="include"><Image name="image" condition="end with">/wget</Image>'
        '<User name="user">root</User></ProcessCreate>'
    )
    assert cfg.decide(1, WGET) == "user"


def test_a_failure_is_forgiven_only_while_a_later_filter_on_the_same_field_follows():
    cfg = config(
        '<ProcessCreate onmatch="include"><Image condition="end with">/curl</Image><User>root</User>'
        '<Image condition="end with">/wget</Image></ProcessCreate>'
    )
    assert cfg.decide(1, WGET) == "-"
    no_later = config(
        '<ProcessCreate onmatch="include"><User>root</User><Image condition="end with">/curl</Image>'
        '<Rule><Image condition="end with">/wget</Image></Rule></ProcessCreate>'
    )
    assert no_later.decide(1, WGET) is None  # a filter inside a Rule does not forgive


def test_inside_an_and_rule_every_filter_must_match_even_on_one_field():
    cfg = config(
        group(
            "ProcessCreate",
            '<Rule groupRelation="and"><Image name="a" condition="begin with">/usr</Image>'
            '<Image name="b" condition="end with">/wget</Image></Rule>',
            onmatch="include",
        )
    )
    assert cfg.decide(1, WGET) == "b"
    assert cfg.decide(1, fields(1, Image="/opt/wget")) is None
    assert cfg.decide(1, LS) is None


def test_a_rule_without_relation_is_or_and_a_failing_rule_fails_an_and_set():
    cfg = config(
        '<ProcessCreate onmatch="include"><Rule name="r"><Image condition="end with">/x</Image>'
        '<Image condition="end with">/wget</Image></Rule><User>root</User></ProcessCreate>'
    )
    assert cfg.decide(1, WGET) == "r"  # the Rule matched (named r); User matched, naming nothing
    assert cfg.decide(1, LS) is None  # the Rule fails: the AND set fails


def test_a_rule_without_filters_takes_no_part():
    cfg = config('<ProcessCreate onmatch="include"><Rule name="empty"/><User>root</User></ProcessCreate>')
    assert cfg.decide(1, WGET) == "-"
    only_empty_rules = config('<ProcessCreate onmatch="include"><Rule/><Rule groupRelation="and"/></ProcessCreate>')
    assert only_empty_rules.decide(1, WGET) is None


def test_a_rule_group_without_relation_is_and_as_is_a_set_without_group():
    cfg = config(group("ProcessCreate", '<Image condition="end with">/wget</Image><User>alice</User>',
                       onmatch="include", relation=None))  # fmt: skip
    assert cfg.decide(1, WGET) is None
    assert cfg.decide(1, fields(1, Image="/usr/bin/wget", User="alice")) == "-"


def test_schema_4_1_and_older_combine_with_or_by_default():
    body = (
        '<ProcessCreate onmatch="include"><Image condition="end with">/wget</Image><User>alice</User></ProcessCreate>'
    )
    assert config(body, schema="4.1").decide(1, WGET) == "-"
    assert config(body, schema="4.10").decide(1, WGET) == "-"
    assert config(body, schema="4.11").decide(1, WGET) is None
    assert config(body, schema="4.9").decide(1, WGET) is None  # 4.9 is 4.90


def test_the_older_default_attribute_means_the_opposite_of_onmatch():
    cfg = config('<ProcessCreate default="include"><Image condition="end with">/wget</Image></ProcessCreate>')
    assert cfg.decide(1, WGET) is None  # like onmatch="exclude"
    assert cfg.decide(1, LS) == "-"


# Names longer than 255 bytes refuse the configuration (Sysmon does not cut them).


def test_names_up_to_255_bytes_are_kept_whole():
    name = "n" * 255
    cfg = config(
        f'<ProcessCreate onmatch="include"><Image name="{name}" condition="end with">/wget</Image></ProcessCreate>'
    )
    assert cfg.decide(1, WGET) == name


@pytest.mark.parametrize(
    "body",
    [
        '<ProcessCreate onmatch="include"><Image name="{}">x</Image></ProcessCreate>',
        '<ProcessCreate onmatch="include"><Rule name="{}"><Image>x</Image></Rule></ProcessCreate>',
        '<RuleGroup name="{}" groupRelation="or"><ProcessCreate onmatch="include"><Image>x</Image></ProcessCreate></RuleGroup>',
    ],
)
@pytest.mark.parametrize("long_name", ["n" * 256, "é" * 128])  # 256 bytes of UTF-8 each
def test_a_longer_name_refuses_the_configuration(body, long_name):
    with pytest.raises(ConfigError, match="longer than 255 bytes") as error:
        config(body.format(long_name))
    assert error.value.line == 1


def test_a_long_group_name_no_filter_inherits_is_accepted():
    cfg = config(f'<RuleGroup name="{"n" * 300}" groupRelation="or"><ProcessCreate onmatch="include"/></RuleGroup>')
    assert cfg.decide(1, WGET) is None


# FieldSizes: Sysmon cuts after filtering, to N bytes with the last 3 made "...".

SIZES = "<FieldSizes>CommandLine:10,Image:2,RuleName:5,BpfProgramName:3</FieldSizes>"


def test_field_sizes_cut_values_to_bytes_with_an_ellipsis():
    cfg = config("", options=SIZES)
    assert cfg.field_sizes == {"CommandLine": 10, "Image": 2, "RuleName": 5, "BpfProgramName": 3}
    assert cfg.cut(1, "CommandLine", "wget -q http://x") == "wget -q..."
    assert cfg.cut(1, "CommandLine", "0123456789") == "0123456789"  # fits: unchanged
    assert cfg.cut(1, "Image", "/usr/bin/wget") == "-"  # below 3 bytes
    assert cfg.cut(1, "Image", "/b") == "/b"
    assert cfg.cut(1, "User", "a" * 100) == "a" * 100  # not named
    assert cfg.cut(23, "Image", "/usr/bin/rm") == "-"  # every event with the field
    assert cfg.cut(1, "RuleName", "TechniqueID=T1105") == "Te..."
    assert cfg.cut(100, "BpfProgramName", "long_name") == "long_name"  # EventID 100 is not cut


def test_field_sizes_never_cut_inside_a_character():
    cfg = config("", options="<FieldSizes>CommandLine:8</FieldSizes>")
    # "grüße x": g r ü(2) ß(2) e ... ; 5 bytes of room hold "grü" (4 bytes), not half of ß.
    assert cfg.cut(1, "CommandLine", "grüße x") == "grü..."
    assert cfg.cut(1, "CommandLine", "ab\U0001f642cdefgh") == "ab..."
    # Undecodable input bytes (lone surrogates) count one byte each.
    assert cfg.cut(1, "CommandLine", "\udcff" * 9) == "\udcff" * 5 + "..."
    assert cfg.cut(1, "CommandLine", "\udcff" * 8) == "\udcff" * 8


def test_field_sizes_are_filtered_before_they_are_cut():
    cfg = config(
        '<ProcessCreate onmatch="include"><CommandLine condition="end with">http://x</CommandLine></ProcessCreate>',
        options="<FieldSizes>CommandLine:10</FieldSizes>",
    )
    assert cfg.decide(1, WGET) == "-"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CommandLine: 100", "character ' '"),
        ("\n  CommandLine:100\n", "character '\\n'"),
        ("Commandline:100", "no field of any Sysmon event"),
        ("CommandLine:0", "size 0"),
        ("CommandLine:", "size 0"),
        ("CommandLine:abc", "size 0"),
    ],
)
def test_field_sizes_sysmon_refuses(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        config("", options=f"\n<FieldSizes>{text}</FieldSizes>")
    assert error.value.line == 2


def test_field_sizes_items_without_colon_are_ignored_and_sizes_read_like_atoi():
    cfg = config("", options="<FieldSizes>Image,CommandLine:12abc,,User:4</FieldSizes>")
    assert dict(cfg.field_sizes) == {"CommandLine": 12, "User": 4}


# HashAlgorithms.


@pytest.mark.parametrize(
    ("text", "algorithms"),
    [
        ("SHA256,MD5", ("MD5", "SHA256")),
        ("md5,sha256", ("MD5", "SHA256")),
        ("sha-1,IMP-HASH", ("SHA1", "IMPHASH")),
        ("*", ("SHA1", "MD5", "SHA256", "IMPHASH")),
        ("ALL", ("SHA1", "MD5", "SHA256", "IMPHASH")),
        ("md5,", ("MD5",)),
    ],
)
def test_hash_algorithms_in_sysmon_order(text, algorithms):
    assert config("", options=f"<HashAlgorithms>{text}</HashAlgorithms>").hash_algorithms == algorithms


def test_hash_algorithms_default_to_sha256():
    assert config("").hash_algorithms == ("SHA256",)


@pytest.mark.parametrize("text", ["md5, sha256", "md5,,sha256", ",md5", "crc32", " md5"])
def test_hash_algorithms_sysmon_refuses(text):
    with pytest.raises(ConfigError, match="unknown hash algorithm"):
        config("", options=f"<HashAlgorithms>{text}</HashAlgorithms>")


def test_the_last_value_of_an_option_counts():
    cfg = config("", options="<HashAlgorithms>crc32</HashAlgorithms><HashAlgorithms>md5</HashAlgorithms>")
    assert cfg.hash_algorithms == ("MD5",)
