"""The documented examples run: every module's doctests and the `pycon` blocks of docs/api.md."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import audit2sysmon

ROOT = Path(__file__).parent.parent
API_DOC = ROOT / "docs" / "api.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# __main__ runs the command when imported.
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(audit2sysmon.__path__, "audit2sysmon.")
    if not info.name.endswith("__main__")
)
PYCON = re.compile(r"^```pycon\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, report=True)
    assert 0 == result.failed


def test_the_api_entry_points_have_examples():
    for name in ("audit2sysmon.convert",):
        assert doctest.testmod(importlib.import_module(name), optionflags=FLAGS).attempted >= 2


def test_api_md_examples_run(monkeypatch):
    """All blocks share one namespace (later examples use earlier names), run from the root."""
    monkeypatch.chdir(ROOT)
    text = API_DOC.read_text()
    blocks = [(text.count("\n", 0, m.start(1)), m.group(1)) for m in PYCON.finditer(text)]
    assert len(blocks) >= 8
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=FLAGS)
    namespace: dict[str, object] = {}
    for lineno, block in blocks:
        test = parser.get_doctest(block, namespace, "docs/api.md", str(API_DOC), lineno)
        runner.run(test, clear_globs=False)
        namespace = test.globs  # get_doctest copied the namespace: carry the new one on
    result = runner.summarize(verbose=False)
    assert result.attempted > 20
    assert 0 == result.failed
