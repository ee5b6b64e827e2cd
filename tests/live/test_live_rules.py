"""examples/audit2sysmon.rules loads into a real kernel as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .auditd_capture import PrivateAuditd

pytestmark = pytest.mark.live

RULES = Path(__file__).resolve().parents[2] / "examples" / "audit2sysmon.rules"


@pytest.mark.parametrize("optional", [False, True], ids=["as written", "optional rules too"])
def test_the_example_rules_load_and_every_rule_is_in_force(tmp_path: Path, live_machine: None, optional: bool) -> None:
    """The rules as shipped, and with every optional (`#-a`) rule switched on."""
    text = RULES.read_text(encoding="utf-8")
    if optional:
        text = re.sub(r"(?m)^#-a ", "-a ", text)
    rules = tmp_path / "audit2sysmon.rules"
    rules.write_text(text, encoding="utf-8")
    written = [line for line in text.splitlines() if line.startswith("-a ")]
    keys = sorted({re.search(r"-k (\S+)", line).group(1) for line in written})
    directory = tmp_path / "auditd"
    directory.mkdir(mode=0o750)
    with PrivateAuditd(directory, "RAW", rules=[]):
        try:
            loaded = subprocess.run(["auditctl", "-R", str(rules)], capture_output=True, text=True, timeout=30)
            assert 0 == loaded.returncode, loaded.stderr
            listed = subprocess.run(["auditctl", "-l"], capture_output=True, text=True, check=True).stdout
            in_force = [line for line in listed.splitlines() if line.startswith("-a ")]
            assert len(in_force) == len(written)
            assert keys == sorted({re.search(r"-F key=(\S+)", line).group(1) for line in in_force})
        finally:
            for key in keys:
                subprocess.run(["auditctl", "-D", "-k", key], capture_output=True, timeout=30)
