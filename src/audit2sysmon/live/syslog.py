"""Events to the local syslog socket, as Sysmon for Linux's `syslog()` calls send them.

Sysmon calls `openlog("sysmon", LOG_NOWAIT, LOG_USER)` and then, per event,
`syslog(LOG_USER | LOG_INFO, "%s", xml)`. glibc sends that as one datagram to `/dev/log`:
`<14>Mmm dd HH:MM:SS sysmon: <Event>…</Event>` (priority 14 = user.info; the local time of
the call, the day padded with a space; the tag without a pid; no host name, which the syslog
daemon adds). The daemon then writes it as it writes Sysmon's lines
(`Mmm dd HH:MM:SS host sysmon: <Event>…` in /var/log/syslog, or the journal's
`SYSLOG_IDENTIFIER=sysmon`), so every collector that reads Sysmon's lines reads ours.

A stream socket (some containers) gets each message followed by a NUL byte, as glibc sends
it. A daemon that is not there (restarted, not yet started) costs the messages sent while it
is away, as with glibc's syslog(); they are counted (`dropped`), and the sender connects
again at the next message.
"""

from __future__ import annotations

import errno
import socket
import time

__all__ = ["FACILITY_USER", "SEVERITY_INFO", "SyslogSender"]

FACILITY_USER = 1
SEVERITY_INFO = 6
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TAG = "sysmon"


class SyslogSender:
    """Sends each event line (the `<Event>` XML) to a syslog socket, one message each."""

    def __init__(self, path: str = "/dev/log", *, tag: str = _TAG) -> None:
        self.path = path
        self.dropped = 0  # messages no daemon took
        self._prefix = f"<{FACILITY_USER * 8 + SEVERITY_INFO}>"
        self._tag = tag
        self._socket: socket.socket | None = None
        self._stream = False

    def send(self, xml: str) -> None:
        """Send one event now; a message the daemon cannot take is counted, not raised."""
        message = self._message(xml)
        for attempt in (1, 2):  # the daemon may have restarted: connect once more
            try:
                sock = self._connected()
                if self._stream:
                    sock.sendall(message + b"\0")
                else:
                    sock.send(message)
                return
            except OSError as exc:
                self.close()
                if exc.errno == errno.EMSGSIZE or attempt == 2:
                    break
        self.dropped += 1

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _message(self, xml: str) -> bytes:
        t = time.localtime()
        stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        return f"{self._prefix}{stamp} {self._tag}: {xml}".encode("utf-8", "surrogateescape")

    def _connected(self) -> socket.socket:
        if self._socket is None:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # glibc's order
                sock = socket.socket(socket.AF_UNIX, kind)
                try:
                    sock.connect(self.path)
                except OSError as exc:
                    sock.close()
                    if exc.errno == errno.EPROTOTYPE and kind == socket.SOCK_DGRAM:
                        continue
                    raise
                self._socket, self._stream = sock, kind == socket.SOCK_STREAM
                break
        if self._socket is None:
            raise OSError(errno.ENOTCONN, f"cannot connect to {self.path}")
        return self._socket
