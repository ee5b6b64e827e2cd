"""Running on the host whose log is converted, as the log is written: what only the host can
tell (`host`: the executed file's hashes, processes that started before auditing did), and
delivering events the way Sysmon for Linux does (`syslog`: the local syslog socket)."""

from .host import LocalHost
from .syslog import SyslogSender

__all__ = ["LocalHost", "SyslogSender"]
