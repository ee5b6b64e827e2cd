"""The documented examples run: every module's doctests and the `pycon` blocks of docs/api.md."""

from __future__ import annotations

import ast
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


def source_doctests(name: str) -> list[doctest.DocTest]:
    """The examples in the docstrings of module `name`, read from its source file and run in
    the namespace of the installed module. `doctest.testmod` would find none in a compiled
    build (its functions are not Python functions), and pass without running anything."""
    module = importlib.import_module(name)
    source = ROOT / "src" / Path(*name.split(".")).with_suffix(".py")
    if not source.exists():
        source = source.with_suffix("") / "__init__.py"
    tree = ast.parse(source.read_text("utf-8"))
    parser, tests = doctest.DocTestParser(), []
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node, clean=False)
            if text and ">>>" in text:
                where = getattr(node, "lineno", 0)
                tests.append(parser.get_doctest(text, dict(vars(module)), f"{name}:{where}", str(source), where))
    return tests


def run_doctests(tests: list[doctest.DocTest]) -> doctest.TestResults:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    assert 0 == run_doctests(source_doctests(name)).failed


def test_the_api_entry_points_have_examples():
    for name in ("audit2sysmon.convert",):
        assert run_doctests(source_doctests(name)).attempted >= 2


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
