"""The layout is the architecture: each stage imports only the stages below it.

pyproject.toml's import-linter contracts say who may import whom (docs/architecture.md);
`lint-imports` checks them. These tests run it on the source tree (the same source the pure
and the compiled builds install; import-linter reads source, not C extensions), and on a copy
with one deliberately wrong import in each way the contracts forbid, which must fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
SOURCE = ROOT / "src"


def lint_imports(config: Path, cwd: Path, path: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """`lint-imports CONFIG` in its own process (grimp builds its graph from `sys.path`)."""
    env_path = ":".join(str(p) for p in path) if path else None
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    argv = [sys.executable, "-c", code, str(config), "--no-cache"]
    env = {"PYTHONPATH": env_path} if env_path else None
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(PYPROJECT, tmp_path, [SOURCE])
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong", "contract"),
    [
        ("audit/records.py", "from ..sysmon import schema", "stages import only the stages below them"),
        ("sysmon/schema.py", "from ..audit import records", "stages import only the stages below them"),
        ("mapping/facts.py", "from .. import convert", "stages import only the stages below them"),
        ("sysmon/render/xml.py", "from .. import event", "the Sysmon event model renders itself"),
        ("sysmon/render/jsonl.py", "from .. import lines", "the Sysmon event model renders itself"),
        ("audit/records.py", "from . import parse", "the audit side"),
        ("mapping/syscalls.py", "from . import mapper", "mapping: applying over extracting"),
    ],
)
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, wrong: str, contract: str) -> None:
    package = tmp_path / "src" / "audit2sysmon"
    shutil.copytree(SOURCE / "audit2sysmon", package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    target = package / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{wrong}  # deliberately wrong\n", encoding="utf-8")
    result = lint_imports(PYPROJECT, tmp_path, [tmp_path / "src"])
    assert 1 == result.returncode, result.stdout + result.stderr
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout
