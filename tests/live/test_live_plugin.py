"""audit2sysmon as a real auditd's plugin, and its `--syslog` through a real rsyslog.

A private auditd (tests/live/auditd_capture.py) starts our plugin from its plugin directory,
with the configuration file of examples/audit2sysmon-plugin.conf; it runs a small wrapper
script in the test's directory, as an installation runs the installed command. What auditd 3.0.9
does with a plugin (auditd-plugins(5), auditd.conf(5), and what these tests observe):

- it starts it when it starts (and on a reload, if new), with argv[0] = `path` and at most two
  arguments (`args`), an empty environment, standard input a Unix stream socket, standard
  output and error /dev/null (auditd detaches from its terminal even with `-n`);
- it sends every record as one line (`format = string`), the records of the log plus the EOE
  record that ends each multi-record event, in the log's order and form (RAW or ENRICHED,
  `node=` first with `name_format`);
- SIGHUP to auditd reloads it and passes SIGHUP to the plugin; stopping auditd sends the plugin
  SIGTERM; a plugin that dies is restarted at most `max_restarts` times (0 here);
- its queue to the plugins holds `q_depth` events (8000 here); when it is full, `overflow_action`
  says what happens to the event that does not fit (lost to the plugins, still in the log).

So the plugin's output must be the batch conversion of the log auditd wrote at the same time,
with the options the plugin runs with. Sysmon's own events frame it: configuration (16) and
Started (4) first, Stopped (4) last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

from audit2sysmon import Converter, Options
from audit2sysmon.live.syslog import SyslogSender
from audit2sysmon.sysmon import SysmonEvent, read_line
from audit2sysmon.sysmon.render.xml import text_value

from .auditd_capture import RULE_KEY, PrivateAuditd, loop_device, run_workload, workload_directory

pytestmark = pytest.mark.live

ROOT = Path(__file__).parents[2]
EXAMPLE_CONF = ROOT / "examples" / "audit2sysmon-plugin.conf"
DEADLINE = 60.0
EXEC_RULES = [["-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", RULE_KEY]]
SERVICE_EVENTS = (4, 16)


# -- the plugin as auditd runs it ------------------------------------------------------------------


def plugin_files(directory: Path, arguments: list[str]) -> dict[str, str]:
    """The plugin directory's file, made from the example, running a wrapper with `arguments`.

    The wrapper runs this interpreter's audit2sysmon (auditd passes no environment, so it must
    not depend on one); its standard error, which auditd leaves on /dev/null, goes to
    `plugin.err` so that the tests can read what the plugin reported. The arguments go in a
    file, one per line, as the example installs them (auditd passes two at most).
    """
    wrapper = directory / "audit2sysmon-plugin"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec {shlex.quote(sys.executable)} -m audit2sysmon "$@" 2>>{shlex.quote(str(directory / "plugin.err"))}\n'
    )
    wrapper.chmod(0o755)
    args = directory / "plugin.args"
    args.write_text("".join(f"{argument}\n" for argument in arguments))
    conf = EXAMPLE_CONF.read_text()
    for key, value in (("path", str(wrapper)), ("args", f"@{args}")):
        conf, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", conf)
        assert count == 1, f"the example has no single `{key} =` line"
    return {"audit2sysmon.conf": conf}


def wait_for(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {DEADLINE} s waiting for {what}")
        time.sleep(0.02)


def written(out: Path) -> list[str]:
    """The whole lines the plugin wrote so far."""
    if not out.exists():
        return []
    text = out.read_text("utf-8")
    return text[: text.rfind("\n") + 1].splitlines()


def events(out: Path) -> list[dict]:
    return [json.loads(line)["Event"] for line in written(out)]


def ids(out: Path) -> list[int]:
    return [event["System"]["EventID"] for event in events(out)]


def creates(out: Path) -> dict[str, dict]:
    """The ProcessCreates written so far, by command line (the last of each)."""
    return {e["EventData"]["CommandLine"]: e["EventData"] for e in events(out) if e["System"]["EventID"] == 1}


def plugin_pid(out: Path) -> int:
    """The plugin's pid, as its first event (the configuration) gives it: Execution ProcessID."""
    first = events(out)[0]
    assert first["System"]["EventID"] == 16
    pid = first["System"]["Execution"]["#attributes"]["ProcessID"]
    assert b"audit2sysmon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return pid


