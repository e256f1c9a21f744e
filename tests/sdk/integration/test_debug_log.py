"""The debug logger against the live server, on both clients (issue 19, Speakeasy's debug logger).

At DEBUG the client's logger shows each attempt's request and response, headers and bodies, and never a secret.
The test makes real calls that carry or return every kind of secret the API has: the organisation key
(`Authorization`), a created ingestion key (`token` in a body) and the one the client mints for an ingest, a
login link (a `tl_` token in a body's `path`), the dashboard session that opening the link starts (`Set-Cookie`)
and the same session sent back (`Cookie`). Then it scans everything logged for each secret.

The logger is one of the test's own (`logger=`), without the `tally` logger's safety-net filter, so what is shown
is what the debug formatter itself lets through.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import call, unique

pytestmark = pytest.mark.integration


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@pytest.fixture
def debug_logger() -> Iterator[tuple[logging.Logger, Lines]]:
    logger = logging.getLogger(f"debug-log-test-{uuid.uuid4().hex}")
    lines = Lines()
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lines
    logger.removeHandler(lines)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_debug_shows_requests_and_responses_and_no_secret(
    kind: str, live_server: RunningServer, debug_logger: tuple[logging.Logger, Lines]
) -> None:
    logger, lines = debug_logger
    made = Tally if kind == "sync" else AsyncTally
    client = made(api_key=live_server.api_key, base_url=live_server.url, logger=logger)
    try:
        experiment = await call(client.experiments.create(unique("debug")))
        created = await call(client.ingestion_keys.create(experiment.id, name="debug-test"))
        await call(client.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": 0}]))
        minted = client._core.state.ingestion_keys[experiment.id]
        link = await call(client.auth.login_link())

        def open_link(request: httpx.Request) -> httpx.Request:  # the browser's GET, through the SDK's pipe
            return httpx.Request("GET", live_server.url + link.path, headers=request.headers)

        with pytest.raises(tally.APIStatusError) as opened:  # 303 to the dashboard, with its session cookie
            await call(client.health(hooks=tally.Hooks(before_request=open_link)))
        assert opened.value.response is not None
        cookie = opened.value.response.headers["set-cookie"].split(";")[0]
        status = await call(client.auth.status(extra_headers={"Cookie": cookie}))
        assert status.key_kind == "org"
    finally:
        await call(client.close())

    secrets = {
        "the organisation key": live_server.api_key,
        "the created ingestion key": created.token,
        "the minted ingestion key": minted,
        "the login link's token": link.path.split("token=", 1)[1],
        "the session cookie": cookie.split("=", 1)[1],
    }
    for what, secret in secrets.items():
        assert secret.startswith(("tk_", "tl_", "ts_"))
        assert secret not in lines.text, f"{what} is in the debug log"
        assert secret[:-4] not in lines.text, (
            f"more than the last four characters of {what} are in the debug log"
        )

    text = lines.text
    assert all(record.levelno == logging.DEBUG for record in lines.records if "\n" in record.getMessage())
    # It did show what crossed the wire: requests and responses, headers and bodies, secrets masked.
    assert f"request POST {live_server.url}/v1/experiments/{experiment.id}/ingestion-keys attempt=1" in text
    assert f"response 201 to POST {live_server.url}/v1/experiments/{experiment.id}/ingestion-keys" in text
    assert f"authorization: Bearer tk_org_...{live_server.api_key[-4:]}" in text
    assert '"name":"debug-test"' in text  # a request body
    assert f'"token":"tk_ing_...{created.token[-4:]}"' in text  # the created key's body, its token masked
    assert '"path":"/login?token=***"' in text
    assert "\n  set-cookie: ***" in text
    assert "\n  cookie: ***" in text
    assert '"value":0.5' in text  # the ingest body


def test_bodies_are_cut_and_the_full_size_is_said(
    live_server: RunningServer, debug_logger: tuple[logging.Logger, Lines]
) -> None:
    from tally._debug_log import BODY_LIMIT

    logger, lines = debug_logger
    description = "d" * 3990  # the contract's longest is 4000; the answer around it is over BODY_LIMIT
    with Tally(api_key=live_server.api_key, base_url=live_server.url, logger=logger) as client:
        folder = client.folders.create(unique("debug"), description=description)
        client.folders.get(folder.id)
    responses = [
        record.getMessage() for record in lines.records if record.getMessage().startswith("response")
    ]
    assert responses
    for message in responses:
        body = message.split("body (", 1)[1]
        assert len(body) < BODY_LIMIT + 200
    assert f"first {BODY_LIMIT} characters shown" in responses[-1]


def test_the_tally_logger_at_debug(live_server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """The SDK's own logger (`tally`), as `TALLY_LOG=debug` or `logging` set it up, shows the same."""
    client = Tally(api_key=live_server.api_key, base_url=live_server.url)
    with caplog.at_level(logging.DEBUG, logger="tally"), client:
        link = client.auth.login_link()
    token = link.path.split("token=", 1)[1]
    assert "request POST" in caplog.text
    assert "response 201" in caplog.text
    assert token not in caplog.text
    assert live_server.api_key not in caplog.text
