"""`client.request(...)` where a live server cannot easily help (respx): retries with one idempotency key per call,
and 204 No Content. The spec has no 204 operation yet (deleteAnnotation comes with the contract extension), so
the 204 case adds one row to the generated operation table for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
import tally_api_types.operations as operations

import tally
from tally import AsyncTally, Tally
from tally._base import decode

from ..conftest import AnyClient, call
from .test_faults import BASE, EXPERIMENT, KEY, error, ok


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture(params=["sync", "async"])
async def mocked(request: pytest.FixtureRequest, router: respx.Router) -> AsyncIterator[AnyClient]:
    transport = httpx.MockTransport(router.handler)
    if request.param == "sync":
        with Tally(api_key=KEY, base_url=BASE, transport=transport) as sync:
            yield sync
    else:
        async with AsyncTally(api_key=KEY, base_url=BASE, transport=transport) as async_:  # type: ignore[arg-type]
            yield async_


@pytest.fixture
def delete_operation(monkeypatch: pytest.MonkeyPatch) -> str:
    """A DELETE operation answering 204 (the shape of the coming deleteAnnotation), built on a generated module."""
    row = operations.Operation(
        "deleteThing", "tally_api.api.experiments.get_experiment", "GET", "/v1/experiments/{experiment_id}", (204,),
        None, "org",
    )  # fmt: skip
    monkeypatch.setitem(operations.OPERATIONS, "deleteThing", row)
    return "deleteThing"


async def test_a_204_answer_is_none_and_raw_shows_it(
    mocked: AnyClient, router: respx.Router, delete_operation: str
) -> None:
    route = router.get("/v1/experiments/exp_1").mock(return_value=httpx.Response(204))
    assert await call(mocked.request(delete_operation, experiment_id="exp_1")) is None
    raw = await call(mocked.with_raw_response(mocked.request)(delete_operation, experiment_id="exp_1"))
    assert (raw.status_code, raw.parsed) == (204, None)
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"


async def test_an_error_on_a_204_operation_still_maps(
    mocked: AnyClient, router: respx.Router, delete_operation: str
) -> None:
    router.get("/v1/experiments/exp_1").mock(return_value=error(404, "not_found"))
    with pytest.raises(tally.NotFoundError):
        await call(mocked.request(delete_operation, experiment_id="exp_1"))


def test_decode_without_a_decoder() -> None:
    assert decode(None, httpx.Response(204)) is None
    assert decode(None, httpx.Response(200, content=b"ignored")) is None
    answer = error(409, "conflict")
    answer.request = httpx.Request("DELETE", f"{BASE}/v1/things/1")
    with pytest.raises(tally.ConflictError):
        decode(None, answer)


async def test_retries_resend_one_idempotency_key(mocked: AnyClient, router: respx.Router) -> None:
    route = router.post("/v1/experiments").mock(
        side_effect=[error(503, "unavailable"), error(503, "unavailable"), ok(EXPERIMENT, status=201)]
    )
    created = await call(mocked.request("createExperiment", body={"name": "e"}, max_retries=2))
    assert created.id == "exp_1"
    keys = {sent.request.headers["Idempotency-Key"] for sent in route.calls}
    assert len(route.calls) == 3
    assert len(keys) == 1
    route.side_effect = [ok(EXPERIMENT, status=201)]
    await call(mocked.request("createExperiment", body={"name": "e"}))
    assert route.calls.last.request.headers["Idempotency-Key"] not in keys  # a new call, a new key


async def test_options_reach_the_request(mocked: AnyClient, router: respx.Router) -> None:
    route = router.get("/v1/experiments/exp_1").mock(return_value=ok(EXPERIMENT))
    await call(
        mocked.request(
            "getExperiment", experiment_id="exp_1", extra_headers={"X-Trace": "1"}, extra_query={"q": "v"}
        )
    )
    sent = route.calls.last.request
    assert (sent.headers["X-Trace"], sent.url.params["q"]) == ("1", "v")
