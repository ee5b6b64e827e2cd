"""Capture what the real kernel and auditd log while the live workload runs.

A private auditd (its own config, log file and empty plugin directory in a temporary directory)
owns the audit socket for the length of one capture; execve/execveat rules for both ABIs and
the rules of the other Sysmon events (exit, file create/delete, block device reads, sockets,
datagrams, SIGKILL) are added, a loop device is attached for the block read, the workload runs, a marker exec tells when auditd has written everything, and then the
rules, the enabled flag, the backlog limit and auditd itself are put back as they were, whatever
happened in between (``PrivateAuditd`` is a context manager; the pytest fixture uses it).

The rules capture every exec on the machine (the kernel cannot select a process tree), so the
raw log can hold other processes' execs (tests of other suites running at the same time, the
harness's own ``auditctl`` calls). ``keep_tree`` cuts the log down to the workload's tree and
auditd's own DAEMON records, which keeps the tested log small and deterministic; the unfiltered
log is kept next to it for debugging.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

WORKLOAD = Path(__file__).with_name("workload.py")
RULE_KEY = "a2s-live"
RULES = [
    ["-a", "always,exit", "-F", f"arch={arch}", "-S", "execve,execveat", "-k", RULE_KEY]
    for arch in ("b64", "b32")
]
# The records of the other Sysmon events, as examples/audit2sysmon.rules asks for them (64-bit
# programs only: the workload's acts are the driver's own, a 64-bit Python).
_B64 = ["-a", "always,exit", "-F", "arch=b64"]
RULES += [
    [*_B64, "-S", "exit_group", "-k", RULE_KEY],
    [*_B64, "-S", "creat", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "open", "-F", "a1&0x40", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "openat", "-F", "a2&0x40", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "openat2", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "open,openat,openat2", "-F", "filetype=block", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "unlink,unlinkat", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "socket", "-F", "a0=2", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "socket", "-F", "a0=10", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "bind", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "connect", "-k", RULE_KEY],
    [*_B64, "-S", "accept,accept4", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "ptrace", "-F", "a0=0x10", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "ptrace", "-F", "a0=0x4206", "-F", "success=1", "-k", RULE_KEY],
    # The optional rules of the example file: UDP datagrams with an inet address, and SIGKILL.
    *([*_B64, "-S", calls, "-F", f"saddr_fam={family}", "-F", "success=1", "-k", RULE_KEY]
      for calls in ("sendto,sendmsg,sendmmsg", "recvfrom,recvmsg,recvmmsg") for family in (2, 10)),
    [*_B64, "-S", "kill,tkill", "-F", "a1=9", "-F", "success=1", "-k", RULE_KEY],
    [*_B64, "-S", "tgkill", "-F", "a2=9", "-F", "success=1", "-k", RULE_KEY],
]
LOOP_IMAGE_BYTES = 1 << 20
# (LC_ALL, TZ) pairs of the ``ausearch -i`` forms, as in the corpus' interpreted-*.txt files.
INTERPRETATIONS = [("C", "UTC"), ("de_DE.UTF-8", "Europe/Berlin"), ("en_US.UTF-8", "America/Chicago")]
BACKLOG_LIMIT = 8192  # the kernel default (64) loses records when a 2,000-argument exec lands
MARKER_TIMEOUT = 20.0

_EVENT_ID = re.compile(rb"msg=audit\((\d+\.\d+:\d+)\)")
_TYPE = re.compile(rb"(?:^|\s)type=(\w+)")
_PID = re.compile(rb"\bpid=(\d+)")
_PPID = re.compile(rb"\bppid=(\d+)")


class LiveUnavailable(Exception):
    """The machine cannot run live tests; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class AuditStatus:
    """The kernel audit settings the harness changes and must restore."""

    enabled: int
    pid: int
    backlog_limit: int
    lost: int


