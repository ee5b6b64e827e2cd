"""A Sysmon configuration applied by the converter and the command, as Sysmon applies it.

The engine's own tests (test_config_*.py) decide single events; these convert real logs with
a configuration and check what is written: the events real Sysmon wrote under the same file
(pair-config-dev), EventRecordIDs that dropped events do not take, FieldSizes, the counts
of `--stats`, `--check-config`, and a configuration that cannot be used stopping the command
before it converts anything.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from cli_setup import DEV, FIXED, LIVE
from config_setup import CONFIGS

from audit2sysmon import Converter, NotConverted, Options, convert
from audit2sysmon.cli import main
from audit2sysmon.sysmon.config import load_config

PAIR = LIVE / "pair-config-dev"
PAIR_DEV = LIVE / "pair-dev"
EVENT_ID = re.compile(r"<EventID>(\d+)</EventID>")
DATA = re.compile(r'<Data Name="([A-Za-z]+)">(.*?)</Data>')


def sysmon_events(path: Path) -> list[tuple[int, dict[str, str]]]:
    found = []
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        match = EVENT_ID.search(line)
        if match:
            found.append((int(match.group(1)), {k: html.unescape(v) for k, v in DATA.findall(line)}))
    return found


def pair_options(**more: object) -> dict[str, object]:
    machine = next(data for event_id, data in sysmon_events(PAIR / "sysmon.log") if event_id == 1)["ProcessGuid"][1:9]
    return {"hostname": "vm", "machine_id": machine, "passwd": LIVE / "passwd", "local_users": False, **more}


def test_the_converter_writes_the_events_sysmon_wrote_under_the_same_configuration():
    with open(PAIR / "audit.log", "rb") as log:
        ours = list(convert(log, **pair_options(config=PAIR / "config.xml")))
    theirs = {
        (event_id, data["ProcessId"]): data["RuleName"]
        for event_id, data in sysmon_events(PAIR / "sysmon.log")
        if event_id in (1, 5)
    }
    assert {(e.event_id, e.get("ProcessId")): e.get("RuleName") for e in ours} == theirs
    # Dropped events take no EventRecordID, as in Sysmon: the written ones are consecutive.
    assert [e.record_id for e in ours] == list(range(1, len(ours) + 1))


def test_stats_count_what_the_configuration_dropped_and_logged():
    with Converter(**pair_options(config=PAIR / "config.xml")) as conv, open(PAIR / "audit.log", "rb") as log:
        written = [e for batch in conv.feed_input(log, "audit.log") for e in batch] + conv.flush()
    stats = conv.stats
    # 11 execs and 11 exits: tty's create is excluded, every exit dropped (two exclude-only sets).
    assert (stats.filtered, stats.rule_names) == ({1: 1, 5: 11}, {"-": 10})
    assert stats.exec_syscalls == stats.process_create + sum(stats.exec_rejected.values()) == 11
    assert stats.exec_rejected == {NotConverted.FILTERED: 1}
    assert stats.written == len(written) == 10


def test_a_configuration_given_as_a_path_or_loaded_decides_alike():
    lines = (PAIR / "audit.log").read_bytes().splitlines()

    def written(options: Options) -> list[str]:
        with Converter(options) as conv:
            return [e.to_xml() for e in [*conv.apply([]), *(x for line in lines for x in conv.feed(line)), *conv.flush()]]

    path = PAIR / "config.xml"
    by_keyword = written(Options.from_kwargs(**pair_options(config=path)))  # loaded when the options are built
    plain = Options.from_kwargs(**pair_options())
    assert by_keyword == written(replace(plain, config=str(path)))  # loaded by the converter
    assert by_keyword == written(replace(plain, config=load_config(path)))
    assert len(by_keyword) == 10


def test_field_sizes_cut_the_written_fields_after_deciding(tmp_path):
    config = tmp_path / "sizes.xml"
    config.write_text(
        '<Sysmon schemaversion="4.90"><FieldSizes>CommandLine:25,Image:8</FieldSizes>'
        '<EventFiltering><RuleGroup name="" groupRelation="or"><ProcessCreate onmatch="include">'
        '<CommandLine condition="contains">printf</CommandLine></ProcessCreate></RuleGroup>'
        "</EventFiltering></Sysmon>",
        encoding="utf-8",
    )
    lines = DEV.read_bytes().splitlines()
    full = [e for e in convert(lines, **pair_options()) if e.event_id == 1 and "printf" in e.get("CommandLine")]
    cut = [e for e in convert(lines, **pair_options(config=config)) if e.event_id == 1]
    assert len(full) > 5 and len(cut) == len(full)

    def sized(value: str, size: int) -> str:
        """Sysmon's rule: longer than `size` bytes, cut to `size` with the last three replaced
        by `...`; never in the middle of a UTF-8 character (the cut falls before it)."""
        data = value.encode("utf-8")
        return value if len(data) <= size else data[: size - 3].decode("utf-8", "ignore") + "..."

    for before, after in zip(full, cut):
        assert after.get("CommandLine") == sized(before.get("CommandLine"), 25)
        assert after.get("Image") == sized(before.get("Image"), 8)
    # The 23rd byte is the first of "ü": the cut falls before the letter.
    assert "/usr/bin/printf %s Gr..." in [e.get("CommandLine") for e in cut]


def test_parent_argv0_writes_the_parent_command_line_as_sysmon_does():
    """pair-dev: Sysmon keeps only argv[0] of a parent it saw start; with the option, every
    ProcessCreate of the pair has Sysmon's ParentCommandLine exactly (without it, ours is the
    whole command line, which starts with it)."""
    theirs = {(d["ProcessId"], d["Image"]): d for event_id, d in sysmon_events(PAIR_DEV / "sysmon.log") if event_id == 1}
    machine = next(iter(theirs.values()))["ProcessGuid"][1:9]
    options = {"machine_id": machine, "passwd": LIVE / "passwd", "local_users": False}
    lines = (PAIR_DEV / "audit.log").read_bytes().splitlines()
    for argv0 in (False, True):
        ours = [e for e in convert(lines, parent_argv0=argv0, **options) if e.event_id == 1]
        pairs = [(theirs[(e.get("ProcessId"), e.get("Image"))]["ParentCommandLine"], e.get("ParentCommandLine"))
                 for e in ours if (e.get("ProcessId"), e.get("Image")) in theirs]
        assert len(pairs) > 20
        if argv0:
            assert [sysmon for sysmon, _ in pairs] == [mine for _, mine in pairs]
        else:
            assert all(mine.startswith(sysmon) and mine != sysmon for sysmon, mine in pairs)


def test_the_command_applies_c_and_prints_its_counts(capsys, tmp_path):
    out = tmp_path / "out.jsonl"
    status = main([*FIXED, "-f", "json", "-c", str(PAIR / "config.xml"), "--stats", "-o", str(out), str(PAIR / "audit.log")])
    err = capsys.readouterr().err
    assert 0 == status
    events = [json.loads(line)["Event"] for line in out.read_bytes().splitlines()]
    assert [e["System"]["EventID"] for e in events] == [1] * 10
    assert "events the configuration dropped, by EventID:" in err and "EventID 5" in err
    assert "events the configuration logged, by RuleName:" in err


def test_options_that_do_not_apply_to_converted_logs_are_each_warned_once(capsys, tmp_path):
    config = tmp_path / "archive.xml"
    config.write_text('<Sysmon schemaversion="4.81"><ArchiveDirectory>x</ArchiveDirectory>'
                      "<CheckRevocation/><EventFiltering/></Sysmon>", encoding="utf-8")
    assert 0 == main([*FIXED, "-c", str(config), "-o", str(tmp_path / "out"), str(DEV)])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 2 and all(str(config) in line for line in warnings)
    assert any("ArchiveDirectory" in w for w in warnings) and any("CheckRevocation" in w for w in warnings)


def test_check_config_prints_the_rules_and_exits_0(capsys):
    assert 0 == main(["--check-config", str(CONFIGS / "main.xml")])
    text = capsys.readouterr().out
    assert "ProcessCreate (EventID 1)" in text
    assert "Image end with 'crontab' -> RuleName 'TechniqueID=T1053.003,TechniqueName=Scheduled Task/Job: Cron'" in text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<Sysmon schemaversion="4.81"><EventFiltering><ProcessCreate onmatch="include">'
         '<Imag condition="is">x</Imag></ProcessCreate></EventFiltering></Sysmon>', "has no field <Imag>"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><Sysmon schemaversion="4.81"/>', "DOCTYPE"),
        ('<Sysmon schemaversion="4.81"><EventFiltering><ProcessCreate onmatch="include">'
         '<Image condition="sounds like">x</Image></ProcessCreate></EventFiltering></Sysmon>', "unknown condition"),
    ],
)
def test_a_configuration_that_cannot_be_used_is_exit_2_and_nothing_converted(capsys, tmp_path, text, reason):
    config = tmp_path / "bad.xml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "out.log"
    assert 2 == main(["--check-config", str(config)])
    assert reason in capsys.readouterr().err
    assert 2 == main([*FIXED, "-c", str(config), "-o", str(out), str(DEV)])
    err = capsys.readouterr().err
    assert reason in err and f"{config}:" in err
    assert not out.exists() or out.read_bytes() == b""


def test_worker_processes_apply_the_configuration_alike():
    """The configuration is applied where the facts are (this process); workers only read."""
    lines = (LIVE / "busy-raw" / "audit.log").read_bytes().splitlines(keepends=True)
    options = {**pair_options(), "config": CONFIGS / "main.xml"}
    one = [e.to_xml() for e in convert(lines, **options)]
    assert one == [e.to_xml() for e in convert(lines, jobs=2, **options)]
    assert one and len(one) < sum(1 for _ in convert(lines, **pair_options()))
