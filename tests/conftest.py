"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tally_server import RunningServer, start_server

LIVE_SERVER_KEY = "tk_org_" + "LiveServerBootstrapKey0123456789"[:32]


@pytest.fixture(scope="session")
def live_server() -> Iterator[RunningServer]:
    """One reference server for the session: scratch database, response validation on, a fixed org key
    (`LIVE_SERVER_KEY`, also `live_server.api_key`)."""
    with start_server(bootstrap_key=LIVE_SERVER_KEY, validate_responses=True) as server:
        yield server
