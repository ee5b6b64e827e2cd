"""The `audit2sysmon` command: a thin shell over the library.

`args` turns flags into `Options`; `run` opens the inputs (the library's `inputs`), feeds
them to one `Converter` and writes the events (`output`); `report` says what happened on
standard error.
"""

from .run import main

__all__ = ["main"]
