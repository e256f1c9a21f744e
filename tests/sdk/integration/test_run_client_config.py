"""A run sends through the caller's own client (issue 22): its transport, its `http_client`, its event hooks and
its logger see every request of the run's sender, against the live reference server.

Until issue 22 the sender built a client of its own from the caller's credentials alone, so a proxy, a custom
transport (TLS, tracing), event hooks and the caller's logger were silently skipped for every run request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tally import AsyncTally, Tally
from tally._sync._run_port import RunPort
from tally.run import ClientClosedError, sync_spools
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration


class Recording(httpx.BaseTransport):
    """A real transport that notes every request it carries (method, path)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def caller_logger() -> Iterator[tuple[logging.Logger, ListHandler]]:
    log = logging.getLogger(f"caller.{unique('log')}")
    log.setLevel(logging.INFO)  # the attempt lines; DEBUG adds each request and response in full
    log.propagate = False
    handler = ListHandler()
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)


def run_once(client: Tally | AsyncTally) -> str:
    """A whole run: create, three steps, an annotation, completed; returns the experiment id."""
    with client.run(unique("through-caller")) as run:
        for step in range(3):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.annotate("halfway", step=1)
        run.flush(timeout=30)
    assert run.status().stored == 4
    assert run.id is not None
    return run.id


def logged_calls(lines: list[str]) -> set[tuple[str, str]]:
    """(method, path) of each attempt line of the client's log (`POST http://.../metrics?sync=true -> 200 ...`)."""
    calls = set()
    for line in lines:
        method, _, rest = line.partition(" ")
        url = rest.split(" -> ", 1)[0]
        calls.add((method, httpx.URL(url).path))
    return calls


def sender_calls(experiment_id: str) -> set[tuple[str, str]]:
    """What the run's sender must send for `run_once`: the experiment, its ingestion key, the metrics, the
    annotation and the final status."""
    base = f"/v1/experiments/{experiment_id}"
    return {
        ("POST", "/v1/experiments"),
        ("POST", f"{base}/ingestion-keys"),
        ("POST", f"{base}/metrics"),
        ("POST", f"{base}/annotations"),
        ("POST", f"{base}/status"),
    }


def test_the_run_sends_through_the_callers_transport(live_server: RunningServer) -> None:
    recording = Recording()
    with Tally(api_key=live_server.api_key, base_url=live_server.url, transport=recording) as client:
        experiment_id = run_once(client)
    assert sender_calls(experiment_id) <= set(recording.seen)


def test_the_run_sends_through_the_callers_http_client(live_server: RunningServer) -> None:
    recording = Recording()
    with (
        httpx.Client(transport=recording) as http_client,
        Tally(api_key=live_server.api_key, base_url=live_server.url, http_client=http_client) as client,
    ):
        experiment_id = run_once(client)
        assert not http_client.is_closed  # the caller's, left open
    assert sender_calls(experiment_id) <= set(recording.seen)


def test_the_callers_logger_and_event_hooks_see_the_senders_requests(
    live_server: RunningServer, caller_logger: tuple[logging.Logger, ListHandler]
) -> None:
    log, handler = caller_logger
    hooked: list[str] = []
    with Tally(
        api_key=live_server.api_key,
        base_url=live_server.url,
        logger=log,
        event_hooks={"request": [lambda request: hooked.append(f"{request.method} {request.url.path}")]},
    ) as client:
        experiment_id = run_once(client)
    assert sender_calls(experiment_id) <= logged_calls(handler.lines)
    for method, path in sender_calls(experiment_id):
        assert f"{method} {path}" in hooked


async def test_an_async_clients_run_keeps_its_logger_and_event_hooks(
    live_server: RunningServer, caller_logger: tuple[logging.Logger, ListHandler]
) -> None:
    """An AsyncTally's pool belongs to its event loop, so its run sends from a loop of its own, with the
    client's credentials, settings, event hooks and logger."""
    log, handler = caller_logger
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(f"{request.method} {request.url.path}")

    async with AsyncTally(
        api_key=live_server.api_key, base_url=live_server.url, logger=log, event_hooks={"request": [hook]}
    ) as client:
        experiment_id = run_once(client)
    assert sender_calls(experiment_id) <= logged_calls(handler.lines)
    for method, path in sender_calls(experiment_id):
        assert f"{method} {path}" in hooked


def test_a_run_whose_client_is_closed_keeps_its_events_for_tally_sync(
    live_server: RunningServer, tmp_path: Path
) -> None:
    """A thread sender sends through the caller's client, so closing that client first stops the sending: `flush()`
    says so at once, `close()` does not wait for what cannot be sent, and `tally sync` uploads the rest. (A sender
    process has a client of its own: the next test.)"""
    client = Tally(api_key=live_server.api_key, base_url=live_server.url)
    run = client.run(unique("closed-first"), sender="thread")
    for step in range(50):
        run.log({"loss": float(step)}, step=step)
    client.close()
    with pytest.raises(ClientClosedError, match="close the run before its client"):
        run.flush()
    run.close()
    assert run.id is not None
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as again:
        sync_spools(RunPort(again, owned=False), tmp_path / "spool")
        assert sum(1 for _ in again.metrics.list(run.id, page_size=1000)) == 50
        assert again.experiments.get(run.id).status == "completed"


def test_a_run_with_a_sender_process_sends_on_after_its_client_is_closed(live_server: RunningServer) -> None:
    client = Tally(api_key=live_server.api_key, base_url=live_server.url)
    run = client.run(unique("closed-first-process"), sender="process")
    for step in range(50):
        run.log({"loss": float(step)}, step=step)
    client.close()
    run.flush(timeout=60)  # no ClientClosedError: the sender process's client is its own
    status = run.close()
    assert (status.stored, status.pending) == (50, 0)
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as again:
        assert sum(1 for _ in again.metrics.list(status.experiment_id or "", page_size=1000)) == 50


async def test_an_async_clients_own_transport_stays_with_its_loop_and_the_log_says_so(
    live_server: RunningServer, caller_logger: tuple[logging.Logger, ListHandler]
) -> None:
    log, handler = caller_logger
    async with AsyncTally(
        api_key=live_server.api_key,
        base_url=live_server.url,
        transport=httpx.AsyncHTTPTransport(),
        logger=log,
    ) as client:
        run_once(client)
    assert any("transport/http_client serves its own event loop" in line for line in handler.lines)
