"""The README's quick start is two commands that work on a fresh machine with only Python.

`.ci/run` runs them, exactly as written, with the distribution's own python3 (which refuses
`pip install` outside a virtual environment, PEP 668). These tests keep them in the shape that
makes that work: each makes (or reuses) `.venv` first and runs everything else from it.
"""

from __future__ import annotations

import shlex

import pytest
from readme_commands import README, quick_start

VENV = "python3 -m venv .venv"


@pytest.fixture(scope="module")
def commands() -> list[list[str]]:
    """Each command's steps (split at `&&`), each step as the shell splits it into words."""
    return [
        [shlex.split(step) for step in command.split("&&")]
        for command in quick_start(README.read_text(encoding="utf-8"))
    ]


def test_there_are_two_commands_each_making_its_venv_first(commands):
    assert 2 == len(commands)
    for steps in commands:
        assert shlex.split(VENV) == steps[0]
        # Nothing after it runs a pip, python or audit2sysmon the system would own.
        assert all(step[0].startswith(".venv/bin/") for step in steps[1:]), steps


def test_the_first_installs_converts_the_shipped_sample_and_ends_saying_which_build(commands):
    install = commands[0]
    assert [".venv/bin/pip", "install", "."] == install[1]
    converted = [step[1] for step in install[2:-1] if step[0] == ".venv/bin/audit2sysmon"]
    assert ["examples/audit.log"] == converted
    assert (README.parent / "examples" / "audit.log").is_file()
    assert [".venv/bin/audit2sysmon", "--version"] == install[-1]


def test_the_second_installs_the_test_extra_and_runs_the_whole_suite(commands):
    test = commands[1]
    assert [".venv/bin/pip", "install", ".[test]"] == test[1]
    assert [".venv/bin/python", "-m", "pytest"] == test[-1]


def test_only_indented_lines_of_the_section_are_commands():
    text = "# x\n\n## Quick start\n\nSay:\n\n    a && b\n\nthen\n\n    c\n\n## Next\n\n    d\n"
    assert ["a && b", "c"] == quick_start(text)
    with pytest.raises(ValueError, match="Quick start"):
        quick_start("# no such section\n")
