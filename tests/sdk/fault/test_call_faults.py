"""The call deadline and the default retry policy with real sockets and processes: a server that accepts
connections and never answers fails the call at its deadline; a server SIGKILLed and restarted a few seconds later
is ridden out by the defaults, and the call's effect happens once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

import tally
import tally.retries
from tally import AsyncTally, Tally

from .conftest import KEY, ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


# ---- a server that accepts connections and never answers -------------------------------------------------------
@pytest.fixture
def hung_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A listening socket that accepts every connection, reads nothing and answers nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


DEADLINE = 2.0


def test_the_deadline_ends_a_call_to_a_hung_server(hung_server: tuple[str, list[socket.socket]]) -> None:
    url, accepted = hung_server
    policy = tally.RetryPolicy(max_elapsed=DEADLINE)
    with Tally(api_key=KEY, base_url=url, timeout=0.5, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(tally.APITimeoutError):
            client.experiments.get("exp_hung")
        elapsed = time.monotonic() - started
    assert len(accepted) >= 2  # it retried within the deadline...
    assert elapsed < DEADLINE + 1.0  # ...and stopped at it, not after 6 attempts of 0.5 s


async def test_the_deadline_ends_an_async_ingest_to_a_hung_server(
    hung_server: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = hung_server
    policy = tally.RetryPolicy(max_elapsed=DEADLINE)
    async with AsyncTally(api_key=KEY, base_url=url, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(tally.APITimeoutError):
            # Its first request (minting the experiment's ingestion key) hangs: the deadline covers the whole
            # call, and each attempt's 10 s timeout is cut to what is left of it.
            await client.metrics.ingest("exp_hung", [{"name": "loss", "value": 1.0, "step": 1}])
        elapsed = time.monotonic() - started
    assert accepted
    assert elapsed < DEADLINE + 1.0


# ---- a server restart, ridden out by the default policy ---------------------------------------------------------
def test_the_default_policy_rides_out_a_server_restart(server: ServerProcess) -> None:
    server.start()
    tally.retries.set_testing(False)  # real waits: the restart takes real seconds
    try:
        with Tally(api_key=KEY, base_url=server.url) as client:
            client.health()
            server.kill()
            outage = 3.0

            def restart() -> None:
                time.sleep(outage)
                server.start()

            restarter = threading.Thread(target=restart)
            restarter.start()
            started = time.monotonic()
            experiment = client.experiments.create("through-a-restart")
            waited = time.monotonic() - started
            restarter.join()
            assert waited >= outage  # the call really was made while the server was down
            names = [e.name for e in client.experiments.list()]
            assert names.count("through-a-restart") == 1
            assert client.experiments.get(experiment.id).name == "through-a-restart"
    finally:
        server.stop()
