"""examples/audit2sysmon.rules loads into a real kernel as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .auditd_capture import PrivateAuditd

pytestmark = pytest.mark.live

RULES = Path(__file__).resolve().parents[2] / "examples" / "audit2sysmon.rules"


def test_the_example_rules_load_and_every_rule_is_in_force(tmp_path: Path, live_machine: None) -> None:
    written = [line for line in RULES.read_text(encoding="utf-8").splitlines() if line.startswith("-a ")]
    keys = sorted({re.search(r"-k (\S+)", line).group(1) for line in written})
    directory = tmp_path / "auditd"
    directory.mkdir(mode=0o750)
    with PrivateAuditd(directory, "RAW", rules=[]):
        try:
            loaded = subprocess.run(["auditctl", "-R", str(RULES)], capture_output=True, text=True, timeout=30)
            assert 0 == loaded.returncode, loaded.stderr
            listed = subprocess.run(["auditctl", "-l"], capture_output=True, text=True, check=True).stdout
            in_force = [line for line in listed.splitlines() if line.startswith("-a ")]
            assert len(in_force) == len(written)
            assert keys == sorted({re.search(r"-F key=(\S+)", line).group(1) for line in in_force})
        finally:
            for key in keys:
                subprocess.run(["auditctl", "-D", "-k", key], capture_output=True, timeout=30)
