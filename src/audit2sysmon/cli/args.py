"""The command's flags: what each means, and the library `Options` they stand for.

docs/cli.md describes every option at length.
"""

from __future__ import annotations

import argparse
import os

from .. import __version__, build, build_note
from ..audit.correlate import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_OPEN
from ..errors import ConfigError
from ..inputs import expand_directory, order_inputs
from ..options import SUPPORTED_EVENTS, Options
from ..sysmon.render import FORMATS

__all__ = ["PROG", "build_parser", "expand_paths", "is_live", "options_from_args"]

PROG = "audit2sysmon"

_EPILOG = """\
examples:
  audit2sysmon /var/log/audit/audit.log > sysmon.log
  audit2sysmon /var/log/audit/                  # the whole rotated set, oldest first
  audit2sysmon -f json -o events.jsonl audit.log.2.gz audit.log.1 audit.log
  ausearch -i -if audit.log | audit2sysmon --tz Europe/Berlin
  audit2sysmon --passwd web01-passwd --no-local-users --machine-id 3d1219c7 web01/
  audit2sysmon --follow /var/log/audit/audit.log >> /var/log/sysmon-audit.log
  audit2sysmon --stats --rejects bad-lines.log audit.log > /dev/null

Input: raw, ENRICHED and `ausearch -i` text, syslog/journald lines; .gz/.bz2/.xz read
transparently. Exit status: 0 all input read (even with malformed lines), 1 an input could
not be read or the output not written, 2 usage error. Docs: docs/cli.md.
"""



def build_parser() -> argparse.ArgumentParser:
    """The argument parser; docs/cli.md describes every option at length."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        # `@FILE`: arguments from FILE, one per line: auditd passes a plugin two arguments at most.
        fromfile_prefix_chars="@",
        description="Convert Linux audit logs (auditd) into Sysmon for Linux events.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="audit logs or log directories, read in order (rotated sets oldest first); "
        "none or '-' reads standard input",
    )
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE", default="-", help="write here (default: standard output)")
    out.add_argument("-f", "--format", choices=FORMATS, default="syslog", help="output format (default: syslog)")
    out.add_argument(
        "--time-created",
        choices=("event", "now"),
        help="TimeCreated: the event's time (deterministic; the default for files) or the time it "
        "is written (as Sysmon; the default with --follow and --plugin)",
    )
    out.add_argument(
        "--events",
        metavar="IDS",
        help="comma-separated Sysmon EventIDs to write, among "
        + ",".join(map(str, sorted(SUPPORTED_EVENTS)))
        + " (default: all); e.g. --events 1 for ProcessCreate only",
    )
    src = parser.add_argument_group("input")
    src.add_argument(
        "--input-format",
        choices=("auto", "raw", "interpreted"),
        default="auto",
        help="auto detects raw or `ausearch -i` text per line (default); the others reject the other form",
    )
    src.add_argument(
        "--tz",
        metavar="ZONE",
        help="zone (e.g. Europe/Berlin) of `ausearch -i` times and of the syslog header (default: this machine's)",
    )
    src.add_argument(
        "--hostname", metavar="NAME", help="Computer for lines without node= (default: this machine's name)"
    )
    src.add_argument(
        "--machine-id", metavar="HEX", help="machine part of the GUIDs (default: derived from the node name)"
    )
    src.add_argument("--passwd", metavar="FILE", help="passwd file of the host that wrote the log, for user names")
    src.add_argument(
        "--no-local-users",
        action="store_true",
        help="do not look uids up in this machine's account database",
    )
    cfg = parser.add_argument_group("Sysmon configuration")
    cfg.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="a Sysmon for Linux configuration (XML): which events to log, with which RuleName, "
        "FieldSizes (default: log every event, RuleName -)",
    )
    cfg.add_argument(
        "--check-config",
        metavar="FILE",
        help="print the configuration's rules as understood and exit: 0 usable, 2 not",
    )
    cfg.add_argument(
        "--parent-argv0",
        action="store_true",
        help="write only the parent's argv[0] in ParentCommandLine, as Sysmon for Linux does "
        "(default: its whole command line)",
    )
    win = parser.add_argument_group("correlation window")
    win.add_argument(
        "--window-events", type=int, metavar="N", help=f"events held open at most (default: {DEFAULT_MAX_OPEN})"
    )
    win.add_argument(
        "--window-ms",
        type=int,
        metavar="MS",
        help=f"log-time age after which an open event closes (default: {DEFAULT_MAX_AGE_MS})",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--follow",
        action="store_true",
        help="after the last file, keep reading it as it grows, like tail -F (survives rotation); "
        "stop with Ctrl-C or SIGTERM",
    )
    run.add_argument(
        "--from-end",
        action="store_true",
        help="with --follow: start at the end of the followed file (only what is written from now "
        "on), as a service that restarts must not convert the same events twice",
    )
    run.add_argument(
        "--plugin",
        action="store_true",
        help="run as an auditd plugin: read the records auditd sends on standard input "
        "(format = string) and write each event at once (docs/deploy.md)",
    )
    live = parser.add_argument_group("live host")
    live.add_argument(
        "--syslog",
        action="store_true",
        help="send each event to the local syslog socket as Sysmon for Linux does (ident sysmon, "
        "user.info), instead of writing lines",
    )
    live.add_argument(
        "--syslog-socket", metavar="PATH", default="/dev/log", help="the syslog socket (default: /dev/log)"
    )
    live.add_argument(
        "--no-hashes",
        action="store_true",
        help="with --follow or --plugin: do not hash executed files for ProcessCreate's Hashes",
    )
    live.add_argument(
        "--no-proc-parents",
        action="store_true",
        help="with --follow or --plugin: do not read a parent the log never showed from /proc",
    )
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="read the input with N worker processes (0: one per CPU); the output is the same "
        "(default: 1, all in this process)",
    )
    run.add_argument("--stats", action="store_true", help="print counts on standard error at the end")
    run.add_argument("--rejects", metavar="FILE", help="write malformed lines here, byte for byte")
    run.add_argument(
        "--log",
        metavar="FILE",
        help="append the command's own messages (errors, warnings, --stats) to FILE instead of standard "
        "error: auditd gives a plugin /dev/null there (docs/deploy.md)",
    )
    run.add_argument("--version", action=_Version, help="print the version and which build this is, and exit")
    return parser


class _Version(argparse.Action):
    """`--version`, its line made only when asked: argparse's own action takes the text when
    the parser is built, on every run, and reading what the wheel recorded costs the
    pure-Python build a tenth of its start-up (`importlib.resources`)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object,
                 option_string: str | None = None) -> None:
        print(version_line())
        parser.exit()


