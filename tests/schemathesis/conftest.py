"""Counts what the schemathesis run sent and got, printed at the end of the run."""

import collections
import time

import pytest

STATS: collections.Counter = collections.Counter()
_STARTED = time.monotonic()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if not STATS:
        return
    elapsed = time.monotonic() - _STARTED
    terminalreporter.section("realstat schemathesis: requests sent")
    terminalreporter.write_line(f"{STATS['requests']} requests in {elapsed:.1f} s")
    for key in sorted(k for k in STATS if k != "requests"):
        terminalreporter.write_line(f"  {STATS[key]:6d}  {key}")
