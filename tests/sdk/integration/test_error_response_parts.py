"""Every API error carries what the server answered: `response_text`, `headers` (immutable) and `body` (the decoded
JSON, or None), and a `ResponseValidationError` also the validation error as `.cause` (issue 19). Made to happen
for real: status errors against the live reference server, an invalid 2xx body from a small server of our own
(the reference server never sends one). None of them shows a key or a cookie.
"""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import call, unique

pytestmark = pytest.mark.timeout(60)

SECRET_TOKEN = "tk_ing_" + "SecretTokenInABrokenBody0123456789"
SECRET_COOKIE = "session=CookieSecret0123456789"


class _Broken(BaseHTTPRequestHandler):
    """200 with a body that breaks the spec (and carries a token and a cookie) for every GET."""

    def do_GET(self) -> None:
        content = json.dumps({"id": 5, "name": None, "token": SECRET_TOKEN}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Request-Id", "req_broken")
        self.send_header("Set-Cookie", SECRET_COOKIE)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def broken_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def open_client(mode: str, api_key: str, base_url: str) -> Any:
    cls = Tally if mode == "sync" else AsyncTally
    return cls(api_key=api_key, base_url=base_url, max_retries=0)


async def close(client: Any) -> None:
    await call(client.close())


def exposures(error: tally.TallyError) -> str:
    """Everything the error shows: its text, its repr, its new fields' reprs and its pickle."""
    return "\n".join(
        [
            str(error),
            repr(error),
            repr(error.response_text),
            repr(error.headers),
            repr(dict(error.headers)),
            repr(error.body),
            repr(getattr(error, "cause", None)),
            pickle.dumps(error).decode("latin-1"),
        ]
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_status_error_carries_the_answer(mode: str, live_server: RunningServer) -> None:
    client = open_client(mode, live_server.api_key, live_server.url)
    try:
        with pytest.raises(tally.NotFoundError) as caught:
            await call(client.experiments.get("exp_missing"))
        error = caught.value
        assert error.body == json.loads(error.response_text)
        assert error.body["error"]["code"] == "not_found"
        assert error.body["error"]["request_id"] == error.request_id
        assert error.headers["X-Request-Id"] == error.request_id  # case-insensitive, like HTTP
        assert error.headers["content-type"].startswith("application/json")
        with pytest.raises(TypeError):
            error.headers["x-request-id"] = "other"  # type: ignore[index]

        name = unique("twice")
        await call(client.folders.create(name))
        with pytest.raises(tally.ConflictError) as conflict:
            await call(client.folders.create(name))
        assert conflict.value.body is not None
        assert conflict.value.body["error"]["code"] == "conflict"

        with pytest.raises(tally.BadRequestError) as bad:
            await call(client.experiments.get("exp_missing", extra_query={"unknown": "1"}))
        assert bad.value.body["error"]["details"] == bad.value.details
    finally:
        await close(client)
    assert live_server.api_key not in exposures(error)
    restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (restored.response_text, dict(restored.headers), restored.body) == (
        error.response_text,
        dict(error.headers),
        error.body,
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_invalid_2xx_keeps_the_raw_body_and_the_cause(mode: str, broken_server: str) -> None:
    key = "tk_org_" + "BrokenServerKey0123456789abcdef"
    client = open_client(mode, key, broken_server)
    try:
        with pytest.raises(tally.ResponseValidationError) as caught:
            await call(client.experiments.get("exp_x"))
    finally:
        await close(client)
    error = caught.value
    assert isinstance(error.cause, msgspec.ValidationError)
    assert error.__cause__ is error.cause
    assert error.status_code == 200
    assert error.body is not None
    assert error.body["id"] == 5
    assert error.body["name"] is None
    assert '"id": 5' in error.response_text
    assert error.headers["x-request-id"] == "req_broken"
    shown = exposures(error)
    for secret in (SECRET_TOKEN, SECRET_COOKIE, key, "CookieSecret"):
        assert secret not in shown, secret
    assert error.body["token"].endswith(SECRET_TOKEN[-4:])  # masked, still says which key it was
    restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert restored.body == error.body
    assert type(restored.cause) is type(error.cause)


def test_a_connection_error_has_empty_answer_fields() -> None:
    error = tally.APIConnectionError("refused")
    assert error.response_text is None
    assert error.body is None
    assert dict(error.headers) == {}
