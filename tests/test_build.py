"""`pip install .` compiles where the machine can and falls back to pure Python where it cannot,
and the installed package says which build it is, and why (hatch_build.py).

The wheels are built the way users get them: `python -m build` makes the sdist and a wheel from
it, pip builds the others from that sdist, each in its own isolated build environment. A machine
without a C compiler is this one with `CC` naming a compiler that does not exist: the build's
probe really fails to compile, as it would there. The wheels are then run, unpacked on
`PYTHONPATH` (installing a wheel is unpacking it), by this interpreter.

Building takes minutes (one compiled build): these tests are marked `build` (`-m "not build"`
leaves them out of a quick run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cli_setup import DEV, FIXED

import audit2sysmon
from audit2sysmon import __version__, build, build_note
from audit2sysmon.cli import main

ROOT = Path(__file__).resolve().parent.parent
RECORD = "audit2sysmon/_installed_build.json"
NO_COMPILER = "/nonexistent/cc"


def test_version_says_which_build_is_installed_and_why_it_is_pure(capsys):
    """What `--version` prints is what the installed wheel recorded at build time (read here
    from the file, beside the package), for whichever build this suite runs on."""
    assert 0 == main(["--version"])
    printed = capsys.readouterr().out
    recorded = Path(audit2sysmon.__path__[0]) / "_installed_build.json"
    if not recorded.exists():  # the source files themselves (an editable install): no wheel
        assert "pure Python" == build()
        assert f"audit2sysmon {__version__} (pure Python)\n" == printed
        return
    record = json.loads(recorded.read_text(encoding="utf-8"))
    assert record["build"] == build()
    if record["build"] == "compiled":
        assert "" == record["why"] == build_note()
        assert f"audit2sysmon {__version__} (compiled)\n" == printed
    else:
        assert record["why"] and record["why"] == build_note()
        assert f"audit2sysmon {__version__} (pure Python: {record['why']})\n" == printed


def environment(**changes: str | None) -> dict[str, str]:
    """This process's environment with `changes` (None: unset); AUDIT2SYSMON_BUILD and CC are
    always what the test says, never what the shell running the suite had."""
    env = {k: v for k, v in os.environ.items() if k not in ("AUDIT2SYSMON_BUILD", "CC")}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def run(argv: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def pip_wheel(sdist: Path, out: Path, **changes: str | None) -> subprocess.CompletedProcess[str]:
    """pip builds a wheel from the sdist (verbosely, so that the build's own notice shows; not
    from or into pip's cache of wheels built from sdists)."""
    argv = [sys.executable, "-m", "pip", "wheel", "-v", "--no-cache-dir", "--no-deps", "-w", out, sdist]
    return run(argv, environment(**changes))


def only(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def unpacked(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


def run_unpacked(package: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m audit2sysmon ARGS` with the unpacked wheel first on the path (and this
    environment's lark, lxml, ... after it); checks that it is that package which runs."""
    code = (
        "import sys, audit2sysmon, audit2sysmon.cli; "
        f"assert audit2sysmon.__file__.startswith({str(package)!r}), audit2sysmon.__file__; "
        "sys.exit(audit2sysmon.cli.main(sys.argv[1:]))"
    )
    return run([sys.executable, "-c", code, *args], environment(PYTHONPATH=str(package)), timeout=300)


@pytest.fixture(scope="module")
def without_compiler(tmp_path_factory) -> tuple[Path, Path, str]:
    """`python -m build` on a machine without a C compiler: (sdist, the wheel built from it,
    the build's output)."""
    out = tmp_path_factory.mktemp("dist")
    done = run([sys.executable, "-m", "build", "--outdir", out, ROOT], environment(CC=NO_COMPILER))
    assert 0 == done.returncode, done.stdout + done.stderr
    return only(out, "audit2sysmon-*.tar.gz"), only(out, "audit2sysmon-*.whl"), done.stdout + done.stderr


@pytest.fixture(scope="module")
def compiled(without_compiler, tmp_path_factory) -> Path:
    """The default wheel, built from the same sdist on this machine (gcc and the headers)."""
    out = tmp_path_factory.mktemp("compiled")
    done = pip_wheel(without_compiler[0], out)
    assert 0 == done.returncode, done.stdout + done.stderr
    assert 1 == (done.stdout + done.stderr).count("audit2sysmon: compiled with mypyc")
    return only(out, "audit2sysmon-*.whl")


@pytest.mark.build
def test_the_sdist_falls_back_to_pure_python_without_a_compiler_and_says_why(without_compiler, tmp_path):
    _, wheel, output = without_compiler
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = json.loads(archive.read(RECORD))
    assert not [name for name in names if name.endswith(".so")]
    assert "pure Python" == record["build"]
    assert record["why"].startswith("no C compiler with the Python headers at install time: ")
    assert NO_COMPILER in record["why"]
    # Said once on the build's output (pip shows it with -v; `python -m build` always).
    assert 1 == output.count(f"audit2sysmon: building the pure-Python package ({record['why']})")
    done = run_unpacked(unpacked(wheel, tmp_path), "--version")
    assert 0 == done.returncode, done.stderr
    assert f"audit2sysmon {__version__} (pure Python: {record['why']})\n" == done.stdout


@pytest.mark.build
def test_the_default_wheel_is_compiled_and_converts_as_the_pure_one(without_compiler, compiled, tmp_path):
    with zipfile.ZipFile(compiled) as archive:
        names = archive.namelist()
        record = json.loads(archive.read(RECORD))
    assert {"build": "compiled", "why": ""} == record
    assert not compiled.name.endswith("-none-any.whl")  # tagged for this interpreter and platform
    # The pipeline is compiled; the command's shell stays Python (pyproject.toml's exclude list).
    assert any(re.fullmatch(r"audit2sysmon/audit/parse\..+\.so", name) for name in names)
    assert not any(name.startswith("audit2sysmon/cli/") and name.endswith(".so") for name in names)
    fast = unpacked(compiled, tmp_path / "compiled")
    pure = unpacked(without_compiler[1], tmp_path / "pure")
    version = run_unpacked(fast, "--version")
    assert f"audit2sysmon {__version__} (compiled)\n" == version.stdout, version.stderr
    converted = [run_unpacked(package, *FIXED, str(DEV)) for package in (fast, pure)]
    assert [0, 0] == [done.returncode for done in converted], [done.stderr for done in converted]
    assert converted[0].stdout.count("<EventID>1</EventID>") > 10
    assert converted[0].stdout == converted[1].stdout


@pytest.mark.build
def test_audit2sysmon_build_pure_skips_compiling(without_compiler, tmp_path):
    done = pip_wheel(without_compiler[0], tmp_path, AUDIT2SYSMON_BUILD="pure")
    assert 0 == done.returncode, done.stdout + done.stderr
    wheel = only(tmp_path, "audit2sysmon-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert {"build": "pure Python", "why": "AUDIT2SYSMON_BUILD=pure at install time"} == json.loads(
            archive.read(RECORD)
        )
        assert not [name for name in archive.namelist() if name.endswith(".so")]


@pytest.mark.build
def test_mypyc_failing_where_the_toolchain_works_falls_back_too_saying_why(without_compiler, tmp_path):
    """mypyc refuses a module that does not type-check (before it compiles anything): the
    sdist with one such module added still installs, pure Python, with mypyc's error."""
    with tarfile.open(without_compiler[0]) as archive:
        # The safe "data" filter where this Python has one (3.11.4 on); the sdist is our own.
        archive.extraction_filter = getattr(tarfile, "data_filter", None)
        archive.extractall(tmp_path / "src")
    (tree,) = (tmp_path / "src").iterdir()
    (tree / "src" / "audit2sysmon" / "mistyped.py").write_text('count: int = "one"\n', encoding="utf-8")
    done = pip_wheel(tree, tmp_path / "out")
    assert 0 == done.returncode, done.stdout + done.stderr
    with zipfile.ZipFile(only(tmp_path / "out", "audit2sysmon-*-py3-none-any.whl")) as archive:
        record = json.loads(archive.read(RECORD))
        assert not [name for name in archive.namelist() if name.endswith(".so")]
    assert "pure Python" == record["build"]
    assert record["why"].startswith("mypyc failed at install time: src/audit2sysmon/mistyped.py:1: error: ")
    assert not list(tree.rglob("*.so"))


@pytest.mark.build
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"AUDIT2SYSMON_BUILD": "compiled", "CC": NO_COMPILER},
            "AUDIT2SYSMON_BUILD=compiled, but this machine cannot build C extensions: ",
        ),
        ({"AUDIT2SYSMON_BUILD": "fast"}, "AUDIT2SYSMON_BUILD='fast': expected one of auto, compiled, pure"),
    ],
)
def test_a_build_that_cannot_be_what_was_asked_fails_saying_why(without_compiler, tmp_path, changes, message):
    done = pip_wheel(without_compiler[0], tmp_path, **changes)
    assert 0 != done.returncode
    assert message in done.stdout + done.stderr
    assert not list(tmp_path.glob("*.whl"))
