"""Client telemetry, off by default, against the live server on both clients (issue 19, stripe-python).

Hooks show what each request carries and which answer came back; the reference server's own DEBUG log (it runs in
this process) shows that it read the figures.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

import tally
from tally import AsyncTally, ClientConfig, Tally
from tally_server import RunningServer

from ..conftest import AnyClient, call

pytestmark = pytest.mark.integration

HEADER = "x-tally-client-telemetry"


class Wire:
    """What each request sent (its telemetry header) and the request id of each answer, in order."""

    def __init__(self) -> None:
        self.sent: list[str | None] = []
        self.answered: list[str] = []

    def hooks(self) -> tally.Hooks:
        return tally.Hooks(
            before_request=lambda request: self.sent.append(request.headers.get(HEADER)),
            after_success=lambda response: self.answered.append(response.headers["x-request-id"]),
            after_error=self._error,
        )

    def _error(self, error: BaseException) -> None:
        assert isinstance(error, tally.APIStatusError)
        assert error.request_id is not None
        self.answered.append(error.request_id)


def make(kind: str, server: RunningServer, **options: Any) -> AnyClient:
    made = Tally if kind == "sync" else AsyncTally
    return made(api_key=server.api_key, base_url=server.url, **options)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_each_request_carries_the_previous_ones_figures_and_nothing_else(
    kind: str, live_server: RunningServer
) -> None:
    wire = Wire()
    client = make(kind, live_server, telemetry=True, hooks=wire.hooks())
    try:
        assert client.config.telemetry is True
        await call(client.health())
        with pytest.raises(tally.NotFoundError):  # an error answer is measured too
            await call(client.experiments.get("exp_missing"))
        await call(client.with_options(timeout=5.0).auth.status())  # copies share the figures
        await call(client.health())
    finally:
        await call(client.close())
    assert wire.sent[0] is None  # nothing before the first answer
    for sent, previous in zip(wire.sent[1:], wire.answered, strict=False):
        assert sent is not None
        payload = json.loads(sent)
        assert payload == {
            "last_request_metrics": {
                "request_id": previous,
                "request_duration_ms": payload["last_request_metrics"]["request_duration_ms"],
            }
        }
        duration = payload["last_request_metrics"]["request_duration_ms"]
        assert isinstance(duration, int)
        assert duration >= 0
    assert len(wire.sent) == len(wire.answered) == 4


async def test_off_by_default(client: AnyClient) -> None:
    wire = Wire()
    assert client.config.telemetry is False
    for _ in range(3):
        await call(client.health(hooks=wire.hooks()))
    assert wire.sent == [None, None, None]


def test_the_environment_turns_it_on_and_the_argument_wins(
    live_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLY_TELEMETRY", "1")
    wire = Wire()
    with Tally(api_key=live_server.api_key, base_url=live_server.url, hooks=wire.hooks()) as client:
        client.health()
        client.health()
    assert wire.sent[0] is None
    assert wire.sent[1] is not None
    wire = Wire()
    with Tally(
        api_key=live_server.api_key, base_url=live_server.url, hooks=wire.hooks(), telemetry=False
    ) as client:
        client.health()
        client.health()
    assert wire.sent == [None, None]
    assert ClientConfig.resolve(live_server.api_key).telemetry is True
    monkeypatch.setenv("TALLY_TELEMETRY", "sometimes")
    with pytest.raises(tally.ConfigurationError, match="TALLY_TELEMETRY='sometimes' is not a switch"):
        Tally(api_key=live_server.api_key)
    with pytest.raises(tally.ConfigurationError, match="telemetry must be True or False"):
        Tally(api_key=live_server.api_key, telemetry="yes")  # type: ignore[arg-type]


def test_the_reference_server_logs_the_figures_at_debug(
    live_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    wire = Wire()
    with (
        caplog.at_level(logging.DEBUG, logger="tally_server"),
        Tally(
            api_key=live_server.api_key, base_url=live_server.url, telemetry=True, hooks=wire.hooks()
        ) as client,
    ):
        client.health()
        client.health()
    assert wire.sent[1] is not None
    reported = json.loads(wire.sent[1])["last_request_metrics"]
    lines = [record.getMessage() for record in caplog.records if record.name == "tally_server"]
    expected = (
        f"client telemetry ({wire.answered[1]}): {wire.answered[0]} took {reported['request_duration_ms']} ms "
        "as the client measured it"
    )
    assert expected in lines


def test_the_server_ignores_a_header_it_cannot_read(live_server: RunningServer) -> None:
    """Any value, well-formed or not, never changes an answer (the contract's description)."""
    values = ["{", '{"last_request_metrics": 1}', "x" * 5000, '{"last_request_metrics":{"request_id":"a b"}}']
    statuses = [
        httpx.get(f"{live_server.url}/v1/health", headers={"X-Tally-Client-Telemetry": value}).status_code
        for value in values
    ]
    assert statuses == [httpx.codes.OK] * len(values)
