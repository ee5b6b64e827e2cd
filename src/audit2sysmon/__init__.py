"""audit2sysmon: Linux audit logs in, Sysmon for Linux events out.

The public API is small: `convert()` for one call over any iterable of lines, `Converter`
for long-running pipelines (`feed`/`flush`/`stats`), `Options` shared with the CLI, the
`SysmonEvent` it yields, and the exceptions. The stages (`parse`, `correlate`, `track`,
`mapping`, `render`) are importable on their own.
"""

from .convert import ConversionStats, Converter, convert
from .errors import Audit2SysmonError, ConfigError, ParseError
from .options import Options
from .sysmon import SysmonEvent

__version__ = "0.1.0"


def build() -> str:
    """`"compiled"` when the library runs as mypyc's C extensions, else `"pure Python"`
    (docs/performance.md). The two differ in speed, so reports and benchmarks say which."""
    from . import parse

    return "pure Python" if (parse.__file__ or "").endswith(".py") else "compiled"


__all__ = [
    "Audit2SysmonError",
    "ConfigError",
    "ConversionStats",
    "Converter",
    "Options",
    "ParseError",
    "SysmonEvent",
    "__version__",
    "build",
    "convert",
]