def version_line() -> str:
    """`audit2sysmon 0.1.0 (compiled)`, or the pure-Python build with the reason its wheel
    recorded: the one place a `pip install .` that fell back says so."""
    note = build_note()
    return f"{PROG} {__version__} ({build()}{': ' + note if note else ''})"


def is_live(args: argparse.Namespace) -> bool:
    """Whether the command runs as a service on the host whose log it reads, as it is written."""
    return bool(args.follow or args.plugin)


def options_from_args(args: argparse.Namespace) -> Options:
    """The library `Options` the flags stand for (ConfigError when a value is unusable).

    Live (`--follow`, `--plugin`): a child is never held back for its parent, TimeCreated is
    the time of writing and Execution ProcessID this process's, as Sysmon writes them; lost
    events are found by their serial numbers; the host hashes executed files and knows
    parents from /proc (unless turned off)."""
    live = is_live(args)
    values: dict[str, object] = {
        "hostname": args.hostname,
        "machine_id": args.machine_id,
        "passwd": args.passwd,
        "local_users": not args.no_local_users,
        "input_format": args.input_format,
        "time_created": args.time_created or ("now" if live else "event"),
        "hold_events": not live,
        "serial_gaps": live,
        "config": args.config,
        "parent_argv0": args.parent_argv0,
        "hash_images": live and not args.no_hashes,
        "proc_parents": live and not args.no_proc_parents,
        "execution_pid": os.getpid() if live else 0,
    }
    if live and args.jobs != 1:
        raise ConfigError("--follow and --plugin read as the log is written, in this process: they take no --jobs")
    if args.follow and args.plugin:
        raise ConfigError("--plugin reads standard input as auditd sends it: it takes no --follow")
    if args.plugin and [name for name in args.files if name != "-"]:
        raise ConfigError("--plugin reads standard input as auditd sends it: it takes no files")
    if args.syslog and args.output != "-":
        raise ConfigError("--syslog sends the events to syslog: it takes no -o")

    if args.jobs < 0:
        raise ConfigError(f"--jobs needs a number of worker processes >= 0, not {args.jobs}")
    if args.tz is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: few runs name a zone

        try:
            values["tz"] = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {args.tz!r} (use a name such as UTC or Europe/Berlin)") from None
    if args.events is not None:
        values["events"] = _event_ids(args.events)
    if args.window_events is not None:
        values["max_open_events"] = args.window_events
    if args.window_ms is not None:
        values["max_event_age_ms"] = args.window_ms
    return Options.from_kwargs(**{k: v for k, v in values.items() if v is not None})


def _event_ids(text: str) -> frozenset[int]:
    """`--events 1,3,5` → {1, 3, 5}; anything else is a usage error naming the bad part."""
    ids = set()
    for part in text.split(","):
        part = part.strip()
        if not part.isdecimal() or int(part) not in SUPPORTED_EVENTS:
            supported = ",".join(map(str, sorted(SUPPORTED_EVENTS)))
            raise ConfigError(f"--events: {part!r} is not one of the EventIDs {supported}")
        ids.add(int(part))
    return frozenset(ids)


def expand_paths(files: list[str]) -> tuple[list[str], list[str]]:
    """(paths in conversion order, error messages): directories become their audit.log set."""
    paths: list[str] = []
    problems: list[str] = []
    for name in files or ["-"]:
        if name != "-" and os.path.isdir(name):
            try:
                members = expand_directory(name)
            except OSError as exc:
                problems.append(f"cannot read directory {name}: {exc.strerror or exc}")
                continue
            if not members:
                problems.append(f"no audit.log files in directory {name}")
            paths.extend(members)
        else:
            paths.append(name)
    return order_inputs(paths), problems
