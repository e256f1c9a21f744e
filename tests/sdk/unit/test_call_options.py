"""Per-call options on every method of both clients, retry headers, raw responses of lists, request ids, the
caller's own httpx client and logger: against a mock transport (what a live server cannot easily produce)."""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import tempfile
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import tally
import tally._types
from tally import AsyncTally, Tally
from tally._async import _resources as async_resources
from tally._options import RequestOptions, WriteOptions
from tally._sync import _resources as sync_resources

from ..conftest import AnyClient, call, collect
from .test_faults import BASE, EXPERIMENT, KEY, Script, error, ok

TOKEN = "tk_ing_optionsxxxxxxxxxxxxxxxxxxx"
CREATED_KEY = {
    "id": "ik_1",
    "experiment_id": "exp_1",
    "name": "tally-sdk",
    "token_hint": TOKEN[-4:],
    "created_at": "2026-11-23T10:00:00Z",
    "revoked_at": None,
    "token": TOKEN,
}

# Every method of every resource, with arguments. `test_every_method_is_listed` fails when a method is added
# without an entry here, so no method can miss the options.
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "health": ((), {}),
    "auth.status": ((), {}),
    "auth.login_link": ((), {}),
    "folders.list": ((), {}),
    "folders.create": (("f",), {}),
    "folders.get": (("fld_1",), {}),
    "folders.patch": (("fld_1",), {"description": "d"}),
    "folders.rename": (("fld_1", "n"), {}),
    "folders.move": (("fld_1", None), {}),
    "folders.archive": (("fld_1",), {}),
    "folders.unarchive": (("fld_1",), {}),
    "folders.delete": (("fld_1",), {}),
    "experiments.list": ((), {}),
    "experiments.create": (("e",), {}),
    "experiments.get": (("exp_1",), {}),
    "experiments.update_status": (("exp_1", "completed"), {}),
    "experiments.move": (("exp_1", None), {}),
    "experiments.update": (("exp_1",), {"tags": ["a"]}),
    "experiments.archive": (("exp_1",), {}),
    "experiments.summary": (("exp_1",), {}),
    "experiments.unarchive": (("exp_1",), {}),
    "experiments.delete": (("exp_1",), {"confirm": True}),
    "metrics.ingest": (("exp_1", [{"name": "m", "value": 1.0, "step": 0}]), {}),
    "metrics.list": (("exp_1",), {}),
    "metrics.compare": (([{"experiment_id": "exp_1", "name": "m"}],), {}),
    "metrics.compare_group": (("job-1", "m"), {}),
    "metrics.series": (("exp_1", "m"), {}),
    "metrics.export": (("exp_1",), {}),
    "metrics.export_to": (
        ("exp_1", Path(tempfile.gettempdir()) / f"tally-call-options-{os.getpid()}.ndjson"),
        {},
    ),
    "metric_catalog.list": ((), {}),
    "metric_catalog.inspect_values": (("m", "k"), {}),
    "ingestion_keys.list": (("exp_1",), {}),
    "ingestion_keys.create": (("exp_1",), {"name": "mine"}),
    "ingestion_keys.revoke": (("ik_1",), {}),
    "ingestion_keys.get": (("ik_1",), {}),
    "annotations.list": (("exp_1",), {}),
    "annotations.create": (("exp_1", "note"), {}),
    "annotations.delete": (("exp_1", "ann_1"), {}),
    "annotations.get": (("exp_1", "ann_1"), {}),
    "annotations.update": (("exp_1", "ann_1"), {"text": "t"}),
    "artifacts.upload": (("exp_1", io.BytesIO(b"weights")), {"name": "w.bin"}),
    "artifacts.list": (("exp_1",), {}),
    "artifacts.get": (("exp_1", "art_1"), {}),
    "artifacts.download": (
        ("exp_1", "art_1"),
        {"to": Path(tempfile.gettempdir()) / f"tally-call-options-{os.getpid()}.bin"},
    ),
    "artifacts.delete": (("exp_1", "art_1"), {}),
}
RESOURCES = (
    "folders", "experiments", "metrics", "metric_catalog", "ingestion_keys", "annotations", "artifacts", "auth"
)  # fmt: skip
NOT_HTTP = {"ingestion_keys.forget", "artifacts.open"}  # open() answers a reader; its reads are requests


