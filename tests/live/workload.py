"""The live tests' workload: run known programs and write down exactly what was run.

Run by the harness as a child process (so its own exec is in the audit log) with two arguments,
a working directory and the path of the truth file to write. It only uses ``os.fork`` and
``os.execve`` with absolute paths, so the pid, parent pid, argument vector and outcome of every
exec are known exactly, and no ``$PATH`` search adds failed execs the truth does not list. Shells
report the pids of the children they start on a pipe (``$!``), which gives their grandchildren.

The truth file extends the corpus ``truth.json`` format (``pid``, ``ppid``, ``argv``, ``cwd``,
``path``, ``user``, ``auid``, ``success``, ``note``) with what the kernel makes of the exec, so
that the tests do not have to guess it: ``image`` (real path of the program the kernel ran: the
interpreter of a ``#!`` script), ``exec_argv`` (the argument vector the kernel logs: rewritten
for a ``#!`` script), ``uid``, ``ses`` (audit session id, 4294967295 when unset) and ``syscall``.
Runs of one pid (exec without fork) are listed in the order of their execs.

After the execs the driver itself does what the other Sysmon events are made of, and lists it
under ``activity`` (one dict per act, ``kind`` first): files created and deleted in the working
directory (by absolute name, by a name relative to the cwd and through a directory fd, also of
directories the log shows only later or never), TCP connects and accepts (also of an IPv4
client by a dual-stack listener), UDP connects, sends and receives on 127.0.0.1 and ``::1``,
and reads of the loop block device the harness attached (third argument, ``-`` when it could
not; the harness keeps the reason), and one child attaching to another with ptrace. Every
process of the workload exits, which is the ProcessTerminate side: two are killed, one by
SIGKILL, one by SIGTERM (``killed_by`` in their runs).

Standalone on purpose (stdlib only, does not import the package under test).
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import select
import shlex
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field

NOBODY = 65534
UNSET = 4294967295
SH = "/bin/sh"
PRINTF = "/usr/bin/printf"
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


@dataclass(slots=True)
class Run:
    """One exec as the truth file records it."""

    pid: int
    ppid: int
    argv: list[str]
    cwd: str
    path: str
    user: str
    auid: int | None
    success: bool
    note: str
    image: str
    exec_argv: list[str]
    uid: int
    ses: int
    syscall: str = "execve"
    killed_by: str | None = None


@dataclass(slots=True)
class Spec:
    """What the driver asks a forked child to do before it execs."""

    argv: list[str]
    note: str
    path: str | None = None
    cwd: str | None = None
    uid: int | None = None
    loginuid: int | None = None
    fexec: bool = False
    capture_stdout: bool = False
    success: bool = True
    image: str | None = None
    exec_argv: list[str] | None = None
    after: list[tuple[list[str], str]] = field(default_factory=list)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _read_int(path: str) -> int:
    with open(path, encoding="ascii") as f:
        return int(f.read().strip())


def _child(spec: Spec, report_w: int, out_w: int | None, gate_r: int | None) -> None:
    """In the forked child: prepare credentials, report, wait for the gate, exec. Never returns."""
    try:
        os.chdir(spec.cwd or os.getcwd())
        if spec.loginuid is not None:
            with open("/proc/self/loginuid", "w", encoding="ascii") as f:
                f.write(str(spec.loginuid))
        ses = _read_int("/proc/self/sessionid")
        if spec.uid is not None:
            os.setgroups([])
            os.setgid(spec.uid)
            os.setuid(spec.uid)
        os.write(report_w, json.dumps({"ses": ses}).encode() + b"\n")
        if out_w is not None:
            os.dup2(out_w, 1)
        if gate_r is not None:
            os.read(gate_r, 1)
        path = spec.path or spec.argv[0]
        if spec.fexec:
            fd = os.open(path, os.O_RDONLY)
            os.execve(fd, spec.argv, ENV)
        os.execve(path, spec.argv, ENV)
    except OSError as exc:
        os.write(report_w, json.dumps({"exec_error": exc.errno}).encode() + b"\n")
    finally:
        os._exit(127)


@dataclass(slots=True)
class Started:
    """A forked child whose exec outcome is known once ``report`` hits EOF."""

    pid: int
    spec: Spec
    report_r: int
    out_r: int | None


class Driver:
    """Forks children for specs, collects their exec outcome and reported pids into runs."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.pid = os.getpid()
        self.runs: list[Run] = []

    def start(self, spec: Spec, gate_r: int | None = None) -> Started:
        report_r, report_w = os.pipe()  # close-on-exec: EOF tells the exec succeeded
        out_r, out_w = os.pipe() if spec.capture_stdout else (None, None)
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            if out_r is not None:
                os.close(out_r)
            _child(spec, report_w, out_w, gate_r)
        os.close(report_w)
        if out_w is not None:
            os.close(out_w)
        return Started(pid, spec, report_r, out_r)

    def finish(self, started: Started, kill: signal.Signals | None = None) -> list[str]:
        """Wait for the child (once it has exec'd, send it `kill`), record its runs, return the
        lines it printed (if captured)."""
        report = _drain(started.report_r).decode().splitlines()
        if kill is not None:
            time.sleep(0.05)  # let the program start up: the signal ends it, not the exec
            os.kill(started.pid, kill)
        output = [] if started.out_r is None else _drain(started.out_r).decode().splitlines()
        os.waitpid(started.pid, 0)
        messages = [json.loads(line) for line in report]
        ses = messages[0]["ses"] if messages and "ses" in messages[0] else UNSET
        spec = started.spec
        exec_error = next((m["exec_error"] for m in messages if "exec_error" in m), None)
        if (exec_error is None) != spec.success:
            raise SystemExit(f"exec of {spec.argv!r}: expected success={spec.success}, errno={exec_error}")
        self.record(started.pid, self.pid, spec, ses, killed_by=kill.name if kill is not None else None)
        for argv, note in spec.after:
            self.record(started.pid, self.pid, _derived(spec, argv, note), ses)
        return output

    def record(self, pid: int, ppid: int, spec: Spec, ses: int, killed_by: str | None = None) -> None:
        path = spec.path or spec.argv[0]
        uid = spec.uid if spec.uid is not None else os.getuid()
        self.runs.append(
            Run(
                pid=pid,
                ppid=ppid,
                argv=spec.argv,
                cwd=spec.cwd or self.workdir,
                path=path,
                user=_user(uid),
                auid=spec.loginuid,
                success=spec.success,
                note=spec.note,
                image=spec.image or os.path.realpath(path),
                exec_argv=spec.exec_argv or spec.argv,
                uid=uid,
                ses=ses,
                syscall="execveat" if spec.fexec else "execve",
                killed_by=killed_by,
            )
        )

    def run(self, spec: Spec) -> list[str]:
        return self.finish(self.start(spec))