def audit_status() -> AuditStatus:
    """Parse ``auditctl -s``; raise LiveUnavailable when audit cannot be queried."""
    try:
        proc = subprocess.run(["auditctl", "-s"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LiveUnavailable(f"`auditctl -s` cannot run: {exc}") from exc
    if proc.returncode != 0:
        raise LiveUnavailable(f"`auditctl -s` failed: {proc.stderr.strip() or proc.returncode}")
    values = dict(line.split(None, 1) for line in proc.stdout.splitlines() if " " in line)
    return AuditStatus(
        enabled=int(values["enabled"]),
        pid=int(values["pid"]),
        backlog_limit=int(values["backlog_limit"]),
        lost=int(values["lost"]),
    )


def check_machine() -> None:
    """Raise LiveUnavailable unless this process may start its own auditd and change rules."""
    if os.geteuid() != 0:
        raise LiveUnavailable("live tests need root (they start auditd and change audit rules)")
    missing = [tool for tool in ("auditd", "auditctl", "ausearch") if shutil.which(tool) is None]
    if missing:
        raise LiveUnavailable(f"{', '.join(missing)} not installed (apt-get install auditd)")
    status = audit_status()
    if status.pid != 0:
        raise LiveUnavailable(f"another auditd (pid {status.pid}) owns the audit socket")
    if status.enabled == 2:
        raise LiveUnavailable("audit rules are locked (enabled 2) until reboot")


def _auditctl(*args: str) -> None:
    subprocess.run(["auditctl", *args], check=True, capture_output=True, timeout=10)


AUDITD_CONF = """\
local_events = yes
write_logs = yes
log_file = {log}
log_group = root
log_format = {log_format}
flush = INCREMENTAL_ASYNC
freq = 1
max_log_file = 0
max_log_file_action = IGNORE
num_logs = 0
priority_boost = 0
name_format = {name_format}
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
overflow_action = IGNORE
q_depth = 8000
max_restarts = 0
plugin_dir = {plugins}
end_of_event_timeout = 2
"""


def auditd_conf(text: str, settings: dict[str, str]) -> str:
    """`text` (auditd.conf lines) with the values of `settings` in place of their lines."""
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {settings[key]}" if key in settings else line)
    return "\n".join(lines) + "\n"


class PrivateAuditd:
    """auditd with a private config in ``directory``, owning the audit socket while entered.

    ``name_format = HOSTNAME``: every line starts with ``node=<hostname>`` as on the corpus
    machines, so the converter's Computer and machine part come from the node name.
    """

    def __init__(
        self,
        directory: Path,
        log_format: str,
        *,
        rules: list[list[str]] | None = None,
        settings: dict[str, str] | None = None,
        plugins: dict[str, str] | None = None,
    ) -> None:
        """`rules` (default `RULES`) are added with the harness's key; `settings` replace
        lines of `AUDITD_CONF` (e.g. log rotation for the follow tests); `plugins` are the
        files of the plugin directory (name → text), which is empty without them."""
        self.directory = directory
        self.log = directory / "audit.log"
        self.plugin_dir = directory / "plugins.d"
        self.log_format = log_format
        self.rules = RULES if rules is None else rules
        self.settings = settings or {}
        self.plugins = plugins or {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._saved: AuditStatus | None = None
        self._owner = False  # only an auditd that owned the socket may touch rules and settings

    def __enter__(self) -> PrivateAuditd:
        self._saved = audit_status()
        if self._saved.pid != 0:
            raise LiveUnavailable(f"another auditd (pid {self._saved.pid}) owns the audit socket")
        self.plugin_dir.mkdir(mode=0o750)
        for name, text in self.plugins.items():
            (self.plugin_dir / name).write_text(text)
            (self.plugin_dir / name).chmod(0o640)
        conf = self.directory / "auditd.conf"
        conf.write_text(auditd_conf(AUDITD_CONF.format(log=self.log, log_format=self.log_format,
                                                       name_format="HOSTNAME", plugins=self.plugin_dir),
                                    self.settings))
        conf.chmod(0o640)
        try:
            self._proc = subprocess.Popen(
                ["auditd", "-n", "-s", "enable", "-c", str(self.directory)],
                stdout=open(self.directory / "auditd.out", "wb"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._wait_until_owner()
            _auditctl("-b", str(BACKLOG_LIMIT))
            _auditctl("-D", "-k", RULE_KEY)  # left over from a run that was killed
            for rule in self.rules:
                _auditctl(*rule)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_owner(self) -> None:
        """Wait for our auditd to own the socket; another one that won a race means "skip"."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            owner = audit_status().pid
            if self._proc.poll() is not None:
                if owner != 0:
                    raise LiveUnavailable(f"another auditd (pid {owner}) took the audit socket")
                output = (self.directory / "auditd.out").read_text(errors="replace")
                raise RuntimeError(f"auditd exited with {self._proc.returncode}: {output}")
            if owner == self._proc.pid and b"DAEMON_START" in _read(self.log):
                self._owner = True
                return
            time.sleep(0.02)
        raise RuntimeError("auditd did not take the audit socket within 10 s")

    def __exit__(self, *exc: object) -> None:
        """Undo everything, each step on its own so one failure does not skip the others."""
        saved = self._saved
        steps: list = [self._stop]
        if self._owner and saved is not None:
            steps = [
                lambda: _auditctl("-D", "-k", RULE_KEY),  # only our rules: the machine may have its own
                self._stop,
                lambda: _auditctl("-b", str(saved.backlog_limit)),
                lambda: _auditctl("-e", str(saved.enabled)),
            ]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as error:
                errors.append(error)
        if errors and exc[0] is None:
            raise RuntimeError(f"cleaning up auditd failed: {errors}")

    def _stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        # Until the kernel has let go of the daemon's pid (auditd resets it on a clean exit, the
        # kernel only when sending to it fails) the next capture's auditd aborts with op=set-pid.
        deadline = time.monotonic() + 10
        while audit_status().pid == self._proc.pid and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def reload(self) -> None:
        """SIGHUP: auditd reads its configuration again and passes the signal to its plugins."""
        self._proc.send_signal(signal.SIGHUP)

    def remove_rules(self) -> None:
        """Delete the harness's rules and wait until auditd logged it: nothing the rules would
        have audited comes after that in the log."""
        before = _read(self.log).count(b"op=remove_rule")
        _auditctl("-D", "-k", RULE_KEY)
        deadline = time.monotonic() + MARKER_TIMEOUT
        while _read(self.log).count(b"op=remove_rule") < before + len(self.rules):
            if time.monotonic() > deadline:
                raise RuntimeError(f"auditd did not log the removal of its rules within {MARKER_TIMEOUT} s")
            time.sleep(0.02)

    def rotate(self) -> None:
        """Make auditd rotate its log now (SIGUSR1) and wait until a new file has the name."""
        before = _inode(self.log)
        self._proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + MARKER_TIMEOUT
        while _inode(self.log) in (None, before):
            if time.monotonic() > deadline:
                raise RuntimeError(f"auditd did not rotate its log within {MARKER_TIMEOUT} s")
            time.sleep(0.002)

    def wait_for_marker(self) -> str:
        """Exec a marker and wait until auditd wrote it: every earlier record is on disk then.
        Returns the marker's command line."""
        marker = f"a2s-live-end-{uuid.uuid4().hex}"
        subprocess.run(["/bin/true", marker], check=True)
        deadline = time.monotonic() + MARKER_TIMEOUT
        while marker.encode() not in _read(self.log):
            if time.monotonic() > deadline:
                raise RuntimeError(f"auditd did not write the marker exec within {MARKER_TIMEOUT} s")
            time.sleep(0.02)
        return f"/bin/true {marker}"


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _events(lines: Iterable[bytes]) -> dict[bytes, list[bytes]]:
    grouped: dict[bytes, list[bytes]] = {}
    for line in lines:
        match = _EVENT_ID.search(line)
        grouped.setdefault(match.group(1) if match else b"", []).append(line)
    return grouped


def tree_pids(lines: list[bytes], root: int) -> set[int]:
    """The pids descending from ``root`` by the SYSCALL records' ppid links (to a fixpoint)."""
    links = set()
    for line in lines:
        if (t := _TYPE.search(line)) and t.group(1) == b"SYSCALL":
            pid, ppid = _PID.search(line), _PPID.search(line)
            if pid and ppid:
                links.add((int(pid.group(1)), int(ppid.group(1))))
    tree = {root}
    while new := {pid for pid, ppid in links if ppid in tree and pid not in tree}:
        tree |= new
    return tree


def keep_tree(lines: list[bytes], root: int) -> list[bytes]:
    """The lines of events that a process of ``root``'s tree caused, and auditd's DAEMON records."""
    tree = tree_pids(lines, root)
    keep = set()
    for event_id, records in _events(lines).items():
        for line in records:
            kind = _TYPE.search(line)
            pid = _PID.search(line)
            if (kind and kind.group(1).startswith(b"DAEMON_")) or (pid and int(pid.group(1)) in tree):
                keep.add(event_id)
    return [line for line in lines if (m := _EVENT_ID.search(line)) and m.group(1) in keep]


def available_locales() -> set[str]:
    """Names from ``locale -a``, normalised like glibc does (``de_DE.utf8`` → ``de_DE.UTF-8``)."""
    proc = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    names = set()
    for name in proc.stdout.split():
        base, _, codeset = name.partition(".")
        names.add(name)
        if codeset.lower().replace("-", "") == "utf8":
            names.add(f"{base}.UTF-8")
    return names


def interpret(log: Path, lc_all: str, tz: str, out: Path) -> None:
    """Write ``ausearch -i`` of ``log`` as printed under that locale and zone."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": lc_all, "TZ": tz}
    proc = subprocess.run(["ausearch", "-if", str(log), "-i"], env=env, capture_output=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"ausearch -i under {lc_all}/{tz} failed: {proc.stderr.decode(errors='replace')}")
    out.write_bytes(proc.stdout)


def interpretation_name(lc_all: str, tz: str) -> str:
    return f"interpreted-{lc_all.split('.')[0]}-{tz.replace('/', '_')}.txt"


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture on disk: ``audit.log`` (the workload's tree), ``audit-all.log``, truth, texts.

    ``interpretations`` maps (LC_ALL, TZ) to the ``ausearch -i`` text, or to None with the reason
    in ``missing`` when that locale is not installed.
    """

    directory: Path
    log_format: str
    truth: dict
    interpretations: dict[tuple[str, str], Path | None]
    missing: dict[tuple[str, str], str]
    lost_records: int
    loop_missing: str | None = None

    @property
    def log(self) -> Path:
        return self.directory / "audit.log"

    def lines(self, path: Path | None = None) -> list[bytes]:
        return (path or self.log).read_bytes().splitlines(keepends=True)


@contextmanager
def loop_device(directory: Path) -> Iterator[tuple[str, str | None]]:
    """A loop block device over a 1 MiB file: (``/dev/loopN``, None), or (``-``, why not).

    Only the device attached here is detached again.
    """
    image = directory / "loop.img"
    image.write_bytes(bytes(LOOP_IMAGE_BYTES))
    if shutil.which("losetup") is None:
        yield "-", "losetup not installed"
        return
    proc = subprocess.run(["losetup", "--find", "--show", str(image)],
                          capture_output=True, text=True, timeout=20, check=False)
    device = proc.stdout.strip()
    if proc.returncode != 0 or not device.startswith("/dev/"):
        yield "-", f"losetup cannot attach a loop device here: {proc.stderr.strip() or proc.returncode}"
        return
    try:
        yield device, None
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=20, check=False)


@contextmanager
def workload_directory() -> Iterator[Path]:
    """A world-readable working directory so a workload child running as nobody can use it."""
    path = Path(tempfile.mkdtemp(prefix="a2s-live-wl-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_workload(workdir: Path, truth_path: Path, device: str) -> None:
    """Run `workload.py` in `workdir` (its execs and acts, `device` read as the block device);
    its truth goes to `truth_path`."""
    subprocess.run([sys.executable, str(WORKLOAD), str(workdir), str(truth_path), device],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL, timeout=60)


def capture(directory: Path, log_format: str) -> Capture:
    """Run the workload under a private auditd writing ``log_format``; keep everything in ``directory``."""
    auditd_dir = directory / "auditd"
    auditd_dir.mkdir(mode=0o750)
    truth_path = directory / "truth.json"
    with loop_device(directory) as (device, loop_missing), PrivateAuditd(auditd_dir, log_format) as auditd, \
            workload_directory() as workdir:
        lost_before = audit_status().lost
        run_workload(workdir, truth_path, device)
        auditd.wait_for_marker()
        lost = audit_status().lost - lost_before
    all_lines = auditd.log.read_bytes().splitlines(keepends=True)
    (directory / "audit-all.log").write_bytes(b"".join(all_lines))
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    (directory / "audit.log").write_bytes(b"".join(keep_tree(all_lines, truth["driver_pid"])))
    locales = available_locales()
    interpretations: dict[tuple[str, str], Path | None] = {}
    missing = {}
    for lc_all, tz in INTERPRETATIONS:
        if lc_all != "C" and lc_all not in locales:
            interpretations[(lc_all, tz)] = None
            missing[(lc_all, tz)] = f"locale {lc_all} not generated (locale-gen)"
            continue
        out = directory / interpretation_name(lc_all, tz)
        interpret(directory / "audit.log", lc_all, tz, out)
        interpretations[(lc_all, tz)] = out
    return Capture(directory, log_format, truth, interpretations, missing, lost, loop_missing)
