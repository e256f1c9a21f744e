"""`tally.Hooks` against the live reference server, on both clients (issue 19, Speakeasy's SDK hooks).

What is shown: `before_request` may change what reaches the server (a query parameter, a header); `after_success`
sees the final 2xx answer and `after_error` the final exception, once per request however many attempts it took;
hooks add up (constructor, then `with_options`, then the call); a hook that raises stops the call with its error;
the async client awaits coroutine hooks and the sync client refuses them by name.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import AnyClient, call, unique

pytestmark = pytest.mark.integration


def recorder(seen: list[Any], label: str) -> tally.Hooks:
    return tally.Hooks(
        before_request=lambda request: seen.append((label, "before", request.url.path)),
        after_success=lambda response: seen.append((label, "success", response.status_code)),
        after_error=lambda error: seen.append((label, "error", type(error).__name__)),
    )


async def test_before_request_changes_what_the_server_sees(client: AnyClient) -> None:
    prefix = unique("hooks")
    for name in ("a", "b"):
        await call(client.experiments.create(f"{prefix}-{name}"))
    answers: list[httpx.Response] = []

    def one_per_page(request: httpx.Request) -> httpx.Request:
        request.url = request.url.copy_set_param("page_size", "1")
        return request

    page = await call(
        client.experiments.list(
            name_prefix=prefix,
            hooks=tally.Hooks(before_request=one_per_page, after_success=answers.append),
        ).first_page()
    )
    assert len(page.data) == 1  # the server got page_size=1
    assert page.next_cursor is not None
    assert [answer.status_code for answer in answers] == [200]
    assert answers[0].request.url.params["page_size"] == "1"
    assert answers[0].json()["data"][0]["id"] == page.data[0].id  # the final response, as decoded


async def test_a_changed_header_reaches_the_server_and_after_error_sees_the_answer(client: AnyClient) -> None:
    errors: list[BaseException] = []

    def wrong_key(request: httpx.Request) -> None:
        request.headers["Authorization"] = "Bearer tk_org_" + "x" * 32  # changed in place; None keeps it

    with pytest.raises(tally.AuthenticationError) as raised:
        await call(client.auth.status(hooks=tally.Hooks(before_request=wrong_key, after_error=errors.append)))
    assert errors == [raised.value]


async def test_hooks_add_up_in_order_and_run_once_per_request(client: AnyClient) -> None:
    seen: list[Any] = []
    copy = client.with_options(hooks=recorder(seen, "with_options"))
    experiment = await call(copy.experiments.create(unique("hooks"), hooks=recorder(seen, "call")))
    path = "/v1/experiments"
    assert seen == [
        ("with_options", "before", path),
        ("call", "before", path),
        ("with_options", "success", 201),
        ("call", "success", 201),
    ]
    seen.clear()
    with pytest.raises(tally.NotFoundError):
        await call(copy.experiments.get(experiment.id + "x"))
    assert [entry[1:] for entry in seen] == [
        ("before", f"{path}/{experiment.id}x"),
        ("error", "NotFoundError"),
    ]
    seen.clear()
    await call(client.experiments.get(experiment.id))  # the original client has no hooks
    assert seen == []


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_hooks_run_once_per_call_around_its_retries(live_server: RunningServer) -> None:
    """Three attempts at a port nobody listens on (a real refused connection; retries.testing() skips the
    waits): `before_request` once, `after_error` once, with the final error, which counts the attempts."""
    seen: list[Any] = []
    errors: list[BaseException] = []
    hooks = tally.Hooks(before_request=lambda r: seen.append("before"), after_error=errors.append)
    client = Tally(api_key=live_server.api_key, base_url=closed_port(), max_retries=2, hooks=hooks)
    with client, pytest.raises(tally.APIConnectionError) as raised:
        client.health()
    assert seen == ["before"]
    assert errors == [raised.value]
    assert raised.value.attempts == 3


async def test_the_async_client_awaits_coroutine_hooks_on_every_kind_of_call(
    live_server: RunningServer,
) -> None:
    seen: list[str] = []

    async def before(request: httpx.Request) -> httpx.Request:
        seen.append(f"before {request.method} {request.url.path}")
        return request

    async def success(response: httpx.Response) -> None:
        seen.append(f"success {response.status_code}")

    hooks = tally.Hooks(before_request=before, after_success=success)
    async with AsyncTally(api_key=live_server.api_key, base_url=live_server.url, hooks=hooks) as client:
        experiment = await client.experiments.create(unique("hooks"))
        seen.clear()
        await client.metrics.ingest(experiment.id, [{"name": "loss", "value": 1.0, "step": 0}])
    assert seen == [  # the ingestion key the client mints on first use is a request of its own
        f"before POST /v1/experiments/{experiment.id}/ingestion-keys",
        "success 201",
        f"before POST /v1/experiments/{experiment.id}/metrics",
        "success 200",
    ]


async def test_a_hook_that_raises_stops_the_call_with_its_error(client: AnyClient) -> None:
    def refuse(request: httpx.Request) -> None:
        raise RuntimeError("not today")

    with pytest.raises(RuntimeError, match="not today"):
        await call(client.health(hooks=tally.Hooks(before_request=refuse)))

    def fail(error: BaseException) -> None:
        raise ValueError("reported")

    with pytest.raises(ValueError, match="reported") as raised:
        await call(client.experiments.get("exp_missing", hooks=tally.Hooks(after_error=fail)))
    assert isinstance(raised.value.__context__, tally.NotFoundError)

    def broken(response: httpx.Response) -> None:
        raise KeyError("after")

    with pytest.raises(KeyError):
        await call(client.health(hooks=tally.Hooks(after_success=broken)))


def test_the_sync_client_refuses_a_coroutine_hook_by_name(sync_client: Tally) -> None:
    async def before(request: httpx.Request) -> None:
        return None

    with pytest.raises(TypeError, match=r"Hooks\.before_request returned an awaitable.*AsyncTally"):
        sync_client.health(hooks=tally.Hooks(before_request=before))


def test_bad_hooks_are_refused_naming_the_field(sync_client: Tally) -> None:
    with pytest.raises(TypeError, match=r"Hooks\.after_error must be a callable"):
        tally.Hooks(after_error="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"hooks must be a tally\.Hooks, not dict"):
        sync_client.health(hooks={"before_request": print})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"hooks must be a tally\.Hooks"):
        sync_client.with_options(hooks=print)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"Hooks\.before_request must return an httpx\.Request or None, not str"
    ):
        sync_client.health(hooks=tally.Hooks(before_request=lambda request: "GET /"))