def batch(log: Path, **options: object) -> list[SysmonEvent]:
    """The conversion of the whole log as the plugin runs it (docs/cli.md, `--plugin`): a child
    is not held for its parent, lost events are found by their serial numbers. Sysmon's own
    configuration and Started events come first, so the EventRecordIDs are the plugin's."""
    conv = Converter(Options.from_kwargs(hold_events=False, serial_gaps=True, **options))
    conv.started()
    converted = [event for batch in conv.feed_input(log.read_bytes().splitlines(keepends=True)) for event in batch]
    return converted + conv.flush()


def exited_with(log: Path, pid: int) -> list[int]:
    """The status of each exit_group the kernel logged for `pid` (its a0)."""
    return [int(line.split(" a0=")[1].split()[0], 16) for line in log.read_text(errors="replace").splitlines()
            if " syscall=231 " in line and f" pid={pid} " in line]


def reported(err: Path) -> str:
    return err.read_text(errors="replace") if err.exists() else ""


# -- the plugin's output is the conversion of the log --------------------------------------------


@pytest.mark.parametrize("log_format", ["RAW", "ENRICHED"])
def test_the_plugin_writes_what_a_conversion_of_auditd_s_log_gives(
    tmp_path: Path, live_machine: None, log_format: str
) -> None:
    out = tmp_path / "out.jsonl"
    arguments = [
        "--plugin",
        # A file the test reads while the plugin runs (standard output is /dev/null).
        "-o", str(out),
        # JSON: compared exactly, and without the syslog header, whose zone would be the one
        # the plugin finds without an environment.
        "-f", "json",
        # TimeCreated is the event's time, not the moment the line is written.
        "--time-created", "event",
        # A file is hashed when its exec is converted: one the machine replaced or deleted in
        # between (other programs run here too) would hash otherwise. The streaming test
        # checks the hashes.
        "--no-hashes",
        # /proc shows what runs at the moment it is read.
        "--no-proc-parents",
        # The counts at the end: on standard error with the warnings, kept by the wrapper.
        "--stats",
    ]  # fmt: skip
    auditd_dir = tmp_path / "auditd"
    auditd_dir.mkdir(mode=0o750)
    with loop_device(tmp_path) as (device, _), workload_directory() as workdir:
        with PrivateAuditd(auditd_dir, log_format, plugins=plugin_files(tmp_path, arguments)) as auditd:
            wait_for(lambda: ids(out)[:2] == [16, 4], "the configuration and Started")
            pid = plugin_pid(out)
            run_workload(workdir, tmp_path / "truth.json", device)
            marker = auditd.wait_for_marker()
            wait_for(lambda: marker in creates(out), "the marker's ProcessCreate")
            auditd.remove_rules()  # the log and the plugin's input end with the same records
            count = len(batch(auditd.log, execution_pid=pid))
            wait_for(lambda: len(events(out)) >= count, "every event of the log")
        # auditd stopped: it sent the plugin SIGTERM.
        wait_for(lambda: events(out)[-1]["EventData"].get("State") == "Stopped", "Stopped")
        # What --stats prints when the plugin ends, after its last event.
        wait_for(lambda: "audit2sysmon: statistics" in reported(tmp_path / "plugin.err"), "the statistics")
    err = reported(tmp_path / "plugin.err")
    lines = written(out)
    plugin_ids = ids(out)
    assert [16, 4] == plugin_ids[:2] and [4] == plugin_ids[-1:] and not set(SERVICE_EVENTS) & set(plugin_ids[2:-1])
    assert events(out)[1]["EventData"]["State"] == "Started"
    expected = batch(auditd.log, execution_pid=pid)
    assert [event.to_json() for event in expected] == lines[2:-1]
    truth = json.loads((tmp_path / "truth.json").read_text())
    pids = {int(e["EventData"]["ProcessId"]) for e in events(out) if e["System"]["EventID"] == 1}
    assert {run["pid"] for run in truth["runs"] if run["success"]} <= pids
    assert "never reached the log" not in err and "Traceback" not in err, err


