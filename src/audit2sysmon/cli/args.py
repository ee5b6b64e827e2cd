"""The command's flags: what each means, and the library `Options` they stand for.

docs/cli.md describes every option at length.
"""

from __future__ import annotations

import argparse
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import __version__, build
from ..audit.correlate import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_OPEN
from ..errors import ConfigError
from ..inputs import expand_directory, order_inputs
from ..options import SUPPORTED_EVENTS, Options
from ..sysmon.render import FORMATS

__all__ = ["PROG", "build_parser", "expand_paths", "options_from_args"]

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
        default="event",
        help="TimeCreated: the event's time (default, deterministic) or the conversion time",
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
    run.add_argument("--version", action="version", version=f"{PROG} {__version__} ({build()})")
    return parser


def options_from_args(args: argparse.Namespace) -> Options:
    """The library `Options` the flags stand for (ConfigError when a value is unusable)."""
    values: dict[str, object] = {
        "hostname": args.hostname,
        "machine_id": args.machine_id,
        "passwd": args.passwd,
        "local_users": not args.no_local_users,
        "input_format": args.input_format,
        "time_created": args.time_created,
        "hold_for_parent": not args.follow,
        "serial_gaps": args.follow,
        "config": args.config,
        "parent_argv0": args.parent_argv0,
    }
    if args.follow and args.jobs != 1:
        raise ConfigError("--follow reads as the file grows, in this process: it takes no --jobs")
    if args.jobs < 0:
        raise ConfigError(f"--jobs needs a number of worker processes >= 0, not {args.jobs}")
    if args.tz is not None:
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
