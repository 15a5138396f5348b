"""The fixtures of the schemathesis tests, and the count of what the run sent and got, printed
at the end of the run."""

import collections
import time

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from helpers import MAX_EXAMPLES, env

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


@pytest.fixture(scope="session")
def api_schema():
    """The document the service serves itself (admin listener, `/openapi.yaml`)."""
    admin = env("REALSTAT_ADMIN_URL").rstrip("/")
    schema = schemathesis.openapi.from_url(f"{admin}/openapi.yaml", wait_for_schema=30.0, timeout=10)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        database="none",
        # Left to schemathesis, the `Authorization` "parameter" of the C2 scheme takes most of the
        # negative budget (dropping it); the tests inject their own authentication faults instead.
        with_security_parameters=False,
    )
    return schema


@pytest.fixture(scope="session")
def http():
    with requests.Session() as session:
        yield session
