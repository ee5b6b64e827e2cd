"""Fixtures of the live tests: one real capture per auditd log format, shared by the session.

Every live test needs ``capture``; on a machine that cannot run them (not root, no auditd, audit
not available in the kernel, another auditd running) the fixture skips with the reason. A
failing live test's report names the directory holding that capture's logs and truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from . import auditd_capture
from .auditd_capture import Capture, LiveUnavailable

LOG_FORMATS = ["RAW", "ENRICHED"]


@pytest.fixture(scope="session")
def live_machine() -> None:
    try:
        auditd_capture.check_machine()
    except LiveUnavailable as reason:
        pytest.skip(f"live tests skipped: {reason}")


@pytest.fixture(scope="session", params=LOG_FORMATS, ids=str.lower)
def capture(request: pytest.FixtureRequest, live_machine: None,
            tmp_path_factory: pytest.TempPathFactory) -> Capture:
    """Capture the workload with auditd writing ``log_format`` (auditd is stopped on return)."""
    directory = tmp_path_factory.mktemp(f"live-{request.param.lower()}")
    try:
        result = auditd_capture.capture(directory, request.param)
    except LiveUnavailable as reason:
        pytest.skip(f"live tests skipped: {reason}")
    except Exception as error:
        raise RuntimeError(f"live capture failed; what it wrote is in {directory}") from error
    return result


@pytest.fixture(scope="session")
def convert() -> Callable:
    """``audit2sysmon.convert``; fails (not skips) the test while the API does not exist yet."""
    try:
        from audit2sysmon import convert as api
    except ImportError as error:
        pytest.fail(f"audit2sysmon.convert cannot be imported: {error}", pytrace=False)
    return api


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    capture_ = getattr(item, "funcargs", {}).get("capture")
    if report.failed and isinstance(capture_, Capture):
        report.sections.append(("live capture", f"logs and truth kept in {capture_.directory}"))