# -- streaming, hashes and parents from the host ------------------------------------------------------


def test_an_exec_is_written_while_the_workload_still_runs(tmp_path: Path, live_machine: None) -> None:
    """A shell runs a marker and waits for a line: its ProcessCreate must be written while the
    shell waits. With the host's defaults (hashes, parents from /proc): the marker's Hashes
    are those of /bin/true, and the shell's parent (this test, whose exec the log never saw)
    comes from /proc."""
    out = tmp_path / "out.jsonl"
    arguments = ["--plugin", "-o", str(out), "-f", "json"]
    tag = f"a2s-stream-{uuid.uuid4().hex}"
    auditd_dir = tmp_path / "auditd"
    auditd_dir.mkdir(mode=0o750)
    with PrivateAuditd(auditd_dir, "RAW", rules=EXEC_RULES, plugins=plugin_files(tmp_path, arguments)):
        wait_for(lambda: ids(out)[:2] == [16, 4], "the start")
        shell = subprocess.Popen(["/bin/sh", "-c", f"/bin/true {tag}; read line"], stdin=subprocess.PIPE)
        try:
            wait_for(lambda: f"/bin/true {tag}" in creates(out), "the marker's ProcessCreate")
            assert shell.poll() is None  # still waiting: the event did not wait for it
        finally:
            shell.communicate(b"go on\n", timeout=DEADLINE)
    marker = creates(out)[f"/bin/true {tag}"]
    with open(os.path.realpath("/bin/true"), "rb") as program:
        assert marker["Hashes"] == f"SHA256={hashlib.sha256(program.read()).hexdigest()}"
    assert (marker["ParentProcessId"], marker["ParentImage"]) == (str(shell.pid), os.path.realpath("/bin/sh"))
    started = next(e for e in creates(out).values() if e["ProcessId"] == str(shell.pid) and e["Image"] != "/usr/bin/true")
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as handle:
        own = handle.read().rstrip(b"\0").replace(b"\0", b" ").decode()
    assert (started["ParentProcessId"], started["ParentImage"], started["ParentCommandLine"]) == (
        str(os.getpid()), os.path.realpath(sys.executable), own)
    assert "Traceback" not in reported(tmp_path / "plugin.err")


# -- signals: SIGHUP reloads, SIGTERM stops --------------------------------------------------------


def sysmon_config(name: str, algorithms: str) -> str:
    """Only ProcessCreates whose command line holds `a2s-hup-`, under RuleName `name`."""
    return (f'<Sysmon schemaversion="4.90"><HashAlgorithms>{algorithms}</HashAlgorithms><EventFiltering>'
            '<RuleGroup name="" groupRelation="or"><ProcessCreate onmatch="include">'
            f'<CommandLine name="{name}" condition="contains">a2s-hup-</CommandLine>'
            "</ProcessCreate></RuleGroup></EventFiltering></Sysmon>")


def file_hashes(path: Path, *algorithms: str) -> str:
    data = path.read_bytes()
    return ",".join(f"{name.upper()}={hashlib.new(name, data).hexdigest()}" for name in algorithms)