def _drain(fd: int) -> bytes:
    """Everything until EOF, then close."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _shell_script(children: list[list[str]], label: str) -> str:
    """A sh script that starts each child in the background and prints ``<label><i> <pid>``."""
    starts = [f"{shlex.join(argv)} & echo {label}{i} $!" for i, argv in enumerate(children)]
    return "\n".join([*starts, "wait"])


def shell_with_descendants(driver: Driver, note: str, **spec_kwargs: object) -> None:
    """sh → (printf, sh → (printf, id)): children and grandchildren, pids reported by ``$!``."""
    grandchildren = [[PRINTF, "%s\\n", "grandchild one"], ["/usr/bin/id", "-u"]]
    inner = [SH, "-c", _shell_script(grandchildren, "g")]
    children = [[PRINTF, "%s\\n", "child one"], inner]
    spec = Spec([SH, "-c", _shell_script(children, "c")], note, capture_stdout=True, **spec_kwargs)
    output = driver.run(spec)
    shell = driver.runs[-1]
    pids = dict(line.split() for line in output if line[:1] in "cg" and line[1:2].isdigit())
    for i, argv in enumerate(children):
        driver.record(int(pids[f"c{i}"]), shell.pid, _derived(spec, argv, "child of a shell"), shell.ses)
    inner_pid = int(pids["c1"])
    for i, argv in enumerate(grandchildren):
        driver.record(int(pids[f"g{i}"]), inner_pid, _derived(spec, argv, "grandchild of a shell"), shell.ses)


def _derived(spec: Spec, argv: list[str], note: str) -> Spec:
    """The spec of a process a child started itself: same cwd and user, no setup of its own."""
    return Spec(argv, note, cwd=spec.cwd, uid=spec.uid, loginuid=spec.loginuid)


def concurrent(driver: Driver, count: int) -> None:
    """Fork ``count`` children held at a gate, then release them at once so records interleave."""
    gate_r, gate_w = os.pipe()
    started = []
    for n in range(count):
        argv = [PRINTF, "%s\\n", *(f"c{n}-arg{i}-" + "z" * 40 for i in range(200))]
        started.append(driver.start(Spec(argv, "concurrent execs: records interleave"), gate_r))
    for report in [s.report_r for s in started]:
        select.select([report], [], [])  # the child has reported and waits at the gate
    os.write(gate_w, b"x" * count)
    os.close(gate_w)
    os.close(gate_r)
    for s in started:
        driver.finish(s)


def script(workdir: str) -> str:
    path = os.path.join(workdir, "hello script.sh")
    with open(path, "w", encoding="ascii") as f:
        f.write('#!/bin/sh\nexec /usr/bin/printf \'%s\\n\' "$@"\n')
    os.chmod(path, 0o755)
    return path


def workload(driver: Driver) -> None:
    wd = driver.workdir
    hello = script(wd)
    specs = [
        Spec(["/usr/bin/uname", "-a"], "simple"),
        Spec([PRINTF, "%s|", "a b c", 'say "hi"', "it's", "tab\there"], "spaces, quotes and a tab"),
        Spec([PRINTF, "%s|", '<tag attr="v">&amp;</tag>', "a<b>c&d'e\"f"], "XML metacharacters"),
        Spec([PRINTF, "%s|", "Grüße", "café", "日本語", "😀"], "non-ASCII arguments"),
        Spec([PRINTF, "%s|", "esc\x1b[31mred", "line1\nline2", "cr\rhere", "del\x7fhere", "bell\x07"],
             "control characters"),
        Spec([PRINTF, "%s", "y" * 12000], "one 12000-byte argument: split into aN[i] pieces"),
        Spec([PRINTF, "%s", *(f"item{i}" for i in range(2100))], "2101 arguments: several EXECVE records"),
        Spec([PRINTF, "%s|", "", "after-empty"], "an empty argument"),
        Spec([hello, "one", "two words"], "#! script: Image is the interpreter",
             image=os.path.realpath(SH), exec_argv=[SH, hello, "one", "two words"],
             after=[([PRINTF, "%s\\n", "one", "two words"], "exec without fork from the script")]),
        Spec(["/usr/bin/pwd"], "cwd elsewhere", cwd="/"),
        Spec(["/usr/bin/id", "-un"], "another user via setuid before exec", uid=NOBODY),
        Spec([SH, "-c", "exec /usr/bin/env /usr/bin/nice -n 5 /usr/bin/printf '%s\\n' chained"],
             "exec without fork: sh exec → env → nice → printf",
             after=[(["/usr/bin/env", "/usr/bin/nice", "-n", "5", PRINTF, "%s\\n", "chained"], "env"),
                    (["/usr/bin/nice", "-n", "5", PRINTF, "%s\\n", "chained"], "nice"),
                    ([PRINTF, "%s\\n", "chained"], "program run by nice")]),
        Spec([PRINTF, "%s\\n", "via fexecve"], "execveat through fexecve", fexec=True),
        Spec(["/nonexistent/a2s-missing", "x"], "exec of a missing file fails: no ProcessCreate",
             success=False),
    ]
    for spec in specs:
        driver.run(spec)
    shell_with_descendants(driver, "shell with children and grandchildren")
    shell_with_descendants(driver, "login session: loginuid written, then setuid", loginuid=NOBODY, uid=NOBODY)
    concurrent(driver, 8)
    for kill in (signal.SIGKILL, signal.SIGTERM):
        driver.finish(driver.start(Spec(["/bin/sleep", "30"], f"killed by {kill.name}")), kill=kill)


def file_activity(workdir: str) -> list[dict]:
    """Create and delete files three ways; return the acts with their absolute names."""
    acts = []
    sub = os.path.join(workdir, "sub dir")
    os.mkdir(sub)
    absolute = os.path.join(workdir, "created absolute.txt")
    os.close(os.open(absolute, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    acts.append({"kind": "create", "path": absolute, "how": "open of an absolute name"})
    os.close(os.open("created-relative.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    relative = os.path.join(workdir, "created-relative.txt")
    acts.append({"kind": "create", "path": relative, "how": "name relative to the cwd"})
    # A file created by absolute name first shows the directory's path with its inode.
    first = os.path.join(sub, "first")
    os.close(os.open(first, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    acts.append({"kind": "create", "path": first, "how": "absolute name in a subdirectory"})
    dirfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(os.open("by-dirfd", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd))
        acts.append({"kind": "create", "path": os.path.join(sub, "by-dirfd"), "how": "openat with a directory fd"})
        os.unlink("by-dirfd", dir_fd=dirfd)
        acts.append({"kind": "delete", "path": os.path.join(sub, "by-dirfd"), "how": "unlinkat with a directory fd"})
    finally:
        os.close(dirfd)
    # Through a directory fd of a directory the log shows only later (by the unlink below, whose
    # name is relative to the cwd) or never (everything through the fd; rmdir is not audited).
    later, hidden = os.path.join(workdir, "later dir"), os.path.join(workdir, "hidden dir")
    for directory in (later, hidden):
        os.mkdir(directory)
    for directory, shown in ((later, True), (hidden, False)):
        dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.close(os.open("made", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd))
            named = os.path.join(directory, "made") if shown else "<unknown directory>/made"
            where = "shown later" if shown else "never shown"
            acts.append({"kind": "create", "path": named, "how": f"openat with a directory fd, directory {where}"})
            if shown:
                os.unlink(os.path.join(os.path.basename(directory), "made"))
            else:
                os.unlink("made", dir_fd=dirfd)
            acts.append({"kind": "delete", "path": named, "how": f"unlink, directory {where}"})
        finally:
            os.close(dirfd)
        os.rmdir(directory)
    os.unlink(absolute)
    acts.append({"kind": "delete", "path": absolute, "how": "unlink of an absolute name"})
    os.unlink("created-relative.txt")
    acts.append({"kind": "delete", "path": relative, "how": "unlink of a relative name: <cwd>/<name>"})
    os.unlink(first)
    acts.append({"kind": "delete", "path": first, "how": "unlink in a subdirectory"})
    os.rmdir(sub)  # a directory: no FileDelete
    return acts


def _free_port(family: socket.AddressFamily, host: str) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def network_activity() -> list[dict]:
    """TCP connect + accept (blocking and non-blocking), a UDP connect, and UDP datagrams sent and
    received (sendto/recvfrom on 127.0.0.1, sendmsg/recvmsg on ::1), per loopback address; an
    IPv4 client of a dual-stack listener, both ways (an inet and an inet6 client socket)."""
    acts = []
    hosts = [(socket.AF_INET, "127.0.0.1", False)]
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        hosts.append((socket.AF_INET6, "::1", True))
    except OSError as exc:
        acts.append({"kind": "ipv6_skipped", "reason": f"no ::1 here: {exc}"})
    for family, host, ipv6 in hosts:
        port = _free_port(family, host)
        with socket.socket(family, socket.SOCK_STREAM) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((host, port))
            server.listen(4)
            for blocking in (True, False):
                client = socket.socket(family, socket.SOCK_STREAM)
                client.setblocking(blocking)
                result = client.connect_ex((host, port))
                if result not in (0, errno.EINPROGRESS):
                    raise SystemExit(f"connect to {host}:{port} failed: {os.strerror(result)}")
                client.setblocking(True)
                conn, peer = server.accept()
                conn.close()
                client.close()
                common = {"ipv6": ipv6, "ip": host, "protocol": "tcp"}
                acts.append({"kind": "connect", **common, "port": port, "errno": result})
                acts.append({"kind": "accept", **common, "port": port, "peer_port": peer[1]})
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((host, 9))
            acts.append({"kind": "connect", "ipv6": ipv6, "ip": host, "protocol": "udp", "port": 9, "errno": 0})
        acts += _datagrams(family, host, ipv6)
    if len(hosts) > 1:
        acts += _dual_stack()
    return acts


def _datagrams(family: socket.AddressFamily, host: str, ipv6: bool) -> list[dict]:
    """Two datagrams from an unconnected client to a server: one flow each side, per socket."""
    with socket.socket(family, socket.SOCK_DGRAM) as server, socket.socket(family, socket.SOCK_DGRAM) as client:
        server.bind((host, 0))
        port = server.getsockname()[1]
        for payload in (b"one", b"two"):
            if ipv6:
                client.sendmsg([payload], [], 0, (host, port))
                peer = server.recvmsg(16)[3]
            else:
                client.sendto(payload, (host, port))
                peer = server.recvfrom(16)[1]
        common = {"ipv6": ipv6, "ip": host, "protocol": "udp", "port": port}
        return [{"kind": "send", **common, "errno": 0},
                {"kind": "receive", **common, "peer_port": peer[1], "bound_port": 0}]


def _dual_stack() -> list[dict]:
    """A listener on [::] accepts an inet client and an inet6 client of ::ffff:127.0.0.1: the
    accepting side sees a v4-mapped peer, which Sysmon writes as the IPv4 address."""
    acts = []
    port = _free_port(socket.AF_INET6, "::")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        server.bind(("::", port))
        server.listen(4)
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::ffff:127.0.0.1")):
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.connect((address, port))
                conn, peer = server.accept()
                conn.close()
            acts.append({"kind": "connect", "ipv6": family == socket.AF_INET6, "ip": address, "protocol": "tcp",
                         "port": port, "errno": 0})
            acts.append({"kind": "accept", "ipv6": False, "ip": "127.0.0.1", "protocol": "tcp", "port": port,
                         "peer_port": peer[1], "listener_ipv6": True})
    return acts


# The tracer: attach to the pid it is given (PTRACE_ATTACH), wait for the stop, detach, and say
# whether the attach succeeded.
_TRACER = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n"
    "pid = int(sys.argv[1])\n"
    "attached = libc.ptrace(16, pid, None, None) == 0\n"
    "if attached:\n"
    "    os.waitpid(pid, 0)\n"
    "    libc.ptrace(17, pid, None, None)\n"
    "print('attached' if attached else 'refused')\n"
)


def ptrace_activity(driver: Driver) -> list[dict]:
    """One child attaches to another with ptrace (what Sysmon logs as ProcessAccess): a sleeping
    /bin/sleep, and a Python tracer started after it; both are runs of the truth file."""
    target = driver.start(Spec(["/bin/sleep", "1"], "ptrace target: sleeps while it is attached to"))
    tracer_spec = Spec([sys.executable, "-c", _TRACER, str(target.pid)], "ptrace tracer: attaches to the sleeper",
                       image=os.path.realpath(sys.executable), capture_stdout=True)
    time.sleep(0.1)  # the sleeper has exec'd: the tracer attaches to /bin/sleep, not to a fork of the driver
    tracer = driver.start(tracer_spec)
    said = driver.finish(tracer)
    driver.finish(target)
    return [{"kind": "ptrace", "tracer": tracer.pid, "target": target.pid, "attached": said == ["attached"]}]


def raw_read_activity(device: str) -> list[dict]:
    """Read the first sector of the loop device; a write-only open must not count as a read."""
    if device == "-":
        return []
    fd = os.open(device, os.O_RDONLY)
    try:
        os.read(fd, 512)
    finally:
        os.close(fd)
    os.close(os.open(device, os.O_WRONLY))
    return [{"kind": "raw_read", "device": device}]


def main() -> None:
    workdir, truth_path = sys.argv[1], sys.argv[2]
    device = sys.argv[3] if len(sys.argv) > 3 else "-"
    os.chdir(workdir)
    driver = Driver(workdir)
    with open("/proc/self/cmdline", "rb") as f:
        own_argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    driver_exe = os.path.realpath("/proc/self/exe")
    self_spec = Spec(own_argv, "the driver itself, exec'd by the harness", path=sys.executable, image=driver_exe)
    driver.record(driver.pid, os.getppid(), self_spec, _read_int("/proc/self/sessionid"))
    workload(driver)
    activity = file_activity(workdir) + network_activity() + raw_read_activity(device) + ptrace_activity(driver)
    truth = {
        "driver_pid": driver.pid,
        "driver_exe": driver_exe,
        "driver_argv": own_argv,
        "hostname": os.uname().nodename,
        "workload": "live",
        "runs": [asdict(run) for run in driver.runs],
        "activity": activity,
    }
    with open(truth_path, "w", encoding="utf-8") as f:
        json.dump(truth, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
