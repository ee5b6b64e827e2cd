"""The generated audit tables are what their generator makes of the installed audit userspace.

src/audit2sysmon/audit/_tables.py is written by tools/generate_audit_tables.py from libaudit
(the tables behind `ausyscall` and `ausearch -i`); nobody edits it. Where the machine has the
libaudit release the module was generated from, the generator's output must be the module,
byte for byte. Elsewhere the table is compared with what `ausyscall` prints instead.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from audit2sysmon.audit import _tables, syscalls

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "tools" / "generate_audit_tables.py"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_audit_tables", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_tables_are_the_generators_output_for_the_pinned_libaudit() -> None:
    generator = _generator()
    try:
        lib = generator.libaudit()
    except OSError as exc:
        pytest.skip(f"libaudit is not installed (apt-get install auditd): {exc}")
    installed = generator.libaudit_version()
    if installed != _tables.LIBAUDIT_VERSION:
        pytest.skip(f"the tables are pinned to libaudit {_tables.LIBAUDIT_VERSION}, this machine has {installed}")
    assert generator.MODULE.read_text(encoding="utf-8") == generator.render(lib, installed)


@pytest.mark.skipif(shutil.which("ausyscall") is None, reason="ausyscall (auditd) not installed")
def test_every_arch_ausyscall_knows_has_its_table() -> None:
    for elf, (name, table) in _tables.ARCHES.items():
        dump = subprocess.run(["ausyscall", name, "--dump"], capture_output=True, text=True, check=False)
        if not dump.stdout.startswith(f"Using {name} syscall table"):
            continue  # an arch newer than this ausyscall (riscv, loongarch): asm-generic numbers
        assert syscalls.ARCH_NUMBERS[name] == elf
        numbers = {int(n): call for n, call in (line.split("\t") for line in dump.stdout.splitlines()[1:])}
        assert numbers == _tables.SYSCALLS[table], name
