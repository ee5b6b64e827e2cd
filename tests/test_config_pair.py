"""The configuration engine against real Sysmon for Linux 1.5.2 applying the same configuration.

`fixtures/live/pair-config-dev`: Sysmon ran with `config.xml` beside auditd. Converting the
audit log and applying `decide` to every ProcessCreate and ProcessTerminate must reproduce
which events Sysmon wrote and their RuleNames (events matched by EventID and ProcessId). The
capture's audit rules had no file events, so for FileCreate and FileDelete the engine is
checked on Sysmon's own events and on the runs its README says Sysmon did not log.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from config_setup import FIXTURES, fields

from audit2sysmon import convert
from audit2sysmon.sysmon.config import load_config

PAIR = FIXTURES / "live" / "pair-config-dev"
EVENT = re.compile(r"<EventID>(\d+)</EventID>")
DATA = re.compile(r'<Data Name="([A-Za-z]+)">(.*?)</Data>')


@pytest.fixture(scope="module")
def cfg():
    return load_config(PAIR / "config.xml")


@pytest.fixture(scope="module")
def sysmon_events() -> list[tuple[int, dict[str, str]]]:
    found = []
    for line in (PAIR / "sysmon.log").read_text(encoding="utf-8").splitlines():
        event_id = EVENT.search(line)
        assert event_id, line
        found.append((int(event_id.group(1)), {k: html.unescape(v) for k, v in DATA.findall(line)}))
    return found


def test_process_create_and_terminate_decisions_are_sysmons(cfg, sysmon_events):
    machine = next(data for event_id, data in sysmon_events if event_id == 1)["ProcessGuid"][1:9]
    with open(PAIR / "audit.log", "rb") as lines:
        ours = [
            e for e in convert(lines, hostname="vm", machine_id=machine, passwd=PAIR.parent / "passwd", local_users=False)
            if e.event_id in (1, 5)
        ]  # fmt: skip
    written = {
        (event_id, data["ProcessId"]): data["RuleName"] for event_id, data in sysmon_events if event_id in (1, 5)
    }
    decided = {}
    for event in ours:
        rule_name = cfg.decide(event.event_id, dict(event.fields))
        if rule_name is not None:
            decided[(event.event_id, event.get("ProcessId"))] = rule_name
    assert decided == written
    # What that covers: 11 execs and 11 exits in the audit log, tty's create excluded, every
    # exit dropped by the two exclude-only ProcessTerminate sets.
    assert len(ours) == 22 and len(decided) == 10
    assert all(event_id == 1 for event_id, _ in decided)


def test_file_events_sysmon_wrote_are_logged_with_its_rule_name(cfg, sysmon_events):
    file_events = [(event_id, data) for event_id, data in sysmon_events if event_id in (11, 23)]
    assert [(event_id, data["RuleName"]) for event_id, data in file_events] == [
        (11, "FC-touch"),
        (23, "-"),
        (23, "-"),
        (23, "-"),
    ]
    for event_id, data in file_events:
        assert cfg.decide(event_id, data) == data["RuleName"], data["TargetFilename"]


def test_file_events_sysmon_did_not_write_are_dropped(cfg):
    truth = json.loads((PAIR / "truth.json").read_text(encoding="utf-8"))
    runs = {run["pid"]: run for run in truth["runs"]}

    def create(pid: int) -> dict[str, str]:
        run = runs[pid]
        return fields(11, ProcessId=str(pid), Image=run["path"], TargetFilename=run["argv"][-1])

    # FileCreate: filters directly under <EventFiltering> combine with AND; b.other has the
    # Image but not the extension, curl's c.fcx the extension but not the Image.
    assert create(7025)["TargetFilename"].endswith("/b.other")
    assert cfg.decide(11, create(7025)) is None
    assert cfg.decide(11, fields(11, Image="/usr/bin/curl", TargetFilename="/tmp/a2s-wl/pc/c.fcx")) is None
    assert cfg.decide(11, create(7027)) is None  # skip-fd-1: Image only
    # FileDelete of skip-fd-1: excluded by FD-skip-1.
    rm = runs[7029]
    assert cfg.decide(23, fields(23, Image="/usr/bin/rm", TargetFilename=rm["argv"][-1])) is None
