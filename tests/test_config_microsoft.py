"""Microsoft's configurations applied to the events we convert from real captures.

Every expected decision below was worked out by hand from the text of main.xml (its
ProcessCreate set is one include RuleGroup combined with OR: the first `<Rule>` in file order
that matches names the event; anything else is dropped), run by run, with the Rule that fires
or the reason none does. The tables also list every ProcessCreate the converter writes for
each capture, so a change in the converter shows up here rather than passing unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from config_setup import CONFIGS, FIXTURES, fields
from lxml import etree

from audit2sysmon import convert
from audit2sysmon.sysmon.config import CONDITION_NAMES, load_config
from audit2sysmon.sysmon.config.manifest import EVENT_TYPE_BY_NAME, OPTION_NAMES

LIVE = FIXTURES / "live"
PUBLIC = FIXTURES / "public"
SHELL = "TechniqueID=T1059.004,TechniqueName=Command and Scripting Interpreter: Unix Shell"
INGRESS = "TechniqueID=T1105,TechniqueName=Ingress Tool Transfer"
PADDING = "TechniqueID=T1027.001,TechniqueName=Obfuscated Files or Information: Binary Padding"


@pytest.fixture(scope="module")
def main():
    return load_config(CONFIGS / "main.xml")


def events(log: Path) -> list:
    with open(log, "rb") as lines:
        return list(convert(lines, hostname="vm", machine_id="3d1219c7", passwd=LIVE / "passwd", local_users=False))


def decisions(config, log: Path, event_id: int) -> dict[tuple[str, str], str | None]:
    found = {}
    for event in events(log):
        if event.event_id == event_id:
            key = (event.get("ProcessId"), event.get("Image"))
            assert key not in found, key
            found[key] = config.decide(event_id, dict(event.fields))
    return found


DEV_RAW = {
    # The driver's auditctl runs (cwd /tmp/a2s-wl, root, parent python3.11): T1203 wants
    # CurrentDirectory /var/opt/microsoft/scx/tmp; no other Rule names auditctl.
    ("19468", "/usr/sbin/auditctl"): None,
    ("19470", "/usr/sbin/auditctl"): None,
    ("19472", "/usr/sbin/auditctl"): None,
    ("19474", "/usr/sbin/auditctl"): None,
    ("19476", "/usr/sbin/auditctl"): None,
    ("19478", "/usr/sbin/auditctl"): None,
    ("19480", "/usr/sbin/auditctl"): None,
    # uname: T1505.003's Image half matches (contains /bin/uname) but its ParentImage
    # (/usr/bin/python3.11) has none of httpd, lighttpd, nginx, apache2, node, dash.
    ("19482", "/usr/bin/uname"): None,
    # printf with odd arguments: no Rule tests printf, and no command line holds /etc/passwd,
    # /etc/sudoers, utmp/btmp/wtmp.
    ("19483", "/usr/bin/printf"): None,
    ("19484", "/usr/bin/printf"): None,
    ("19485", "/usr/bin/printf"): None,
    ("19486", "/usr/bin/printf"): None,
    ("19487", "/usr/bin/printf"): None,
    # bash running a script: T1059.004, Image end with /bin/bash (no earlier Rule matches).
    ("19488", "/usr/bin/bash"): SHELL,
    ("19489", "/usr/bin/printf"): None,  # child of bash: ParentImage is no Rule's business here
    ("19490", "/usr/bin/pwd"): None,  # cwd /var/tmp: nothing
    # whoami as nobody and as cloudsdk: T1505.003 again wants a web-server or dash parent.
    ("19491", "/usr/bin/whoami"): None,
    ("19492", "/usr/bin/whoami"): None,
    ("19493", "/usr/bin/bash"): SHELL,  # bash -c: Image end with /bin/bash
    ("19494", "/usr/bin/true"): None,
    ("19493", "/usr/bin/uname"): None,  # bash exec'd uname: parent still python3.11 (T1505.003 fails)
    ("19496", "/usr/bin/dash"): SHELL,  # /bin/sh is dash: Image end with /bin/dash
    ("19497", "/usr/bin/bash"): SHELL,  # bash started by dash
    # nice and true with dash as parent: T1505.003's ParentImage would match (dash), but its
    # Image filter (whoami, ifconfig, /usr/bin/ip, /bin/uname) fails first.
    ("19497", "/usr/bin/nice"): None,
    ("19497", "/usr/bin/true"): None,
    ("19498", "/usr/sbin/auditctl"): None,
}

PAIR_CONFIG_DEV = {
    ("7019", "/usr/bin/python3.11"): None,  # the driver: no Rule tests python
    ("7021", "/usr/bin/echo"): None,
    ("7022", "/usr/bin/tty"): None,
    ("7023", "/usr/bin/echo"): None,
    # touch: T1070.006 wants Image is /bin/touch; on this merged-/usr system the image is
    # /usr/bin/touch (and no -r/-t argument is given anyway).
    ("7024", "/usr/bin/touch"): None,
    ("7025", "/usr/bin/touch"): None,
    ("7026", "/usr/bin/curl"): INGRESS,  # Image end with curl
    ("7027", "/usr/bin/touch"): None,
    ("7028", "/usr/bin/rm"): None,
    ("7029", "/usr/bin/rm"): None,
    ("7030", "/usr/bin/rm"): None,
}

OTRF = {
    # dd if=/dev/zero: T1027.001 (Image is /bin/dd, CommandLine contains dd and if=) comes
    # before T1485 in the file, which would fail anyway (no of=).
    ("otrf_T1027.001_sh_binary_padding_dd.log", "2168", "/bin/dd"): PADDING,
    ("otrf_T1018_sh_arp_cache.log", "1631", "/usr/sbin/arp"): None,  # no Rule for arp
    ("otrf_T1018_sh_arp_cache.log", "1632", "/bin/grep"): None,  # nor for grep
}


def test_main_on_dev_raw(main):
    assert decisions(main, LIVE / "dev-raw" / "audit.log", 1) == DEV_RAW


def test_main_on_pair_config_dev(main):
    assert decisions(main, LIVE / "pair-config-dev" / "audit.log", 1) == PAIR_CONFIG_DEV


def test_main_on_public_atomic_red_team_logs(main):
    found = {}
    for name in {log for log, _, _ in OTRF}:
        for (pid, image), rule_name in decisions(main, PUBLIC / name, 1).items():
            found[(name, pid, image)] = rule_name
    assert found == OTRF


def test_main_drops_the_other_events_of_dev_raw(main):
    # ProcessTerminate and FileDelete: empty include sets, which never match. The driver's
    # FileCreate of /tmp/a2s-wl/driver-marker: no TargetFilename prefix of main.xml matches and
    # python3.11 is none of T1105's downloaders.
    converted = [e for e in events(LIVE / "dev-raw" / "audit.log") if e.event_id != 1]
    assert {e.event_id for e in converted} == {5, 11, 23}
    assert all(main.decide(e.event_id, dict(e.fields)) is None for e in converted)


def test_main_logs_a_cron_file_and_a_download(main):
    # The FileCreate Rules by hand: T1053.003 is before T1105 in the file.
    cron = fields(11, Image="/usr/bin/curl", TargetFilename="/etc/cron.d/job")
    assert main.decide(11, cron) == "TechniqueID=T1053.003,TechniqueName=Scheduled Task/Job: Cron"
    assert main.decide(11, fields(11, Image="/usr/bin/curl", TargetFilename="/tmp/x")) == INGRESS
    assert main.decide(3, fields(3, Image="/usr/bin/wget")) == INGRESS
    assert main.decide(3, fields(3, Image="/usr/bin/ssh")) is None


def test_collect_all_logs_every_event_of_pair_dev_like_the_real_sysmon():
    collect_all = load_config(CONFIGS / "collect-all.xml")
    converted = events(LIVE / "pair-dev" / "audit.log")
    assert {e.event_id for e in converted} == {1, 5, 11, 23}
    assert all(collect_all.decide(e.event_id, dict(e.fields)) == "-" for e in converted)
    # The real Sysmon ran with collect-all during that capture: every event it wrote is unnamed.
    sysmon = (LIVE / "pair-dev" / "sysmon.log").read_text(encoding="utf-8", errors="surrogateescape")
    assert set(re.findall(r'<Data Name="RuleName">([^<]*)</Data>', sysmon)) == {"-"}


# describe() for main.xml, checked against the file's text.


def test_describe_main(main):
    text = (CONFIGS / "main.xml").read_text(encoding="utf-8")
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(number for number, line in enumerate(lines, 1) if fragment in line)

    described = main.describe()
    assert described.startswith(f"Sysmon configuration {CONFIGS / 'main.xml'}\n  schema version 4.81, SHA256 ")
    assert "\nProcessCreate (EventID 1): 1 rule set\n" in described
    process_create = line_of('<ProcessCreate onmatch="include">')
    assert (
        f"  set 1 (line {process_create}, RuleGroup name ''): onmatch include: log the event when it matches;"
        " filters combined with OR\n" in described
    )
    destruction = "TechniqueID=T1485,TechniqueName=Data Destruction"
    assert f"    Rule '{destruction}' (line {line_of(destruction)}, filters combined with AND)\n" in described
    zero = line_of("if=/dev/zero;if=/dev/null")
    assert (
        f"      CommandLine contains any 'if=/dev/zero;if=/dev/null' -> RuleName '{destruction}' (line {zero})\n"
        in described
    )
    assert f"      Image is '/bin/dd' -> RuleName '{destruction}' (line {zero - 2})\n" in described
    terminate = line_of('<ProcessTerminate onmatch="include" />')
    assert (
        "\nProcessTerminate (EventID 5): 1 rule set\n"
        f"  set 1 (line {terminate}, RuleGroup name ''): onmatch include: log the event when it matches;"
        " filters combined with OR\n    no filters: never matches\n"
        "  when no set matches: not logged (its only set is an include set)\n" in described
    )
    assert "\nProcessAccess (EventID 10): no rules: not logged (Sysmon's default for this event type)\n" in described
    # One line per filter of the file, each with the RuleName of its Rule.
    assert described.count(" -> RuleName 'TechniqueID=") == text.count("condition=")


# Our manifest tables against Sysmon for Linux's manifest.


def test_event_types_and_fields_are_the_manifests():
    manifest = etree.parse(str(CONFIGS / "sysmonv1.0.0.xml"))
    for event in manifest.iter("event"):
        rule_name = event.get("rulename")
        if rule_name is None:
            continue
        ours = EVENT_TYPE_BY_NAME[rule_name]
        event_id = int(event.get("value"))
        fields_of = dict(zip(ours.event_ids, ours.fields, strict=True))
        assert fields_of[event_id] == tuple(d.get("name") for d in event.iter("data")), rule_name
        assert ours.logged_by_default == (event.get("ruledefault") == "include"), rule_name
    filters = manifest.find(".//filters")
    assert filters.get("default") == "is"
    assert tuple(filters.text.split(",")) == CONDITION_NAMES


def test_option_elements_are_the_manifests():
    manifest = etree.parse(str(CONFIGS / "sysmonv1.0.0.xml"))
    expected = set()
    for option in manifest.iter("option"):
        if option.get("noconfig") == "true" or option.get("target") != "all":
            continue  # command-line only, or internal to Microsoft's builds
        if option.get("rule") == "true":
            if option.get("forceconfig") == "true":
                expected.add(option.get("name") + "Config")  # else it is an event type's rules
            continue
        expected.add(option.get("name"))
    assert set(OPTION_NAMES) == expected