def server(request: httpx.Request) -> httpx.Response:
    """Mints the SDK's own ingestion keys; refuses everything else with a 503 that says not to retry."""
    minting = request.method == "POST" and request.url.path.endswith("/ingestion-keys")
    if minting and json.loads(request.content).get("name") == "tally-sdk":
        return ok(CREATED_KEY, 201)
    return error(503, "unavailable", {"x-should-retry": "false"})


@pytest.fixture(params=["sync", "async"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., AnyClient]]:
    clients: list[AnyClient] = []

    def factory(script: Script | None = None, **options: Any) -> AnyClient:
        cls = Tally if request.param == "sync" else AsyncTally
        if "http_client" not in options:
            options["transport"] = httpx.MockTransport(script or Script(ok(EXPERIMENT)))
        client = cls(api_key=KEY, base_url=BASE, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await call(client.close())


def resolve(client: Any, name: str) -> Any:
    target = client
    for part in name.split("."):
        target = getattr(target, part)
    return target


def test_every_method_is_listed() -> None:
    client = Tally(api_key=KEY, base_url=BASE, transport=httpx.MockTransport(Script(ok({}))))
    try:
        methods = {"health"} | {
            f"{resource}.{name}"
            for resource in RESOURCES
            for name, member in inspect.getmembers(getattr(client, resource), inspect.ismethod)
            if not name.startswith("_")
        }
    finally:
        client.close()
    assert methods - NOT_HTTP == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("cls", [Tally, AsyncTally])
def test_every_method_takes_the_options_through_one_typed_dict(cls: type[Any], name: str) -> None:
    """`**options: Unpack[WriteOptions]` on POST, PATCH and DELETE methods, `Unpack[RequestOptions]` on reads; nothing
    restates an option by hand."""
    if name == "health":
        method = cls.health
    else:
        resource, attribute = name.split(".")
        module = async_resources if cls is AsyncTally else sync_resources
        prefix = "Async" if cls is AsyncTally else ""
        method = getattr(getattr(module, prefix + "".join(p.title() for p in resource.split("_"))), attribute)
    # (`tally._types` as locals: the client imports the public types on first use, e.g. `health`'s `Health`)
    hints = typing.get_type_hints(method, localns=vars(tally._types), include_extras=True)
    parameters = inspect.signature(method).parameters
    assert "options" in parameters
    assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD
    assert typing.get_args(hints["options"])[0] in (RequestOptions, WriteOptions)
    for option in (
        "timeout",
        "max_retries",
        "retry",
        "idempotency_key",
        "extra_headers",
        "extra_body",
        "hooks",
    ):
        assert option not in parameters, f"{name} restates {option}"


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_every_method_sends_the_options(make: Callable[..., AnyClient], name: str) -> None:
    script = Script(server)
    client = make(script, max_retries=3)
    args, kwargs = CALLS[name]
    is_write = name.endswith(
        (
            "create",
            "patch",
            "rename",
            "move",
            "update_status",
            "ingest",
            "compare",
            "revoke",
            "update",
            "archive",
            "login_link",
            "delete",
            "upload",
        )
    )
    has_body = is_write and not name.endswith(("delete", "upload"))  # an upload's body is the file
    hooked: list[str] = []
    options: dict[str, Any] = {
        "timeout": 1.25,
        "extra_headers": {"X-Extra": "h"},
        "extra_query": {"trace": "q"},
        "hooks": tally.Hooks(
            before_request=lambda request: hooked.append(f"before {request.headers.get('x-extra')}"),
            after_error=lambda error: hooked.append(f"error {type(error).__name__}"),
        ),
    }
    if is_write:
        options.update(idempotency_key=f"key-{name}")
    if has_body:
        options.update(extra_body={"extra_member": 1})

    async def invoke(**extra: Any) -> Any:
        result = resolve(client, name)(*args, **kwargs, **extra)
        return await (
            collect(result) if name.endswith(("list", "inspect_values", "export")) else call(result)
        )

    with pytest.raises(tally.InternalServerError):
        await invoke(**options)
    sent = script.requests[-1]
    assert hooked[-2:] == ["before h", "error InternalServerError"]  # the call's hooks, on every method
    assert len([r for r in script.requests if r.headers.get("x-extra")]) == 1  # x-should-retry: false
    assert sent.headers["x-extra"] == "h"
    assert sent.url.params["trace"] == "q"
    assert sent.extensions["timeout"]["read"] == 1.25
    expected = "GET"
    if is_write:
        expected = (
            "PATCH" if name in {"folders.patch", "experiments.update", "annotations.update"} else "POST"
        )
    if name.endswith(".delete"):
        expected = "DELETE"
    assert sent.method == expected
    if is_write:
        assert sent.headers["idempotency-key"] == f"key-{name}"
    if has_body:
        assert json.loads(sent.content)["extra_member"] == 1
    if not is_write:
        assert "idempotency-key" not in sent.headers
        with pytest.raises(ValueError, match="POST, PATCH and DELETE only"):
            await invoke(idempotency_key="k")
        with pytest.raises(TypeError, match="timout"):
            await invoke(timout=1)


async def test_with_options_sets_extras_per_client(make: Callable[..., AnyClient]) -> None:
    script = Script(ok(EXPERIMENT))
    client = make(script).with_options(extra_headers={"X-Team": "a", "X-Keep": "k"}, timeout=4.0)
    await call(client.experiments.get("exp_1", extra_headers={"X-Team": "b"}))
    sent = script.requests[-1]
    assert (sent.headers["x-team"], sent.headers["x-keep"]) == ("b", "k")
    assert sent.extensions["timeout"]["read"] == 4.0
    with pytest.raises(TypeError, match="with_options"):
        client.with_options(idempotency_key="k")  # type: ignore[call-arg]


async def test_retries_carry_a_retry_count(make: Callable[..., AnyClient], isolated: list[float]) -> None:
    answers = [error(503, "unavailable"), error(503, "unavailable"), ok(EXPERIMENT)]
    counts: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        counts.append(request.headers.get("x-tally-retry-count"))  # the same request object is resent
        return answers.pop(0)

    await call(make(Script(answer)).experiments.get("exp_1"))
    assert counts == [None, "1", "2"]
    assert len(isolated) == 2


async def test_server_hints_drive_retries(make: Callable[..., AnyClient], isolated: list[float]) -> None:
    script = Script(error(429, "rate_limited", {"retry-after-ms": "250", "Retry-After": "9"}), ok(EXPERIMENT))
    await call(make(script).experiments.get("exp_1"))
    assert isolated == [0.25]
    forced = Script(error(400, "invalid_request", {"x-should-retry": "true"}), ok(EXPERIMENT))
    await call(make(forced).experiments.get("exp_1"))
    assert len(forced.requests) == 2
    refused = Script(error(503, "unavailable", {"x-should-retry": "false"}))
    with pytest.raises(tally.InternalServerError):
        await call(make(refused).experiments.get("exp_1"))
    assert len(refused.requests) == 1


async def test_retry_policy_per_client_and_per_call(
    make: Callable[..., AnyClient], isolated: list[float]
) -> None:
    policy = tally.RetryPolicy(max_retries=1, initial_interval=2.0, max_interval=2.0, jitter=0.0)
    script = Script(error(500, "internal"))
    client = make(script, retry=policy)
    assert client.retry == policy
    with pytest.raises(tally.InternalServerError):
        await call(client.experiments.get("exp_1"))
    assert (len(script.requests), isolated) == (2, [2.0])
    with pytest.raises(tally.InternalServerError):
        await call(client.experiments.get("exp_1", retry=tally.RetryPolicy(max_retries=3, jitter=0.0)))
    assert len(script.requests) == 2 + 4
    with pytest.raises(tally.InternalServerError):
        await call(client.experiments.get("exp_1", max_retries=0))
    assert len(script.requests) == 2 + 4 + 1


async def test_a_call_cannot_outlive_its_deadline(make: Callable[..., AnyClient]) -> None:
    """Each attempt's timeouts are cut to what is left of `max_elapsed`."""
    script = Script(ok(EXPERIMENT))
    client = make(script, timeout=60.0, retry=tally.RetryPolicy(max_elapsed=5.0))
    await call(client.experiments.get("exp_1"))
    assert list(script.requests[-1].extensions["timeout"].values()) == [pytest.approx(5.0, abs=0.5)] * 4


async def test_split_ingest_suffixes_the_callers_key(make: Callable[..., AnyClient]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ingestion-keys"):
            return ok(CREATED_KEY, 201)
        return ok({"accepted": len(json.loads(request.content)["events"]), "duplicates": 0, "conflicts": []})

    script = Script(answer)
    events = [{"name": "m", "value": float(i), "step": i} for i in range(25_000)]
    result = await call(make(script).metrics.ingest("exp_1", events, idempotency_key="run-7"))
    keys = [r.headers["idempotency-key"] for r in script.requests if r.url.path.endswith("/metrics")]
    assert keys == ["run-7", "run-7.1", "run-7.2"]
    assert result.accepted == 25_000
    assert tally.request_id(result) == "req_ok"


async def test_request_ids_and_raw_first_page(make: Callable[..., AnyClient]) -> None:
    page = {"data": [EXPERIMENT, {**EXPERIMENT, "id": "exp_2"}], "next_cursor": "c2"}
    script = Script(lambda request: ok(page) if request.url.path == "/v1/experiments" else ok(EXPERIMENT))
    client = make(script)
    experiment = await call(client.experiments.get("exp_1"))
    assert (tally.request_id(experiment), experiment._request_id) == ("req_ok", "req_ok")
    raw = await call(client.with_raw_response(client.experiments.list)(page_size=2))
    assert isinstance(raw.parsed, tally.Page)
    assert [e.id for e in raw.parsed.data] == ["exp_1", "exp_2"]
    assert raw.request_id == "req_ok"
    assert script.requests[-1].url.params["page_size"] == "2"
    paginator = client.experiments.list(limit=1)
    assert paginator.request_id is None
    items = await collect(paginator)
    assert len(items) == 1
    assert paginator.request_id == "req_ok"


async def test_platform_header_on_every_request(make: Callable[..., AnyClient]) -> None:
    script = Script(ok(EXPERIMENT))
    client = make(script)
    await call(client.experiments.get("exp_1"))
    facts = json.loads(script.requests[-1].headers["x-tally-client-user-agent"])
    assert facts["async_library"] == ("asyncio" if isinstance(client, AsyncTally) else "false")
    assert facts["package_version"] == tally.__version__
    assert script.requests[-1].headers["user-agent"] == f"tally-python/{tally.__version__}"


async def test_callers_http_client_keeps_auth_retries_and_options(
    make: Callable[..., AnyClient], isolated: list[float]
) -> None:
    script = Script(error(503, "unavailable"), ok(EXPERIMENT))
    hooked: list[str] = []
    probe = make()
    if isinstance(probe, AsyncTally):

        async def async_hook(request: httpx.Request) -> None:
            hooked.append(request.url.path)

        mine: httpx.Client | httpx.AsyncClient = httpx.AsyncClient(
            transport=httpx.MockTransport(script),
            headers={"X-Caller": "yes"},
            event_hooks={"request": [async_hook]},
        )
    else:

        def hook(request: httpx.Request) -> None:
            hooked.append(request.url.path)

        mine = httpx.Client(
            transport=httpx.MockTransport(script),
            headers={"X-Caller": "yes"},
            event_hooks={"request": [hook]},
        )
    client = make(http_client=mine)
    experiment = await call(client.experiments.get("exp_1", timeout=3.0))
    assert experiment.id == "exp_1"
    assert len(script.requests) == 2  # retried through the caller's client
    assert len(isolated) == 1
    assert hooked == ["/v1/experiments/exp_1"] * 2  # the caller's hooks see every attempt
    for request in script.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["x-caller"] == "yes"
        assert request.extensions["timeout"]["read"] == 3.0
    await call(client.close())
    assert not mine.is_closed  # theirs to close
    await call(mine.aclose() if isinstance(mine, httpx.AsyncClient) else mine.close())
    with pytest.raises(ValueError, match="http_client"):
        type(client)(api_key=KEY, base_url=BASE, http_client=mine, transport=httpx.MockTransport(script))  # type: ignore[arg-type]
    wrong = httpx.Client() if isinstance(client, AsyncTally) else httpx.AsyncClient()
    try:
        with pytest.raises(TypeError, match="http_client"):
            type(client)(api_key=KEY, base_url=BASE, http_client=wrong)  # type: ignore[arg-type]
    finally:
        await call(wrong.aclose() if isinstance(wrong, httpx.AsyncClient) else wrong.close())


async def test_a_logger_can_be_passed_in(
    make: Callable[..., AnyClient], caplog: pytest.LogCaptureFixture
) -> None:
    mine = logging.getLogger("my.app.tally")
    script = Script(error(503, "unavailable"), ok(EXPERIMENT))
    with caplog.at_level(logging.INFO, logger="my.app.tally"):
        await call(make(script, logger=mine).experiments.get("exp_1"))
    records = [r for r in caplog.records if r.name == "my.app.tally"]
    assert len(records) == 2
    assert "-> 503" in records[0].getMessage()
    assert "retry 1 of 5" in records[0].getMessage()
    assert "-> 200" in records[1].getMessage()
    assert KEY not in caplog.text
