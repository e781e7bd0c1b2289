"""Shared by the Python suites (Tests/deploy, Tests/browser).

With SESSION_TESTS_REQUIRE_ALL=1 (set by .ci/run) a skipped test fails instead: CI installs
everything every test needs, so a skip there means a broken feature or a missing tool, and a
quiet `s` among the dots would hide it. On a developer's machine without, say, network
namespaces, those tests still skip with their reason.
"""
import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("SESSION_TESTS_REQUIRE_ALL") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, which SESSION_TESTS_REQUIRE_ALL=1 (CI) does not allow: {reason}"
