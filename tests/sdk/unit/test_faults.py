"""Faults, against a mock transport: what retries, what waits, and what each failure becomes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import tally
from tally import AsyncTally, Tally
from tally._retry_policy import BACKOFF_BASE

from ..conftest import AnyClient, call, collect

BASE = "http://tally.test"
KEY = "tk_org_unitTestKey0123456789abcd"

EXPERIMENT = {
    "id": "exp_1",
    "name": "e",
    "folder_id": None,
    "description": None,
    "metadata": {},
    "status": "running",
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
    "ended_at": None,
}


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "request_id": "req_err", "details": None}}
    return httpx.Response(status, json=body, headers={"X-Request-Id": "req_err", **(headers or {})})


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"X-Request-Id": "req_ok"})


class Script:
    """A mock server: answers from a list of responses (or exceptions to raise), recording requests."""

    def __init__(
        self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


@pytest.fixture(params=["sync", "async"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., AnyClient]]:
    clients: list[AnyClient] = []

    def factory(script: Script, **options: Any) -> AnyClient:
        cls = Tally if request.param == "sync" else AsyncTally
        client = cls(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(script), **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await call(client.close())


async def test_reset_then_success_is_retried(make: Callable[..., AnyClient], isolated: list[float]) -> None:
    script = Script(httpx.ReadError("connection reset by peer"), ok(EXPERIMENT))
    experiment = await call(make(script).experiments.get("exp_1"))
    assert experiment.id == "exp_1"
    assert len(script.requests) == 2
    assert len(isolated) == 1
    assert 0 <= isolated[0] < BACKOFF_BASE


async def test_timeout_exhausts_retries(make: Callable[..., AnyClient], isolated: list[float]) -> None:
    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(tally.APITimeoutError) as caught:
        await call(make(script, max_retries=3).experiments.get("exp_1"))
    assert len(script.requests) == 4
    assert len(isolated) == 3
    assert caught.value.method == "GET"
    assert caught.value.url == f"{BASE}/v1/experiments/exp_1"
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert "GET http://tally.test/v1/experiments/exp_1" in str(caught.value)


async def test_connection_refused_is_a_connection_error(make: Callable[..., AnyClient]) -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(tally.APIConnectionError) as caught:
        await call(make(script, max_retries=0).health())
    assert not isinstance(caught.value, tally.APITimeoutError)


async def test_errors_say_how_many_attempts_were_made(make: Callable[..., AnyClient]) -> None:
    """After retries the error says so (`attempts`, and "after N attempts" in its line); a first answer does not."""
    with pytest.raises(tally.InternalServerError) as exhausted:
        await call(make(Script(error(503, "unavailable")), max_retries=2).experiments.get("exp_1"))
    assert exhausted.value.attempts == 3
    assert "-> 503 (after 3 attempts) | unavailable" in str(exhausted.value)

    with pytest.raises(tally.APIConnectionError) as refused:
        await call(make(Script(httpx.ConnectError("refused")), max_retries=1).health())
    assert refused.value.attempts == 2
    assert str(refused.value).endswith("(ConnectError: refused) (after 2 attempts)")

    with pytest.raises(tally.NotFoundError) as first:
        await call(make(Script(error(404, "not_found"))).experiments.get("exp_1"))
    assert first.value.attempts == 1
    assert "attempts" not in str(first.value)


async def test_503_burst_then_success(make: Callable[..., AnyClient], isolated: list[float]) -> None:
    script = Script(error(503, "unavailable"), error(503, "unavailable"), ok(EXPERIMENT, 201))
    experiment = await call(make(script).experiments.create("e"))
    assert experiment.id == "exp_1"
    keys = {r.headers["idempotency-key"] for r in script.requests}
    assert len(script.requests) == 3
    assert len(keys) == 1
    assert next(iter(keys)).startswith("tally-")
    assert len(isolated) == 2
    assert 0 <= isolated[1] < 2 * BACKOFF_BASE


async def test_503_beyond_max_retries_raises(make: Callable[..., AnyClient]) -> None:
    script = Script(error(503, "unavailable"))
    with pytest.raises(tally.InternalServerError) as caught:
        await call(make(script, max_retries=1).experiments.get("exp_1"))
    assert len(script.requests) == 2
    assert caught.value.status_code == 503
    assert caught.value.code == "unavailable"


async def test_429_honours_retry_after(make: Callable[..., AnyClient], isolated: list[float]) -> None:
    script = Script(error(429, "rate_limited", {"Retry-After": "3"}), ok(EXPERIMENT))
    await call(make(script).experiments.get("exp_1"))
    assert isolated == [3.0]


async def test_retry_after_beyond_cap_is_not_waited(
    make: Callable[..., AnyClient], isolated: list[float]
) -> None:
    script = Script(error(429, "rate_limited", {"Retry-After": "3600"}), ok(EXPERIMENT))
    with pytest.raises(tally.RateLimitError) as caught:
        await call(make(script).experiments.get("exp_1"))
    assert caught.value.retry_after == 3600.0
    assert isolated == []
    assert len(script.requests) == 1


async def test_409_in_progress_is_retried_other_409s_are_not(make: Callable[..., AnyClient]) -> None:
    script = Script(error(409, "idempotency_in_progress", {"Retry-After": "1"}), ok(EXPERIMENT, 201))
    assert (await call(make(script).experiments.create("e"))).id == "exp_1"
    assert len(script.requests) == 2
    conflict = Script(error(409, "conflict"))
    with pytest.raises(tally.ConflictError) as caught:
        await call(make(conflict).folders.create("taken"))
    assert len(conflict.requests) == 1
    assert caught.value.code == "conflict"
    assert caught.value.message == "conflict happened"


async def test_max_retries_per_call_with_options(make: Callable[..., AnyClient]) -> None:
    script = Script(error(500, "internal"))
    client = make(script)
    with pytest.raises(tally.InternalServerError):
        await call(client.with_options(max_retries=0).experiments.get("exp_1"))
    assert len(script.requests) == 1


async def test_html_502(make: Callable[..., AnyClient]) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    script = Script(httpx.Response(502, text=page, headers={"Content-Type": "text/html"}))
    with pytest.raises(tally.InternalServerError) as caught:
        await call(make(script, max_retries=0).experiments.get("exp_1"))
    error_ = caught.value
    assert error_.status_code == 502
    assert error_.code is None
    assert "502 Bad Gateway" in error_.message
    assert "\n" not in str(error_)


async def test_unknown_status_code(make: Callable[..., AnyClient]) -> None:
    script = Script(httpx.Response(418, text="teapot"))
    with pytest.raises(tally.APIStatusError) as caught:
        await call(make(script).experiments.get("exp_1"))
    assert type(caught.value) is tally.APIStatusError
    assert caught.value.status_code == 418


async def test_malformed_json_success_body(make: Callable[..., AnyClient]) -> None:
    script = Script(httpx.Response(200, content=b'{"id": "exp_1", ', headers={"X-Request-Id": "req_bad"}))
    with pytest.raises(tally.ResponseValidationError) as caught:
        await call(make(script).experiments.get("exp_1"))
    assert caught.value.request_id == "req_bad"
    assert caught.value.status_code == 200
    assert caught.value.method == "GET"
    assert caught.value.url == f"{BASE}/v1/experiments/exp_1"


async def test_malformed_json_error_body(make: Callable[..., AnyClient]) -> None:
    script = Script(httpx.Response(400, content=b'{"error": ', headers={"X-Request-Id": "req_x"}))
    with pytest.raises(tally.BadRequestError) as caught:
        await call(make(script).experiments.get("exp_1"))
    assert caught.value.request_id == "req_x"


async def test_2xx_body_violating_the_spec(make: Callable[..., AnyClient]) -> None:
    script = Script(ok({**EXPERIMENT, "created_at": 12}))
    with pytest.raises(tally.ResponseValidationError) as caught:
        await call(make(script).experiments.get("exp_1"))
    assert "created_at" in str(caught.value)
    missing = Script(ok({k: v for k, v in EXPERIMENT.items() if k != "status"}))
    with pytest.raises(tally.ResponseValidationError, match="status"):
        await call(make(missing).experiments.get("exp_1"))


async def test_unknown_enum_value_and_unknown_fields_parse(make: Callable[..., AnyClient]) -> None:
    script = Script(ok({**EXPERIMENT, "status": "archived", "new_field": [1, 2]}))
    experiment = await call(make(script).experiments.get("exp_1"))
    assert experiment.status == "archived"
    assert experiment.status != tally.ExperimentStatus.RUNNING


async def test_revoked_cached_ingestion_key_is_replaced_once(make: Callable[..., AnyClient]) -> None:
    minted: list[str] = []
    used: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ingestion-keys"):
            token = f"tk_ing_minted{len(minted)}xxxxxxxxxxxxxxxx"
            minted.append(token)
            body = {
                "id": f"ik_{len(minted)}",
                "experiment_id": "exp_1",
                "name": "tally-sdk",
                "token_hint": token[-4:],
                "created_at": "2026-11-23T10:00:00Z",
                "revoked_at": None,
                "token": token,
            }
            return ok(body, 201)
        bearer = request.headers["authorization"].removeprefix("Bearer ")
        used.append(bearer)
        if bearer == minted[0]:
            return error(401, "unauthenticated")
        return ok({"accepted": 1, "duplicates": 0, "conflicts": []})

    client = make(Script(server))
    result = await call(client.metrics.ingest("exp_1", [{"name": "m", "value": 1.0, "step": 0}]))
    assert result.accepted == 1
    assert len(minted) == 2
    assert used == [minted[0], minted[1]]

    # Only once per call: if the fresh key is refused too, the error surfaces.
    minted.clear()
    used.clear()
    client.ingestion_keys.forget("exp_1")

    def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ingestion-keys"):
            return server(request)
        used.append(request.headers["authorization"])
        return error(401, "unauthenticated")

    refusing = make(Script(always_401))
    with pytest.raises(tally.AuthenticationError):
        await call(refusing.metrics.ingest("exp_1", [{"name": "m", "value": 1.0, "step": 0}]))
    assert len(used) == 2


async def test_split_batches_rebase_conflict_indexes(make: Callable[..., AnyClient]) -> None:
    bodies: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ingestion-keys"):
            token = "tk_ing_splitxxxxxxxxxxxxxxxxxxxx"
            return ok(
                {
                    "id": "ik_1",
                    "experiment_id": "exp_1",
                    "name": None,
                    "token_hint": token[-4:],
                    "created_at": "2026-11-23T10:00:00Z",
                    "revoked_at": None,
                    "token": token,
                },
                201,
            )
        body = json.loads(request.content)
        bodies.append(body)
        conflicts = [{"index": 1, "client_event_id": body["events"][1]["client_event_id"], "message": "x"}]
        return ok({"accepted": len(body["events"]) - 1, "duplicates": 0, "conflicts": conflicts})

    client = make(Script(server))
    events = [{"name": "m", "value": float(i), "step": i} for i in range(25_000)]
    result = await call(client.metrics.ingest("exp_1", events))
    assert [len(body["events"]) for body in bodies] == [10_000, 10_000, 5_000]
    assert result.accepted == 25_000 - 3
    assert [c.index for c in result.conflicts] == [1, 10_001, 20_001]
    assert "client_event_id" not in events[0]  # the caller's dicts are not changed


async def test_ingest_uses_ingest_timeout_and_ingestion_key(make: Callable[..., AnyClient]) -> None:
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/ingestion-keys"):
            token = "tk_ing_timeoutxxxxxxxxxxxxxxxxxx"
            body = {
                "id": "ik_1",
                "experiment_id": "exp_1",
                "name": None,
                "token_hint": token[-4:],
                "created_at": "2026-11-23T10:00:00Z",
                "revoked_at": None,
                "token": token,
            }
            return ok(body, 201)
        return ok({"accepted": 1, "duplicates": 0, "conflicts": []})

    # No deadline: each attempt's timeouts would otherwise be cut to what is left of it.
    client = make(Script(server), timeout=3.0, ingest_timeout=42.0, retry=tally.RetryPolicy(max_elapsed=None))
    await call(client.metrics.ingest("exp_1", [{"name": "m", "value": 1, "step": 0}], sync=False))
    mint, ingest = seen
    assert mint.extensions["timeout"]["read"] == 3.0
    assert ingest.extensions["timeout"]["read"] == 42.0
    assert mint.headers["authorization"] == f"Bearer {KEY}"
    assert ingest.headers["authorization"] == "Bearer tk_ing_timeoutxxxxxxxxxxxxxxxxxx"
    assert ingest.url.params["sync"] == "false"
    quick = client.with_options(ingest_timeout=1.0)
    await call(quick.metrics.ingest("exp_1", [{"name": "m", "value": 1, "step": 1}]))
    assert seen[-1].extensions["timeout"]["read"] == 1.0
    assert len([r for r in seen if r.url.path.endswith("/ingestion-keys")]) == 1  # cache shared by the copy


async def test_event_hooks_and_custom_transport_keep_auth_and_retries(make: Callable[..., AnyClient]) -> None:
    hooked: list[str] = []

    def hook(request: httpx.Request) -> None:
        hooked.append(request.url.path)

    async def async_hook(request: httpx.Request) -> None:
        hooked.append(request.url.path)

    script = Script(error(503, "unavailable"), ok(EXPERIMENT))
    probe = make(Script(ok(EXPERIMENT)))
    is_async = isinstance(probe, AsyncTally)
    client = make(script, event_hooks={"request": [async_hook if is_async else hook]})
    await call(client.experiments.get("exp_1"))
    assert hooked == ["/v1/experiments/exp_1"]  # once per logical call
    assert [r.headers["authorization"] for r in script.requests] == [f"Bearer {KEY}"] * 2


async def test_pagination_against_mock(make: Callable[..., AnyClient]) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        size = int(request.url.params.get("page_size", 100))
        start = int(cursor) if cursor else 0
        items = [{**EXPERIMENT, "id": f"exp_{i}"} for i in range(start, min(start + size, 7))]
        following = start + size
        return ok({"data": items, "next_cursor": str(following) if following < 7 else None})

    script = Script(page)
    client = make(script)
    ids = [e.id for e in await collect(client.experiments.list(page_size=3, limit=5))]
    assert ids == [f"exp_{i}" for i in range(5)]
    assert [r.url.params["page_size"] for r in script.requests] == ["3", "2"]
