"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tally_server import RunningServer, start_server

# A run in a test takes no system metrics samples unless the test asks (tests/sdk/integration/test_run_system.py
# passes system_metrics_interval=): a sample at the default 10 s would add `system/` points to the exact point counts
# of any test slower than that. Set at import, so that the training processes of the fault tests inherit it.
os.environ.setdefault("TALLY_SYSTEM_METRICS_INTERVAL", "0")

LIVE_SERVER_KEY = "tk_org_" + "LiveServerBootstrapKey0123456789"[:32]


@pytest.fixture(scope="session")
def live_server() -> Iterator[RunningServer]:
    """One reference server for the session: scratch database, response validation on, a fixed org key
    (`LIVE_SERVER_KEY`, also `live_server.api_key`)."""
    with start_server(bootstrap_key=LIVE_SERVER_KEY, validate_responses=True) as server:
        yield server