def test_sighup_reloads_the_configuration_and_sigterm_stops_cleanly(tmp_path: Path, live_machine: None) -> None:
    """Reloaded through auditd (what `service auditd reload` does) and by a SIGHUP of its own:
    each time a configuration event with the new file's hash, and the new rules from then on.
    Then SIGTERM: Stopped is written last and the plugin exits with status 0, as the kernel's
    record of its exit_group says."""
    out, config = tmp_path / "out.jsonl", tmp_path / "sysmon.xml"
    config.write_text(sysmon_config("first", "sha256"))
    arguments = ["--plugin", "-o", str(out), "-f", "json", "-c", str(config)]
    tag = uuid.uuid4().hex
    auditd_dir = tmp_path / "auditd"
    auditd_dir.mkdir(mode=0o750)
    rules = [*EXEC_RULES, ["-a", "always,exit", "-F", "arch=b64", "-S", "exit_group", "-k", RULE_KEY]]
    with PrivateAuditd(auditd_dir, "RAW", rules=rules, plugins=plugin_files(tmp_path, arguments)) as auditd:
        wait_for(lambda: ids(out)[:2] == [16, 4], "the start")
        pid = plugin_pid(out)
        assert events(out)[0]["EventData"]["ConfigurationFileHash"] == file_hashes(config, "sha256")

        def run_and_wait(command: str) -> None:
            subprocess.run(["/bin/true", command, "a2s-hup-barrier"], check=True)
            wait_for(lambda: f"/bin/true {command} a2s-hup-barrier" in creates(out), f"{command}'s ProcessCreate")

        subprocess.run(["/bin/true", f"not-logged-{tag}"], check=True)
        run_and_wait(f"a2s-hup-first-{tag}")
        config.write_text(sysmon_config("second", "md5,sha256"))
        second = file_hashes(config, "md5", "sha256")
        auditd.reload()
        wait_for(lambda: ids(out).count(16) == 2, "the configuration reloaded through auditd")
        run_and_wait(f"a2s-hup-second-{tag}")
        config.write_text(sysmon_config("third", "sha1"))
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: ids(out).count(16) == 3, "the configuration reloaded by the plugin's own SIGHUP")
        run_and_wait(f"a2s-hup-third-{tag}")
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() and exited_with(auditd.log, pid), "the plugin's exit")
    configurations = [e["EventData"] for e in events(out) if e["System"]["EventID"] == 16]
    assert [c["ConfigurationFileHash"] for c in configurations[1:]] == [second, file_hashes(config, "sha1")]
    assert {c["Configuration"] for c in configurations} == {str(config)}
    names = {command.split()[1]: data["RuleName"] for command, data in creates(out).items() if tag in command}
    assert names == {f"a2s-hup-first-{tag}": "first", f"a2s-hup-second-{tag}": "second",
                     f"a2s-hup-third-{tag}": "third"}  # and the exec without a2s-hup- was not logged
    hashes = {command.split()[1]: data["Hashes"] for command, data in creates(out).items() if tag in command}
    true = Path(os.path.realpath("/bin/true"))
    assert hashes[f"a2s-hup-second-{tag}"] == file_hashes(true, "md5", "sha256")
    assert hashes[f"a2s-hup-third-{tag}"] == file_hashes(true, "sha1")
    assert events(out)[-1]["EventData"]["State"] == "Stopped" and ids(out).count(4) == 2
    assert exited_with(auditd.log, pid) == [0]
    assert "Traceback" not in reported(tmp_path / "plugin.err")


# -- --syslog through a real rsyslog ---------------------------------------------------------------

RSYSLOG_CONF = """\
# rsyslog for one test: its own socket, file and work directory, nothing of the machine's.
# Set before any input: a Sysmon event is longer than rsyslog's default 8 KiB message.
$MaxMessageSize 64k
global(workDirectory="{directory}")
module(load="imuxsock" SysSock.Use="off")
# No rate limit: a workload sends hundreds of messages a second.
input(type="imuxsock" Socket="{socket}" RateLimit.Interval="0")
action(type="omfile" file="{messages}" template="RSYSLOG_TraditionalFileFormat")
"""
SYSMON_SHAPE = re.compile(r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d\d:\d\d:\d\d "
                          r"(?P<host>\S+) sysmon: (?P<xml><Event>.*</Event>)")


@contextmanager
def private_rsyslog(directory: Path) -> Iterator[tuple[Path, Path]]:
    """rsyslogd in the foreground with a private configuration: (its socket, the file it
    writes in the traditional format). Stopped on leaving, whatever happened."""
    executable = shutil.which("rsyslogd")
    if executable is None:
        pytest.skip("rsyslog not installed (apt-get install rsyslog)")
    directory.mkdir()
    socket_path, messages = directory / "log.sock", directory / "messages"
    conf = directory / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(directory=directory, socket=socket_path, messages=messages))
    with open(directory / "rsyslogd.out", "wb") as output:
        proc = subprocess.Popen([executable, "-n", "-f", str(conf), "-i", str(directory / "rsyslogd.pid")],
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: socket_path.exists() or proc.poll() is not None, "rsyslogd's socket")
        if proc.poll() is not None:
            raise RuntimeError(f"rsyslogd exited with {proc.returncode}: {(directory / 'rsyslogd.out').read_text()}")
        yield socket_path, messages
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=DEADLINE)


