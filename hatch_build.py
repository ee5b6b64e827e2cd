"""The wheel's build hook: compiled with mypyc where this machine can build C extensions, else pure Python.

hatchling runs this for every wheel (`pip install .`, `python -m build`, a wheel built from the
sdist), as configured in pyproject.toml (`[tool.hatch.build.targets.wheel.hooks.custom]`). The
compiled build is the same source, about 1.6 times as fast (docs/performance.md); a machine
without a C compiler or the Python headers must still install, so the hook first asks the
toolchain: it has setuptools (the compiler driver mypyc builds with) compile, link and load a
tiny extension that includes Python.h. If that works, hatch-mypyc's own hook compiles the
package; if not, the wheel is the pure-Python one.

pip shows a build backend's output only with `-v`, so the wheel itself records which build it
is and why: a generated data file, `audit2sysmon/_installed_build.json`, that `audit2sysmon
--version` reads (`audit2sysmon 0.1.0 (pure Python: no C compiler ...)`).

`AUDIT2SYSMON_BUILD` chooses instead of the probe: `pure` builds the pure-Python wheel without
asking, `compiled` fails the build rather than fall back, `auto` (or unset) decides by the
probe. An editable install (`pip install -e .`) is always pure Python: it runs the source
files, and compiled modules beside them would shadow every edit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VARIABLE = "AUDIT2SYSMON_BUILD"
CHOICES = ("auto", "compiled", "pure")
RECORD = "audit2sysmon/_installed_build.json"
COMPILED = "compiled"
PURE = "pure Python"

# The probe: the smallest extension module there is, built and imported the way mypyc's
# extensions are (setuptools' build_ext, then an import).
PROBE_C = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static struct PyModuleDef probe = {PyModuleDef_HEAD_INIT, "audit2sysmon_probe", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_audit2sysmon_probe(void) { return PyModule_Create(&probe); }
"""
PROBE_PY = """\
from setuptools import Extension, setup
setup(
    name="audit2sysmon_probe",
    ext_modules=[Extension("audit2sysmon_probe", ["probe.c"])],
    script_args=["--quiet", "build_ext", "--inplace", "--build-temp", "tmp"],
)
import importlib
importlib.invalidate_caches()
import audit2sysmon_probe
"""
# What says nothing to the reader of `--version`: the place in the probe a compiler's message
# starts with ("probe.c:2:10: "), and the word error.
NOISE = re.compile(r"^(?:probe\.c:\d+(?::\d+)?:\s*)?(?:fatal )?(?:error:\s*)?", re.IGNORECASE)


