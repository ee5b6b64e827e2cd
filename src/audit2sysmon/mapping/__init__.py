"""From audit events to Sysmon events, in two halves.

Extraction reads one audit event and needs nothing else (`facts.extract`, with `calls`,
`argv`, `paths`, `sockaddr`, `users` and the one table of syscalls, `syscalls`). Applying
keeps what crosses events: the process table (`track`), the GUIDs (`guids`), sockets and
directories, and turns the facts into Sysmon events (`mapper.Mapper`). `plain` carries facts
across processes.
"""

from .facts import EventFacts, extract
from .mapper import Applied, Mapper, MapperStats
from .users import UserDb

__all__ = ["Applied", "EventFacts", "Mapper", "MapperStats", "UserDb", "extract"]
