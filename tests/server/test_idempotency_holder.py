"""On PostgreSQL an Idempotency-Key claim lives exactly as long as the database session of the request holding it:
a server killed after claiming, or a database restart that cuts its session, frees the key for the retry within
seconds (not after the 10-minute stale timeout), and the operation still happens exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .postgres_cluster import PostgresCluster
from .processes import ServerProcess

KEY = "claim-dies-with-its-holder"
BODY = {"name": "paused"}
TAKEOVER_DEADLINE = 20.0  # seconds; generous: the claim is free as soon as the holder's session ends

# The test's hook, run inside the holding server before it starts (never production code): the first
# `createExperiment` of an experiment named "paused" signals that it runs (its key claimed, its transaction
# open) and waits for the test's go-ahead.
_PAUSE_AFTER_CLAIM = """
import pathlib
import time

from tally_server import handlers

_original = handlers.HANDLERS["createExperiment"]
_running, _go = pathlib.Path({running!r}), pathlib.Path({go!r})


def _paused(call):
    if call.body.get("name") == "paused" and not _running.exists():  # the first such request only
        _running.touch()
        while not _go.exists():
            time.sleep(0.02)
    return _original(call)


handlers.HANDLERS["createExperiment"] = _paused
"""


class _PausedRequest:
    """The first request, sent in a thread to the holding server; it stops inside its operation."""

    def __init__(self, server: ServerProcess, tmp_path: Path) -> None:
        self.running, self.go = tmp_path / "running", tmp_path / "go"
        self.hook = _PAUSE_AFTER_CLAIM.format(running=str(self.running), go=str(self.go))
        self.server = server
        self.outcome: httpx.Response | Exception | None = None
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        try:
            with self.server.client() as client:
                self.outcome = client.post("/v1/experiments", json=BODY, headers={"Idempotency-Key": KEY})
        except httpx.HTTPError as exc:
            self.outcome = exc

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.running.exists():
            assert time.monotonic() < deadline, "the first request never reached its operation"
            assert self._thread.is_alive(), f"the first request ended early: {self.outcome!r}"
            time.sleep(0.02)

    def finish(self) -> httpx.Response | Exception | None:
        self.go.touch()
        self._thread.join(30)
        return self.outcome


def _retry_until_created(server: ServerProcess) -> httpx.Response:
    """What a client does: resend the same key and body while the answer says "retry"; the 201 it ends with."""
    started = time.monotonic()
    last: httpx.Response | Exception | None = None
    with server.client() as client:
        while time.monotonic() - started < TAKEOVER_DEADLINE:
            try:
                last = client.post("/v1/experiments", json=BODY, headers={"Idempotency-Key": KEY})
            except httpx.TransportError as exc:  # a pooled connection cut by the restart
                last = exc
            else:
                if last.status_code == 201:
                    return last
                assert last.status_code in (409, 503), last.text
            time.sleep(0.2)
    text = last.text if isinstance(last, httpx.Response) else repr(last)
    raise AssertionError(f"the key was still held after {TAKEOVER_DEADLINE} s: {text}")


def _assert_exactly_one(server: ServerProcess, created: httpx.Response) -> None:
    with server.client() as client:
        replay = client.post("/v1/experiments", json=BODY, headers={"Idempotency-Key": KEY})
        assert replay.status_code == 201, replay.text
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json()["id"] == created.json()["id"]
        named = client.get("/v1/experiments", params={"name_prefix": "paused"}).json()["data"]
    assert [e["id"] for e in named] == [created.json()["id"]]


def test_a_claim_dies_with_the_server_that_held_it(postgres: PostgresCluster, tmp_path: Path) -> None:
    url = postgres.create_database("holder")
    holder = ServerProcess(url, tmp_path / "config-holder")  # type: ignore[arg-type]
    other = ServerProcess(url, tmp_path / "config-other")  # type: ignore[arg-type]
    first = _PausedRequest(holder, tmp_path)
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda start: start(), [lambda: holder.start(hook=first.hook), other.start]))
        first.start()
        holder.kill()  # SIGKILL after the claim, inside the operation: no release, no shutdown
        created = _retry_until_created(other)
        assert isinstance(first.finish(), httpx.TransportError)
        _assert_exactly_one(other, created)
    finally:
        first.go.touch()
        holder.stop()
        other.stop()


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test's own: restarting the session's would cut every other test's sessions."""
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_claim_dies_with_its_database_session(own_postgres: PostgresCluster, tmp_path: Path) -> None:
    server = ServerProcess(own_postgres.create_database("restart"), tmp_path / "config")  # type: ignore[arg-type]
    first = _PausedRequest(server, tmp_path)
    try:
        server.start(hook=first.hook)
        first.start()
        own_postgres.restart()  # cuts the session holding the claim; its release cannot run either
        created = _retry_until_created(server)  # while the first request is still inside its operation
        outcome = first.finish()
        assert isinstance(outcome, httpx.Response), outcome
        assert outcome.status_code >= 500, outcome.text  # its transaction died with its session
        _assert_exactly_one(server, created)
    finally:
        first.go.touch()
        server.stop()