def requested() -> str:
    """What `AUDIT2SYSMON_BUILD` asks for: `auto` when unset."""
    value = os.environ.get(VARIABLE, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{VARIABLE}={value!r}: expected one of {', '.join(CHOICES)}")
    return value


def first_error(output: str) -> str:
    """The line of a failed build that says what went wrong (the compiler's own message, not
    setuptools' "command failed" after it), on one line for `--version`."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    line = (errors or lines or ["no output"])[0]
    return NOISE.sub("", line, count=1)[:300]


def probe_toolchain() -> str:
    """Why this Python cannot compile, link and load a C extension that includes Python.h, in
    a line; empty when it can."""
    with tempfile.TemporaryDirectory(prefix="audit2sysmon-probe-") as directory:
        with open(os.path.join(directory, "probe.c"), "w", encoding="ascii") as source:
            source.write(PROBE_C)
        try:
            done = subprocess.run(
                [sys.executable, "-c", PROBE_PY],
                cwd=directory,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return "compiling a test extension took over 5 minutes"
    return "" if done.returncode == 0 else first_error(done.stdout)


class CompiledOrPureBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """hatch-mypyc's hook where the toolchain works, the pure-Python wheel where it does not;
    the wheel records which (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mypyc: Any = None
        self._record_directory = ""

    def plan(self) -> tuple[str, str]:
        """(build, why it is pure Python or ""), from `AUDIT2SYSMON_BUILD` and the probe."""
        wanted = requested()
        if wanted == "pure":
            return PURE, f"{VARIABLE}=pure at install time"
        failure = probe_toolchain()
        if not failure:
            return COMPILED, ""
        if wanted == "compiled":
            raise RuntimeError(
                f"{VARIABLE}=compiled, but this machine cannot build C extensions: {failure} "
                "(it needs a C compiler and the Python headers; Debian: apt-get install gcc python3-dev)"
            )
        return PURE, f"no C compiler with the Python headers at install time: {failure}"

    def dependencies(self) -> list[str]:
        """hatch-mypyc and mypy, only when the wheel will be compiled: a machine that cannot
        compile never downloads them (mypy's runtime library would itself need a compiler on a
        platform it has no wheel for)."""
        if self.target_name != "wheel" or self.plan()[0] != COMPILED:
            return []
        return list(self.config.get("compile-dependencies", []))

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if version == "editable":
            if requested() == "compiled":
                raise RuntimeError(f"{VARIABLE}=compiled: an editable install runs the source files, pure Python")
            self.app.display_info("audit2sysmon: editable install, the source files as they are (pure Python)")
            return
        build, why = self.plan()
        if build == COMPILED:
            build, why = self.compile(version, build_data)
        if build == COMPILED:
            self.app.display_info("audit2sysmon: compiled with mypyc")
        else:
            self.app.display_warning(f"audit2sysmon: building the pure-Python package ({why})")
        self.record(build, why, build_data)

    def compile(self, version: str, build_data: dict[str, Any]) -> tuple[str, str]:
        """Run hatch-mypyc's hook with this hook's configuration (its include and exclude lists).
        mypyc failing where the probe passed falls back too, unless compiled was asked for."""
        try:
            mypyc = self.mypyc()
        except ImportError as exc:
            failure = f"hatch-mypyc is not installed in the build environment ({exc})"
            if requested() == "compiled":
                raise RuntimeError(f"{VARIABLE}=compiled: {failure}") from exc
            return PURE, failure
        try:
            mypyc.initialize(version, build_data)
        except Exception as exc:
            if requested() == "compiled":
                raise
            mypyc.clean([version])
            output = str(exc).split("\n", 1)[-1]  # hatch-mypyc's message: a title line, then mypyc's output
            return PURE, f"mypyc failed at install time: {first_error(output)}"
        return COMPILED, ""

    def mypyc(self) -> Any:
        """hatch-mypyc's hook, configured with this hook's table (ImportError where the build
        environment lacks it)."""
        if self._mypyc is None:
            from hatch_mypyc.plugin import MypycBuildHook  # type: ignore[import-untyped]

            self._mypyc = MypycBuildHook(
                self.root, self.config, self.build_config, self.metadata, self.directory, self.target_name, self.app
            )
        return self._mypyc

    def record(self, build: str, why: str, build_data: dict[str, Any]) -> None:
        """Write the file that tells the installed package which build it is (force-included:
        it exists only in the wheel, never in the source tree; data, not a module, so that
        nothing that walks the package's modules meets one without a source file)."""
        self._record_directory = tempfile.mkdtemp(prefix="audit2sysmon-build-")
        path = os.path.join(self._record_directory, os.path.basename(RECORD))
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"build": build, "why": why}, file)
        build_data["force_include"][path] = RECORD

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """The wheel is written: remove the record and the extensions mypyc left beside the
        sources (hatch-mypyc compiles in place; stale ones would shadow an editable install)."""
        if self._record_directory:
            shutil.rmtree(self._record_directory, ignore_errors=True)
            self._record_directory = ""
        if self._mypyc is not None:
            self._mypyc.clean([version])

    def clean(self, versions: list[str]) -> None:
        """Remove the extensions a compiled build leaves in the source tree (`hatch clean` too)."""
        try:
            self.mypyc().clean(versions)
        except ImportError:
            return
