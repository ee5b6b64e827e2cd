"""The README's quick-start commands, as the README writes them.

`.ci/run` runs them exactly (`python3 tests/readme_commands.py` prints one a line), with the
distribution's own python3, on a fresh copy of the tree; tests/test_readme.py checks their
shape. The test command runs the whole suite, so no test runs the commands themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Quick start"


def quick_start(text: str) -> list[str]:
    """The indented code lines of the README's Quick start section, in order."""
    _, found, rest = text.partition(f"\n{SECTION}\n")
    if not found:
        raise ValueError(f"README.md has no {SECTION!r} section")
    section = rest.split("\n## ", 1)[0]
    return [line[4:] for line in section.splitlines() if line.startswith("    ") and line.strip()]


if __name__ == "__main__":
    sys.stdout.write("".join(f"{command}\n" for command in quick_start(README.read_text(encoding="utf-8"))))
