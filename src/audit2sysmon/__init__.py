"""audit2sysmon: Linux audit logs in, Sysmon for Linux events out.

The public API: `convert()` for one call over any iterable of lines, `Converter` for
long-running pipelines (`feed`, `feed_input`, `stream`, `flush`, `stats`), `Options` shared
with the command line, the `SysmonEvent` it yields, and the exceptions under
`Audit2SysmonError`. The stages are subpackages that can be used on their own: `audit` (parse,
correlate), `mapping` (extract facts, apply them), `sysmon` (the event model and its
renderers); docs/api.md lists what each makes public.
"""

from ._version import __version__
from .convert import ConversionStats, Converter, Opened, convert
from .errors import (
    Audit2SysmonError,
    ConfigError,
    ConversionError,
    ConversionWarning,
    Damage,
    NotConverted,
    ParseError,
    Unresolved,
)
from .options import Options
from .sysmon.event import SysmonEvent


def build() -> str:
    """`"compiled"` when the library runs as mypyc's C extensions, else `"pure Python"`
    (docs/performance.md). The two differ in speed, so reports and benchmarks say which."""
    from .audit import parse

    return "pure Python" if (parse.__file__ or "").endswith(".py") else "compiled"


def build_note() -> str:
    """Why this install is pure Python, as its wheel recorded when it was built (`pip install .`
    compiles where it can and says here why it could not, since pip hides the build's output):
    `"AUDIT2SYSMON_BUILD=pure at install time"`, `"no C compiler with the Python headers at
    install time: …"`. Empty for a compiled install, and for source files run as they are (an
    editable install), which no build recorded anything for."""
    if build() == "compiled":
        return ""
    import json  # here, not at the top: importlib.resources alone is a tenth of the start-up
    from importlib import resources

    record = resources.files(__name__).joinpath("_installed_build.json")
    if not record.is_file():
        return ""
    return str(json.loads(record.read_text(encoding="utf-8"))["why"])


__all__ = [
    "Audit2SysmonError",
    "ConfigError",
    "ConversionError",
    "ConversionStats",
    "ConversionWarning",
    "Converter",
    "Damage",
    "NotConverted",
    "Opened",
    "Options",
    "ParseError",
    "SysmonEvent",
    "Unresolved",
    "__version__",
    "build",
    "build_note",
    "convert",
]
