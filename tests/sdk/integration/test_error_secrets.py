"""Every kind of SDK error, made to happen for real, pickles, prints and chains without the keys it was sent with.

An `APIStatusError` keeps its `httpx.Response`, whose request carries `Authorization: Bearer <key>` (the org key,
or the minted `tk_ing_` key of an ingestion call); a connection error is raised from an httpx exception that holds
the request too. Errors cross process boundaries (`multiprocessing`, task queues) and land in logs as pickles and
text, so none may hold a key: not in the pickle, not in `repr()` or `str()`, not in the chained exceptions, not in
a URL that carried a key in its query (issue 20, item 6). Unpickled, an error still reads as it did.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import re
import socket
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer, start_server

from ..conftest import call, unique

pytestmark = pytest.mark.timeout(60)

TOKEN = re.compile(rb"tk_(?:org|ing)_[A-Za-z0-9_-]")
"""Any key in full (a redacted one reads `tk_org_…abcd`: an ellipsis after the prefix)."""
BAD_KEY = "tk_org_" + "NotAKeyOfThisServer0123456789ab"


# ---- servers that answer what the reference server never does -----------------------------------------------
class _Odd(BaseHTTPRequestHandler):
    """503 with the error envelope and `Retry-After` for every path, but a 2xx body that breaks the spec for
    `GET /v1/experiments/...`."""

    def do_GET(self) -> None:
        if self.path.startswith("/v1/experiments/"):
            self._answer(200, {"id": 5, "name": None})
        else:
            error = {"code": "unavailable", "message": "down for maintenance", "request_id": "req_odd"}
            self._answer(503, {"error": error}, {"Retry-After": "1"})

    def _answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        content = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Request-Id", "req_odd")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def odd_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hung_url() -> Iterator[str]:
    """Accepts connections (the kernel's backlog does) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture(scope="module")
def dead_url() -> str:
    """A port nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def limited_server() -> Iterator[RunningServer]:
    """One request per key, then 429 for five seconds."""
    with start_server(rate_limit=0.2) as server:
        yield server


# ---- the cases ---------------------------------------------------------------------------------------------------
@dataclass
class World:
    """Everything a case needs: the servers, the keys in play, and how to open a client of the mode under test."""

    mode: str
    live: RunningServer
    limited: RunningServer
    odd: str
    hung: str
    dead: str
    keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys += [self.live.api_key, self.limited.api_key, BAD_KEY]

    @asynccontextmanager
    async def client(
        self, api_key: str | None = None, base_url: str | None = None, **options: Any
    ) -> AsyncIterator[Any]:
        key, url = api_key or self.live.api_key, base_url or self.live.url
        if self.mode == "sync":
            with Tally(api_key=key, base_url=url, **options) as sync:
                yield sync
        else:
            async with AsyncTally(api_key=key, base_url=url, **options) as async_:
                yield async_

    async def experiment(self) -> str:
        async with self.client() as client:
            created = await call(client.experiments.create(unique("secrets")))
            return str(created.id)

    async def ingestion_key(self, experiment_id: str) -> str:
        async with self.client() as client:
            token = (await call(client.ingestion_keys.create(experiment_id, name="secrets"))).token
        self.keys.append(token)
        return str(token)


async def bad_key(world: World) -> None:
    async with world.client(BAD_KEY) as client:
        await call(client.experiments.get("exp_missing"))


async def ingestion_key_where_an_org_key_belongs(world: World) -> None:
    experiment_id = await world.experiment()
    async with world.client(await world.ingestion_key(experiment_id)) as client:
        await call(client.experiments.get(experiment_id))


async def missing(world: World) -> None:
    async with world.client() as client:
        await call(client.experiments.get("exp_missing"))


async def keys_in_the_query(world: World) -> None:
    async with world.client() as client:
        query = {"api_key": world.live.api_key, "access_token": BAD_KEY}
        await call(client.experiments.get("exp_missing", extra_query=query))


async def conflict(world: World) -> None:
    name = unique("twice")
    async with world.client() as client:
        await call(client.folders.create(name))
        await call(client.folders.create(name))


async def idempotency_key_reused(world: World) -> None:
    key = unique("reused")
    async with world.client() as client:
        await call(client.folders.create(unique("first"), idempotency_key=key))
        await call(client.folders.create(unique("second"), idempotency_key=key))


async def bad_ingest_with_the_minted_key(world: World) -> None:
    experiment_id = await world.experiment()
    async with world.client() as client:
        body = {"events": [{"name": "loss", "value": "high", "step": 1}]}
        try:
            await call(client.request("ingestMetrics", experiment_id=experiment_id, body=body))
        finally:
            world.keys.extend(client._core.state.ingestion_keys.values())


async def rate_limited(world: World) -> None:
    for _ in range(5):  # fresh clients: none of them paces itself before its first answer
        async with world.client(world.limited.api_key, world.limited.url, max_retries=0) as client:
            with contextlib.suppress(tally.NotFoundError):  # the request that got through
                await call(client.experiments.get("exp_missing"))
    raise AssertionError("never rate limited")


async def server_error(world: World) -> None:
    async with world.client(base_url=world.odd, max_retries=0) as client:
        await call(client.auth.status())


async def response_not_in_the_spec(world: World) -> None:
    async with world.client(base_url=world.odd) as client:
        await call(client.experiments.get("exp_odd"))


async def connection_refused(world: World) -> None:
    async with world.client(base_url=world.dead, max_retries=0) as client:
        await call(client.experiments.get("exp_x", extra_query={"api_key": world.live.api_key}))


async def timeout(world: World) -> None:
    async with world.client(base_url=world.hung, timeout=0.3, max_retries=0) as client:
        await call(client.experiments.get("exp_x", extra_query={"access_token": world.live.api_key}))


async def deadline(world: World) -> None:
    policy = tally.RetryPolicy(max_elapsed=0.6)
    async with world.client(base_url=world.hung, timeout=0.25, retry=policy) as client:
        await call(client.folders.create("hung"))


async def offline(world: World) -> None:
    async with world.client(offline=True) as client:
        await call(client.experiments.get("exp_x"))


CASES: dict[str, tuple[Callable[[World], Any], type[tally.TallyError]]] = {
    "401": (bad_key, tally.AuthenticationError),
    "403": (ingestion_key_where_an_org_key_belongs, tally.PermissionDeniedError),
    "404": (missing, tally.NotFoundError),
    "400-query": (keys_in_the_query, tally.BadRequestError),
    "409": (conflict, tally.ConflictError),
    "422": (idempotency_key_reused, tally.UnprocessableEntityError),
    "400-ingest": (bad_ingest_with_the_minted_key, tally.BadRequestError),
    "429": (rate_limited, tally.RateLimitError),
    "503": (server_error, tally.InternalServerError),
    "invalid-2xx": (response_not_in_the_spec, tally.ResponseValidationError),
    "refused": (connection_refused, tally.APIConnectionError),
    "timeout": (timeout, tally.APITimeoutError),
    "deadline": (deadline, tally.APITimeoutError),
    "offline": (offline, tally.ConfigurationError),
}


# ---- the checks ---------------------------------------------------------------------------------------------------
def chain(error: BaseException) -> list[BaseException]:
    """The error and every exception it was raised from or during."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def exposures(error: BaseException) -> dict[str, bytes]:
    """Every form in which the error leaves the process: pickles (every protocol, of it and of each exception it
    chains), repr, str and the printed traceback."""
    forms: dict[str, bytes] = {}
    for depth, link in enumerate(chain(error)):
        forms[f"repr[{depth}]"] = repr(link).encode()
        forms[f"str[{depth}]"] = str(link).encode()
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            try:
                data = pickle.dumps(link, protocol)
            except (pickle.PicklingError, TypeError, AttributeError):
                break  # a foreign exception that does not pickle cannot leak by pickling
            forms[f"pickle[{depth}] protocol {protocol}"] = data
    forms["traceback"] = "".join(traceback.format_exception(error)).encode()
    response = getattr(error, "response", None)
    if response is not None:
        forms["repr(response)"] = repr(response).encode()
    return forms


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", list(CASES))
async def test_an_error_holds_no_key_and_survives_pickling(
    case: str,
    mode: str,
    live_server: RunningServer,
    limited_server: RunningServer,
    odd_server: str,
    hung_url: str,
    dead_url: str,
) -> None:
    world = World(mode, live_server, limited_server, odd_server, hung_url, dead_url)
    produce, kind = CASES[case]
    with pytest.raises(kind) as caught:
        await produce(world)
    error = caught.value

    for where, data in exposures(error).items():
        for key in world.keys:
            assert key.encode() not in data, f"{case}: the key {key[:7]}… is in {where}"
        assert not TOKEN.search(data), f"{case}: a key is in {where}: {TOKEN.search(data)}"

    restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(restored) is type(error)
    for name in ("status_code", "code", "message", "request_id", "method", "url", "details", "attempts"):
        assert getattr(restored, name) == getattr(error, name), name
    assert str(restored) == str(error)
    assert error.message
    if isinstance(error, tally.APIStatusError):
        assert error.request_id
        assert error.code or case == "503"
        assert isinstance(restored, tally.APIStatusError)
        assert restored.response is not None
        assert restored.response.status_code == error.status_code
        assert restored.response.json() == error.response.json()
        assert restored.retry_after == error.retry_after
    if error.url is not None:
        assert "exp_" in error.url or "/v1/" in error.url  # the URL still says where the request went


async def test_the_attempt_log_holds_no_key(
    live_server: RunningServer, dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry transport logs every attempt's URL, also on a logger of the caller's (`logger=`, without the
    `tally` logger's filter): a key or a password in the query is masked there too."""
    caplog.set_level(logging.INFO, logger="my.app")
    own = logging.getLogger("my.app")
    query = {"api_key": live_server.api_key, "access_token": BAD_KEY, "password": "hunter2hunter2"}
    with (
        Tally(api_key=live_server.api_key, base_url=live_server.url, logger=own) as client,
        pytest.raises(tally.BadRequestError),
    ):
        client.experiments.get("exp_missing", extra_query=query)
    with (
        Tally(api_key=live_server.api_key, base_url=dead_url, max_retries=1, logger=own) as client,
        pytest.raises(tally.APIConnectionError),
    ):
        client.experiments.get("exp_missing", extra_query=query)
    assert "api_key=" in caplog.text  # the attempts were logged...
    assert live_server.api_key not in caplog.text  # ...without the keys
    assert BAD_KEY not in caplog.text
    assert "hunter2" not in caplog.text