def sysmon_lines(messages: Path) -> list[str]:
    """The lines rsyslog wrote for the tag sysmon (it writes its own start and stop too)."""
    return [line for line in written(messages) if " rsyslogd:" not in line and " rsyslogd[" not in line]


def test_syslog_through_rsyslog_gives_sysmon_s_lines(tmp_path: Path, live_machine: None) -> None:
    """The plugin sends each event to rsyslog's socket, as Sysmon does: the lines rsyslog
    writes have Sysmon's shape, hold exactly our `<Event>` XML, and read back (read_line and
    lxml) to the events of a conversion of the same log."""
    auditd_dir = tmp_path / "auditd"
    auditd_dir.mkdir(mode=0o750)
    with private_rsyslog(tmp_path / "rsyslog") as (socket_path, messages):
        # As in the conversion test: the event's time, no hashes, no /proc (see there).
        arguments = ["--plugin", "--syslog", "--syslog-socket", str(socket_path), "--time-created", "event",
                     "--no-hashes", "--no-proc-parents"]
        with loop_device(tmp_path) as (device, _), workload_directory() as workdir:
            with PrivateAuditd(auditd_dir, "RAW", plugins=plugin_files(tmp_path, arguments)) as auditd:
                wait_for(lambda: len(sysmon_lines(messages)) >= 2, "the configuration and Started")
                pid = read_line(sysmon_lines(messages)[0]).process_id
                run_workload(workdir, tmp_path / "truth.json", device)
                marker = auditd.wait_for_marker()
                wait_for(lambda: any(f">{marker}<" in line for line in sysmon_lines(messages)), "the marker")
                auditd.remove_rules()
                count = len(batch(auditd.log, execution_pid=pid))
                wait_for(lambda: len(sysmon_lines(messages)) >= 2 + count, "every event of the log")
            wait_for(lambda: "<Data Name=\"State\">Stopped</Data>" in sysmon_lines(messages)[-1], "Stopped")
        lines = sysmon_lines(messages)
        expected = batch(auditd.log, execution_pid=pid)
        # A line as Sysmon before 1.5.2 sends it, control characters raw: rsyslog escapes them.
        raw = expected[0].to_xml().replace("<Data Name=\"RuleName\">-", "<Data Name=\"RuleName\">tab\there esc\x1b")
        sender = SyslogSender(str(socket_path))
        sender.send(raw)
        sender.close()
        wait_for(lambda: len(sysmon_lines(messages)) > len(lines), "the line with control characters")
        escaped = sysmon_lines(messages)[-1]
    shapes = [SYSMON_SHAPE.fullmatch(line) for line in lines]
    assert all(shapes), [line[:120] for line, shape in zip(lines, shapes) if not shape][:3]
    assert {shape["host"] for shape in shapes} == {socket.gethostname().split(".")[0]}
    assert [shape["xml"] for shape in shapes[2:-1]] == [event.to_xml() for event in expected]
    assert [read_line(line).event_id for line in lines[:2] + lines[-1:]] == [16, 4, 4]
    for line, shape, event in zip(lines[2:-1], shapes[2:-1], expected):
        read, ours = read_line(line), json.loads(event.to_json())["Event"]
        assert (read.event_id, read.record_id, read.computer, read.process_id, read.system_time) == (
            ours["System"]["EventID"], ours["System"]["EventRecordID"], ours["System"]["Computer"],
            ours["System"]["Execution"]["#attributes"]["ProcessID"],
            ours["System"]["TimeCreated"]["#attributes"]["SystemTime"])
        assert dict(read.data) == ours["EventData"] and [name for name, _ in read.data] == list(ours["EventData"])
        root = etree.fromstring(shape["xml"].encode("utf-8"))
        assert {data.get("Name"): data.text for data in root[1]} == ours["EventData"]
    assert "tab#011here esc#033" in escaped
    assert read_line(escaped).get("RuleName") == "tab\there esc\\x1b" == text_value("tab\there esc\x1b")
    assert "Traceback" not in reported(tmp_path / "plugin.err")
